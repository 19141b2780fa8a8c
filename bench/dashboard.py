"""docs/dashboard.png: the Grafana dashboard's panels, drawn from a real run's /metrics scrapes.

Grafana is not installed here, so this does what it would do, on a small scale and honestly:

1. `record` runs a real scenario and scrapes `harvest serve`'s /metrics every second: a live
   origin (harvest.devtools) whose segments answer 503 now and then; three jobs through the Tencent
   SDK; one job whose bucket folder is blocked, so its chunks are dead-lettered, then mended and
   replayed with `harvest admin replay --all`; a spell where the origin is down, which fails a job;
   API traffic including refused requests; callbacks to a local receiver. The samples go to
   docs/dashboard-run.json.gz.
2. `render` evaluates every panel's PromQL from docs/grafana-dashboard.json over those samples
   (the handful of PromQL forms the dashboard uses: sum/max by, rate, increase,
   histogram_quantile) and draws the panels with matplotlib into docs/dashboard.png.

    python -m bench.dashboard record      # about 2 minutes
    python -m bench.dashboard render
(`make dashboard` does both, after installing the `docs` extra.)
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from bench.harvest_run import BUCKET, ServeOptions, ServeProcess, destination, harvest_bin
from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, build_pools, write_channels_yaml

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"
SAMPLES = REPO / "docs" / "dashboard-run.json.gz"
PICTURE = REPO / "docs" / "dashboard.png"
MEDIA = REPO / "tests" / ".media"  # the test media cache (gitignored, built once, shared)

Series = dict[str, str]
Sample = tuple[float, dict[str, float]]  # (time, series key -> value)


# --- record ---------------------------------------------------------------------------------------


def _series_key(name: str, labels: dict[str, str]) -> str:
    return name + json.dumps(labels, sort_keys=True)


def _scrape(url: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("harvest_"):
                values[_series_key(sample.name, dict(sample.labels))] = float(sample.value)
    return values


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _every(seconds: float, stop: threading.Event, action: Callable[[], object]) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(seconds):
            try:
                action()
            # Any failure, not only a refused request: the traffic loop runs for the whole recording
            # and a refusal is part of what it draws; each one is printed, none ends the loop.
            except Exception as exc:  # noqa: BLE001
                print(f"  ({type(exc).__name__}: {exc})", file=sys.stderr)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _refused(call: Callable[[], Any]) -> None:
    """A call the API is meant to refuse (it shows as an error code on the API panel)."""
    with contextlib.suppress(TencentCloudSDKException):
        call()


def record() -> None:
    pools = build_pools(MEDIA, ["ts"], seconds=12, segment_seconds=2)
    work = Path(tempfile.mkdtemp(prefix="harvest-dashboard-"))
    faults = FaultPlan(error_rate=0.15, cut_rate=0.05, seed=3, max_failures_per_path=2)
    origin = LiveOrigin({"news": ChannelSpec("ts", pools["ts"], dvr_window=3600)}, faults=faults).start()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, args=(0.1,), daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    channels = work / "channels.yaml"
    write_channels_yaml(channels, origin.url, origin.channels)
    data_dir = work / "data"
    options = ServeOptions(
        workers=2,
        download_concurrency=4,
        extra_env={
            "HARVEST_QUEUE_MAX_ATTEMPTS": "2",
            "HARVEST_FETCH_ATTEMPTS": "4",
            "HARVEST_FETCH_TIMEOUT": "1",
            "HARVEST_FETCH_BACKOFF": "0.05",
            "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true",
        },
    )
    serve = ServeProcess(data_dir, channels, options, work / "serve.log").start()
    url = f"http://{serve.endpoint}"
    client = serve.client()
    samples: list[Sample] = []
    stop = threading.Event()
    started = time.time()

    def sample() -> None:
        samples.append((time.time() - started, _scrape(url)))

    def create(job_id: str, seconds: int) -> None:
        now = int(time.time())
        client.create(
            {
                "ID": job_id,
                "ChannelName": "news",
                "EndpointName": "hls",
                "TimeFormat": "Epoch seconds",
                "StartTime": str(now - seconds - 10),
                "EndTime": str(now - 10),
                "Destination": destination(),
                "CallbackURL": callback,
            }
        )
        print(f"{time.time() - started:5.1f} s: created {job_id} ({seconds} s window)")

    try:
        threads = [
            _every(1.0, stop, sample),
            _every(0.25, stop, lambda: client.list(None, 1, 10)),
            _every(2.0, stop, lambda: _refused(lambda: client.describe("no-such-job"))),
        ]
        time.sleep(5)
        create("evening-news", 300)
        time.sleep(10)
        blocked = data_dir / "cos" / BUCKET / "bench" / "match-1"
        blocked.parent.mkdir(parents=True, exist_ok=True)
        blocked.write_text("the bucket refuses this job's writes")
        create("match-1", 120)
        time.sleep(25)
        create("late-show", 600)
        time.sleep(20)
        blocked.unlink()
        subprocess.run(
            [harvest_bin(), "admin", "replay", "--all", "--data-dir", str(data_dir)],
            check=True,
            env=options.env(),
        )
        print(f"{time.time() - started:5.1f} s: replayed the dead letters")
        time.sleep(15)
        origin.faults = FaultPlan(down=True, targets=frozenset({"master", "playlist", "segment"}))
        create("outage-1", 60)
        time.sleep(15)
        origin.faults = faults
        print(f"{time.time() - started:5.1f} s: origin back")
        time.sleep(30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        serve.stop()
        origin.stop()
        receiver.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    with gzip.open(SAMPLES, "wt", encoding="utf-8") as out:
        json.dump({"started": started, "samples": samples}, out)
    print(f"{len(samples)} scrapes over {samples[-1][0]:.0f} s -> {SAMPLES.relative_to(REPO)}")


# --- a little PromQL --------------------------------------------------------------------------------

_AGG = re.compile(r"^(sum|max)(?: by \(([^)]*)\))? ?\((.+)\)$")
_RANGE = re.compile(r"^(rate|increase)\((\w+)\[(\d+)m\]\)$")
_QUANTILE = re.compile(r"^histogram_quantile\(([\d.]+), (.+)\)$")


def _split_key(key: str) -> tuple[str, Series]:
    brace = key.index("{")
    return key[:brace], json.loads(key[brace:])


def _instant(samples: list[Sample], index: int, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The selector or range function `expr` at sample `index`: labels -> value."""
    t, now = samples[index]
    match = _RANGE.match(expr)
    if match is None:
        name, function, window = expr, None, 0.0
    else:
        function, name, window = match[1], match[2], float(match[3]) * 60
    start = index
    while start > 0 and samples[start - 1][0] >= t - window:
        start -= 1
    t0, before = samples[start]
    result: dict[tuple[tuple[str, str], ...], float] = {}
    for key, value in now.items():
        sample_name, labels = _split_key(key)
        if sample_name != name:
            continue
        labels_key = tuple(sorted(labels.items()))
        if function is None:
            result[labels_key] = value
            continue
        if t - t0 <= 0:
            continue
        # Over the samples inside the window, without Prometheus' extrapolation to its edges: a
        # window not yet full (the run's first minute) then reads low, never high.
        delta = max(0.0, value - before.get(key, 0.0))
        result[labels_key] = delta if function == "increase" else delta / (t - t0)
    return result


def _aggregate(expr: str, samples: list[Sample], index: int) -> dict[tuple[tuple[str, str], ...], float]:
    match = _AGG.match(expr)
    if match is None:
        return _instant(samples, index, expr)
    op, by, inner = match[1], [part.strip() for part in (match[2] or "").split(",") if part.strip()], match[3]
    grouped: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for labels, value in _aggregate(inner, samples, index).items():
        key = tuple((name, value_) for name, value_ in labels if name in by)
        grouped.setdefault(key, []).append(value)
    return {key: (sum(values) if op == "sum" else max(values)) for key, values in grouped.items()}


def _quantile(q: float, buckets: dict[tuple[tuple[str, str], ...], float]) -> float:
    """Prometheus' histogram_quantile over one histogram's cumulative buckets (le -> count)."""
    points = sorted((float(dict(labels)["le"]), count) for labels, count in buckets.items())
    total = points[-1][1] if points else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in points:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(
                count - lower_count, 1e-12
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def evaluate(expr: str, samples: list[Sample]) -> Iterator[tuple[Series, list[float]]]:
    """Every result series of `expr` over all samples, as (labels, values per sample)."""
    match = _QUANTILE.match(expr)
    per_time: list[dict[tuple[tuple[str, str], ...], float]] = []
    for index in range(len(samples)):
        if match:
            per_time.append({(): _quantile(float(match[1]), _aggregate(match[2], samples, index))})
        else:
            per_time.append(_aggregate(expr, samples, index))
    keys = sorted({key for values in per_time for key in values})
    for key in keys:
        yield dict(key), [values.get(key, math.nan) for values in per_time]


# --- render -----------------------------------------------------------------------------------------

_SCALE = {"Bps": (1 / 1e6, "MB/s"), "s": (1.0, "s"), "reqps": (1.0, "req/s"), "short": (1.0, "")}


def _legend(template: str, labels: Series) -> str:
    """Grafana's legendFormat: `{{label}}` replaced by the series' value of that label."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: labels.get(m[1], ""), template)


def render() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as source:
        recorded = json.load(source)
    samples: list[Sample] = [(float(t), values) for t, values in recorded["samples"]]
    minutes = [t / 60 for t, _ in samples]
    panels = dashboard["panels"]
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(18, 4.2 * rows), squeeze=False)
    figure.patch.set_facecolor("#111217")
    for axis, panel in zip(axes.flat, panels, strict=False):
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        factor, suffix = _SCALE.get(unit, (1.0, unit))
        axis.set_facecolor("#181b1f")
        for target in panel["targets"]:
            for labels, values in evaluate(target["expr"], samples):
                legend = _legend(target["legendFormat"], labels)
                if all(math.isnan(v) or v == 0 for v in values) and len(panel["targets"]) > 1:
                    continue  # Grafana would draw it flat at 0; leave room for the series that moved
                axis.plot(minutes, [v * factor for v in values], linewidth=1.6, label=legend.strip())
        axis.set_title(panel["title"], color="#d8d9da", fontsize=11, loc="left")
        axis.set_ylabel(suffix, color="#8e8e8e")
        axis.set_xlabel("minutes into the run", color="#8e8e8e", fontsize=8)
        axis.tick_params(colors="#8e8e8e", labelsize=8)
        axis.grid(color="#2c3235", linewidth=0.6)
        axis.set_ylim(bottom=0)
        for spine in axis.spines.values():
            spine.set_color("#2c3235")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(
                fontsize=7, facecolor="#181b1f", edgecolor="#2c3235", labelcolor="#d8d9da", loc="upper left"
            )
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(
        "harvest: docs/grafana-dashboard.json's panels over a real run's /metrics scrapes"
        " (drawn with matplotlib by bench/dashboard.py, not by Grafana)",
        color="#d8d9da",
        fontsize=13,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(PICTURE, dpi=80, facecolor=figure.get_facecolor())
    print(f"{len(panels)} panels -> {PICTURE.relative_to(REPO)}")


def main(argv: list[str]) -> int:
    commands = {"record": record, "render": render}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m bench.dashboard record|render", file=sys.stderr)
        return 2
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
