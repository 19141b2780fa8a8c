"""Hostile origins and URLs: one URL-safety policy for playlists, segments, keys and callbacks.

Small HTTP servers in the test play an endpoint (on 127.0.0.1, the endpoint's own host, which the
policy trusts), a third-party CDN (on 127.0.0.2, allowed by HARVEST_ALLOWED_PRIVATE_HOSTS only where
a case says so) and a cloud "metadata service" (on 127.0.0.3). Jobs run through the real handlers,
queue pump and HTTP origin client; each server records every request it gets, with its headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.reliability.table import Recorder
from tests.reliability.test_crashes import serve_params
from tests.support.callback_receiver import CallbackReceiver
from tests.support.clock import ManualClock
from tests.support.engine import BUCKET, Engine
from tests.support.media import TEST_NOW
from tests.support.polling import eventually
from tests.support.recording_server import Server
from tests.support.serve_process import serve_env, start_serve

from harvest.adapters.callback import CallbackNotifier
from harvest.adapters.retry import RetryPolicy
from harvest.devtools import ChannelSpec, Pool
from harvest.devtools.origin import format_pdt
from harvest.domain.job import JobStatus
from harvest.domain.urlpolicy import UrlPolicy
from harvest.errors import FieldError

pytest_plugins = ("tests.support.media", "tests.support.engine", "tests.support.recording_server")

pytestmark = pytest.mark.media

PLAYLIST = "application/vnd.apple.mpegurl"
END = TEST_NOW - 600  # the window ended long ago: planning runs at once
SECRET = "origin-secret-3f9a"


def media_playlist(uris: list[str], end: float = END) -> bytes:
    """An ended media playlist of 2 s segments (with PDT) whose last one ends at `end`."""
    first = end - 2 * len(uris)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for n, uri in enumerate(uris):
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(first + 2 * n)}", "#EXTINF:2.000,", uri]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


def endpoint(server: Server, pool: Pool, master: bytes, routes: dict[str, bytes | tuple[str, str]]) -> None:
    """Make `server` the `show` channel's endpoint (with a secret header) serving these routes."""
    server.channels["show"] = ChannelSpec(
        "ts", pool, dvr_window=86400, required_headers={"X-Origin-Secret": SECRET}
    )
    server.routes["/show/master.m3u8"] = master
    server.routes.update({f"/show/{path}": body for path, body in routes.items()})


def stored_files(engine: Engine) -> list[Path]:
    root = engine.bucket_root
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


# --- a playlist aimed at the metadata service ------------------------------------------------------


@pytest.mark.parametrize("how", ["segment URI", "redirect from the endpoint"])
def test_a_playlist_cannot_make_the_service_fetch_a_private_address(
    how: str,
    media_pools: dict[str, Pool],
    servers: Callable[[str], Server],
    engine_factory: Callable[..., Engine],
    reliability_record: Recorder,
) -> None:
    # GIVEN a "metadata service" on 127.0.0.3 holding a credential, and an endpoint on 127.0.0.1 whose
    # media playlist names it (as a segment URI, or through a 302 from a segment on the endpoint)
    metadata = servers("127.0.0.3")
    metadata.routes["/latest/meta-data/iam/credentials.ts"] = b'{"SecretAccessKey": "leaked"}'
    stolen = f"{metadata.url}/latest/meta-data/iam/credentials.ts"
    origin = servers("127.0.0.1")
    segments: dict[str, bytes | tuple[str, str]] = {f"{n}.ts": b"\x47" * 188 for n in range(10)}
    if how == "segment URI":
        uris = [f"{n}.ts" for n in range(9)] + [stolen]
    else:
        uris = [f"{n}.ts" for n in range(10)]
        segments["9.ts"] = ("redirect", stolen)
    endpoint(origin, media_pools["ts"], media_playlist(uris), segments)
    engine = engine_factory(origin, ManualClock(TEST_NOW), fetch_attempts=3)
    # WHEN a job covers that segment
    engine.create("meta", "show", END - 20, END)
    job = engine.wait("meta")
    # THEN the job fails naming the refusal, the metadata service got no request, nothing was stored
    assert job.status is JobStatus.FAILED
    assert "refused" in job.err_message, job.err_message
    assert "127.0.0.3" in job.err_message, job.err_message
    assert "after 1 attempt" in job.err_message  # a refusal is never retried
    assert metadata.seen == []
    assert not any(b"leaked" in path.read_bytes() for path in stored_files(engine))
    reliability_record(
        "Playlist aimed at the metadata service",
        f"the endpoint's media playlist reaches a loopback 'metadata' stand-in on 127.0.0.3 ({how})",
        f"Failed: ErrMessage {job.err_message!r}; the stand-in received {len(metadata.seen)} requests;"
        " nothing of it stored",
    )


# --- the endpoint's secret stays with the endpoint -----------------------------------------------


def test_endpoint_headers_and_timeshift_query_never_leave_the_endpoint(
    media_pools: dict[str, Pool],
    servers: Callable[[str], Server],
    engine_factory: Callable[..., Engine],
    reliability_record: Recorder,
) -> None:
    # GIVEN an endpoint with a secret header and a time-shift query, whose master lists one variant on
    # itself and one on a third-party CDN (127.0.0.2, allowed by the operator), and whose variant
    # names segments on itself, on the CDN, and on itself redirecting to the CDN
    cdn = servers("127.0.0.2")
    origin = servers("127.0.0.1")
    master = (
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlocal.m3u8\n"
        f"#EXT-X-STREAM-INF:BANDWIDTH=400000\n{cdn.url}/cdn/remote.m3u8\n"
    ).encode()
    local = media_playlist([*(f"{n}.ts" for n in range(8)), f"{cdn.url}/cdn/8.ts", "9.ts"])
    routes: dict[str, bytes | tuple[str, str]] = {"local.m3u8": local}
    routes.update({f"{n}.ts": b"\x47" * 188 for n in range(8)})
    routes["9.ts"] = ("redirect", f"{cdn.url}/cdn/9.ts")
    endpoint(origin, media_pools["ts"], master, routes)
    cdn.routes["/cdn/remote.m3u8"] = media_playlist([f"r{n}.ts" for n in range(10)])
    cdn.routes.update(
        {f"/cdn/{name}": b"\x47" * 188 for name in ("8.ts", "9.ts", *(f"r{n}.ts" for n in range(10)))}
    )
    engine = engine_factory(origin, ManualClock(TEST_NOW), allowed_private_hosts=("127.0.0.2",))
    # WHEN a job harvests both variants
    engine.create("scoped", "show", END - 20, END)
    job = engine.wait("scoped")
    # THEN it completes, every request to the endpoint carried the secret, and none to the CDN did,
    # nor the time-shift query
    assert job.status is JobStatus.COMPLETED, job.err_message
    assert origin.seen
    assert all(seen.headers.get("X-Origin-Secret") == SECRET for seen in origin.seen)
    leaked = [seen for seen in cdn.seen if "X-Origin-Secret" in seen.headers or "start=" in seen.query]
    assert {seen.path for seen in cdn.seen} >= {"/cdn/remote.m3u8", "/cdn/8.ts", "/cdn/9.ts"}
    assert leaked == []
    playlists = [seen for seen in origin.seen if seen.path.endswith(".m3u8")]
    assert all("start=" in seen.query for seen in playlists)
    reliability_record(
        "Endpoint headers sent to another host",
        "endpoint with a secret header and a time-shift query; its master lists a variant on a CDN host,"
        " its variant a segment on the CDN and a segment that redirects (302) there",
        f"Completed; {len(origin.seen)} requests to the endpoint, all with the secret;"
        f" {len(cdn.seen)} to the CDN (playlist, segments, the redirected one) with {len(leaked)} carrying"
        " the secret or the time-shift query",
    )


# --- Create and delivery agree ---------------------------------------------------------------------

DISGUISED = [
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/latest/meta-data/",  # 6to4 of 169.254.169.254
    "http://[::ffff:10.0.0.1]/hook",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",  # Alibaba's metadata address
    "http://0x7f.1/hook",
    "http://[::]/hook",
]


def test_create_and_delivery_refuse_the_same_callback_urls(
    media_pools: dict[str, Pool],
    servers: Callable[[str], Server],
    engine_factory: Callable[..., Engine],
    reliability_record: Recorder,
) -> None:
    # GIVEN the Create path and the notifier, both built from the same settings
    origin = servers("127.0.0.1")
    endpoint(origin, media_pools["ts"], media_playlist([f"{n}.ts" for n in range(10)]), {})
    engine = engine_factory(origin, ManualClock(TEST_NOW))
    notifier = CallbackNotifier(RetryPolicy(attempts=1), 1.0, UrlPolicy.for_callbacks(engine.settings))
    at_create, at_delivery = [], []
    for n, url in enumerate(DISGUISED):
        # WHEN each disguised private address is given as a CallbackURL, and then delivered to
        with pytest.raises(FieldError) as caught:
            engine.create(f"cb-{n}", "show", END - 20, END, callback_url=url)
        at_create.append(caught.value.code)
        at_delivery.append(notifier.notify(url, {"ID": "x"}))
    # THEN both refuse every one of them
    assert at_create == ["InvalidParameter.Url"] * len(DISGUISED)
    assert all(outcome.startswith("refused: ") for outcome in at_delivery), at_delivery
    reliability_record(
        "Callback address disguised as IPv6 or a legacy form",
        ", ".join(DISGUISED),
        f"{len(DISGUISED)}/{len(DISGUISED)} refused at Create (InvalidParameter.Url) and at delivery"
        f" (e.g. {at_delivery[0]!r})",
    )


# --- what ErrMessage, callbacks and logs may show --------------------------------------------------

USER, PASSWORD, TOKEN = "harvester", "pa55w0rd-9c1e", "t0ken-77d2a"


def test_err_messages_callbacks_and_logs_carry_no_credentials_tokens_or_local_paths(
    tmp_path: Path,
    media_pools: dict[str, Pool],
    servers: Callable[[str], Server],
    reliability_record: Recorder,
) -> None:
    # GIVEN `harvest serve` whose endpoints carry user info and a token in their URLs: one serves a
    # broken playlist, the other a good one whose output folder is blocked by a file on the local disk
    origin = servers("127.0.0.1")
    origin.routes["/broken/master.m3u8"] = b"not a playlist\n"
    end = int(time.time()) - 60
    origin.routes["/good/master.m3u8"] = media_playlist([f"{n}.ts" for n in range(10)], end)
    origin.routes.update({f"/good/{n}.ts": b"\x47" * 188 for n in range(10)})
    secret_url = origin.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    registry = tmp_path / "channels.yaml"
    registry.write_text(
        "channels:\n"
        + "".join(
            f"  - name: {name}\n    endpoints:\n      - name: hls\n"
            f"        url: {secret_url}/{name}/master.m3u8?token={TOKEN}\n        startover_window: 86400\n"
            for name in ("broken", "good")
        ),
        encoding="utf-8",
    )
    data_dir = tmp_path / "data"
    blocked = data_dir / "cos" / BUCKET / "out" / "paths"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("in the way")
    receiver = CallbackReceiver()
    env = serve_env(
        data_dir,
        registry,
        extra={
            "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true",
            "HARVEST_QUEUE_MAX_ATTEMPTS": "1",
            "HARVEST_DEAD_LETTER_HOLD": "0",  # a dead letter fails its job at once
        },
    )
    process = start_serve(env, data_dir)
    try:
        # WHEN one job fails on the broken playlist and one on the blocked folder
        for job_id, channel in (("creds", "broken"), ("paths", "good")):
            params = serve_params(job_id, end - 20, end, receiver.url())
            process.create({**params, "ChannelName": channel})
        ended = {job_id: process.wait_until_ended(job_id, 60) for job_id in ("creds", "paths")}
        eventually(lambda: len(receiver.received()) >= 2, 20, "both callbacks")
        messages = {job_id: str(process.describe(job_id).ErrMessage) for job_id in ended}
    finally:
        process.stop(10)
        receiver.stop()
    logs = "\n".join(line for line in process.output if line.startswith("{"))
    callbacks = json.dumps([body for _, body in receiver.received()])
    # THEN both failed, saying why...
    assert ended == {"creds": "Failed", "paths": "Failed"}
    assert "does not start with #EXTM3U" in messages["creds"]
    assert "/broken/master.m3u8" in messages["creds"]
    assert "cannot write" in messages["paths"], messages["paths"]
    # ... and neither ErrMessage, nor a callback, nor a log line holds the password, the user name in
    # a URL, the token, or a local path
    forbidden = (PASSWORD, f"{USER}:", TOKEN, str(tmp_path))
    found = {
        where: [item for item in forbidden if item in text]
        for where, text in (("ErrMessage", json.dumps(messages)), ("callbacks", callbacks), ("logs", logs))
    }
    assert found == {"ErrMessage": [], "callbacks": [], "logs": []}, found
    reliability_record(
        "Credentials, tokens and paths in ErrMessage",
        "endpoint URLs with user:password@ and ?token=; a broken playlist; an output folder blocked by a"
        " file on the local disk (HARVEST_QUEUE_MAX_ATTEMPTS=1)",
        f"both Failed: {messages['creds']!r}; {messages['paths']!r}; 0 of 4 forbidden strings (password,"
        f" user info, token, data path) in ErrMessage, 2 callbacks or {logs.count(chr(10)) + 1} log lines",
    )
