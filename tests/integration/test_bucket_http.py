"""BucketHttp serving the local bucket to players, through a real stdlib HTTP server mounted at /cos/
(as the local gateway mounts it), and through its WSGI face.

Objects are written with LocalDiskStore, so these tests also pin down that what the harvester writes
is what players get.
"""

from __future__ import annotations

import http.client
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harvest.adapters.objectstore.local import TEMP_PREFIX, LocalDiskStore
from harvest.local.bucket_http import BucketHttp

BUCKET = "vod-1250000000"
MOUNT = "/cos"
SEGMENT = bytes(range(256)) * 8  # 2048 bytes, every offset distinguishable


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Stand:
    root: Path
    store: LocalDiskStore
    port: int

    def request(self, method: str, target: str, headers: dict[str, str] | None = None) -> Answer:
        """Send `target` exactly as given (no client-side path normalisation) and read the answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()


def make_handler(app: BucketHttp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            if not self.path.startswith(MOUNT + "/"):
                self.send_error(404)
                return
            app.handle(self.command, self.path[len(MOUNT) :], dict(self.headers.items())).send(self)

        do_GET = do_HEAD = do_OPTIONS = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[Stand]:
    root = tmp_path / "data" / "cos"
    store = LocalDiskStore(root)
    store.put(BUCKET, "vod/job-1/main.m3u8", b"#EXTM3U\n#EXT-X-ENDLIST\n", "application/vnd.apple.mpegurl")
    store.put(BUCKET, "vod/job-1/seg-0.ts", SEGMENT, "video/mp2t")
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(BucketHttp(root)))
    # A short poll interval: shutdown() waits for the serving loop's next look, once per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield Stand(root, store, server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


# --- whole objects ---------------------------------------------------------------------------------


def test_a_playlist_is_served_whole_with_its_type_and_cors(stand: Stand) -> None:
    # WHEN a player fetches the harvested playlist
    answer = stand.request("GET", f"/cos/{BUCKET}/vod/job-1/main.m3u8")
    # THEN it gets the bytes written, typed for HLS, readable cross-origin
    assert answer.status == 200
    assert answer.body == b"#EXTM3U\n#EXT-X-ENDLIST\n"
    assert answer.header("Content-Type") == "application/vnd.apple.mpegurl"
    assert answer.header("Content-Length") == str(len(answer.body))
    assert answer.header("Access-Control-Allow-Origin") == "*"
    exposed_header = answer.header("Access-Control-Expose-Headers") or ""
    exposed = {name.strip().lower() for name in exposed_header.split(",")}
    assert {"content-length", "content-range"} <= exposed
    assert answer.header("Accept-Ranges") == "bytes"


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("a.ts", "video/mp2t"),
        ("a.m4s", "video/iso.segment"),
        ("init.mp4", "video/mp4"),
        ("subs.vtt", "text/vtt"),
        ("audio.aac", "audio/aac"),
        ("aes.key", "application/octet-stream"),
        ("manifest.mpd", "application/dash+xml"),
        ("UPPER.M3U8", "application/vnd.apple.mpegurl"),
        ("no-extension", "application/octet-stream"),
    ],
)
def test_each_media_kind_gets_its_content_type(stand: Stand, key: str, content_type: str) -> None:
    stand.store.put(BUCKET, f"kinds/{key}", b"x", "ignored")
    answer = stand.request("GET", f"/cos/{BUCKET}/kinds/{key}")
    assert (answer.status, answer.header("Content-Type")) == (200, content_type)


def test_head_describes_the_object_without_sending_it(stand: Stand) -> None:
    # WHEN a client asks only for the headers
    answer = stand.request("HEAD", f"/cos/{BUCKET}/vod/job-1/seg-0.ts")
    # THEN it learns the size and type, and no body follows
    assert answer.status == 200
    assert answer.header("Content-Length") == str(len(SEGMENT))
    assert answer.header("Content-Type") == "video/mp2t"
    assert answer.body == b""


def test_keys_with_spaces_and_unicode_are_served_from_their_percent_encoded_urls(stand: Stand) -> None:
    # GIVEN an object whose key needs URL encoding
    stand.store.put(BUCKET, "vod/ünï côdé/seg 1.ts", b"encoded", "video/mp2t")
    # WHEN the player asks for it percent-encoded / THEN it is found
    answer = stand.request("GET", f"/cos/{BUCKET}/vod/%C3%BCn%C3%AF%20c%C3%B4d%C3%A9/seg%201.ts?cache=1")
    assert (answer.status, answer.body) == (200, b"encoded")


def test_an_unchanged_object_revalidates_with_304(stand: Stand) -> None:
    # GIVEN the ETag of a first fetch
    etag = stand.request("GET", f"/cos/{BUCKET}/vod/job-1/seg-0.ts").header("ETag")
    assert etag
    # WHEN the player revalidates with it / THEN nothing is resent
    answer = stand.request("GET", f"/cos/{BUCKET}/vod/job-1/seg-0.ts", {"If-None-Match": etag})
    assert (answer.status, answer.body) == (304, b"")
    # AND after the object is rewritten, the old ETag no longer matches
    stand.store.put(BUCKET, "vod/job-1/seg-0.ts", SEGMENT + b"more", "video/mp2t")
    changed = stand.request("GET", f"/cos/{BUCKET}/vod/job-1/seg-0.ts", {"If-None-Match": etag})
    assert (changed.status, changed.body) == (200, SEGMENT + b"more")


# --- ranges ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=2000-", 2000, 2047),
        ("bytes=-48", 2000, 2047),
        ("bytes=1000-999999", 1000, 2047),  # an end past the object is clamped
        ("bytes=-999999", 0, 2047),  # so is a suffix longer than the object
    ],
)
def test_a_single_range_is_answered_206_with_exactly_those_bytes(
    stand: Stand, range_header: str, first: int, last: int
) -> None:
    # WHEN a player seeks with a byte range
    answer = stand.request("GET", f"/cos/{BUCKET}/vod/job-1/seg-0.ts", {"Range": range_header})
    # THEN it gets exactly that slice, labelled with where it sits in the whole
    assert answer.status == 206
    assert answer.body == SEGMENT[first : last + 1]
    assert answer.header("Content-Range") == f"bytes {first}-{last}/{len(SEGMENT)}"
    assert answer.header("Content-Length") == str(last - first + 1)


@pytest.mark.parametrize("range_header", ["bytes=2048-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_outside_the_object_is_416(stand: Stand, range_header: str) -> None:
    answer = stand.request("GET", f"/cos/{BUCKET}/vod/job-1/seg-0.ts", {"Range": range_header})
    assert answer.status == 416
    assert answer.header("Content-Range") == f"bytes */{len(SEGMENT)}"
    assert answer.header("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize("range_header", ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=abc"])
def test_ranges_we_do_not_serve_fall_back_to_the_whole_object(stand: Stand, range_header: str) -> None:
    # GIVEN several ranges, another unit, or a malformed spec (RFC 9110 lets a server ignore them)
    answer = stand.request("GET", f"/cos/{BUCKET}/vod/job-1/seg-0.ts", {"Range": range_header})
    # THEN the whole object is sent, correctly labelled as such
    assert (answer.status, answer.body) == (200, SEGMENT)
    assert answer.header("Content-Range") is None


def test_a_stale_if_range_gets_the_whole_new_object(stand: Stand) -> None:
    answer = stand.request(
        "GET", f"/cos/{BUCKET}/vod/job-1/seg-0.ts", {"Range": "bytes=0-9", "If-Range": '"stale-etag"'}
    )
    assert (answer.status, answer.body) == (200, SEGMENT)


# --- CORS, methods, missing and forbidden paths --------------------------------------------------------


def test_a_cors_preflight_is_answered_without_touching_objects(stand: Stand) -> None:
    # WHEN a browser player on another origin preflights a ranged request
    answer = stand.request(
        "OPTIONS",
        f"/cos/{BUCKET}/vod/job-1/seg-0.ts",
        {
            "Origin": "https://player.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    # THEN it is allowed to GET and HEAD with the headers it asked for
    assert answer.status == 204
    assert answer.header("Access-Control-Allow-Origin") == "*"
    assert "GET" in (answer.header("Access-Control-Allow-Methods") or "")
    assert answer.header("Access-Control-Allow-Headers") == "range"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_the_bucket_is_read_only_over_http(stand: Stand, method: str) -> None:
    answer = stand.request(method, f"/cos/{BUCKET}/vod/job-1/seg-0.ts")
    assert answer.status == 405
    assert answer.header("Allow") == "GET, HEAD, OPTIONS"
    assert stand.store.get(BUCKET, "vod/job-1/seg-0.ts") == SEGMENT


@pytest.mark.parametrize(
    "target",
    [
        f"/cos/{BUCKET}/vod/job-1/missing.ts",
        "/cos/no-such-bucket-1250000000/vod/job-1/seg-0.ts",
        f"/cos/{BUCKET}/vod/job-1",  # a directory is not an object, and is never listed
        f"/cos/{BUCKET}/",
        f"/cos/{BUCKET}",
    ],
)
def test_what_is_not_an_object_is_404(stand: Stand, target: str) -> None:
    answer = stand.request("GET", target)
    assert answer.status == 404
    assert answer.header("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize(
    "target",
    [
        f"/cos/{BUCKET}/../secret.txt",
        f"/cos/{BUCKET}/vod/../../secret.txt",
        f"/cos/{BUCKET}/%2e%2e/secret.txt",
        f"/cos/{BUCKET}/..%2f..%2fsecret.txt",
        f"/cos/{BUCKET}/..%5csecret.txt",
        "/cos/../secret.txt",
        "/cos/%2e%2e/data/secret.txt",
        f"/cos/{BUCKET}/%2Fetc%2Fpasswd",
        f"/cos/{BUCKET}/vod/%00.ts",
        f"/cos/{BUCKET}/leak/secret.txt",  # a symlink planted in the bucket, pointing out of it
    ],
)
def test_paths_that_climb_out_of_the_bucket_are_not_served(stand: Stand, target: str) -> None:
    # GIVEN a secret next to the bucket root, and a symlink inside the bucket pointing at it
    secret = stand.root.parent / "secret.txt"
    secret.write_bytes(b"top secret")
    (stand.root / "secret.txt").write_bytes(b"top secret")
    (stand.root / BUCKET / "leak").symlink_to(stand.root.parent)
    # WHEN a client asks for it by climbing / THEN it is not found, and nothing of it leaks
    answer = stand.request("GET", target)
    assert answer.status in (400, 404)
    assert b"secret" not in answer.body


def test_a_half_written_temporary_file_is_never_served(stand: Stand) -> None:
    # GIVEN a temporary file a crashed write left behind
    partial = stand.root / BUCKET / "vod" / "job-1" / f"{TEMP_PREFIX}abcdef"
    partial.write_bytes(b"half a segment")
    # WHEN it is asked for by name / THEN it does not exist for clients
    assert stand.request("GET", f"/cos/{BUCKET}/vod/job-1/{partial.name}").status == 404


# --- the WSGI face -----------------------------------------------------------------------------------


def call_wsgi(
    app: BucketHttp, method: str, path_info: str, headers: dict[str, str]
) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": MOUNT,
        "PATH_INFO": path_info.encode("utf-8").decode("latin-1"),  # PEP 3333: bytes as latin-1
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(b""),
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"], started["headers"] = status, dict(response_headers)
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started["status"], started["headers"], body


def test_the_wsgi_face_serves_ranges_and_heads(stand: Stand) -> None:
    app = BucketHttp(stand.root)
    stand.store.put(BUCKET, "vod/ü.ts", SEGMENT, "video/mp2t")
    # WHEN mounted by a WSGI server at /cos and asked for a range of a unicode key
    status, headers, body = call_wsgi(app, "GET", f"/{BUCKET}/vod/ü.ts", {"Range": "bytes=10-19"})
    # THEN it answers like the handler does
    assert status.startswith("206 ")
    assert body == SEGMENT[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(SEGMENT)}"
    # AND a HEAD carries the full length but no body
    status, headers, body = call_wsgi(app, "HEAD", f"/{BUCKET}/vod/ü.ts", {})
    assert (status.split()[0], headers["Content-Length"], body) == ("200", str(len(SEGMENT)), b"")
    assert call_wsgi(app, "GET", f"/{BUCKET}/vod/missing.ts", {})[0].startswith("404 ")
