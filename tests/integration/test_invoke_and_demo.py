"""`harvest invoke` runs the deployed entry points with the sample events; `harvest demo` runs whole."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARVEST = [sys.executable, "-m", "harvest.cli.main"]


def _env(tmp_path: Path) -> dict[str, str]:
    registry = tmp_path / "channels.yaml"
    registry.write_text(
        "channels:\n  - name: news\n    endpoints:\n      - name: hls\n"
        "        url: http://127.0.0.1:9/news/master.m3u8\n        startover_window: 86400\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARVEST_")}
    env.update(
        HARVEST_DATA_DIR=str(tmp_path / "data"),
        HARVEST_CHANNELS=str(registry),
        HARVEST_SECRET_ID="AKIDinvoke",
        HARVEST_SECRET_KEY="invoke-secret",
        HARVEST_FETCH_ATTEMPTS="1",
    )
    return env


def run_invoke(tmp_path: Path, function: str, event: str) -> subprocess.CompletedProcess[str]:
    """`harvest invoke FUNCTION events/EVENT` in a fresh data dir, its output captured."""
    return subprocess.run(
        [*HARVEST, "invoke", function, str(REPO / "events" / event)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )


def _invoke(tmp_path: Path, function: str, event: str) -> tuple[int, dict[str, object]]:
    result = run_invoke(tmp_path, function, event)
    # JSON logs go to stdout too; the result is the last JSON document printed.
    start = result.stdout.rfind("\n{\n")
    return result.returncode, json.loads(result.stdout[start + 1 if start >= 0 else 0 :])


def test_invoke_runs_the_sweeper_entry_point_with_its_timer_event(tmp_path: Path) -> None:
    code, result = _invoke(tmp_path, "sweeper", "timer_sweeper.json")
    assert code == 0
    assert result == {"failed": [], "requeued": {}, "published": 0}


def test_invoke_runs_the_worker_entry_point_with_a_ckafka_event(tmp_path: Path) -> None:
    # The sample's jobs do not exist in this fresh table: the worker acknowledges them as no-ops.
    code, result = _invoke(tmp_path, "worker", "ckafka_work.json")
    assert code == 0
    assert result["processed"] == len(
        json.loads((REPO / "events" / "ckafka_work.json").read_text())["Records"]
    )


def test_invoke_runs_the_api_entry_point_and_returns_an_integration_response(tmp_path: Path) -> None:
    # The sample was signed long ago: the API answers with its error envelope, over HTTP 200.
    code, result = _invoke(tmp_path, "api", "api_gateway_create.json")
    assert code == 0
    assert result["statusCode"] == 200
    body = json.loads(str(result["body"]))
    assert body["Response"]["Error"]["Code"] in (
        "AuthFailure.SignatureExpire",
        "AuthFailure.SecretIdNotFound",
    )


@pytest.mark.slow
@pytest.mark.media
def test_demo_ends_with_a_playable_vod_and_leaves_nothing_running(tmp_path: Path) -> None:
    result = subprocess.run(
        [*HARVEST, "demo", "--data-dir", str(tmp_path / "demo"), "--seconds", "12"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HARVEST_")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Completed" in out
    assert '"Status": "Completed"' in out
    assert "ffprobe:" in out
    assert '"variants": 3' in out
    assert "plays at:" in out
    assert "stopped." in out
    masters = list((tmp_path / "demo" / "cos").rglob("index.m3u8"))
    assert len(masters) == 1
    assert masters[0].read_text().startswith("#EXTM3U")
    # The demo channel has an ad break every 20 s, so a 12 s VOD holds at least part of one
    assert re.search(r"ad breaks:\s+splice-\d+ from ", out), out
    variant = next(masters[0].parent.rglob("v0_*/playlist.m3u8")).read_text()
    assert "#EXT-X-DATERANGE:" in variant
    assert "#EXT-X-CUE-" in variant
    # It harvested the CMAF channel's DASH endpoint (a static MPD) and its CMAF endpoint (both manifests)
    cos = tmp_path / "demo" / "cos"
    (dash_mpd,) = cos.rglob("*-dash/index.mpd")
    (cmaf_mpd,) = cos.rglob("*-cmaf/main.mpd")
    assert 'type="static"' in dash_mpd.read_text()
    assert 'type="static"' in cmaf_mpd.read_text()
    assert cmaf_mpd.with_suffix(".m3u8").read_text().startswith("#EXTM3U")
    assert out.count("MPD (static):") == 2
    assert "HLS master:" in out
    assert "the MPD lasts" in out
    # Nothing it started still listens: the API and the live channel's ports are closed.
    ports = {int(m) for m in re.findall(r"http://127\.0\.0\.1:(\d+)/", out)}
    assert len(ports) == 2
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
