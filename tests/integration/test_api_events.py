"""The deployed entrypoint, functions/api/index.py, fed the SCF events in events/.

The event files carry real signatures made at their X-TC-Timestamp (2024-06-01); each test either
re-signs an event with a fresh timestamp (what a client would do today) or runs the handler on a
clock standing at the file's timestamp, which proves the files' own signatures are genuine.
"""

from __future__ import annotations

import base64
import copy
import http.client
import importlib.util
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from tests.support.api_stack import SECRET_ID, SECRET_KEY, write_registry
from tests.support.signing import signed_headers

from harvest.adapters.sql import Database, SqlJobStore, SqlQueue
from harvest.composition import build_api_deps
from harvest.domain.job import HarvestJob
from harvest.handlers.api import make_handler
from harvest.local.gateway import GatewayServer
from harvest.ports import Handler
from harvest.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ENTRYPOINT = ROOT / "functions" / "api" / "index.py"
FILE_TIMESTAMP = 1717210000  # the X-TC-Timestamp the event files were signed at
TWENTY_YEARS = 20 * 365 * 86400  # a startover window long enough for the files' 2024 windows

pytest_plugins = ("tests.support.api_stack",)  # the no_proxy fixture



def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def header_key(headers: Mapping[str, str], name: str) -> str:
    """The key under which the event holds header `name`, in whatever case it arrived."""
    return next((key for key in headers if key.lower() == name.lower()), name)


def resign(event: Mapping[str, Any], timestamp: int, secret_key: str = SECRET_KEY) -> dict[str, Any]:
    """The event as a client would send it at `timestamp`: X-TC-Timestamp and Authorization replaced."""
    fresh = copy.deepcopy(dict(event))
    headers: dict[str, str] = fresh["headers"]
    method = fresh.get("httpMethod") or fresh["requestContext"]["http"]["method"]
    body = fresh.get("body") or ""
    raw_body = base64.b64decode(body) if fresh.get("isBase64Encoded") else body.encode()
    signed = signed_headers(
        headers[header_key(headers, "Host")],
        headers[header_key(headers, "X-TC-Action")],
        raw_body,
        secret_key=secret_key,
        version=headers[header_key(headers, "X-TC-Version")],
        method=method,
        query=urlencode(fresh.get("queryString") or {}, doseq=True),
        content_type=headers[header_key(headers, "Content-Type")],
        timestamp=timestamp,
    )
    for name in ("X-TC-Timestamp", "Authorization"):
        headers[header_key(headers, name)] = signed[name]
    return fresh


def response_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """The Response object of an integration response, after checking the envelope around it."""
    assert result["statusCode"] == 200
    assert result["headers"] == {"Content-Type": "application/json"}
    assert result["isBase64Encoded"] is False
    response: dict[str, Any] = json.loads(result["body"])["Response"]
    assert uuid.UUID(response["RequestId"]).version == 4
    return response


def error_code(result: Mapping[str, Any]) -> str:
    return str(response_of(result)["Error"]["Code"])


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The function's environment variables, as the SCF console would set them."""
    for name in list(os.environ):
        if name.startswith("HARVEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HARVEST_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("HARVEST_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("HARVEST_REGION", "ap-singapore")
    monkeypatch.setenv("HARVEST_CHANNELS", str(write_registry(tmp_path, window=TWENTY_YEARS)))
    monkeypatch.setenv("HARVEST_DATA_DIR", str(tmp_path / "data"))
    return Settings.from_env()


@pytest.fixture
def entrypoint(environment: Settings) -> ModuleType:
    """functions/api/index.py loaded by file path, as SCF loads `index.main_handler`."""
    spec = importlib.util.spec_from_file_location(f"scf_api_index_{uuid.uuid4().hex}", ENTRYPOINT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored_job(settings: Settings, job_id: str) -> tuple[HarvestJob, list[dict[str, Any]]]:
    """The job as stored, and the bodies of the messages queued for the worker."""
    with Database.connect(settings.effective_database_url) as db:
        job = SqlJobStore(db).get(job_id)
        queued = [delivery.message.body for delivery in SqlQueue(db).receive(10, 60)]
    return job, queued


# --- the deployed entrypoint ------------------------------------------------------------------------


def test_api_gateway_create_then_get_describe(entrypoint: ModuleType, environment: Settings) -> None:
    now = int(time.time())
    # GIVEN the API-gateway create event, re-signed now
    create = resign(load_event("api_gateway_create.json"), now)

    # WHEN SCF invokes the entrypoint with it
    assert entrypoint._handler is None  # nothing is built at import
    created = response_of(entrypoint.main_handler(create, {"request_id": "scf-1"}))

    # THEN the job is created as sent, stored, and its plan message queued
    info = created["Info"]
    assert (info["ID"], info["Status"], info["StartTime"], info["EndTime"]) == (
        "evening-news-20240601",
        "Running",
        "1717200000",
        "1717203600",
    )
    assert (info["Manifest"], info["ChannelId"], info["Region"]) == (
        "evening/index.m3u8",
        "ch-news-0001",
        "ap-singapore",
    )
    job, queued = stored_job(environment, "evening-news-20240601")
    assert (job.start_epoch, job.end_epoch) == (1717200000.0, 1717203600.0)
    assert queued == [{"kind": "plan", "job_id": "evening-news-20240601"}]

    # WHEN the GET describe event (lower-case header keys, query parameters) follows
    handler = entrypoint._handler
    described = response_of(
        entrypoint.main_handler(resign(load_event("api_gateway_describe_get.json"), now), {})
    )

    # THEN it describes the same job, with the handler built once and reused
    assert described["Info"] == info
    assert entrypoint._handler is handler


def test_function_url_create_in_the_documented_shape_with_iso_times(
    entrypoint: ModuleType, environment: Settings
) -> None:
    # GIVEN the function-URL event as documented (583/96099: body, headers, httpMethod, path,
    # queryString; the client address in x-scf-remote-addr), with ISO-8601 times
    event = resign(load_event("function_url_create.json"), int(time.time()))

    # WHEN it is handled
    info = response_of(entrypoint.main_handler(event, {}))["Info"]

    # THEN the times are echoed as sent and stored as the instants they name
    assert (info["ID"], info["TimeFormat"], info["StartTime"]) == (
        "morning-show-20240601",
        "ISO-8601",
        "2024-06-01T08:00:00+08:00",
    )
    assert info["CallbackURL"] == "https://hooks.example.com/harvest/done"
    job, _ = stored_job(environment, "morning-show-20240601")
    assert (job.start_epoch, job.end_epoch) == (1717200000.0, 1717205400.0)


def test_stale_event_files_are_refused_as_expired(entrypoint: ModuleType) -> None:
    # GIVEN the event as stored, signed in 2024
    result = entrypoint.main_handler(load_event("api_gateway_create.json"), {})
    # THEN today it is refused for its timestamp, not for anything else
    assert error_code(result) == "AuthFailure.SignatureExpire"


@pytest.mark.parametrize(
    "name", ["api_gateway_create.json", "function_url_create.json", "api_gateway_describe_get.json"]
)
def test_event_files_carry_genuine_signatures(environment: Settings, name: str) -> None:
    # GIVEN the real adapters on a clock standing at the files' signing time
    deps = replace(build_api_deps(environment), clock=lambda: float(FILE_TIMESTAMP))
    handler = make_handler(deps)
    if name == "api_gateway_describe_get.json":
        response_of(handler(load_event("api_gateway_create.json"), {}))

    # WHEN the stored event is handled unchanged THEN it is accepted
    assert "Error" not in response_of(handler(load_event(name), {}))
    # AND the same event signed with another key is not
    tampered = resign(load_event(name), FILE_TIMESTAMP, secret_key="other")
    assert error_code(handler(tampered, {})) == "AuthFailure.SignatureFailure"


# --- the handler never fails an invocation ------------------------------------------------------------


@pytest.fixture
def handler(environment: Settings) -> Handler:
    return make_handler(build_api_deps(environment))


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (None, "InvalidParameter"),
        (["not", "an", "object"], "InvalidParameter"),
        ({}, "UnsupportedProtocol"),
        ({"httpMethod": "DELETE", "headers": {}}, "UnsupportedProtocol"),
        ({"httpMethod": "POST"}, "MissingParameter"),
        ({"httpMethod": "POST", "headers": "Host: x"}, "InvalidParameter"),
        ({"httpMethod": "POST", "headers": {}, "body": {"ID": "x"}}, "InvalidParameter"),
        ({"httpMethod": "POST", "headers": {}, "body": "@@", "isBase64Encoded": True}, "InvalidParameter"),
        ({"httpMethod": "POST", "headers": {"X-TC-Action": "A"}}, "MissingParameter"),
        ({"httpMethod": "POST", "headers": {"X-TC-Action": "A", "X-TC-Version": "1"}}, "NoSuchVersion"),
        (
            {
                "httpMethod": "POST",
                "headers": {"X-TC-Action": "A", "X-TC-Version": "2020-05-27", "X-TC-Region": "x"},
            },
            "UnsupportedRegion",
        ),
        (
            {
                "httpMethod": "POST",
                "headers": {"X-TC-Action": "A", "X-TC-Version": "2020-05-27", "X-TC-Region": "ap-singapore"},
            },
            "AuthFailure.InvalidAuthorization",
        ),
    ],
)
def test_unreadable_events_get_an_error_envelope(handler: Handler, event: Any, code: str) -> None:
    # WHEN an event that is not a usable request arrives THEN the answer is an error envelope, not a crash
    assert error_code(handler(event, {})) == code


def test_unexpected_failure_is_a_generic_internal_error(
    environment: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a store that fails in a way nobody planned for
    deps = build_api_deps(environment)

    class ExplodingStore(SqlJobStore):
        def get(self, job_id: str) -> HarvestJob:
            raise RuntimeError("connection to db failed: quota-exceeded-4711")

    assert isinstance(deps.store, SqlJobStore)
    handler = make_handler(replace(deps, store=ExplodingStore(deps.store._db)))
    event = resign(load_event("api_gateway_describe_get.json"), int(time.time()))

    # WHEN a describe runs into it
    response = response_of(handler(event, {}))

    # THEN the client gets InternalError with a generic message; the detail is only in the log
    assert response["Error"]["Code"] == "InternalError"
    assert "4711" not in response["Error"]["Message"]
    assert "Traceback" not in response["Error"]["Message"]
    assert "quota-exceeded-4711" in caplog.text


def _get_event(query: dict[str, Any], action: str) -> dict[str, Any]:
    event = load_event("api_gateway_describe_get.json")
    event["queryString"] = event["queryStringParameters"] = query
    event["headers"]["x-tc-action"] = action
    return event


def test_get_parameters_signed_in_sorted_order_are_accepted(handler: Handler) -> None:
    # GIVEN a GET whose signature covers the sorted query (as the Go SDK sends) while API gateway
    # hands over the parameters in another order
    event = _get_event({"PageNum": "1", "PageSize": "5"}, "DescribeStreamPackageHarvestJobs")
    signed = resign(event, int(time.time()))
    signed["queryString"] = signed["queryStringParameters"] = {"PageSize": "5", "PageNum": "1"}

    # WHEN it is handled THEN the signature matches and the integers are read from strings
    response = response_of(handler(signed, {}))
    assert (response["PageNum"], response["PageSize"], response["TotalNum"]) == (1, 5, 0)


@pytest.mark.parametrize(
    "query",
    [
        {"IDs.0": "a", "IDs.2": "b"},  # a gap in the indices: not a list
        {"IDs": "a", "IDs.0": "b"},  # a value and a list at once
        {"IDs.0": ["a", "b"]},  # a repeated key
        {"IDs..0": "a"},  # an empty path segment
    ],
)
def test_malformed_get_lists_are_invalid_parameter(handler: Handler, query: dict[str, Any]) -> None:
    event = resign(_get_event(query, "DeleteStreamPackageHarvestJobs"), int(time.time()))
    assert error_code(handler(event, {})) == "InvalidParameter"


# --- the local gateway builds the same events ------------------------------------------------------


def test_gateway_turns_a_request_into_an_api_gateway_event(no_proxy: None) -> None:
    seen: list[tuple[Mapping[str, Any], Any]] = []

    def capture(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        seen.append((event, context))
        body = base64.b64encode(b"\x00answer").decode()
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-Extra": "1"},
            "body": body,
            "isBase64Encoded": True,
        }

    # GIVEN a binary POST with repeated, valueless and escaped query parameters
    with GatewayServer(capture) as gateway:
        url = f"http://{gateway.endpoint}/release/jobs?IDs.0=a&IDs.1=b&flag&x=1&x=2&sp=a+b%26c"
        response = requests.post(url, data=b"\xff\x00", headers={"X-Custom": "v"}, timeout=10)

    # THEN the handler saw the event API gateway would deliver
    event, context = seen[0]
    assert (event["httpMethod"], event["path"]) == ("POST", "/release/jobs")
    assert event["queryString"] == {"IDs.0": "a", "IDs.1": "b", "flag": True, "x": ["1", "2"], "sp": "a b&c"}
    assert event["headers"]["X-Custom"] == "v"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"
    assert event["requestContext"]["sourceIp"] == "127.0.0.1"
    assert context["request_id"] == event["requestContext"]["requestId"]
    # AND the integration response came back as status, headers and decoded body
    assert (response.status_code, response.content, response.headers["X-Extra"]) == (201, b"\x00answer", "1")


def test_gateway_keeps_connections_alive_and_routes_prefixes_to_wsgi_apps(no_proxy: None) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}|{environ['QUERY_STRING']}".encode()]

    def api(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"api": true}'}

    with GatewayServer(api, extra_routes={"/cos/": app}) as gateway:
        connection = http.client.HTTPConnection(gateway.host, gateway.port, timeout=10)
        # WHEN two requests go over one connection, one under the route's prefix and one not
        connection.request("GET", "/cos/bucket-1250000000/a%20b.ts?x=1")
        first = connection.getresponse()
        routed = first.read()
        socket_after_first = connection.sock
        connection.request("GET", "/cosmos")
        second = connection.getresponse()
        default = second.read()
        # THEN the connection stayed open, the prefix went to the app and the rest to the handler
        assert not first.will_close
        assert connection.sock is socket_after_first
        assert routed == b"/cos|/bucket-1250000000/a b.ts|x=1"
        assert json.loads(default) == {"api": True}
        # AND HEAD answers headers only
        connection.request("HEAD", "/cos/x")
        head = connection.getresponse()
        assert head.read() == b""
        assert head.status == 200
        connection.close()


@pytest.mark.parametrize(
    ("handler_result", "status"),
    [({"statusCode": "200"}, 502), ("not a response", 502), (RuntimeError("boom"), 502)],
)
def test_gateway_answers_502_when_the_handler_breaks_the_contract(
    no_proxy: None, handler_result: Any, status: int
) -> None:
    def handler(event: Mapping[str, Any], context: Any) -> Any:
        if isinstance(handler_result, Exception):
            raise handler_result
        return handler_result

    with GatewayServer(handler) as gateway:
        response = requests.post(f"http://{gateway.endpoint}/", data=b"{}", timeout=10)
    assert response.status_code == status


def test_gateway_refuses_bodies_beyond_its_event_limit(no_proxy: None) -> None:
    calls: list[Any] = []

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        return {"statusCode": 200, "body": ""}

    with GatewayServer(handler, max_body_bytes=16) as gateway:
        response = requests.post(f"http://{gateway.endpoint}/", data=b"x" * 17, timeout=10)
    assert response.status_code == 413
    assert calls == []


def test_gateway_reads_chunked_bodies(no_proxy: None) -> None:
    bodies: list[str] = []

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        bodies.append(event["body"])
        return {"statusCode": 200, "headers": {}, "body": ""}

    def chunks() -> Iterator[bytes]:
        yield b'{"ID": '
        yield b'"job-1"}'

    # GIVEN a body sent with Transfer-Encoding: chunked THEN the handler gets it whole
    with GatewayServer(handler) as gateway:
        assert requests.post(f"http://{gateway.endpoint}/", data=chunks(), timeout=10).status_code == 200
    assert bodies == ['{"ID": "job-1"}']
