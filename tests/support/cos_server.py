"""A COS stand-in on 127.0.0.1: moto's S3 app behind a thin layer that speaks COS where moto does not.

Load it with `pytest_plugins = ("tests.support.cos_server",)` and take the session fixture `cos_server`.
The real COS SDK talks to it unchanged (`CosConfig(IP=..., Port=..., Scheme="http")` keeps the proper
`Host: <bucket>.cos.<region>.myqcloud.com`, which moto reads the bucket from); boto3 works too.

What the layer adds, each for a gap between moto and COS
(docs/platform/cos.md#where-the-moto-stand-in-differs):
- it verifies the COS XML signature (`q-sign-algorithm=sha1&...`) against its key pair and answers
  403 SignatureDoesNotMatch otherwise, so signing is tested, not just assumed; boto3's AWS4 requests
  pass unchecked (they are the cross-check, not the system under test);
- moto sends some headers in lower case and the SDK returns them as a plain dict, so it restores the
  case COS uses (`Content-Type`, `ETag`, ...);
- the SDK reads error codes only from a full COS error body, so it adds `<Resource>` and `<RequestId>`;
- moto's 5 MB minimum part size becomes COS's 1 MB (S3_UPLOAD_PART_MIN_SIZE, set before moto loads).
It also records the requests it saw and can fail chosen ones on purpose (`failing`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.etree import ElementTree

import pytest
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

REGION = "ap-singapore"
APPID = "1250000000"
SECRET_ID = "AKIDcosStandIn0000000000000000000000"
SECRET_KEY = "cosStandInSecretKey000000000000000"
COS_MIN_PART_SIZE = 1024 * 1024
CLOCK_SKEW_SECONDS = 900

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The header names COS answers with; anything else is title-cased, x-* headers stay lower case.
_HEADER_CASE = {name.lower(): name for name in ("ETag", "Content-MD5", "WWW-Authenticate")}


def _encode(value: str | bytes) -> str:
    """COS's URL encoding for signed names and values: everything but `-_.~` and alphanumerics."""
    return quote(value.encode("utf-8") if isinstance(value, str) else value, safe="-_.~")


def cos_signature(
    secret_key: str,
    method: str,
    path: str,
    params: Mapping[str, str | bytes],
    headers: Mapping[str, str | bytes],
    sign_time: str,
    key_time: str | None = None,
) -> str:
    """The COS XML v5 signature over the given (already chosen) params and headers.

    SignKey = HMAC-SHA1(SecretKey, KeyTime); HttpString = method\\npath\\nparams\\nheaders\\n with
    names lower-cased and names and values URL-encoded, sorted by name; StringToSign =
    sha1\\nSignTime\\nSHA1(HttpString)\\n; Signature = HMAC-SHA1(SignKey, StringToSign), all hex.
    `path` is the object key with a leading `/`, not URL-encoded (as qcloud_cos/cos_auth.py signs it).
    """

    def canonical(items: Mapping[str, str | bytes]) -> str:
        pairs = sorted((_encode(name).lower(), _encode(value)) for name, value in items.items())
        return "&".join(f"{name}={value}" for name, value in pairs)

    http_string = f"{method.lower()}\n{path}\n{canonical(params)}\n{canonical(headers)}\n"
    string_to_sign = f"sha1\n{sign_time}\n{hashlib.sha1(http_string.encode('utf-8')).hexdigest()}\n"
    sign_key = hmac.new(secret_key.encode(), (key_time or sign_time).encode(), hashlib.sha1).hexdigest()
    return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


class SignatureRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _environ_header(environ: Mapping[str, Any], name: str) -> bytes | None:
    key = name.upper().replace("-", "_")
    key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
    value = environ.get(key)
    # PEP 3333: header values arrive as their raw bytes decoded as latin-1.
    return None if value is None else str(value).encode("latin-1")


def verify_cos_authorization(environ: Mapping[str, Any], credentials: Mapping[str, str], now: float) -> None:
    """Check the request's COS signature the way COS does; raise SignatureRejected if it fails."""
    fields = dict(parse_qsl(str(environ.get("HTTP_AUTHORIZATION", "")), keep_blank_values=True))
    required = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-header-list",
                "q-url-param-list", "q-signature")  # fmt: skip
    if any(name not in fields for name in required) or fields["q-sign-algorithm"] != "sha1":
        raise SignatureRejected("AccessDenied", "malformed Authorization")
    secret_key = credentials.get(fields["q-ak"])
    if secret_key is None:
        raise SignatureRejected("InvalidAccessKeyId", "the access key Id you provided does not exist")
    try:
        start, end = (int(part) for part in fields["q-sign-time"].split(";"))
    except ValueError as exc:
        raise SignatureRejected("AccessDenied", "malformed q-sign-time") from exc
    if not start - CLOCK_SKEW_SECONDS <= now <= end:
        raise SignatureRejected("AccessDenied", "Request has expired")

    signed_headers = _signed_headers(environ, fields["q-header-list"])
    signed_params = _signed_params(environ, fields["q-url-param-list"])
    path = str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8")
    expected = cos_signature(
        secret_key,
        str(environ["REQUEST_METHOD"]),
        path,
        signed_params,
        signed_headers,
        fields["q-sign-time"],
        fields["q-key-time"],
    )
    if not hmac.compare_digest(expected, fields["q-signature"]):
        raise SignatureRejected(
            "SignatureDoesNotMatch",
            "The calculated signature does not match the signature you provided.",
        )


def _signed_headers(environ: Mapping[str, Any], header_list: str) -> dict[str, bytes]:
    """The headers q-header-list names, each present; a session token must be one of them."""
    signed: dict[str, bytes] = {}
    for name in filter(None, header_list.split(";")):
        value = _environ_header(environ, name)
        if value is None:
            raise SignatureRejected("AccessDenied", f"signed header {name} is missing")
        signed[name] = value
    if _environ_header(environ, "x-cos-security-token") is not None and "x-cos-security-token" not in signed:
        raise SignatureRejected("AccessDenied", "x-cos-security-token must be signed")
    return signed


def _signed_params(environ: Mapping[str, Any], param_list: str) -> dict[str, str]:
    """The query parameters q-url-param-list names (by their encoded, lower-cased names), each present."""
    query = parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    by_signed_name = {_encode(name).lower(): (name, value) for name, value in query}
    signed: dict[str, str] = {}
    for name in filter(None, param_list.split(";")):
        if name not in by_signed_name:
            raise SignatureRejected("AccessDenied", f"signed parameter {name} is missing")
        original, param_value = by_signed_name[name]
        signed[original] = param_value
    return signed


RequestMatcher = Callable[[str, str, dict[str, str]], bool]  # (method, path, query) -> applies?


@dataclass
class Fault:
    """Answer matching requests with an error instead of passing them to moto."""

    matches: RequestMatcher
    status: int
    code: str
    remaining: int | None  # None: every matching request


@dataclass
class EtagOverride:
    """Let matching requests through, but answer with this ETag (as a corrupting proxy would)."""

    matches: RequestMatcher
    etag: str


@dataclass(frozen=True)
class SeenRequest:
    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class CosLayer:
    """WSGI middleware that makes moto's S3 app answer like COS (see the module docstring)."""

    app: WsgiApp
    credentials: dict[str, str]
    seen: list[SeenRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    etag_overrides: list[EtagOverride] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ["REQUEST_METHOD"])
        path = str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8")
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        host = str(environ.get("HTTP_HOST", ""))
        request_id = uuid.uuid4().hex
        self._record(environ, method, host, path, query)

        authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
        if authorization.startswith("q-sign-algorithm="):
            try:
                verify_cos_authorization(environ, self.credentials, time.time())
            except SignatureRejected as rejected:
                return self._error(
                    start_response, 403, rejected.code, rejected.message, host, path, request_id
                )
        elif not authorization.startswith(("AWS4-HMAC-SHA256 ", "AWS ")):
            return self._error(start_response, 403, "AccessDenied", "Access Denied.", host, path, request_id)

        fault = self._take_fault(method, path, query)
        if fault is not None:
            return self._error(start_response, fault.status, fault.code, "injected by the test", host, path,
                               request_id)  # fmt: skip

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = self.app(environ, capture)
        status = str(captured["status"])
        headers = [(_cos_case(name), value) for name, value in captured["headers"]]
        headers.append(("x-cos-request-id", request_id))
        etag = self._etag_override(method, path, query)
        if etag is not None:
            headers = [(name, etag if name == "ETag" else value) for name, value in headers]
        if int(status.split(" ", 1)[0]) < 400 or method == "HEAD":
            start_response(status, headers)
            return body
        try:
            data = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        data = _complete_error_body(data, f"{host}{path}", request_id)
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        headers.append(("Content-Length", str(len(data))))
        start_response(status, headers)
        return [data]

    def _record(
        self, environ: Mapping[str, Any], method: str, host: str, path: str, query: dict[str, str]
    ) -> None:
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        if environ.get("CONTENT_LENGTH"):
            headers["content-length"] = str(environ["CONTENT_LENGTH"])
        with self.lock:
            self.seen.append(SeenRequest(method, host, path, query, headers))

    def _take_fault(self, method: str, path: str, query: dict[str, str]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining != 0 and fault.matches(method, path, query):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _etag_override(self, method: str, path: str, query: dict[str, str]) -> str | None:
        with self.lock:
            for override in self.etag_overrides:
                if override.matches(method, path, query):
                    return override.etag
        return None

    @staticmethod
    def _error(
        start_response: Callable[..., Any],
        status: int,
        code: str,
        message: str,
        host: str,
        path: str,
        request_id: str,
    ) -> list[bytes]:
        root = ElementTree.Element("Error")
        for tag, text in (("Code", code), ("Message", message), ("Resource", f"{host}{path}"),
                          ("RequestId", request_id), ("TraceId", request_id)):  # fmt: skip
            ElementTree.SubElement(root, tag).text = text
        data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root)
        start_response(
            f"{status} {code}",
            [
                ("Content-Type", "application/xml"),
                ("Content-Length", str(len(data))),
                ("x-cos-request-id", request_id),
            ],
        )
        return [data]


def _cos_case(name: str) -> str:
    lower = name.lower()
    if lower in _HEADER_CASE:
        return _HEADER_CASE[lower]
    if lower.startswith("x-"):
        return lower
    return "-".join(part.capitalize() for part in lower.split("-"))


def _complete_error_body(data: bytes, resource: str, request_id: str) -> bytes:
    """Add the `<Resource>` and `<RequestId>` elements the COS SDK needs to read an error's code."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return data
    if root.tag != "Error":
        return data
    for tag, text in (("Resource", resource), ("RequestId", request_id)):
        if root.find(tag) is None:
            ElementTree.SubElement(root, tag).text = text
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _moto_s3_app() -> WsgiApp:
    """moto's S3-only app, with COS's 1 MB minimum part size."""
    # moto reads S3_UPLOAD_PART_MIN_SIZE once, when moto.settings is first imported; if something
    # imported moto earlier, the module-level copy the multipart code reads is patched instead.
    already_loaded = "moto.s3.models" in sys.modules
    os.environ["S3_UPLOAD_PART_MIN_SIZE"] = str(COS_MIN_PART_SIZE)
    from moto.s3 import models as s3_models
    from moto.server import create_backend_app

    if already_loaded:
        s3_models.S3_UPLOAD_PART_MIN_SIZE = COS_MIN_PART_SIZE
    app: WsgiApp = create_backend_app("s3")
    return app


@dataclass
class CosServer:
    """A running stand-in: where it listens, the key pair it accepts, and helpers for tests."""

    ip: str
    port: int
    region: str
    secret_id: str
    secret_key: str
    layer: CosLayer
    _server: BaseWSGIServer
    _thread: threading.Thread

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def cos_client(self, secret_key: str | None = None, retries: int = 0) -> Any:
        """A qcloud_cos CosS3Client aimed at this server (a wrong `secret_key` gets 403s)."""
        from qcloud_cos import CosConfig, CosS3Client

        config = CosConfig(
            Region=self.region,
            SecretId=self.secret_id,
            SecretKey=secret_key or self.secret_key,
            Scheme="http",
            IP=self.ip,
            Port=self.port,
        )
        return CosS3Client(config, retry=retries)

    def boto3_client(self) -> Any:
        """A boto3 S3 client on the same objects (path-style; its signature is not checked)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, proxies={}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str = "harvest-test") -> str:
        """Create `<name>-<random>-<APPID>` through the COS SDK and return the full bucket name."""
        bucket = f"{name}-{uuid.uuid4().hex[:10]}-{APPID}"
        self.cos_client().create_bucket(Bucket=bucket)
        return bucket

    def requests_for(self, bucket: str) -> list[SeenRequest]:
        """Requests seen for one bucket (virtual-host or path style), oldest first."""
        with self.layer.lock:
            return [
                seen
                for seen in self.layer.seen
                if seen.host.split(".", 1)[0] == bucket or seen.path.split("/")[1:2] == [bucket]
            ]

    @contextmanager
    def failing(
        self,
        matches: RequestMatcher,
        status: int = 500,
        code: str = "InternalError",
        times: int | None = None,
    ) -> Iterator[Fault]:
        """Answer requests for which `matches(method, path, query)` holds with an error, inside the block."""
        fault = Fault(matches, status, code, times)
        with self.layer.lock:
            self.layer.faults.append(fault)
        try:
            yield fault
        finally:
            with self.layer.lock:
                self.layer.faults.remove(fault)

    @contextmanager
    def answering_etag(self, matches: RequestMatcher, etag: str) -> Iterator[EtagOverride]:
        """Inside the block, matching requests succeed but their answer carries `etag`."""
        override = EtagOverride(matches, etag)
        with self.layer.lock:
            self.layer.etag_overrides.append(override)
        try:
            yield override
        finally:
            with self.layer.lock:
                self.layer.etag_overrides.remove(override)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_cos_server(
    secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY, region: str = REGION
) -> CosServer:
    """Start a stand-in on 127.0.0.1 (a free port) that accepts `secret_id`/`secret_key`; `stop()` it."""
    layer = CosLayer(app=_moto_s3_app(), credentials={secret_id: secret_key})
    server = make_server("127.0.0.1", 0, layer, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="cos-stand-in", daemon=True
    )
    thread.start()
    return CosServer(
        ip="127.0.0.1",
        port=server.server_port,
        region=region,
        secret_id=secret_id,
        secret_key=secret_key,
        layer=layer,
        _server=server,
        _thread=thread,
    )


@pytest.fixture(scope="session")
def cos_server() -> Iterator[CosServer]:
    """One COS stand-in per test session (per xdist worker); tests make their own buckets."""
    server = start_cos_server()
    yield server
    server.stop()
