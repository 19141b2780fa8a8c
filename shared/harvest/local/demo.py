"""`harvest demo-origin` and `harvest demo`: the product end to end on one machine.

The demo starts a real live HLS channel (ffmpeg-made media, DVR window, PDT) and a CMAF channel
served both as HLS and as live DASH, the local stack (`harvest serve` in-process), creates a harvest
job for a recent window through the Tencent SDK, shows its progress, then summarises the VOD with
ffprobe and says where it plays; then it harvests the same window from the DASH endpoint (a static
MPD) and from the CMAF endpoint (an HLS master and an MPD over the same segments). It stops
everything it started before it returns.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from harvest.cli.client import ClientConfig, HarvestClient
from harvest.cli.jobs import wait_for
from harvest.devtools import LiveOrigin, demo_channels, probe, run_demo_origin, write_channels_yaml
from harvest.errors import HarvestError
from harvest.hls.parse import format_date, parse_media
from harvest.local.serve import build_stack, stop_on_signals, wait_until_set
from harvest.settings import Settings

DEMO_SECRET_ID = "AKIDdemo"
DEMO_SECRET_KEY = "demo-secret-key"
DEMO_REGION = "ap-singapore"
DEMO_BUCKET = "demo-1250000000"


def demo_origin_main(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    stop = threading.Event()

    def ready(origin: LiveOrigin) -> None:
        if args.channels_out:
            write_channels_yaml(Path(args.channels_out), origin.url, origin.channels)
        print(f"demo origin: {', '.join(origin.master_url(name) for name in origin.channels)}", flush=True)
        if args.channels_out:
            print(f"channel registry written to {args.channels_out}", flush=True)

    try:
        run_demo_origin(Path(args.data_dir), args.host, args.port, kinds, args.dvr_window, stop, ready)
    except KeyboardInterrupt:
        stop.set()
    except HarvestError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _summary(master: Path) -> dict[str, Any]:
    """Duration and codecs from ffprobe; renditions from the master (ffprobe skips WebVTT ones)."""
    from harvest.hls.parse import parse_master

    info = probe(str(master), "-show_entries", "format=duration:stream=codec_type,codec_name,width,height")
    streams = info.get("streams", [])
    parsed = parse_master(master.read_text(encoding="utf-8"), master.as_uri())
    return {
        "duration_s": round(float(info.get("format", {}).get("duration", 0.0)), 3),
        "video": sorted(
            {
                f"{s['width']}x{s['height']} {s['codec_name']}"
                for s in streams
                if s.get("codec_type") == "video"
            }
        ),
        "audio": sorted({s["codec_name"] for s in streams if s.get("codec_type") == "audio"}),
        "renditions": {
            "variants": len(parsed.variants),
            "i-frame": len(parsed.iframe_streams),
            **{m.type.lower(): sum(1 for x in parsed.media if x.type == m.type) for m in parsed.media},
        },
    }


def _ad_breaks(master: Path) -> list[str]:
    """The EXT-X-DATERANGE breaks of the VOD's first media playlist, as `ID [start, end)`."""
    first = next(
        (line for line in master.read_text().splitlines() if line and not line.startswith("#")), None
    )
    if first is None:
        return []
    playlist = parse_media((master.parent / first).read_text(), (master.parent / first).as_uri())
    return [
        f"{d.id} from {format_date(d.start or 0.0)}"
        + (f" for {d.end - (d.start or 0.0):g} s" if d.end else "")
        for d in playlist.dateranges
    ]


def _dash_and_cmaf(client: HarvestClient, job_id: str, start: int, end: int, data_dir: Path, api: str) -> int:
    """Harvest the window again from the CMAF channel's DASH endpoint and its CMAF endpoint."""
    for endpoint, manifest in (("dash", "index.mpd"), ("cmaf", "main.m3u8")):
        dash_id = f"{job_id}-{endpoint}"
        _step(f"harvest job {dash_id}: the same window from the {endpoint.upper()} endpoint of demo-cmaf")
        client.create(
            {
                "ID": dash_id,
                "ChannelName": "demo-cmaf",
                "EndpointName": endpoint,
                "TimeFormat": "Epoch seconds",
                "StartTime": str(start),
                "EndTime": str(end),
                "Manifest": f"{dash_id}/{manifest}",
            }
        )
        code = wait_for(client, dash_id, 120.0, sys.stdout)
        if code != 0:
            print(json.dumps(client.describe(dash_id), indent=2))
            return code
        folder = data_dir / "cos" / DEMO_BUCKET / "vod" / dash_id
        for written in sorted(folder.glob("*.m*")):
            kind = "MPD (static)" if written.suffix == ".mpd" else "HLS master"
            print(f"{kind + ':':15} {written}")
            print(f"{'plays at:':15} http://{api}/cos/{DEMO_BUCKET}/vod/{dash_id}/{written.name}")
        mpd = folder / ("index.mpd" if endpoint == "dash" else "main.mpd")
        duration = probe(str(mpd), "-show_entries", "format=duration").get("format", {}).get("duration")
        print(f"{'ffprobe:':15} the MPD lasts {float(duration or 0):.3f} s")
    return 0


def _serve_until_interrupted(url: str, api: str) -> None:
    """Every job first, then the wait: Ctrl-C stops the demo, it does not start more jobs."""
    _step("serving until Ctrl-C")
    print(f"plays at:       {url}   (ffplay, VLC or Safari; Ctrl-C to stop)")
    print(f"console:        http://{api}/console/")
    print(f"{'':16}sign in with SecretId {DEMO_SECRET_ID} and SecretKey {DEMO_SECRET_KEY}", flush=True)
    stop = threading.Event()
    previous = stop_on_signals(stop)
    try:
        wait_until_set(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def demo_main(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    # A clean table and bucket every run; the media pool under media/ is kept (it takes seconds to make).
    for stale in ("harvest.db", "harvest.db-wal", "harvest.db-shm", "cos"):
        path = data_dir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)

    _step("making the demo channels' media with ffmpeg (cached after the first run)")
    channels = demo_channels(data_dir, ("ts", "fmp4"), dvr_window=3600)
    # The CMAF channel also serves a live MPD; a Period per loop of its media pool, so the media
    # timestamps never jump back inside a Period.
    cmaf = channels.pop("demo-fmp4")
    channels["demo-cmaf"] = replace(cmaf, dash="number-timeline", dash_period=cmaf.pool.size)
    origin = LiveOrigin(channels).start()
    stack = None
    try:
        registry = data_dir / "channels.yaml"
        write_channels_yaml(registry, origin.url, channels)
        print(
            f"live channel: {origin.master_url('demo')} (DVR window 3600 s, PDT on every segment,"
            " an SCTE-35 ad break of 10 s every 20 s as EXT-X-DATERANGE and CUE-OUT/CUE-IN)"
        )
        print(
            f"CMAF channel: {origin.master_url('demo-cmaf')} and, as live DASH,"
            f" {origin.url}/demo-cmaf/manifest.mpd (endpoints hls, dash, cmaf)"
        )

        _step("starting the local stack (API, queue pump, local bucket)")
        settings = Settings(
            region=DEMO_REGION,
            data_dir=data_dir,
            channels_file=registry,
            credentials={DEMO_SECRET_ID: DEMO_SECRET_KEY},
            port=0,
            workers=2,
            default_destination=f"https://{DEMO_BUCKET}.cos.{DEMO_REGION}.myqcloud.com/vod/",
        )
        stack = build_stack(settings)
        stack.start()
        api = f"127.0.0.1:{stack.gateway.port}"
        print(f"API (Tencent Cloud API 3.0, mdp 2020-05-27): http://{api}/")

        end = int(time.time()) - 4
        start = end - args.seconds
        job_id = f"demo-{end}"
        _step(f"creating harvest job {job_id} for [{start}, {end}) through the Tencent SDK")
        client = HarvestClient(ClientConfig(api, DEMO_SECRET_ID, DEMO_SECRET_KEY, DEMO_REGION))
        created = client.create(
            {
                "ID": job_id,
                "ChannelName": "demo",
                "EndpointName": "hls",
                "TimeFormat": "Epoch seconds",
                "StartTime": str(start),
                "EndTime": str(end),
                "Manifest": f"{job_id}/index.m3u8",
            }
        )
        print(f"created: Status={created['Status']}")
        code = wait_for(client, job_id, 120.0, sys.stdout)
        record = client.describe(job_id)
        _step("job record (DescribeStreamPackageHarvestJob)")
        print(json.dumps(record, indent=2))
        if code != 0:
            return code
        master_key = f"vod/{job_id}/index.m3u8"
        master = data_dir / "cos" / DEMO_BUCKET / master_key
        _step("the VOD")
        print(f"in the bucket:  {record['Destination']}{record['Manifest']}")
        print(f"on disk:        {master}")
        print(f"ffprobe:        {json.dumps(_summary(master))}")
        print(f"ad breaks:      {', '.join(_ad_breaks(master)) or 'none in this window'}")
        url = f"http://{api}/cos/{DEMO_BUCKET}/{master_key}"
        if not args.keep_running:
            print(f"plays at:       {url} while the stack runs: `harvest demo --keep-running`,")
            print(f"                or play the file directly: ffplay {master}")
        code = _dash_and_cmaf(client, job_id, start, end, data_dir, api)
        if code != 0 or not args.keep_running:
            return code
        _serve_until_interrupted(url, api)
        return 0
    except HarvestError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        _step("stopping everything the demo started")
        if stack is not None:
            stack.stop(timeout=10)
        origin.stop()
        print("stopped.")
