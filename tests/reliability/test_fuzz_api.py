"""Fuzzing the API function: whatever arrives, the answer is a well-formed API 3.0 envelope.

Hypothesis builds API-gateway events (random JSON shapes and types, unicode, huge strings, odd
headers, actions, methods and Authorization values, correctly signed or not) and feeds them to the
real handler on a real SQLite store; a smaller set goes over HTTP through the local gateway. Every
answer must be HTTP 200 with Content-Type exactly application/json and either the error envelope
{"Response": {"Error": {"Code", "Message"}, "RequestId"}} or a success envelope, never an
InternalError and never a traceback in the message.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.reliability.table import Recorder
from tests.support.api_stack import (
    DESTINATION,
    REGION,
    SECRET_ID,
    SECRET_KEY,
    ApiStack,
    running_api_stack,
    write_registry,
)
from tests.support.signing import signed_headers

from harvest.adapters.relay import OutboxRelay
from harvest.adapters.sql import Database, SqlJobStore, SqlQueue
from harvest.api.actions import ACTIONS
from harvest.domain.registry import load_registry
from harvest.handlers.api import API_VERSION, ApiDeps, Handler, make_handler
from harvest.local.gateway import build_event
from harvest.settings import Settings

HOST = "mdp.tencentcloudapi.com"
CREATE = "CreateStreamPackageHarvestJob"
ACTION_NAMES = sorted(ACTIONS)
PARAM_NAMES = sorted({param.name for action in ACTIONS.values() for param in action.params})
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@dataclass
class Tally:
    """What a fuzzer saw, for the table."""

    codes: Counter[str] = field(default_factory=Counter)

    def outcome(self) -> str:
        errors = Counter({code: n for code, n in self.codes.items() if code != "OK"})
        top = ", ".join(f"{code} {n}" for code, n in errors.most_common(5))
        return (
            f"{sum(self.codes.values())} requests: all HTTP 200, application/json, well-formed envelope;"
            f" {self.codes['OK']} successes, {len(errors)} distinct error codes (top: {top});"
            " 0 InternalError, 0 tracebacks"
        )


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Handler]:
    tmp = tmp_path_factory.mktemp("fuzz-api")
    settings_ = Settings(
        region=REGION,
        data_dir=tmp,
        channels_file=write_registry(tmp),
        database_url=f"sqlite:///{tmp / 'harvest.db'}",
        credentials={SECRET_ID: SECRET_KEY},
        rate_limit=0.0,
        max_body_bytes=256 * 1024,
    )
    db = Database.connect(settings_.effective_database_url)
    store = SqlJobStore(db)
    relay = OutboxRelay(store, SqlQueue(db))
    yield make_handler(
        ApiDeps(settings=settings_, registry=load_registry(settings_.channels_file), store=store, relay=relay)
    )
    db.close()


# --- strategies ----------------------------------------------------------------------------------

texts = st.one_of(st.text(), st.text(alphabet=st.characters(codec="utf-8")))
# Up to 160,000 characters (~640 KB of UTF-8): past the body cap of the stacks below (256 KB).
huge_text = st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=4), st.integers(1_000, 40_000))
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=5)),
    max_leaves=20,
)
param_values = st.one_of(json_values, huge_text)


def valid_create(job_id: str, now: float) -> dict[str, Any]:
    return {
        "ID": job_id,
        "ChannelName": "news",
        "EndpointName": "hls",
        "TimeFormat": "Epoch seconds",
        "StartTime": str(int(now) - 1800),
        "EndTime": str(int(now) - 600),
        "Destination": DESTINATION,
    }


tricky_strings = st.sampled_from(
    [
        "",
        ".",
        "..",
        "../x",
        "a//b/./c.m3u8",
        "/abs.m3u8",
        "0",
        "-1",
        "1e309",
        "NaN",
        "9" * 30,
        "2026-11-23T12:00:00Z",
        "2026-02-30T00:00:00+08:00",
        "Epoch seconds",
        "ISO8601",
        "news",
        "sports",
        "http://127.0.0.1/cb",
        "http://a..b/cb",
        "http://" + "a" * 64 + ".example/cb",
        "https://[::1]/x",
        "https://a@127.0.0.1/",
        "https://x-1.cos.ap-guangzhou.myqcloud.com/",
        "https://vod-1.cos.ap-singapore.myqcloud.com/%ff/",
        "\u0000",
        "\u202e",
        "news\n",
        "hls ",
    ]
)


def resolves_nothing(value: Any) -> bool:
    """False for a URL whose host only DNS could answer: Create resolves CallbackURL hosts, and tests
    send no traffic beyond loopback (IP literals, localhost and malformed names need no DNS)."""
    if not isinstance(value, str):
        return True
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return True
    if parts.scheme.lower() not in ("http", "https") or not host or host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        host.encode("idna")
    except UnicodeError:
        return True
    return False


@st.composite
def mutated_create(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Create with up to three fields replaced, removed or added: it reaches the field rules."""
    params: dict[str, Any] = valid_create(f"fz-{uuid.uuid4().hex[:12]}", time.time())
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([*PARAM_NAMES, "Extra"]))
        if draw(st.integers(0, 5)) == 0:
            params.pop(name, None)
        else:
            params[name] = draw(st.one_of(tricky_strings, texts, param_values))
    if not resolves_nothing(params.get("CallbackURL")):
        params["CallbackURL"] = "http://127.0.0.1/cb"
    return params


# CallbackURLs whose host needs no DNS: IP literals in many spellings, localhost, malformed names.
callback_urls = st.one_of(
    st.sampled_from(
        [
            "http://a..b/cb",
            "http://" + "a" * 64 + ".example/cb",
            "http://localhost/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "http://[fe80::1%25eth0]/cb",
            "http://0x7f.1/cb",
            "http://017700000001/cb",
            "https://8.8.8.8:99999/cb",
            "http://[::1/cb",
            "http:///cb",
        ]
    ),
    st.builds(
        lambda scheme, host, tail: f"{scheme}://{host}{tail}",
        st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
        st.text(min_size=0, max_size=80),
        st.sampled_from(["", "/", "/cb?x=1", ":80/cb", ":0/"]),
    ),
).filter(lambda url: resolves_nothing(url))


@st.composite
def parameters(draw: st.DrawFn) -> Any:
    """Mostly objects of the API's parameter names with values of any type; sometimes anything."""
    shape = draw(st.sampled_from(["params", "mutated-create", "any"]))
    if shape == "any":
        return draw(json_values)
    if shape == "mutated-create":
        return draw(mutated_create())
    return draw(st.dictionaries(st.sampled_from(PARAM_NAMES) | texts, param_values, max_size=6))


def body_bytes(params: Any, draw: st.DrawFn) -> bytes:
    style = draw(st.sampled_from(["json", "json", "nan", "binary", "truncated"]))
    if style == "binary":
        return draw(st.binary(max_size=2048))
    text = json.dumps(params, allow_nan=True, ensure_ascii=draw(st.booleans()))
    if style == "nan":
        text = text.replace("0.0", "NaN", 1)
    if style == "truncated":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text.encode("utf-8", "surrogatepass")


header_names = st.sampled_from(
    [
        "Authorization",
        "X-TC-Action",
        "X-TC-Version",
        "X-TC-Region",
        "X-TC-Timestamp",
        "Host",
        "Content-Type",
        "X-TC-Token",
        "X-TC-Content-SHA256",
        "X-Other",
    ]
)
authorizations = st.one_of(
    texts,
    st.builds(
        lambda sid, date, service, headers, sig: (
            f"TC3-HMAC-SHA256 Credential={sid}/{date}/{service}/tc3_request,"
            f" SignedHeaders={headers}, Signature={sig}"
        ),
        st.sampled_from([SECRET_ID, "AKIDunknown", ""]),
        st.sampled_from(["2026-11-23", "1970-01-01", "9999-99-99"]),
        st.sampled_from(["mdp", "cvm", ""]),
        st.sampled_from(["content-type;host", "host", "content-type;host;x-tc-action", ""]),
        st.text(alphabet="0123456789abcdef", min_size=0, max_size=70),
    ),
)


@st.composite
def events(draw: st.DrawFn) -> Any:
    """An API-gateway event: usually a real one (signed or not), sometimes a broken shape."""
    if draw(st.integers(0, 9)) == 0:
        return draw(
            st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(
                        [
                            "httpMethod",
                            "headers",
                            "body",
                            "queryString",
                            "isBase64Encoded",
                            "requestContext",
                            "rawBody",
                        ]
                    ),
                    json_values,
                ),
            )
        )
    method = draw(
        st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD", "", "PoSt", "BREW"])
    )
    action = draw(st.one_of(st.sampled_from(ACTION_NAMES), texts))
    params = draw(parameters())
    body = body_bytes(params, draw) if method.upper() != "GET" else b""
    query = ""
    if method.upper() == "GET" and isinstance(params, Mapping):
        query = urlencode(
            {str(k): str(v)[:2000] for k, v in params.items()}, encoding="utf-8", errors="surrogatepass"
        )
    headers: dict[str, str] = {}
    if draw(st.integers(0, 3)) > 0:  # mostly signed correctly, so the fuzz reaches the actions
        headers = signed_headers(
            HOST,
            action,
            body,
            version=draw(st.sampled_from([API_VERSION, API_VERSION, "2017-03-12"])),
            region=draw(st.sampled_from([REGION, REGION, "ap-guangzhou"])),
            method="GET" if method.upper() == "GET" else "POST",
            query=query,
        )
    for name, value in draw(
        st.dictionaries(header_names, texts | huge_text | authorizations, max_size=3)
    ).items():
        headers[name] = value
    event = build_event(method, "/?" + query if query else "/", headers, body, "127.0.0.1", str(uuid.uuid4()))
    if draw(st.booleans()) and draw(st.booleans()):
        event[draw(st.sampled_from(["headers", "body", "queryString", "isBase64Encoded"]))] = draw(
            json_values
        )
    return event


# --- checks --------------------------------------------------------------------------------------


def check_envelope(status: int, content_type: str | None, raw: str | bytes, tally: Tally) -> None:
    assert status == 200
    assert content_type == "application/json"
    data = json.loads(raw)
    assert isinstance(data, dict)
    assert set(data) == {"Response"}
    response = data["Response"]
    assert isinstance(response, dict)
    assert isinstance(response.get("RequestId"), str)
    assert response["RequestId"]
    error = response.get("Error")
    if error is None:
        tally.codes["OK"] += 1
        return
    assert set(error) == {"Code", "Message"}
    assert set(response) == {"Error", "RequestId"}
    code, message = error["Code"], error["Message"]
    assert isinstance(code, str)
    assert isinstance(message, str)
    assert code
    assert message
    assert not code.startswith("InternalError"), f"{code}: {message}"
    assert "Traceback" not in message, message
    assert 'File "' not in message, message
    tally.codes[code] += 1


def answer(handler: Handler, event: Any, tally: Tally) -> None:
    result = handler(event, {"request_id": "fuzz", "time_limit_in_ms": 30000})
    assert set(result) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert result["isBase64Encoded"] is False
    assert result["headers"] == {"Content-Type": "application/json"}
    check_envelope(result["statusCode"], result["headers"]["Content-Type"], result["body"], tally)


def signed_event(action: str, body: bytes) -> dict[str, Any]:
    """A POST of `body` to `action` as the API gateway hands it over, correctly signed."""
    return build_event("POST", "/", signed_headers(HOST, action, body), body, "127.0.0.1", str(uuid.uuid4()))


def test_fuzzed_events_always_get_a_well_formed_envelope(
    handler: Handler, reliability_record: Recorder
) -> None:
    tally = Tally()

    @FUZZ
    @given(event=events())
    def any_event(event: Any) -> None:
        # GIVEN any event, WHEN the API function handles it, THEN the answer is a clean envelope
        answer(handler, event, tally)

    @settings(FUZZ, max_examples=150)
    @given(params=parameters(), action=st.sampled_from(ACTION_NAMES))
    def signed_parameters(params: Any, action: str) -> None:
        # GIVEN a correctly signed POST of any JSON parameters to a real action
        body = json.dumps(params, ensure_ascii=False).encode("utf-8", "surrogatepass")
        event = signed_event(action, body)
        # WHEN the API function handles it, THEN the answer is a clean envelope
        answer(handler, event, tally)

    @settings(FUZZ, max_examples=200)
    @given(params=mutated_create())
    def signed_creates(params: dict[str, Any]) -> None:
        # GIVEN a correctly signed Create that breaks (or keeps) any field rule
        body = json.dumps(params).encode("utf-8", "surrogatepass")
        event = signed_event(CREATE, body)
        # WHEN the API function handles it, THEN the answer is a clean envelope
        answer(handler, event, tally)

    @settings(FUZZ, max_examples=150)
    @given(url=callback_urls)
    def signed_callbacks(url: str) -> None:
        # GIVEN a correctly signed, otherwise valid Create with any CallbackURL
        params = valid_create(f"fz-cb-{uuid.uuid4().hex[:12]}", time.time())
        params["CallbackURL"] = url
        body = json.dumps(params).encode("utf-8", "surrogatepass")
        event = signed_event(CREATE, body)
        # WHEN the API function handles it, THEN the answer is a clean envelope
        answer(handler, event, tally)

    any_event()
    signed_parameters()
    signed_creates()
    signed_callbacks()
    # AND a valid Create among them succeeds (the checks above do see success envelopes)
    params = valid_create(f"fz-valid-{uuid.uuid4().hex[:8]}", time.time())
    body = json.dumps(params).encode()
    event = build_event("POST", "/", signed_headers(HOST, CREATE, body), body, "127.0.0.1", "ok")
    result = handler(event, {})
    info = json.loads(result["body"])["Response"]["Info"]
    assert (info["ID"], info["Status"]) == (params["ID"], "Running")
    check_envelope(result["statusCode"], result["headers"]["Content-Type"], result["body"], tally)
    assert len(tally.codes) > 5  # the fuzz reached many different rules, not one early refusal
    reliability_record(
        "Fuzzed API events",
        "Hypothesis: API-gateway events and signed Creates with random JSON shapes/types, unicode,"
        " huge strings (to 640 KB), NaN, binary and truncated bodies, odd headers, actions, methods,"
        " Authorization, broken event shapes",
        tally.outcome(),
    )


# --- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with running_api_stack(tmp_path_factory.mktemp("fuzz-http"), max_body_bytes=256 * 1024) as stack:
        yield stack


# What a client can put on the wire as a header value or action: printable ASCII, no edge spaces.
latin1_text = st.from_regex(r"([!-~]([ -~]{0,198}[!-~])?)?", fullmatch=True)


def test_fuzzed_http_requests_get_a_well_formed_envelope(
    http_stack: ApiStack, reliability_record: Recorder
) -> None:
    tally = Tally()
    session = requests.Session()

    @settings(FUZZ, max_examples=60)
    @given(
        method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        action=st.one_of(st.sampled_from(ACTION_NAMES), latin1_text),
        body=st.one_of(
            st.binary(max_size=4096),
            parameters().map(lambda p: json.dumps(p).encode()),
            mutated_create().map(lambda p: json.dumps(p).encode()),
        ),
        signed=st.integers(0, 3).map(bool),
        extra=st.dictionaries(header_names, latin1_text, max_size=3),
        path=st.sampled_from(["/", "/?a=1&a=2", "/x/y", "/?Action=Foo&IDs.0=a", "/?%ff=%fe"]),
    )
    def any_request(
        method: str, action: str, body: bytes, signed: bool, extra: dict[str, str], path: str
    ) -> None:
        # GIVEN a request of any method, path, headers and body sent over HTTP to the gateway
        headers = signed_headers(http_stack.endpoint, action, body) if signed else {}
        headers.update({name: value for name, value in extra.items() if name != "Host"})
        # WHEN it is answered
        response = session.request(
            method, f"http://{http_stack.endpoint}{path}", data=body, headers=headers, timeout=30
        )
        # THEN the answer is a clean envelope
        check_envelope(response.status_code, response.headers.get("Content-Type"), response.content, tally)

    any_request()
    session.close()
    reliability_record(
        "Fuzzed API requests over HTTP",
        "Hypothesis: random methods, paths, bodies (binary, JSON), headers, signed or not, to the gateway",
        tally.outcome(),
    )
