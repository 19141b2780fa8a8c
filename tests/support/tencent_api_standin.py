"""A local stand-in for the Tencent Cloud API 3.0 endpoint of CKafka (`ckafka` 2019-08-19, SendMessage).

It answers the way the real endpoint does, so the real Tencent SDK can talk to it unchanged: every
answer is HTTP 200 with `Content-Type: application/json` exactly (the SDK only looks for an error
envelope under that content type), `{"Response": {..., "RequestId"}}` on success and
`{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` on failure. Requests must carry a valid
TC3-HMAC-SHA256 signature for service `ckafka` (checked with harvest.api.tc3, the same verifier the
service's own API uses), the SendMessage action and version, and a well-formed SendMessage body:
1 to 500 BatchContent{Body, Key} of strings, none larger than the topic's largest message.
Accepted messages are recorded per DataHub ID, in arrival order.

    with TencentApiStandIn() as api:
        settings = Settings(tencent_api_endpoint=api.endpoint, ...)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harvest.api.tc3 import SignedRequest, Tc3Verifier
from harvest.errors import HarvestError

SERVICE = "ckafka"
VERSION = "2019-08-19"
ACTION = "SendMessage"
MAX_MESSAGES = 500
# A CKafka topic's largest message is set when it is created (CreateTopic's MaxMessageBytes, 1 KB to
# 12 MB); 1 MiB is Kafka's default. SendMessage's page names no error code for a larger one, so the
# code answered here (InvalidParameterValue, as for too many messages) is the stand-in's choice.
MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ReceivedMessage:
    body: str
    key: str


@dataclass(frozen=True)
class ReceivedRequest:
    action: str
    headers: dict[str, str]  # names lower-cased
    params: Any


class ApiError(Exception):
    """An API 3.0 error to answer with (code and message as Tencent Cloud would send them)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class TencentApiStandIn:
    secret_id: str = "AKIDstandin0000000000000000000000000"
    secret_key: str = "standin-secret-key-0000000000000000"
    datahub_ids: tuple[str, ...] = ("datahub-work", "datahub-finalize")
    token: str = ""  # when set, requests must carry it as X-TC-Token (temporary keys)
    max_message_bytes: int = MAX_MESSAGE_BYTES  # Body and Key of one message, UTF-8 encoded
    messages: dict[str, list[ReceivedMessage]] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)
    _injected: deque[ApiError] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> TencentApiStandIn:
        self.messages = {datahub: [] for datahub in self.datahub_ids}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns at once
            name="tencent-api-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> TencentApiStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """host:port, as HttpProfile(endpoint=...) wants it (no scheme)."""
        assert self._server is not None, "start() the stand-in first"
        return f"127.0.0.1:{self._server.server_address[1]}"

    # --- test controls --------------------------------------------------------------------------

    def answer_error_next(self, code: str, message: str = "injected by the test", times: int = 1) -> None:
        """The next `times` well-signed requests get this error instead of being accepted."""
        with self._lock:
            self._injected.extend(ApiError(code, message) for _ in range(times))

    def received(self, datahub_id: str) -> list[ReceivedMessage]:
        with self._lock:
            return list(self.messages.get(datahub_id, []))

    def send_message_calls(self) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.action == ACTION]

    # --- the API --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The `Response` object for one request (the error envelope included)."""
        request_id = str(uuid.uuid4())
        try:
            result = self._dispatch(method, path, headers, body)
        except HarvestError as exc:  # the signature verifier's AuthFailure.* and parameter errors
            return {"Error": {"Code": exc.code, "Message": exc.message}, "RequestId": request_id}
        except ApiError as exc:
            return {"Error": {"Code": exc.code, "Message": exc.message}, "RequestId": request_id}
        return {**result, "RequestId": request_id}

    def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        if method != "POST":
            raise ApiError("UnsupportedProtocol", f"{method} is not supported by this stand-in; use POST")
        if path != "/":
            raise ApiError("InvalidAction", f"API 3.0 requests go to /, not {path}")
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise ApiError("InvalidParameter", "Content-Type must be application/json")
        verifier = Tc3Verifier({self.secret_id: self.secret_key}, service=SERVICE, max_skew=300)
        verifier.verify(SignedRequest(method=method, headers=headers, body=body), now=time.time())
        if self.token and headers.get("x-tc-token", "") != self.token:
            raise ApiError("AuthFailure.TokenFailure", "the token is missing, invalid or expired")
        action = headers.get("x-tc-action", "")
        version = headers.get("x-tc-version", "")
        try:
            params = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError("InvalidParameter", f"the body is not JSON: {exc}") from exc
        with self._lock:
            self.requests.append(ReceivedRequest(action, dict(headers), params))
        if action != ACTION:
            raise ApiError("InvalidAction", f"action {action!r} is not supported by this stand-in")
        if version != VERSION:
            raise ApiError("NoSuchVersion", f"ckafka has no API version {version!r} (expected {VERSION})")
        datahub_id, batch = _send_message_params(params, self.max_message_bytes)
        with self._lock:
            if self._injected:
                raise self._injected.popleft()
            if datahub_id not in self.messages:
                raise ApiError("ResourceNotFound", f"DataHubId {datahub_id!r} does not exist")
            first = len(self.messages[datahub_id])
            self.messages[datahub_id].extend(batch)
        return {"MessageId": [f"{datahub_id}-{first + i}" for i in range(len(batch))]}


def _send_message_params(params: Any, max_message_bytes: int) -> tuple[str, list[ReceivedMessage]]:
    """SendMessageRequest's shape: DataHubId str, Message list (1..500) of BatchContent{Body, Key},
    each at most `max_message_bytes`."""
    if not isinstance(params, dict):
        raise ApiError("InvalidParameter", "the body must be a JSON object")
    unknown = sorted(set(params) - {"DataHubId", "Message"})
    if unknown:
        raise ApiError("UnknownParameter", f"unknown parameter(s): {', '.join(unknown)}")
    datahub_id = params.get("DataHubId")
    if not isinstance(datahub_id, str) or not datahub_id:
        raise ApiError("MissingParameter", "DataHubId (string) is required")
    raw = params.get("Message")
    if not isinstance(raw, list) or not raw:
        raise ApiError("MissingParameter", "Message (a non-empty list of BatchContent) is required")
    if len(raw) > MAX_MESSAGES:
        raise ApiError("InvalidParameterValue", f"at most {MAX_MESSAGES} messages a request, got {len(raw)}")
    batch: list[ReceivedMessage] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) - {"Body", "Key"}:
            raise ApiError("InvalidParameter", f"Message.{i} must be a BatchContent {{Body, Key}}")
        body, key = item.get("Body"), item.get("Key")
        if not isinstance(body, str) or not isinstance(key, str):
            raise ApiError("InvalidParameter", f"Message.{i}.Body and Message.{i}.Key must be strings")
        size = len(body.encode("utf-8", "surrogatepass")) + len(key.encode("utf-8", "surrogatepass"))
        if size > max_message_bytes:
            raise ApiError(
                "InvalidParameterValue",
                f"Message.{i} is {size} bytes; the topic takes messages of at most {max_message_bytes} bytes",
            )
        batch.append(ReceivedMessage(body=body, key=key))
    return datahub_id, batch


def _handler_for(standin: TencentApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            path = self.path.split("?", 1)[0]
            payload = json.dumps({"Response": standin.handle(self.command, path, headers, body)}).encode()
            self.send_response(200)  # API 3.0 answers errors with HTTP 200 too
            self.send_header("Content-Type", "application/json")  # exactly: the SDK checks it verbatim
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = _serve
        do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler
