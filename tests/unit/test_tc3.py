"""TC3-HMAC-SHA256: our signatures are the SDK's, byte for byte, and the verifier's checks come in
the documented order with the documented codes."""

from __future__ import annotations

from typing import Any

import pytest
from tencentcloud.common import abstract_client, credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client
from tests.support.signing import signed_headers

from harvest.api.tc3 import (
    ReplayCache,
    SignedRequest,
    Tc3Verifier,
    parse_authorization,
    sign_request,
)
from harvest.errors import (
    InvalidAuthorization,
    InvalidParameter,
    MissingParameter,
    SecretIdNotFound,
    SignatureExpire,
    SignatureFailure,
)

NOW = 1_717_210_000
HOST = "mdp.intl.tencentcloudapi.com"
SECRETS = {"AKIDtest": "secret"}
PARAMS: dict[str, Any] = {"ChannelName": "news", "PageNum": 2, "PageSize": 20}


def sdk_request(
    monkeypatch: pytest.MonkeyPatch, method: str, params: dict[str, Any], unsigned: bool = False
) -> RequestInternal:
    """The request the real SDK builds and signs at NOW, captured before it is sent."""
    monkeypatch.setattr(abstract_client.time, "time", lambda: float(NOW))
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=HOST, reqMethod=method))
    profile.unsignedPayload = unsigned
    client = mdp_client.MdpClient(credential.Credential("AKIDtest", "secret"), "ap-singapore", profile)
    request = RequestInternal(HOST, method, "/", header={})
    client._build_req_inter("DescribeStreamPackageHarvestJobs", params, request)
    return request


def received(request: RequestInternal) -> SignedRequest:
    """The SDK's request as our server sees it: header names lower-cased, body as bytes."""
    headers = {name.lower(): str(value) for name, value in request.header.items()}
    if request.method == "GET":
        return SignedRequest("GET", headers, b"", (request.data,))
    return SignedRequest(request.method, headers, request.data.encode())


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_sign_request_reproduces_the_sdk_signature(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    # GIVEN what the SDK signs for a call at NOW
    sdk = sdk_request(monkeypatch, method, PARAMS)

    # WHEN we sign the same request
    ours = sign_request(
        secret_id="AKIDtest",
        secret_key="secret",
        host=HOST,
        action="DescribeStreamPackageHarvestJobs",
        version="2020-05-27",
        region="ap-singapore",
        method=method,
        body=sdk.data if method == "POST" else b"",
        query=sdk.data if method == "GET" else "",
        timestamp=NOW,
    )

    # THEN the Authorization headers are identical, and so are the other signed-over headers
    assert ours["Authorization"] == sdk.header["Authorization"]
    for name in ("Content-Type", "Host", "X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region"):
        assert ours[name] == sdk.header[name]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_verifier_accepts_what_the_sdk_signs(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    request = received(sdk_request(monkeypatch, method, PARAMS))
    assert Tc3Verifier(SECRETS, "mdp", 300).verify(request, NOW) == "AKIDtest"


def test_unsigned_payload_covers_headers_but_not_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an SDK request with X-TC-Content-SHA256: UNSIGNED-PAYLOAD
    request = received(sdk_request(monkeypatch, "POST", PARAMS, unsigned=True))
    assert request.headers["x-tc-content-sha256"] == "UNSIGNED-PAYLOAD"
    verifier = Tc3Verifier(SECRETS, "mdp", 300)

    # THEN it verifies, with any body
    assert verifier.verify(request, NOW) == "AKIDtest"
    assert verifier.verify(SignedRequest("POST", request.headers, b"{}"), NOW) == "AKIDtest"
    # AND a changed Host still fails
    with pytest.raises(SignatureFailure):
        verifier.verify(SignedRequest("POST", {**request.headers, "host": "evil.example"}, request.body), NOW)


# --- check order and codes ------------------------------------------------------------------------


def signed(body: bytes = b'{"ID": "a"}', timestamp: int = NOW, **options: Any) -> SignedRequest:
    """A Describe as the verifier receives it, signed with the test key pair (AKIDtest / secret)."""
    headers = signed_headers(
        "127.0.0.1:8080", "DescribeStreamPackageHarvestJob", body, timestamp=timestamp, **options
    )
    return SignedRequest("POST", {name.lower(): value for name, value in headers.items()}, body)


def with_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = {key: val for key, val in request.headers.items() if key != name}
    if value is not None:
        headers[name] = value
    return SignedRequest(request.method, headers, request.body, request.canonical_queries)


VERIFIER = Tc3Verifier(SECRETS, "mdp", 300)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic QUtJRHRlc3Q6c2VjcmV0",
        "TC3-HMAC-SHA256 Credential=AKIDtest/2024-06-01/mdp/tc3_request, SignedHeaders=content-type;host",
        "TC3-HMAC-SHA256 Credential=AKIDtest/2024-06-01/mdp, SignedHeaders=content-type;host, Signature="
        + "0" * 64,
        "TC3-HMAC-SHA256 Credential=AKIDtest/2024-06-01/mdp/tc3_request, SignedHeaders=content-type;host, "
        "Signature=" + "0" * 63,
        "TC3-HMAC-SHA256 Credential=AKIDtest/2024-06-01/mdp/tc3_request, SignedHeaders=content-type, "
        "Signature=" + "0" * 64,
        "HMAC-SHA1 Credential=AKIDtest/2024-06-01/mdp/tc3_request, SignedHeaders=content-type;host, "
        "Signature=" + "0" * 64,
    ],
)
def test_garbled_authorization_is_invalid_authorization(authorization: str | None) -> None:
    request = with_header(signed(), "authorization", authorization)
    with pytest.raises(InvalidAuthorization):
        VERIFIER.verify(request, NOW)


def test_unknown_secret_id_comes_before_the_clock() -> None:
    # GIVEN an unknown SecretId on a request that is also expired: the SecretId is reported
    with pytest.raises(SecretIdNotFound):
        VERIFIER.verify(signed(secret_id="AKIDother", timestamp=NOW - 10_000), NOW)


@pytest.mark.parametrize(("offset", "accepted"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_clock_skew_limit_is_300_seconds(offset: int, accepted: bool) -> None:
    request = signed(timestamp=NOW + offset)
    if accepted:
        assert VERIFIER.verify(request, NOW) == "AKIDtest"
    else:
        with pytest.raises(SignatureExpire):
            VERIFIER.verify(request, NOW)


def test_skew_comes_before_the_signature() -> None:
    # GIVEN an expired request with a wrong key: the expiry is reported
    with pytest.raises(SignatureExpire):
        VERIFIER.verify(signed(timestamp=NOW - 1000, secret_key="wrong"), NOW)


@pytest.mark.parametrize(("value", "error"), [(None, MissingParameter), ("soon", InvalidParameter)])
def test_missing_or_garbled_timestamp(value: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        VERIFIER.verify(with_header(signed(), "x-tc-timestamp", value), NOW)


def test_credential_scope_must_name_this_service_and_the_timestamp_date() -> None:
    # GIVEN a request signed for another service, and one whose scope date is not the timestamp's
    other_service = signed(service="cvm")
    good = signed()
    wrong_date = with_header(
        good, "authorization", good.headers["authorization"].replace("2024-06-01", "2024-05-31")
    )

    # THEN the first names the service, the second fails as a signature
    with pytest.raises(InvalidAuthorization, match="cvm"):
        VERIFIER.verify(other_service, NOW)
    with pytest.raises(SignatureFailure, match="date"):
        VERIFIER.verify(wrong_date, NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: SignedRequest(r.method, r.headers, b'{"ID": "b"}'),
        lambda r: with_header(r, "host", "127.0.0.1:8081"),
        lambda r: with_header(r, "content-type", "application/json; charset=utf-8"),
        lambda r: SignedRequest("GET", r.headers, r.body),
    ],
)
def test_any_change_to_signed_content_is_signature_failure(tamper: Any) -> None:
    with pytest.raises(SignatureFailure):
        VERIFIER.verify(tamper(signed()), NOW)


def test_wrong_key_is_signature_failure() -> None:
    with pytest.raises(SignatureFailure):
        VERIFIER.verify(signed(secret_key="not-secret"), NOW)


def test_extra_signed_headers_are_canonicalised_and_protected() -> None:
    # GIVEN a request that also signs x-tc-action
    request = signed(extra_signed_headers={"X-TC-Action": "DescribeStreamPackageHarvestJob"})
    assert "SignedHeaders=content-type;host;x-tc-action," in request.headers["authorization"]

    # THEN it verifies, and changing the action breaks it
    assert VERIFIER.verify(request, NOW) == "AKIDtest"
    with pytest.raises(SignatureFailure):
        VERIFIER.verify(with_header(request, "x-tc-action", "DeleteStreamPackageHarvestJobs"), NOW)


def test_header_values_signed_lower_cased_as_the_api_docs_describe_are_accepted() -> None:
    # GIVEN a client that lower-cased the header values before signing, then sent them as they were
    request = signed(extra_signed_headers={"x-tc-action": "describestreampackageharvestjob"})
    sent = with_header(request, "x-tc-action", "DescribeStreamPackageHarvestJob")
    # THEN the signature still matches
    assert VERIFIER.verify(sent, NOW) == "AKIDtest"


def test_get_query_is_matched_against_each_offered_encoding() -> None:
    headers = sign_request(
        secret_id="AKIDtest",
        secret_key="secret",
        host="h",
        action="A",
        version="2020-05-27",
        method="GET",
        query="PageNum=1&PageSize=5",
        timestamp=NOW,
    )
    lower = {name.lower(): value for name, value in headers.items()}
    offered = SignedRequest("GET", lower, b"", ("PageSize=5&PageNum=1", "PageNum=1&PageSize=5"))
    assert VERIFIER.verify(offered, NOW) == "AKIDtest"
    with pytest.raises(SignatureFailure):
        VERIFIER.verify(SignedRequest("GET", lower, b"", ("PageSize=5&PageNum=1",)), NOW)


def test_parse_authorization_reads_every_part() -> None:
    auth = parse_authorization(
        "TC3-HMAC-SHA256 Credential=AKIDx/2024-06-01/mdp/tc3_request,"
        " SignedHeaders=content-type;host;x-tc-action, Signature=" + "ab" * 32
    )
    assert (auth.secret_id, auth.date, auth.service) == ("AKIDx", "2024-06-01", "mdp")
    assert auth.signed_headers == ("content-type", "host", "x-tc-action")
    assert auth.signature == "ab" * 32


# --- replay protection ----------------------------------------------------------------------------


@pytest.fixture
def replay_verifier() -> Tc3Verifier:
    return Tc3Verifier(SECRETS, "mdp", 300, ReplayCache(300))


def test_a_replayed_signature_is_refused(replay_verifier: Tc3Verifier) -> None:
    request = signed()
    assert replay_verifier.verify(request, NOW) == "AKIDtest"
    with pytest.raises(SignatureFailure, match="replay"):
        replay_verifier.verify(request, NOW + 1)
    # a different request is still fine
    assert replay_verifier.verify(signed(body=b'{"ID": "c"}'), NOW + 1) == "AKIDtest"


def test_a_failed_signature_is_not_remembered(replay_verifier: Tc3Verifier) -> None:
    with pytest.raises(SignatureFailure):
        replay_verifier.verify(signed(secret_key="wrong"), NOW)
    assert replay_verifier.verify(signed(), NOW) == "AKIDtest"


def test_replay_cache_forgets_expired_signatures_and_stays_bounded() -> None:
    cache = ReplayCache(window=300, max_entries=3)
    # GIVEN signatures remembered at NOW
    for sig in ("a", "b", "c"):
        assert cache.check_and_remember(sig, NOW, NOW)
    assert not cache.check_and_remember("a", NOW, NOW)

    # WHEN more arrive than the bound THEN the oldest go first
    assert cache.check_and_remember("d", NOW, NOW)
    assert len(cache) == 3
    assert cache.check_and_remember("a", NOW, NOW)  # "a" had been evicted

    # WHEN the window has passed THEN everything is forgotten
    assert cache.check_and_remember("e", NOW + 301, NOW + 301)
    assert len(cache) == 1
