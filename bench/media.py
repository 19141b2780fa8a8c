"""Benchmark media: real ffmpeg-made MPEG-TS renditions whose segments all have one chosen size.

The devtools pool (harvest.devtools.media) has a fixed bit-rate ladder; the benchmark needs the
segment size as a knob (`--segment-kb`), because per-request costs dominate small segments and
per-byte costs dominate big ones. Each rendition is encoded once with libx264 (+ AAC when the bit
rate leaves room for it) at about 60 % of the target bit rate, cut with `-c copy` into segments,
and every segment is then padded with MPEG-TS null packets (PID 0x1FFF, which every demuxer
drops) to exactly the target size. So the bytes are real, decodable media that ffmpeg can remux,
and every segment of every rendition weighs the same. A target below what the encoder can reach
(a few KB per second at 160x90) leaves the segments at their natural size; the results report the
measured mean either way.

Pools are cached under `media_dir`, keyed by every parameter, and built under a file lock.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harvest.devtools.media import Pool, Rendition, build_lock, run_tool

TS_PACKET = 188
NULL_PACKET = b"\x47\x1f\xff\x10" + b"\xff" * 184
MANIFEST = "bench-pool.json"
POOL_VERSION = 2
# (width, height) by rendition index: the same content at a different picture size per rendition.
RESOLUTIONS = ((640, 360), (480, 270), (320, 180), (256, 144), (192, 108), (160, 90))
AUDIO_KBPS = 48
H264_CODECS = "avc1.4d401e"  # Main 3.0, what -profile:v main -level 3.0 writes
AAC_CODECS = "mp4a.40.2"


class MediaBuildError(RuntimeError):
    """ffmpeg could not make the benchmark media (a tool problem, not a harvest error)."""


@dataclass(frozen=True)
class PoolRequest:
    renditions: int
    segment_seconds: int
    segment_kb: int
    pool_segments: int  # distinct segments per rendition; the origin loops them
    container: str = "ts"  # "fmp4": CMAF segments + init.mp4, padded with a 'free' box (the DASH row)

    @property
    def tag(self) -> str:
        return (
            f"v{POOL_VERSION}-r{self.renditions}-d{self.segment_seconds}-kb{self.segment_kb}"
            f"-n{self.pool_segments}" + ("-fmp4" if self.container == "fmp4" else "")
        )

    @property
    def target_bytes(self) -> int:
        # A whole number of TS packets, never below one packet.
        return max(TS_PACKET, (self.segment_kb * 1024) // TS_PACKET * TS_PACKET)

    @property
    def target_kbps(self) -> float:
        return self.target_bytes * 8 / 1000 / self.segment_seconds

    @property
    def fps(self) -> int:
        # Every frame costs at least one 188-byte TS packet: fewer frames let small targets be met.
        return 25 if self.target_kbps >= 100 else 10


def build_bench_pool(media_dir: Path, request: PoolRequest) -> Pool:
    """The pool for `request`, from the cache under `media_dir` or built now with ffmpeg."""
    if request.renditions < 1 or request.renditions > len(RESOLUTIONS):
        raise ValueError(f"renditions must be 1..{len(RESOLUTIONS)}")
    if request.segment_seconds < 1 or request.pool_segments < 1 or request.segment_kb < 1:
        raise ValueError("segment_seconds, pool_segments and segment_kb must be positive")
    media_dir.mkdir(parents=True, exist_ok=True)
    final = media_dir / f"pool-{request.tag}"
    with build_lock(media_dir, ".bench-build.lock"):
        if not (final / MANIFEST).exists():
            work = Path(tempfile.mkdtemp(prefix=".pool-", dir=media_dir))
            try:
                _build(work, request)
                shutil.rmtree(final, ignore_errors=True)
                work.rename(final)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return load_bench_pool(final)


def load_bench_pool(root: Path) -> Pool:
    data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    container = data.get("container", "ts")
    renditions = tuple(
        Rendition(
            name=r["name"],
            media_type="VIDEO",
            extension="m4s" if container == "fmp4" else "ts",
            segment_files=tuple(root / f for f in r["files"]),
            init_file=root / r["init"] if r.get("init") else None,
            durations=tuple(r["durations"]),
            codecs=r["codecs"],
            bandwidth=r["bandwidth"],
            average_bandwidth=r["bandwidth"],
            resolution=r["resolution"],
            frame_rate=f"{data['fps']:.3f}",
        )
        for r in data["renditions"]
    )
    return Pool(
        kind=container,
        container=container,
        root=root,
        seconds=data["segment_seconds"] * data["pool_segments"],
        segment_seconds=data["segment_seconds"],
        renditions=renditions,
    )


def _encode_args(request: PoolRequest, index: int, out: Path) -> list[str]:
    width, height = RESOLUTIONS[index]
    seconds = request.segment_seconds * request.pool_segments
    budget = request.target_kbps * 0.6  # the rest is TS overhead and null padding
    with_audio = budget >= 4 * AUDIO_KBPS
    video_kbps = max(8, int(budget - (AUDIO_KBPS if with_audio else 0)))
    if video_kbps < 120:
        width, height = RESOLUTIONS[-1]  # too few bits for a bigger picture
    gop = str(request.fps * request.segment_seconds)
    args = [
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={request.fps}:duration={seconds}",
    ]  # fmt: skip
    if with_audio:
        tone = f"sine=frequency={440 + 110 * index}:sample_rate=48000:duration={seconds}"
        args += ["-f", "lavfi", "-i", tone]
    args += [
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-level", "3.0",
        "-pix_fmt", "yuv420p",
        "-b:v", f"{video_kbps}k", "-maxrate", f"{video_kbps}k", "-bufsize", f"{2 * video_kbps}k",
        "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
    ]  # fmt: skip
    args += ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2"] if with_audio else ["-an"]
    fmp4 = request.container == "fmp4"
    args += ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"] if fmp4 else []
    args += [
        "-f", "hls", "-hls_time", str(request.segment_seconds), "-hls_list_size", "0", "-start_number", "0",
        "-hls_segment_filename", str(out / ("%d.m4s" if fmp4 else "%d.ts")), str(out / "index.m3u8"),
    ]  # fmt: skip
    return args


def _build(work: Path, request: PoolRequest) -> None:
    renditions = []
    for index in range(request.renditions):
        name = f"r{index}"
        out = work / name
        out.mkdir()
        args = _encode_args(request, index, out)
        run_tool(args)
        durations, files = _read_playlist(out / "index.m3u8")
        if len(files) < request.pool_segments:
            raise MediaBuildError(
                f"ffmpeg cut {name} into {len(files)} segments, expected {request.pool_segments}"
            )
        durations, files = durations[: request.pool_segments], files[: request.pool_segments]
        pad = _pad_fmp4 if request.container == "fmp4" else _pad
        sizes = [pad(out / f, request.target_bytes) for f in files]
        peak = max(size * 8 / max(float(d), 0.001) for size, d in zip(sizes, durations, strict=True))
        width, height = (int(v) for v in _resolution_of(args).split("x"))
        renditions.append(
            {
                "name": name,
                "files": [f"{name}/{f}" for f in files],
                "durations": durations,
                "codecs": H264_CODECS + (f",{AAC_CODECS}" if "sine=" in " ".join(args) else ""),
                "bandwidth": round(peak),
                "resolution": f"{width}x{height}",
                **({"init": f"{name}/init.mp4"} if request.container == "fmp4" else {}),
            }
        )
    manifest = {
        "version": POOL_VERSION,
        "segment_seconds": request.segment_seconds,
        "pool_segments": request.pool_segments,
        "fps": request.fps,
        "target_bytes": request.target_bytes,
        "container": request.container,
        "renditions": renditions,
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def _resolution_of(args: list[str]) -> str:
    source = next(a for a in args if a.startswith("testsrc2="))
    return source.split("size=", 1)[1].split(":", 1)[0]


def _read_playlist(path: Path) -> tuple[list[str], list[str]]:
    durations: list[str] = []
    files: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#EXTINF:"):
            durations.append(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#"):
            files.append(line)
    path.unlink()
    return durations, files


def _pad_fmp4(path: Path, target: int) -> int:
    """Append a 'free' box (ISO/IEC 14496-12 §8.1.2, skipped by every reader) up to `target` bytes."""
    size = path.stat().st_size
    if size + 8 <= target:
        with open(path, "ab") as handle:
            handle.write(struct.pack(">I", target - size) + b"free" + bytes(target - size - 8))
        size = target
    return size


def _pad(path: Path, target: int) -> int:
    """Append null packets up to `target` bytes; returns the final size."""
    size = path.stat().st_size
    if size < target:
        with open(path, "ab") as handle:
            handle.write(NULL_PACKET * ((target - size) // TS_PACKET))
        size = path.stat().st_size
    return size
