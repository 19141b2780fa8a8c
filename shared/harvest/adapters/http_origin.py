"""The live origin over HTTP (ports.Origin): keep-alive connections, our retry policy, strict lengths.

Why it is built this way:
- One requests.Session with a connection pool of `pool_size`, so a worker's N download threads keep N
  keep-alive connections to the origin instead of a TCP (and TLS) handshake per segment.
- urllib3's own retries are off: every retry goes through RetryPolicy, so attempts, backoff and
  Retry-After are applied in one place and the final error can say how many attempts were made.
- Bodies are streamed (stream=True). The read timeout applies to every socket read, so an origin that
  stalls mid-body is cut off after `timeout` seconds without a byte and the attempt is retried. (An
  origin trickling one byte just inside every timeout is not cut off: we trust origins not to be hostile.)
- Segments are streamed (`stream`): the body goes to the caller's sink (the object store) chunk by
  chunk, so memory holds a bounded buffer, never a whole 512 MB segment. A body that fails part way
  raises inside the sink's loop; the sink discards what it wrote and the attempt is retried.
- A segment must arrive whole: a body shorter than its Content-Length or its byte range is a failed
  attempt, never a shorter segment. A ranged request must come back as 206 with the matching
  Content-Range; an origin that ignores Range and answers 200 is sliced while streaming (with a warning),
  so memory holds only the requested slice.
- Retried: connection errors, timeouts, short bodies, 5xx, 408, 429, and also 404 and 403, because
  origins and CDNs briefly answer those for a segment at the live edge. Other 4xx fail at once.
- URL safety (domain/urlpolicy, given as `targets`): every request, and every redirect hop, must be
  http(s); a host that is or resolves to a loopback, private, link-local or metadata address is
  refused (checked again at connect time by netguard) unless it is the endpoint's own host or the
  operator allowed it. An endpoint's headers (ScopedHeaders) go only to the endpoint's own scheme,
  host and port, so redirects are followed here, hop by hop, rather than by requests, which would
  carry custom headers to whatever host a redirect names. A refusal is final, never retried.
- Segments go through libcurl (adapters/curl_transport.py, pycurl) where it loads: the same rules
  above, applied here, with the bytes read by libcurl instead of Python's socket path (0.60 against
  0.92 ms of CPU per 1 MB segment for this class, `python -m bench.clients`). Without pycurl (or
  `client="requests"`) segments go through requests as playlists always do; the fallback is logged
  once. Playlists stay on requests: a few per job, and requests decodes a gzip playlist.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TypeVar, Union
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError

from harvest.adapters.netguard import guarded_adapter
from harvest.adapters.retry import RetryPolicy, after_attempts, parse_retry_after
from harvest.domain.urlpolicy import (
    Resolver,
    ScopedHeaders,
    UrlPolicy,
    check_scheme,
    parse_ip,
    system_resolver,
)
from harvest.errors import PlaylistFetchError, SegmentFetchError, TargetRefused
from harvest.ports import FetchedPlaylist
from harvest.settings import Settings

if TYPE_CHECKING:
    from harvest.adapters.curl_transport import CurlResponse, CurlTransport

log = logging.getLogger(__name__)
_fallback_logged = threading.Event()
T = TypeVar("T")
Response = Union[requests.Response, "CurlResponse"]

MIB = 1024 * 1024
PLAYLIST_MAX_BYTES = 64 * MIB  # a 24-hour playlist with a PDT per segment is a few MB
SEGMENT_MAX_BYTES = 512 * MIB  # one segment can never be bigger than a whole chunk (chunk_max_bytes)
DEFAULT_USER_AGENT = "harvest/0.1"

# Origins and CDNs briefly answer 404 or 403 for a segment listed at the live edge but not yet
# propagated, so those are retried like 5xx; any other 4xx means the request itself is wrong.
RETRY_STATUSES = frozenset({403, 404, 408, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_REDIRECTS = 5

_READ_SIZE = 256 * 1024
_DRAIN_LIMIT = 64 * 1024  # small error bodies are read so the connection can be reused
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
NOT_TRANSIENT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
    requests.exceptions.TooManyRedirects,
    requests.exceptions.SSLError,  # certificate problems do not heal between attempts
)


class _FetchDetails(Exception):
    """What went wrong, as data: the URL, the last HTTP status, the attempts made, the reason."""

    def __init__(
        self, message: str, *, url: str = "", status: int | None = None, attempts: int = 0, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.attempts = attempts
        self.reason = reason


class OriginSegmentError(_FetchDetails, SegmentFetchError):
    """A segment that could not be fetched, with the details."""


class OriginPlaylistError(_FetchDetails, PlaylistFetchError):
    """A playlist that could not be fetched, with the details."""


@dataclass(frozen=True)
class _Failure:
    """One failed attempt."""

    reason: str  # "HTTP 404", "read timeout", "short body (1000 of 2000 bytes)"
    retryable: bool = True
    status: int | None = None
    retry_after: float | None = None


class HttpOrigin:
    """ports.Origin over HTTP(S). Thread-safe: one instance serves a worker's whole download pool."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float,
        pool_size: int,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        *,
        playlist_max_bytes: int = PLAYLIST_MAX_BYTES,
        segment_max_bytes: int = SEGMENT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str, str, bool], None] | None = None,
        targets: UrlPolicy | None = None,
        resolver: Resolver = system_resolver,
        client: Literal["auto", "curl", "requests"] = "auto",
    ) -> None:
        """`targets`: the URL-safety policy; None checks no addresses (tests of the HTTP behaviour).

        `client`: what fetches segments: libcurl where pycurl loads ("auto"), always ("curl", which
        raises ImportError without it), or requests.
        """
        self._policy = policy
        # (resource, reason, retried) after each failed attempt: how metrics see errors and retries.
        self._on_error = on_error
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._playlist_max = playlist_max_bytes
        self._segment_max = segment_max_bytes
        self._targets = targets
        self._resolver = resolver
        self._local = threading.local()  # the hosts the request running on this thread trusts
        self._trusted_lock = threading.Lock()
        self._ever_trusted: set[str] = set()
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        if targets is not None:
            self._session.trust_env = False  # a proxy would connect for us, past the connect-time guard
            adapter = guarded_adapter(self._check_connect, resolver, pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = user_agent
        self._curl = _curl_transport(client, timeout, user_agent, pool_size, self, resolver)

    @property
    def client(self) -> str:
        """What fetches segments: "curl" or "requests"."""
        return "requests" if self._curl is None else "curl"

    @classmethod
    def from_settings(cls, settings: Settings, user_agent: str = DEFAULT_USER_AGENT) -> HttpOrigin:
        policy = RetryPolicy(attempts=settings.fetch_attempts, base_delay=settings.fetch_backoff)
        return cls(
            policy,
            settings.fetch_timeout,
            settings.download_concurrency,
            user_agent,
            playlist_max_bytes=settings.playlist_max_chars,  # HARVEST_PLAYLIST_MAX_BYTES
            targets=UrlPolicy.for_origins(settings),
        )

    def close(self) -> None:
        self._session.close()
        if self._curl is not None:
            self._curl.close()

    def __enter__(self) -> HttpOrigin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the port -------------------------------------------------------------------------------

    def get_text(self, url: str, headers: Mapping[str, str]) -> str:
        """A playlist, UTF-8 with any BOM removed. Raises OriginPlaylistError after the last attempt."""
        return self.get_playlist(url, headers).text

    def get_playlist(self, url: str, headers: Mapping[str, str]) -> FetchedPlaylist:
        """A playlist and the URL it came from after redirects, against which its URIs resolve."""
        final = [url]
        result, attempts = self._retrying(url, lambda: self._playlist_once(url, headers, final), "playlist")
        if isinstance(result, _Failure):
            raise OriginPlaylistError(
                f"playlist {public_url(url)}: {result.reason} {after_attempts(attempts)}",
                url=url,
                status=result.status,
                attempts=attempts,
                reason=result.reason,
            )
        try:
            return FetchedPlaylist(result.decode("utf-8-sig"), final[0])
        except UnicodeDecodeError as exc:
            raise OriginPlaylistError(
                f"playlist {public_url(url)}: not UTF-8 text", url=url, attempts=attempts, reason="not UTF-8"
            ) from exc

    def get_bytes(
        self, url: str, headers: Mapping[str, str], byte_range: tuple[int, int] | None = None
    ) -> bytes:
        """A segment, or its (offset, length) slice. Raises OriginSegmentError after the last attempt."""
        return self.stream(url, headers, byte_range, b"".join)

    def stream(
        self,
        url: str,
        headers: Mapping[str, str],
        byte_range: tuple[int, int] | None,
        sink: Callable[[Iterator[bytes]], T],
    ) -> T:
        """Hand a segment's body (or its slice), chunk by chunk, to `sink`; what `sink` returned.

        A failed attempt raises inside the iteration; `sink` must let that through (after discarding
        what it wrote) and is called afresh for the next attempt. Raises OriginSegmentError after the
        last attempt; anything `sink` itself raises is passed on untouched.
        """
        label = segment_label(url)
        if byte_range is not None and (byte_range[0] < 0 or byte_range[1] < 1):
            raise OriginSegmentError(
                f"segment {label}: invalid byte range {byte_range}", url=url, reason="invalid byte range"
            )
        attempt = 1
        while True:
            result = self._segment_once(url, headers, byte_range, sink)
            if not isinstance(result, _Failure):
                return result
            final = not result.retryable or attempt >= self._policy.attempts
            if self._on_error is not None:
                self._on_error("segment", result.reason, not final)
            if final:
                raise OriginSegmentError(
                    f"segment {label}: {result.reason} {after_attempts(attempt)}",
                    url=url,
                    status=result.status,
                    attempts=attempt,
                    reason=result.reason,
                )
            self._wait_to_retry(url, result, attempt)
            attempt += 1

    # --- attempts -------------------------------------------------------------------------------

    def _retrying(
        self, url: str, once: Callable[[], bytes | _Failure], resource: str
    ) -> tuple[bytes | _Failure, int]:
        """Run `once` until it returns bytes, fails for good, or the attempts are spent."""
        attempt = 1
        while True:
            result = once()
            if isinstance(result, bytes):
                return result, attempt
            final = not result.retryable or attempt >= self._policy.attempts
            if self._on_error is not None:
                self._on_error(resource, result.reason, not final)
            if final:
                return result, attempt
            self._wait_to_retry(url, result, attempt)
            attempt += 1

    def _wait_to_retry(self, url: str, failure: _Failure, attempt: int) -> None:
        delay = self._policy.delay(attempt - 1, failure.retry_after)
        log.info(
            "retrying %s in %.2f s after %s (attempt %d of %d)",
            public_url(url),
            delay,
            failure.reason,
            attempt,
            self._policy.attempts,
        )
        self._sleep(delay)

    def _request(
        self,
        url: str,
        headers: Mapping[str, str],
        extra: Mapping[str, str] | None = None,
        curl: CurlTransport | None = None,
    ) -> Response | _Failure:
        """GET `url`, following redirects hop by hop; `headers` only where they belong (ScopedHeaders)."""
        scoped = headers if isinstance(headers, ScopedHeaders) else ScopedHeaders(headers, url)
        trusted = frozenset({scoped.origin[1]}) if scoped.origin is not None else frozenset()
        if trusted and self._targets is not None:
            with self._trusted_lock:
                self._ever_trusted |= trusted
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            response: Response
            try:
                self._preflight(current, trusted)
                with self._trusting(trusted):
                    if curl is not None:
                        response = _curl_get(curl, current, {**scoped.for_url(current), **(extra or {})})
                    else:
                        response = self._session.get(
                            current,
                            headers={**scoped.for_url(current), **(extra or {})},
                            stream=True,
                            timeout=(self._timeout, self._timeout),
                            allow_redirects=False,
                        )
            except TargetRefused as exc:
                return _Failure(exc.message, retryable=False)
            except TransferFailed as exc:
                return _Failure(exc.reason, retryable=exc.retryable)
            except requests.RequestException as exc:
                retryable = not isinstance(exc, NOT_TRANSIENT_ERRORS)
                return _Failure(describe_network_error(exc), retryable=retryable)
            if not response.is_redirect:
                return response
            _drain(response)
            response.close()
            current = urljoin(current, response.headers["Location"])
        return _Failure("too many redirects", retryable=False)

    def _preflight(self, url: str, trusted: frozenset[str]) -> None:
        """The policy's checks that need no connection: the scheme, and addresses written in the URL.

        A name another endpoint trusts is resolved and checked here too: a pooled keep-alive
        connection to it, opened under that endpoint's trust, would otherwise be reused unchecked.
        """
        if self._targets is None:
            return
        _scheme, host, _port = check_scheme(url)
        if host in trusted:
            return
        literal = parse_ip(host)
        if literal is not None:
            self._targets.check_address(host, str(literal), trusted, label="")
        elif host in self._ever_trusted:
            self._targets.check_url(url, self._resolver, trusted=trusted, label="")

    @contextmanager
    def _trusting(self, trusted: frozenset[str]) -> Iterator[None]:
        self._local.trusted = trusted
        try:
            yield
        finally:
            self._local.trusted = frozenset()

    def _check_connect(self, host: str, address: str) -> None:
        assert self._targets is not None  # the guarded adapter is mounted only with a policy
        self._targets.check_address(host, address, getattr(self._local, "trusted", frozenset()), label="")

    def _playlist_once(self, url: str, headers: Mapping[str, str], final: list[str]) -> bytes | _Failure:
        response = self._request(url, headers)
        if isinstance(response, _Failure):
            return response
        with response:
            if response.status_code != 200:
                return self._status_failure(response)
            final[0] = response.url or url  # where requests ended up after following redirects
            return _read_capped(response, self._playlist_max)

    def _segment_once(
        self,
        url: str,
        headers: Mapping[str, str],
        byte_range: tuple[int, int] | None,
        sink: Callable[[Iterator[bytes]], T],
    ) -> T | _Failure:
        # identity: lengths and byte ranges are about the bytes as stored, not a compressed transfer
        extra = {"Accept-Encoding": "identity"}
        if byte_range is not None:
            offset, length = byte_range
            extra["Range"] = f"bytes={offset}-{offset + length - 1}"
        response = self._request(url, headers, extra, self._curl)
        if isinstance(response, _Failure):
            return response
        with response:
            status = response.status_code
            if byte_range is None and status == 200:
                body = _whole(response, self._segment_max)
            elif byte_range is not None and status == 206:
                body = _exact(response, *byte_range)
            elif byte_range is not None and status == 200:
                log.warning("origin ignored Range for %s: slicing the full body", public_url(url))
                body = _slice(response, *byte_range)
            else:
                return self._status_failure(response)
            try:
                return sink(body)
            except _BodyFailed as exc:
                return exc.failure

    def _status_failure(self, response: Response) -> _Failure:
        status = response.status_code
        retry_after = None
        if status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        _drain(response)
        # 1xx/2xx/3xx we did not ask for (redirects are followed in _request) are odd, but may pass.
        retryable = status >= 500 or status < 400 or status in RETRY_STATUSES
        return _Failure(f"HTTP {status}", retryable=retryable, status=status, retry_after=retry_after)


# --- reading bodies -----------------------------------------------------------------------------


def _content_length(response: Response) -> int | None:
    raw = response.headers.get("Content-Length", "").strip()
    return int(raw) if raw.isdigit() else None


def _stream(response: requests.Response, stop: int) -> Iterator[bytes]:
    """The body's first `stop` bytes, in chunks; never reads past `stop`."""
    position = 0
    while position < stop:
        chunk = response.raw.read(min(_READ_SIZE, stop - position), decode_content=True)
        if not chunk:
            return
        position += len(chunk)
        yield chunk


class TransferFailed(Exception):
    """A libcurl attempt failed in transport (reset, timeout, short body, refused address)."""

    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class _BodyFailed(Exception):
    """Raised inside a body's chunk iterator: this attempt failed part way (the failure says how)."""

    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _chunks(response: Response, stop: int) -> Iterator[bytes]:
    """The body up to `stop`, transfer errors (cut, stalled, short of Content-Length) as _BodyFailed."""
    if not isinstance(response, requests.Response):
        try:
            yield from response.chunks(stop)
        except TransferFailed as exc:
            raise _BodyFailed(_Failure(exc.reason, retryable=exc.retryable)) from exc
        return
    try:
        yield from _stream(response, stop)
    except (Urllib3Error, OSError) as exc:
        raise _BodyFailed(_Failure(describe_network_error(exc))) from exc


def _whole(response: Response, limit: int) -> Iterator[bytes]:
    """The whole body, refused (without retry) beyond `limit` bytes, before or while reading."""
    too_large = _BodyFailed(_Failure(f"larger than {_size(limit)}", retryable=False))
    declared = _content_length(response)
    if declared is not None and declared > limit:
        raise too_large
    total = 0
    # A body cut short of its Content-Length raises IncompleteRead in _chunks (urllib3 enforces it).
    for chunk in _chunks(response, limit + 1):
        total += len(chunk)
        if total > limit:
            raise too_large
        yield chunk


def _exact(response: Response, offset: int, length: int) -> Iterator[bytes]:
    """A 206 answer: the Content-Range must be exactly the one asked for, the body exactly that long."""
    asked = f"bytes={offset}-{offset + length - 1}"
    content_range = response.headers.get("Content-Range", "").strip()
    match = _CONTENT_RANGE.fullmatch(content_range)
    if match is None or int(match[1]) != offset or int(match[2]) != offset + length - 1:
        raise _BodyFailed(_Failure(f"Content-Range {content_range or '(none)'} does not match {asked}"))
    total = 0
    for chunk in _chunks(response, length + 1):
        if total + len(chunk) > length:
            raise _BodyFailed(_Failure(f"long body (more than {length} bytes for {asked})"))
        total += len(chunk)
        yield chunk
    if total < length:
        raise _BodyFailed(_Failure(f"short body ({total} of {length} bytes)"))


def _slice(response: Response, offset: int, length: int) -> Iterator[bytes]:
    """A 200 answer to a ranged request: skip to `offset`, pass on `length` bytes, drop the connection."""
    needed = offset + length
    declared = _content_length(response)
    if declared is not None and declared < needed:
        raise _BodyFailed(_Failure(f"short body ({declared} of {needed} bytes)"))
    position = 0
    for chunk in _chunks(response, needed):
        skip = max(offset - position, 0)
        position += len(chunk)
        if skip < len(chunk):
            yield chunk[skip:]
    if position < needed:
        raise _BodyFailed(_Failure(f"short body ({position} of {needed} bytes)"))


def _read_capped(response: Response, limit: int) -> bytes | _Failure:
    """The whole body in memory (playlists), refused (without retry) beyond `limit` bytes."""
    try:
        return b"".join(_whole(response, limit))
    except _BodyFailed as exc:
        return exc.failure


def _drain(response: Response) -> None:
    """Read a small error body so its keep-alive connection returns to the pool; large ones are dropped."""
    declared = _content_length(response)
    if declared is None or declared > _DRAIN_LIMIT:
        return
    if not isinstance(response, requests.Response):
        response.drain(declared)
        return
    try:
        for _chunk in _stream(response, declared):
            pass
    except (Urllib3Error, OSError):
        return  # the connection is discarded on close; nothing to report for a body we do not need


def _size(nbytes: int) -> str:
    return f"{nbytes // MIB} MB" if nbytes % MIB == 0 else f"{nbytes} bytes"


# --- naming things in messages ------------------------------------------------------------------


def public_url(url: str) -> str:
    """The URL without user info, query or fragment: those often hold tokens, and messages reach clients."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def segment_label(url: str) -> str:
    """The last two path parts ('v360/14096535.ts'): enough to find a segment, short enough for ErrMessage."""
    parts = [part for part in urlsplit(url).path.split("/") if part]
    return "/".join(parts[-2:]) or public_url(url)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps (causes, contexts, urllib3's reason and args), outermost first."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in wrapped if isinstance(item, BaseException))


def _incomplete_read(exc: http.client.IncompleteRead) -> str:
    partial = exc.partial if isinstance(exc.partial, int) else len(exc.partial)
    if exc.expected is None:
        return f"short body (ended after {partial} bytes)"
    return f"short body ({partial} of {partial + exc.expected} bytes)"


def describe_network_error(exc: BaseException) -> str:
    """A short, stable reason for a failed request: 'connection reset', 'read timeout', 'short body (...)'."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return "invalid URL"
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return "unsupported URL scheme"
    for cause in _causes(exc):
        if isinstance(cause, http.client.IncompleteRead):
            return _incomplete_read(cause)
        if isinstance(cause, (ReadTimeoutError, requests.exceptions.ReadTimeout)):
            return "read timeout"
        if isinstance(cause, ConnectTimeoutError) and not isinstance(cause, NewConnectionError):
            return "connect timeout"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):  # includes RemoteDisconnected
            return "connection reset"
        if isinstance(cause, (BrokenPipeError, ConnectionAbortedError)):
            return "connection aborted"
        if isinstance(cause, NameResolutionError):
            return "DNS lookup failed"
        if isinstance(cause, (Urllib3SSLError, requests.exceptions.SSLError)):
            return "TLS error"
        if isinstance(cause, TimeoutError):  # socket.timeout
            return "timeout"
    return "connection error"


# --- libcurl -------------------------------------------------------------------------------------


def _curl_transport(
    client: str, timeout: float, user_agent: str, pool_size: int, origin: HttpOrigin, resolver: Resolver
) -> CurlTransport | None:
    """libcurl for segments where pycurl loads (or None: requests); "curl" insists, "requests" declines."""
    if client == "requests":
        return None
    try:
        from harvest.adapters.curl_transport import CurlTransport
    except ImportError as exc:
        if client == "curl":
            raise
        if not _fallback_logged.is_set():
            _fallback_logged.set()
            log.warning("pycurl is not available (%s): segments are fetched with requests", exc)
        return None
    check = origin._check_connect if origin._targets is not None else None
    return CurlTransport(timeout, user_agent, pool_size, check, resolver)


def _curl_get(curl: CurlTransport, url: str, headers: Mapping[str, str]) -> CurlResponse:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransferFailed("unsupported URL scheme" if parts.hostname else "invalid URL", retryable=False)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TransferFailed("invalid URL", retryable=False) from exc
    return curl.get(url, parts.hostname, port, headers)
