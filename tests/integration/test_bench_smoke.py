"""Smoke test of the benchmark harness: `python -m bench.run --quick --all` on a tiny window.

Not a speed test (no number is compared with a target here): it checks that every measurement
runs to the end against the real stack and that every metric is printed and written.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.media]

PRINTED = [
    "(a) raw: aria2c",
    "raw: curl --parallel-max",
    "(b) harvest serve, Create->Completed",
    "(b) the same from a DASH endpoint (MPD)",
    "(c) ffmpeg -c copy (sequential)",
    "harvest / raw (aria2c) time",
    "harvest / fastest raw time",
    "ffmpeg / harvest time",
    "planning (harvest.engine.plan.build_plan",
    "media playlist",
    "Describe",
    "Create",
    "harvest MB/s vs HARVEST_DOWNLOAD_CONCURRENCY",
    "plot: ",
    "memory run:",
    "scaling: harvest time vs window length",
    "workers scaling:",
    "targets (issue 17), measured in this run",
    "SCF cost per harvested hour",
    "harvest time / faster of aria2c and curl, 20 ms",
    "harvest CPU seconds / curl's, 0 ms",
    "ffmpeg -c copy time / harvest time, 20 ms",
]


def _positive_measurement(row: dict[str, object]) -> None:
    for key in ("seconds", "mb_per_s", "segments_per_s", "peak_rss_mb"):
        value = row[key]
        assert isinstance(value, (int, float)), f"{key}={value!r} in {row}"
        assert value > 0, f"{key}={value!r} in {row}"


def test_quick_benchmark_runs_every_measurement_and_reports_every_metric(tmp_path: Path) -> None:
    # GIVEN the quick profile (2 renditions x 36 s of 6 s segments, every stage shrunk)
    out = tmp_path / "out"

    # WHEN the benchmark command runs with every optional stage
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--all", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # THEN it completes without a failed stage and prints every metric
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    for label in PRINTED:
        assert label in done.stdout, f"{label!r} not printed:\n{done.stdout}"

    # AND results.json holds a measurement for every tool, on the same segments and bytes
    results = json.loads((out / "results.json").read_text())
    assert "errors" not in results
    expected_segments = 2 * 36 // 6
    assert [block["latency_ms"] for block in results["comparison"]] == [0.0, 20.0]
    for block in results["comparison"]:
        assert block["segments"] == expected_segments
        tools = block["tools"]
        for name in ("aria2c", "curl", "harvest", "ffmpeg"):
            _positive_measurement(tools[name])
            assert tools[name]["segments"] == expected_segments
        assert tools["aria2c"]["bytes_written"] == tools["curl"]["bytes_written"]
        for name in ("aria2c", "curl"):  # each raw tool's files synced after it, timed apart
            row = tools[name]
            assert row["sync_seconds"] > 0
            assert row["durable_seconds"] == pytest.approx(row["seconds"] + row["sync_seconds"], abs=0.002)
        assert round(tools["aria2c"]["bytes_written"] / 1e6, 2) == tools["harvest"]["mb"]
        assert tools["harvest"]["playlists"] == 3  # master + one per rendition
        # AND the DASH row harvested the same window: as many segments, as many bytes, one MPD
        _positive_measurement(tools["harvest_dash"])
        assert tools["harvest_dash"]["segments"] == expected_segments
        assert tools["harvest_dash"]["same_bytes_as_hls"] is True
        assert tools["harvest_dash"]["playlists"] == 1
        for ratio in (
            "harvest_over_raw",
            "harvest_over_fastest_raw",
            "harvest_over_fastest_durable_raw",
            "harvest_cpu_over_curl",
            "ffmpeg_over_harvest",
        ):
            assert block["ratios"][ratio]["value"] > 0

    # AND planning, API load, the sweep and the long runs each report their numbers
    assert results["planning"]["media_playlist"]["segments"] == 600  # 1 h of 6 s segments
    assert results["planning"]["media_playlist"]["best_s"] > 0
    for action in ("describe", "create"):
        api = results["api"][action]
        assert api["requests"] > 0, api
        assert api["errors"] == 0, api
        assert api["p99_ms"] > 0
    for series in results["throughput"]:
        assert [row["download_concurrency"] for row in series["rows"]] == [1, 4]
        for row in series["rows"]:
            _positive_measurement(row)
    _positive_measurement(results["memory_run"])
    assert results["memory_run"]["segments"] == 2 * 60 // 6
    assert [row["window_s"] for row in results["scaling"]["rows"]] == [36, 60]
    assert [row["processes"] for row in results["workers_scaling"]["rows"]] == [1, 2, 4]
    assert results["workers_scaling"]["latency_ms"] == 20.0
    for row in results["scaling"]["rows"] + results["workers_scaling"]["rows"]:
        _positive_measurement(row)

    # AND the SCF cost table has a row per rendition count (1, 3, 6) and segment length (6 s, 2 s)
    scf = results["scf_cost"]
    assert [(row["renditions"], row["segment_seconds"]) for row in scf["rows"]] == [
        (1, 6), (3, 6), (6, 6), (1, 2), (3, 2), (6, 2)
    ]  # fmt: skip
    assert all(row["gb_s"] > 0 and row["usd"] > 0 and row["invocations"] > 4 for row in scf["rows"])
    assert scf["worker_memory_mb"] >= 1.5 * max(run["peak_rss_mb"] for run in scf["measured"])
    assert scf["usd_per_hour_3x6s_by_worker_mb"]

    # AND every target is reported with a verdict: 4 per latency profile (time against the raw tools
    # as they exit and after syncing their files, CPU, ffmpeg's but at 0 ms), the 24 h run's two,
    # planning
    names = [row["name"] for row in results["targets"]]
    assert len(names) == 3 + 4 + 2 + 1, names
    assert all(isinstance(row["pass"], bool) and row["measured"] for row in results["targets"])

    # AND the throughput plot is a real PNG image
    png = (out / "throughput.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (960, 600)


def test_the_client_measurement_times_every_client_alone_and_beside_a_busy_thread(tmp_path: Path) -> None:
    # GIVEN a tiny window (1 rendition x 12 s of 64 KB segments)
    # WHEN the HTTP client measurement runs with --busy-thread
    tiny = ["--window", "12", "--renditions", "1", "--segment-kb", "64", "--repeat", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.clients", *tiny, "--busy-thread", "--out", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # THEN every client has a row with its time alone, its CPU and its time beside the busy thread
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].endswith("| wall s beside a busy thread |")
    clients = {row.split(" | ")[0].lstrip("| "): row.strip("|").split("|")[1:] for row in rows[1:]}
    assert set(clients) >= {"HttpOrigin (product, libcurl)", "urllib3.PoolManager", "requests.Session"}
    for name, cells in clients.items():
        numbers = [float(cell) for cell in cells]
        assert len(numbers) == 4, (name, cells)
        assert min(numbers) >= 0, (name, cells)
        assert numbers[3] > 0, (name, cells)
