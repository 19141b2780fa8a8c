"""Segment transfers through libcurl (pycurl), for HttpOrigin: the bytes never pass through Python's
socket read path.

Why: on this project's benchmark Python's HTTP read path (http.client + urllib3 + requests) costs
about 1.0 ms of CPU per 1 MB segment, libcurl about 0.23 ms (bench/README.md, "HTTP clients,
measured"), and on two cores CPU per segment is the throughput.

How it keeps HttpOrigin's guarantees (HttpOrigin still decides redirects, retries, lengths and
headers; this module only moves bytes):
- Pull, not push: a transfer is driven by the thread that reads its body, through a multi handle
  holding that one transfer. `chunks()` runs libcurl until it has data, then yields it, so the
  caller's sink (the object store writing a file or a COS upload) reads the body as it would read a
  socket. At most BUFFER_LIMIT bytes wait in memory: beyond that the transfer is paused
  (CURL_WRITEFUNC_PAUSE) until the sink has taken them. Not one thread driving every transfer: the
  store pulls a body from an iterator (ObjectStore.put_stream), so one driver thread would need a
  hand-off between threads for every piece (or a push-style store port); here libcurl runs with the
  GIL released (perform, select) on the thread that consumes the bytes.
- Connections are kept alive per slot (one multi + one easy handle, reused LIFO), so a thread
  fetching segment after segment reuses its connection, as requests' pool does.
- URL safety at connect time: CURLOPT_OPENSOCKETFUNCTION sees every address libcurl is about to
  connect to and refuses (CURL_SOCKET_BAD) one the policy refuses; the refusal is kept and reported
  as such, never retried. With a resolver other than the system's (tests, pinned names) the name is
  resolved by that resolver, every address checked, and libcurl pinned to them (CURLOPT_RESOLVE).
  Proxies are off when a policy is set (they would connect for us, past the check). Only http and
  https; redirects are not followed by libcurl (HttpOrigin follows them hop by hop).
- Timeouts: `timeout` seconds without progress end the attempt, as a connect timeout before the
  connection is made and a read timeout after it (like requests' per-read timeout). The silence is
  measured up to the last time libcurl was asked for progress, so a thread kept waiting for the
  GIL never blames the origin; libcurl's own CURLOPT_CONNECTTIMEOUT, which has that flaw, is only a
  backstop at CONNECT_BACKSTOP times the timeout.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

import certifi
import pycurl
from requests.structures import CaseInsensitiveDict

from harvest.adapters.http_origin import TransferFailed
from harvest.domain.urlpolicy import Resolver, parse_ip, system_resolver
from harvest.errors import TargetRefused

BUFFER_LIMIT = 1024 * 1024  # bytes read ahead of the sink at most, per transfer
CONNECT_BACKSTOP = 10  # libcurl's connect timeout, in our timeouts (see _Slot)
RECEIVE_BUFFER = 256 * 1024  # libcurl's receive buffer: fewer, larger write callbacks
SELECT_SLICE = 1.0  # the longest one wait on the socket lasts before the timeout is checked again
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TLS_ERRORS = frozenset({35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91, 98})
# libcurl's error code -> (reason, retryable) where the code alone says it; the rest need errno
FIXED_FAILURES: dict[int, tuple[str, bool]] = {
    pycurl.E_COULDNT_RESOLVE_HOST: ("DNS lookup failed", True),
    pycurl.E_OPERATION_TIMEDOUT: ("connect timeout", True),  # only the connect timeout is libcurl's
    pycurl.E_URL_MALFORMAT: ("invalid URL", False),
    pycurl.E_UNSUPPORTED_PROTOCOL: ("unsupported URL scheme", False),
    **{code: ("TLS error", False) for code in TLS_ERRORS},  # certificates do not heal between attempts
}

# (host, address) -> None, or raises TargetRefused
AddressCheck = Callable[[str, str], None]


class _Slot:
    """One multi handle driving one easy handle; its connection cache outlives each transfer.

    The options that never change are set once, here; a request sets only its URL and headers
    (reset and ~15 setopt calls per segment were 2.5-5 % of the GIL's time on 64 KB segments).
    """

    def __init__(self, transport: CurlTransport) -> None:
        self.multi = pycurl.CurlMulti()
        self.easy = easy = pycurl.Curl()
        self.response: CurlResponse | None = None
        easy.setopt(pycurl.NOSIGNAL, 1)
        easy.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        easy.setopt(pycurl.FOLLOWLOCATION, 0)
        easy.setopt(pycurl.USERAGENT, transport.user_agent)
        # libcurl measures its connect timeout only when asked for progress, and a thread waiting
        # for the GIL asks late: a connect done in 1 ms was failed as timed out. So libcurl's own
        # limit is only a backstop; the timeout is kept by CurlResponse._step (see there).
        easy.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(transport.timeout * 1000 * CONNECT_BACKSTOP)))
        easy.setopt(pycurl.BUFFERSIZE, RECEIVE_BUFFER)
        # The certificates requests trusts (certifi), not the CA path compiled into the wheel's
        # libcurl, which need not exist on this system (SCF's image, Debian).
        easy.setopt(pycurl.CAINFO, certifi.where())
        easy.setopt(pycurl.HEADERFUNCTION, self._on_header)
        easy.setopt(pycurl.WRITEFUNCTION, self._on_write)
        easy.setopt(pycurl.PREREQFUNCTION, self._on_connected)
        if transport.checks:
            easy.setopt(pycurl.PROXY, "")  # a proxy would connect for us, past the connect-time check
            easy.setopt(pycurl.OPENSOCKETFUNCTION, self._on_open_socket)

    def _on_header(self, line: bytes) -> None:
        assert self.response is not None
        self.response.on_header(line)

    def _on_write(self, data: bytes) -> int | None:
        assert self.response is not None
        return self.response.on_write(data)

    def _on_connected(self, *args: Any) -> int:
        assert self.response is not None
        return self.response.on_connected(*args)

    def _on_open_socket(self, purpose: int, address: Any) -> Any:
        assert self.response is not None
        return self.response.on_open_socket(purpose, address)


class CurlResponse:
    """One HTTP answer read through libcurl: status and headers at once, the body on demand."""

    def __init__(self, transport: CurlTransport, slot: _Slot, url: str) -> None:
        self._transport = transport
        self._slot: _Slot | None = slot
        self.url = url
        self.host = ""
        self.status_code = 0
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        self._headers_done = False
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._received = 0  # body bytes libcurl handed over (yielded or waiting)
        self._done = False
        self._error: tuple[int, str] | None = None
        self._refusal: TargetRefused | None = None
        self._connected = False
        self._last_activity = time.monotonic()

    # --- libcurl's callbacks (run inside perform, on this thread) ------------------------------

    def on_header(self, line: bytes) -> None:
        self._last_activity = time.monotonic()
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            parts = text.split(" ", 2)
            self.status_code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self.headers = CaseInsensitiveDict()
        elif not text:
            if self.status_code >= 200:  # 1xx interim answers are followed by the real one
                self._headers_done = True
        elif ":" in text:
            name, _, value = text.partition(":")
            name, value = name.strip(), value.strip()
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value

    def on_write(self, data: bytes) -> int | None:
        if self._buffered and self._buffered + len(data) > BUFFER_LIMIT:
            self._paused = True
            return pycurl.WRITEFUNC_PAUSE  # libcurl keeps `data` and hands it over again on unpause
        self._last_activity = time.monotonic()
        self._headers_done = True
        self._buffer.append(data)
        self._buffered += len(data)
        self._received += len(data)
        return None

    def on_connected(self, *_args: Any) -> int:
        self._connected = True
        self._last_activity = time.monotonic()
        return pycurl.PREREQFUNC_OK

    def on_open_socket(self, _purpose: int, address: Any) -> Any:
        try:
            self._transport.check(self.host, str(address[3][0]))
        except TargetRefused as exc:
            self._refusal = exc
            return pycurl.SOCKET_BAD
        return socket.socket(address[0], address[1], address[2])

    # --- driving the transfer ------------------------------------------------------------------

    def _step(self) -> None:
        """Let libcurl work until it has something for us or `timeout` passes without a byte."""
        slot = self._slot
        assert slot is not None
        if self._paused and self._buffered < BUFFER_LIMIT:
            self._paused = False
            slot.easy.pause(pycurl.PAUSE_CONT)  # may hand the held data to on_write right here
        # The idle time is measured up to the moment libcurl was last asked for progress, not to
        # now: a thread that then waits for the GIL (64 download threads on 2 busy cores) must not
        # count that wait against the origin. Measured to now, a loaded worker failed healthy
        # segments with "connect timeout" after 5 attempts, though every connect had completed.
        asked = time.monotonic()
        while True:
            ret, running = slot.multi.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        if not running:
            self._finish(slot)
            return
        if self._buffer or self._paused:
            return
        timeout = self._transport.timeout
        idle = asked - self._last_activity
        if idle >= timeout:
            self._fail_timeout()
            return
        wait = min(SELECT_SLICE, timeout - idle)
        suggested = slot.multi.timeout()  # ms; libcurl's own next deadline (resolver, connect)
        if suggested >= 0:
            wait = min(wait, suggested / 1000)
        if wait > 0:
            slot.multi.select(wait)

    def _finish(self, slot: _Slot) -> None:
        self._done = True
        _queued, _ok, failed = slot.multi.info_read()
        if failed:
            _handle, code, message = failed[0]
            self._error = (code, message)
        self._headers_done = True

    def _fail_timeout(self) -> None:
        self._done = True
        self._error = (-1, "read timeout" if self._connected else "connect timeout")

    def wait_for_headers(self) -> None:
        while not self._headers_done and not self._done:
            self._step()
        if self.status_code == 0:  # no answer at all; a body that breaks later fails in chunks()
            raise self.failure()

    def failure(self) -> TransferFailed:
        """What went wrong with this transfer, as HttpOrigin reports it."""
        if self._refusal is not None:
            return TransferFailed(self._refusal.message, retryable=False)
        code, message = self._error or (0, "")
        if code == -1:
            return TransferFailed(message)
        if code == pycurl.E_PARTIAL_FILE:
            declared = self.headers.get("Content-Length", "").strip()
            if declared.isdigit():
                return TransferFailed(f"short body ({self._received} of {declared} bytes)")
            return TransferFailed(f"short body (ended after {self._received} bytes)")
        if code in FIXED_FAILURES:
            return TransferFailed(*FIXED_FAILURES[code])
        return TransferFailed(self._socket_failure(code))

    def _socket_failure(self, code: int) -> str:
        """A connection that failed or broke, named from the system's errno as requests names it."""
        os_errno = self._slot.easy.getinfo(pycurl.OS_ERRNO) if self._slot is not None else 0
        if code == pycurl.E_COULDNT_CONNECT:
            return "connection refused" if os_errno == errno.ECONNREFUSED else "connection error"
        if code in (pycurl.E_GOT_NOTHING, pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR):
            return (
                "connection aborted" if os_errno in (errno.EPIPE, errno.ECONNABORTED) else "connection reset"
            )
        return "connection error"

    # --- what HttpOrigin reads -----------------------------------------------------------------

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECT_STATUSES and "Location" in self.headers

    def chunks(self, stop: int) -> Iterator[bytes]:
        """The body's first `stop` bytes as they arrive; raises TransferFailed if the transfer breaks."""
        position = 0
        while position < stop:
            if self._buffer:
                # libcurl hands over 16 KB at a time; what arrived since the last step goes on as one
                # piece (at most BUFFER_LIMIT), so the layers above run once per step, not per 16 KB.
                chunk = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
                self._buffer.clear()
                self._buffered = 0
                if position + len(chunk) > stop:
                    chunk = chunk[: stop - position]
                position += len(chunk)
                yield chunk
                continue
            if self._done:
                if self._error is not None:
                    raise self.failure()
                return
            self._step()

    def drain(self, limit: int) -> None:
        """Read a small body to its end so the connection can be reused; a larger one is dropped."""
        try:
            for _chunk in self.chunks(limit + 1):
                pass
        except TransferFailed:
            return

    def close(self) -> None:
        slot, self._slot = self._slot, None
        if slot is None:
            return
        slot.multi.remove_handle(slot.easy)  # an unfinished transfer's connection is closed, not reused
        self._buffer.clear()
        self._transport.release(slot)

    def __enter__(self) -> CurlResponse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class CurlTransport:
    """GET requests over libcurl, one per call, on pooled keep-alive slots. Thread-safe."""

    def __init__(
        self,
        timeout: float,
        user_agent: str,
        pool_size: int,
        check: AddressCheck | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self.checks = check is not None
        self._pool_size = max(1, pool_size)
        self._check = check
        self._resolver = resolver
        self._idle: list[_Slot] = []
        self._lock = threading.Lock()

    def check(self, host: str, address: str) -> None:
        if self._check is not None:
            self._check(host, address)

    def get(self, url: str, host: str, port: int, headers: Mapping[str, str]) -> CurlResponse:
        """Send GET `url` and wait for its status and headers. Raises TransferFailed."""
        slot = self._acquire()
        response = slot.response = CurlResponse(self, slot, url)
        response.host = host
        easy = slot.easy
        try:
            easy.setopt(pycurl.URL, url)
            easy.setopt(pycurl.HTTPHEADER, [_header_line(name, value) for name, value in headers.items()])
            if self.checks and self._resolver is not system_resolver and parse_ip(host) is None:
                easy.setopt(pycurl.RESOLVE, [self._pinned(host, port)])
        except TransferFailed:
            self.release(slot)
            raise
        slot.multi.add_handle(easy)
        try:
            response.wait_for_headers()
        except BaseException:
            response.close()
            raise
        return response

    def _pinned(self, host: str, port: int) -> str:
        """`host:port:addresses` for CURLOPT_RESOLVE, every address checked first (all or none)."""
        try:
            addresses = list(self._resolver(host, port))
        except OSError as exc:
            raise TransferFailed("DNS lookup failed") from exc
        if not addresses:
            raise TransferFailed("DNS lookup failed")
        for address in addresses:
            try:
                self.check(host, address)
            except TargetRefused as exc:
                raise TransferFailed(exc.message, retryable=False) from exc
        listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        return f"+{host}:{port}:{listed}"

    def _acquire(self) -> _Slot:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Slot(self)

    def release(self, slot: _Slot) -> None:
        slot.response = None
        with self._lock:
            if len(self._idle) < self._pool_size:
                self._idle.append(slot)
                return
        slot.easy.close()
        slot.multi.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for slot in idle:
            slot.easy.close()
            slot.multi.close()


def _header_line(name: str, value: str) -> str:
    # "Name:" alone would make libcurl drop the header; "Name;" sends it with an empty value.
    return f"{name}: {value}" if value else f"{name};"
