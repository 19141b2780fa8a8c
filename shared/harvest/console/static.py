"""Serving the console's static files: a request path and headers in, status, headers and body out.

A plain function, so any HTTP front can mount it: the api handler answers GET /console/... with it,
the same on `harvest serve` and on SCF's function URL. The page is a client of the public API like
any SDK; this module hands out files and one `config.json` (the region and where the API and the
local bucket are, relative to the page), never a key or anything behind the signature.

Every file is text (the build emits no binary), so bodies travel in an integration response
without Base64, which SCF's function URL is not documented to decode.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PREFIX = "/console"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# The page talks to its own origin (the API, the local bucket) and, for the player, to COS over
# https; hls.js feeds the <video> through MediaSource blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https:; media-src 'self' blob: https:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class ConsoleConfig:
    """What the page needs before sign-in, as URLs relative to the page (so a path prefix works)."""

    region: str
    api: str = "../"  # the API root: the console lives at <root>/console/
    bucket: str = ""  # "../cos/" where `harvest serve` serves the local bucket beside the API

    def to_json(self) -> bytes:
        data = {"region": self.region, "api": self.api, "bucket": self.bucket}
        return json.dumps(data, separators=(",", ":")).encode()


@dataclass(frozen=True)
class StaticResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    """A file's bytes and ETag, cached until the file changes (a rebuild)."""
    data = path.read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _text(status: int, message: str, **headers: str) -> StaticResponse:
    return StaticResponse(status, {"Content-Type": "text/plain; charset=utf-8", **headers}, message.encode())


def _file(name: str, root: Path, request_headers: Mapping[str, str]) -> StaticResponse:
    if not _SAFE_NAME.fullmatch(name) or ".." in name.split("/"):
        return _text(404, "not found\n")
    path = root / name
    if not path.is_file():
        if not (root / "index.html").is_file():
            return _text(503, "the console is not built: run `make console` (or `make install`)\n")
        return _text(404, "not found\n")
    data, etag = _read(path, path.stat().st_mtime_ns)
    content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Names carry no content hash, so every load revalidates: a rebuild is never served stale.
    headers = {"Content-Type": content_type, "Cache-Control": "no-cache", "ETag": etag, **SECURITY_HEADERS}
    if etag in {tag.strip() for tag in request_headers.get("if-none-match", "").split(",")}:
        return StaticResponse(304, headers)
    return StaticResponse(200, headers, data)


def console_response(
    method: str,
    path: str,
    headers: Mapping[str, str],
    config: ConsoleConfig,
    root: Path = STATIC_DIR,
) -> StaticResponse:
    """The answer to one request for `path` (which starts with /console); header names lower-case."""
    if method not in ("GET", "HEAD"):
        return _text(405, "the console is read-only: use GET\n", Allow="GET, HEAD")
    if path == PREFIX:
        # Relative, so it also works behind a gateway that adds a path prefix.
        return _text(301, "moved to console/\n", Location="console/")
    name = path[len(PREFIX) + 1 :] or "index.html"
    if name == "config.json":
        return StaticResponse(
            200,
            {"Content-Type": "application/json", "Cache-Control": "no-store", **SECURITY_HEADERS},
            config.to_json(),
        )
    return _file(name, root, headers)


def integration_response(response: StaticResponse) -> dict[str, object]:
    """`response` as the integration response SCF's HTTP triggers read (text bodies stay text)."""
    try:
        return {
            "isBase64Encoded": False,
            "statusCode": response.status,
            "headers": response.headers,
            "body": response.body.decode("utf-8"),
        }
    except UnicodeDecodeError:  # not emitted by the build; kept correct for any file put there
        return {
            "isBase64Encoded": True,
            "statusCode": response.status,
            "headers": response.headers,
            "body": base64.b64encode(response.body).decode("ascii"),
        }
