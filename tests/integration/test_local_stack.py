"""`harvest serve`'s stack in-process, and the CLI built on the Tencent SDK, against real media.

The stack is the one `harvest serve` builds (build_stack): API gateway + handler, queue pump with
the worker and finalizer handlers, SQLite, local bucket served under /cos/.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.polling import eventually

from harvest.cli.client import ClientConfig, HarvestClient
from harvest.cli.jobs import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, render_bar, wait_for
from harvest.cli.main import main as cli_main
from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml
from harvest.local.serve import LocalStack, build_stack
from harvest.settings import Settings

pytest_plugins = ("tests.support.media",)
pytestmark = pytest.mark.media

SECRET_ID, SECRET_KEY, REGION = "AKIDcli", "cli-secret", "ap-singapore"
BUCKET = "vod-1250000000"
KINDS = ("ts", "fmp4", "aes", "byterange")


@pytest.fixture
def live_origin(media_pools: dict[str, Pool]) -> Iterator[LiveOrigin]:
    # Real wall-clock time: the API checks that EndTime is in the past against the real clock.
    channels = {"news": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}
    channels.update({kind: ChannelSpec(kind, media_pools[kind], dvr_window=3600) for kind in KINDS})
    origin = LiveOrigin(channels).start()
    yield origin
    origin.stop()


@pytest.fixture
def make_stack(tmp_path: Path, live_origin: LiveOrigin) -> Iterator[Callable[..., LocalStack]]:
    stacks: list[LocalStack] = []
    write_channels_yaml(tmp_path / "channels.yaml", live_origin.url, live_origin.channels)

    def make(start_pump: bool = True) -> LocalStack:
        settings = Settings(
            region=REGION,
            data_dir=tmp_path / "data",
            channels_file=tmp_path / "channels.yaml",
            credentials={SECRET_ID: SECRET_KEY},
            port=0,
            workers=2,
            default_destination=f"https://{BUCKET}.cos.{REGION}.myqcloud.com/vod/",
        )
        stack = build_stack(settings)
        stack.gateway.start()
        if start_pump:
            stack.pump.start()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        if not stack.stop_event.is_set():
            stack.stop(timeout=10)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stack runs in this process: if an earlier test installed the JSON stdout log handler,
    # the server's log lines would interleave with the CLI's own stdout. Keep them apart.
    import logging

    root = logging.getLogger()
    from harvest.logs import configure_logging

    json_handler = configure_logging()  # the one JSON stdout handler (installed now if it was not)
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if h is not json_handler])
    monkeypatch.setenv("HARVEST_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("HARVEST_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("HARVEST_REGION", REGION)


def _api(stack: LocalStack) -> str:
    return f"127.0.0.1:{stack.gateway.port}"


def test_cli_creates_waits_lists_shows_and_deletes_a_job(
    make_stack: Callable[..., LocalStack], cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a running stack
    stack = make_stack()
    api = _api(stack)
    end = int(time.time()) - 10
    # WHEN a person uses the CLI for a job's whole life
    created = cli_main(
        [
            "create",
            "--api",
            api,
            "--id",
            "cli-1",
            "--channel",
            "news",
            "--endpoint",
            "hls",
            "--start",
            str(end - 16),
            "--end",
            str(end),
            "--wait",
        ]
    )
    out = capsys.readouterr()
    listed = cli_main(["jobs", "--api", api, "--json"])
    rows = json.loads(capsys.readouterr().out)
    shown = cli_main(["job", "--api", api, "cli-1"])
    record = json.loads(capsys.readouterr().out)
    deleted = cli_main(["delete", "--api", api, "cli-1"])
    # THEN each step exits 0 and says what happened; the VOD is served over HTTP with its type
    assert (created, listed, shown, deleted) == (EXIT_OK, EXIT_OK, EXIT_OK, EXIT_OK)
    assert "job cli-1 Completed" in out.err
    assert '"ID": "cli-1"' in out.out
    assert [r["ID"] for r in rows["Infos"]] == ["cli-1"]
    assert rows["TotalNum"] == 1
    assert record["Status"] == "Completed"
    assert record["ErrMessage"] == ""
    url = f"http://{api}/cos/{BUCKET}/vod/cli-1/index.m3u8"
    with urllib.request.urlopen(url) as response:
        assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert response.read().startswith(b"#EXTM3U")
    assert stack.deps.store.list(None, 0, 10).total == 0


def test_cli_errors_are_actionable_and_exit_codes_mean_something(
    make_stack: Callable[..., LocalStack],
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = make_stack()
    api = _api(stack)
    # an unknown job: the API's code and message, exit 1
    assert cli_main(["job", "--api", api, "nope"]) == EXIT_FAILED
    assert "InvalidParameter.NotFound" in capsys.readouterr().err
    # a bad signature: the code plus a hint about the credentials
    monkeypatch.setenv("HARVEST_SECRET_KEY", "wrong")
    assert cli_main(["jobs", "--api", api]) == EXIT_FAILED
    assert "AuthFailure.SignatureFailure" in capsys.readouterr().err
    # nothing listening: exit 3 and how to fix it
    stack.stop(timeout=5)
    assert cli_main(["jobs", "--api", api]) == EXIT_UNREACHABLE
    assert "harvest serve" in capsys.readouterr().err


def test_wait_reports_a_failed_job_with_its_message(
    make_stack: Callable[..., LocalStack], live_origin: LiveOrigin
) -> None:
    # GIVEN a job whose window holds a segment the origin no longer has
    from harvest.devtools import FaultPlan

    stack = make_stack()
    end = int(time.time()) - 10
    rendition = next(iter(live_origin.channels["news"].pool.variants)).name
    live_origin.faults = FaultPlan(missing={("news", rendition, (end - 5) // 2)})
    client = HarvestClient(ClientConfig(_api(stack), SECRET_ID, SECRET_KEY, REGION))
    client.create(
        {
            "ID": "bad",
            "ChannelName": "news",
            "EndpointName": "hls",
            "TimeFormat": "Epoch seconds",
            "StartTime": str(end - 10),
            "EndTime": str(end),
        }
    )
    # WHEN a person waits for it
    out = io.StringIO()
    code = wait_for(client, "bad", 120.0, out, poll=0.1)
    # THEN wait exits 1 and prints the ErrMessage naming the segment
    assert code == EXIT_FAILED
    assert f"Failed: segment {rendition}/" in out.getvalue()
    assert "HTTP 404" in out.getvalue()


def test_a_restart_resumes_queued_work(make_stack: Callable[..., LocalStack]) -> None:
    # GIVEN a job created while no consumer was running, then the process stopped
    first = make_stack(start_pump=False)
    client = HarvestClient(ClientConfig(_api(first), SECRET_ID, SECRET_KEY, REGION))
    end = int(time.time()) - 10
    client.create(
        {
            "ID": "resume",
            "ChannelName": "news",
            "EndpointName": "hls",
            "TimeFormat": "Epoch seconds",
            "StartTime": str(end - 8),
            "EndTime": str(end),
        }
    )
    first.stop(timeout=5)
    # WHEN a new stack starts on the same data dir
    second = make_stack()
    # THEN the queued work is done and the job Completed
    def ended() -> str | None:
        status = second.deps.store.get("resume").status.value
        return None if status == "Running" else status

    assert eventually(ended, 60, "the resumed job to end") == "Completed"


def test_progress_bar_shows_segments_bytes_and_rate() -> None:
    bar = render_bar(
        {"SegmentsTotal": 40, "SegmentsDone": 10, "BytesDone": 5_000_000, "Phase": "harvesting"}, 2.5
    )
    assert (
        bar.startswith("[#######-----")
    )
    assert (
        "10/40 segments" in bar
    )
    assert (
        "5.0 MB" in bar
    )
    assert (
        "2.5 MB/s" in bar
    )


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ["serve", "create", "jobs", "job", "delete", "wait", "demo", "demo-origin", "invoke"]:
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: harvest" in capsys.readouterr().out


@pytest.mark.parametrize("kind", KINDS)
def test_the_sdk_harvests_every_kind_of_channel_through_serve(
    kind: str, make_stack: Callable[..., LocalStack], live_origin: LiveOrigin
) -> None:
    # GIVEN harvest serve's stack and a live channel of this kind
    from tests.support.engine import ffmpeg_decode_errors

    from harvest.engine.plan import Plan

    stack = make_stack()
    client = HarvestClient(ClientConfig(_api(stack), SECRET_ID, SECRET_KEY, REGION))
    end = int(time.time()) - 10
    # WHEN the unchanged Tencent SDK creates a job and it runs to its end
    client.create(
        {
            "ID": f"sdk-{kind}",
            "ChannelName": kind,
            "EndpointName": "hls",
            "TimeFormat": "ISO-8601",
            "StartTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - 14)),
            "EndTime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(end)),
        }
    )
    assert wait_for(client, f"sdk-{kind}", 120.0, io.StringIO(), poll=0.1) == EXIT_OK
    # THEN every object is byte-exact with the origin and ffmpeg decodes the VOD without an error
    plan = Plan.from_json(stack.deps.store.get_plan(f"sdk-{kind}"))
    root = stack.settings.data_dir / "cos" / plan.bucket
    for task in plan.tasks:
        rng = task.range
        assert (root / task.key).read_bytes() == stack.deps.origin.get_bytes(
            task.url, {}, (rng[0], rng[1]) if rng else None
        ), task.name
    assert ffmpeg_decode_errors(root / plan.master_key) == ""
