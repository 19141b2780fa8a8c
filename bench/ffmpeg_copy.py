"""What people do instead: `ffmpeg -i <VOD playlist> -c copy`, one run per rendition.

The origin serves the window as a VOD playlist through its timeshift query
(`index.m3u8?start=&end=`, which ends with EXT-X-ENDLIST once the window is over). ffmpeg's HLS
demuxer reads the segments one after another (it keeps one connection alive and may open a
second to prefetch), remuxes them with `-c copy` into one MPEG-TS file per rendition. By default
the renditions run one after another, the way a shell loop does it; `--ffmpeg-parallel` runs them
all at once instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from bench.measure import Measured, run_many_measured
from bench.origin_setup import local_env


def ffmpeg_command(playlist_url: str, output: Path) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-protocol_whitelist", "http,tcp", "-i", playlist_url,
        "-map", "0", "-c", "copy", "-f", "mpegts", str(output),
    ]  # fmt: skip


def run_ffmpeg(
    playlists: Sequence[tuple[str, str]], work: Path, parallel: bool = False
) -> tuple[Measured, int, int]:
    """(measurement, files, bytes) for `ffmpeg -c copy` of each (rendition, playlist URL)."""
    out = work / "ffmpeg"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    commands = [ffmpeg_command(url, out / f"{rendition}.ts") for rendition, url in playlists]
    measured = run_many_measured(commands, env=local_env(), parallel=parallel)
    outputs = [p for p in out.iterdir() if p.is_file()]
    size = sum(p.stat().st_size for p in outputs)
    shutil.rmtree(out, ignore_errors=True)
    return measured, len(outputs), size
