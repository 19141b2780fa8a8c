"""Serve the local-disk bucket over HTTP, so players can open what `harvest serve` harvested.

`GET /<bucket>/<key>` reads `<root>/<bucket>/<key>` (root is LocalDiskStore's root, `<data-dir>/cos`),
the way `https://<bucket>.cos.<region>.myqcloud.com/<key>` reads the COS object. What players need
is here and nothing more: HLS/DASH content types, single byte ranges (players and ffmpeg seek with
them), ETag revalidation, and CORS so a browser player on another origin may fetch segments.

Framework-free, with two ways in:
- `BucketHttp.handle(method, path, headers)` -> `BucketResponse(status, headers, body)`, and
  `BucketResponse.send(handler)` to write it through a stdlib `BaseHTTPRequestHandler`;
- `BucketHttp` is also a WSGI app, for servers that mount apps at a prefix (SCRIPT_NAME/PATH_INFO).
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import unquote

from harvest.adapters.objectstore import check_bucket, check_key
from harvest.adapters.objectstore.local import TEMP_PREFIX
from harvest.errors import StorageError

CHUNK_SIZE = 256 * 1024
ALLOWED_METHODS = "GET, HEAD, OPTIONS"
PREFLIGHT_MAX_AGE = "86400"

# Types players check (Safari and hls.js look at the playlist's); the rest fall back to mimetypes.
CONTENT_TYPES: dict[str, str] = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m3u": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".cmfv": "video/mp4",
    ".m4a": "audio/mp4",
    ".cmfa": "audio/mp4",
    ".aac": "audio/aac",
    ".ac3": "audio/ac3",
    ".ec3": "audio/eac3",
    ".mp3": "audio/mpeg",
    ".vtt": "text/vtt",
    ".webvtt": "text/vtt",
    ".key": "application/octet-stream",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# Sent on every answer: browsers only hand these headers to a cross-origin player when exposed.
CORS_HEADERS: tuple[tuple[str, str], ...] = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, ETag"),
)


def content_type_for(key: str) -> str:
    suffix = os.path.splitext(key)[1].lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _encoding = mimetypes.guess_type(key, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


class BytesBody:
    """A small body held in memory."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        if self._data:
            yield self._data

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        pass


class FileBody:
    """`length` bytes of an open file from `offset`, read in chunks; `close()` releases the file."""

    def __init__(self, handle: BinaryIO, offset: int, length: int) -> None:
        self._handle = handle
        self._offset = offset
        self._length = length

    def __iter__(self) -> Iterator[bytes]:
        self._handle.seek(self._offset)
        remaining = self._length
        while remaining > 0:
            chunk = self._handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:  # the file shrank under us: the Content-Length sent is now a lie, stop
                raise OSError("file truncated while being served")
            remaining -= len(chunk)
            yield chunk

    def __len__(self) -> int:
        return self._length

    def close(self) -> None:
        self._handle.close()


ResponseBody = BytesBody | FileBody


class BucketResponse(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: ResponseBody

    def send(self, handler: BaseHTTPRequestHandler) -> None:
        """Write the whole answer through a stdlib handler (HEAD answers carry no body), then close."""
        try:
            handler.send_response(self.status)
            for name, value in self.headers:
                handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                for chunk in self.body:
                    handler.wfile.write(chunk)
        finally:
            self.body.close()


class _Unsatisfiable(Exception):
    pass


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last inclusive) a Range header asks for, or None to send it all.

    Per RFC 9110 14.2 a header we do not understand, or several ranges, may be ignored (we then send
    the whole object); a well-formed range that starts past the end raises _Unsatisfiable (416).
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if not first_text:  # suffix range: the last N bytes
        if not last_text.isdigit():
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - suffix), size - 1
    if not first_text.isdigit() or (last_text and not last_text.isdigit()):
        return None
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # syntactically invalid: ignored, not refused
    if first >= size:
        raise _Unsatisfiable
    return first, min(last, size - 1)


class BucketHttp:
    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    def handle(self, method: str, path: str, headers: Mapping[str, str]) -> BucketResponse:
        """Answer one request. `path` is the URL path below the mount point, percent-encoded as sent
        (`/<bucket>/<key>`, a query string is ignored). The caller must close the returned body."""
        try:
            # Not urlsplit: it would read a path starting with `//` as a host name.
            decoded = unquote(path.partition("?")[0].partition("#")[0], errors="strict")
        except UnicodeDecodeError:
            return _text(400, "object path is not UTF-8\n")
        return self._answer(method.upper(), decoded, {name.lower(): value for name, value in headers.items()})

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry: PATH_INFO (below SCRIPT_NAME) is `/<bucket>/<key>`."""
        raw = str(environ.get("PATH_INFO", "")).encode("latin-1")
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            response = self._answer(method, raw.decode("utf-8"), headers)
        except UnicodeDecodeError:
            response = _text(400, "object path is not UTF-8\n")
        reason = _REASONS.get(response.status, "")
        start_response(f"{response.status} {reason}", response.headers)
        if method == "HEAD":
            response.body.close()
            return []
        return response.body

    # --- internals --------------------------------------------------------------------------------

    def _answer(self, method: str, path: str, headers: Mapping[str, str]) -> BucketResponse:
        if method == "OPTIONS":
            return _preflight(headers)
        if method not in ("GET", "HEAD"):
            response = _text(405, "method not allowed\n")
            response.headers.append(("Allow", ALLOWED_METHODS))
            return response
        handle = self._open(path)
        if handle is None:
            return _text(404, "no such object\n")
        try:
            return _object_response(handle, content_type_for(path), headers)
        except BaseException:
            handle.close()
            raise

    def _open(self, path: str) -> BinaryIO | None:
        bucket, slash, key = path.lstrip("/").partition("/")
        try:
            check_bucket(bucket)
            check_key(key)
        except StorageError:
            return None  # not a name an object can have: as absent as any missing object
        if not slash or key.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
            return None
        bucket_dir = (self._root / bucket).resolve()
        target = (bucket_dir / key).resolve()
        # Keys are checked above; this also refuses a symlink planted in the bucket that points out of it.
        if not target.is_relative_to(bucket_dir):
            return None
        try:
            handle = open(target, "rb")  # noqa: SIM115 - closed by the response body
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            handle.close()
            return None
        return handle


def _object_response(handle: BinaryIO, content_type: str, request: Mapping[str, str]) -> BucketResponse:
    info = os.fstat(handle.fileno())
    size = info.st_size
    etag = f'"{size:x}-{info.st_mtime_ns:x}"'
    headers = [
        *CORS_HEADERS,
        ("Content-Type", content_type),
        ("Accept-Ranges", "bytes"),
        ("ETag", etag),
        ("Last-Modified", formatdate(info.st_mtime, usegmt=True)),
    ]
    if _matches(request.get("if-none-match", ""), etag):
        handle.close()
        return BucketResponse(304, headers, BytesBody())
    byte_range: tuple[int, int] | None = None
    range_header = request.get("range", "")
    # If-Range with a stale validator means "the object changed: send all of it".
    if range_header and request.get("if-range", etag) == etag:
        try:
            byte_range = parse_range(range_header, size)
        except _Unsatisfiable:
            handle.close()
            headers.append(("Content-Range", f"bytes */{size}"))
            return _text(416, "range not satisfiable\n", headers)
    if byte_range is None:
        headers.append(("Content-Length", str(size)))
        return BucketResponse(200, headers, FileBody(handle, 0, size))
    first, last = byte_range
    headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
    headers.append(("Content-Length", str(last - first + 1)))
    return BucketResponse(206, headers, FileBody(handle, first, last - first + 1))


def _matches(if_none_match: str, etag: str) -> bool:
    candidates = [item.strip().removeprefix("W/") for item in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def _preflight(request: Mapping[str, str]) -> BucketResponse:
    asked = request.get("access-control-request-headers", "")
    headers = [
        *CORS_HEADERS,
        ("Access-Control-Allow-Methods", ALLOWED_METHODS),
        ("Access-Control-Allow-Headers", asked or "Range, If-None-Match, If-Range"),
        ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
        ("Content-Length", "0"),
    ]
    return BucketResponse(204, headers, BytesBody())


def _text(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> BucketResponse:
    data = message.encode("utf-8")
    base = [(name, value) for name, value in headers or CORS_HEADERS if name.lower() != "content-type"]
    base += [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    return BucketResponse(status, base, BytesBody(data))


_REASONS = {
    200: "OK",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
}
