"""Real test media made with Debian's ffmpeg: small pools of HLS segments a test origin loops.

A pool is `seconds` of content cut into `segment_seconds` segments, per rendition:

- video variants v0/v1/v2 (320x180, 480x270, 640x360; H.264 Main 3.0 at 25 fps), **video only**: the
  audio is one alternate AUDIO rendition (AAC-LC stereo 48 kHz) that every variant refers to, the
  shape a CMAF packager produces and the one that makes a harvester handle rendition groups;
- for the "ts" kind also a WebVTT SUBTITLES rendition (one cue per segment, X-TIMESTAMP-MAP aligned
  with the video's first PTS) and, per video variant, the byte range of each segment's IDR frame
  (from offset 0, so the range carries the PAT/PMT and decodes on its own) for I-frame playlists.

Every source is encoded once (`-g` = fps x segment length, `-sc_threshold 0`: each segment starts on
a keyframe) and then cut with `-c copy` into MPEG-TS or fMP4 (CMAF) segments. The "aes" and
"byterange" kinds share the TS media: the origin encrypts or packs it at serve time.

Everything is cached under `out_dir` (a directory per source and per container, named with the
parameters and MEDIA_VERSION) and built under a file lock, so parallel test workers build it once.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from harvest.errors import ConfigError

# Bump when the media or the manifest layout changes: old caches are then ignored, not misread.
MEDIA_VERSION = 2
KINDS = ("ts", "fmp4", "aes", "byterange")
FPS = 25
AUDIO_RATE = 48000
AUDIO_CODECS = "mp4a.40.2"
MANIFEST = "pool.json"


@dataclass(frozen=True)
class _VideoRung:
    name: str
    width: int
    height: int
    kbps: int


VIDEO_LADDER = (
    _VideoRung("v0", 320, 180, 200),
    _VideoRung("v1", 480, 270, 400),
    _VideoRung("v2", 640, 360, 700),
)


@dataclass(frozen=True)
class IFrameRange:
    """Where one segment's IDR frame lies inside that segment's bytes."""

    offset: int
    length: int


@dataclass(frozen=True)
class Rendition:
    name: str  # URL path component at the origin: "v0", "audio", "subs"
    media_type: str  # "VIDEO" | "AUDIO" | "SUBTITLES"
    extension: str  # "ts" | "m4s" | "vtt"
    segment_files: tuple[Path, ...]
    durations: tuple[str, ...]  # EXTINF values exactly as written, e.g. "2.005333"
    init_file: Path | None = None  # fMP4 initialization section (EXT-X-MAP)
    codecs: str = ""
    bandwidth: int = 0  # peak segment bit rate, bit/s
    average_bandwidth: int = 0
    resolution: str = ""  # "640x360", video only
    frame_rate: str = ""  # "25.000", video only
    language: str = ""
    channels: str = ""  # "2", audio only
    iframes: tuple[IFrameRange, ...] = ()  # one per segment, TS video only
    iframe_bandwidth: int = 0

    @property
    def is_video(self) -> bool:
        return self.media_type == "VIDEO"

    def read_segments(self) -> tuple[bytes, ...]:
        return tuple(path.read_bytes() for path in self.segment_files)


@dataclass(frozen=True)
class Pool:
    kind: str  # one of KINDS
    container: str  # "ts" | "fmp4": what the segment files are
    root: Path
    seconds: int
    segment_seconds: int
    renditions: tuple[Rendition, ...]

    @property
    def size(self) -> int:
        """Segments per rendition (the same for every rendition)."""
        return len(self.renditions[0].segment_files)

    @property
    def variants(self) -> tuple[Rendition, ...]:
        return tuple(r for r in self.renditions if r.media_type == "VIDEO")

    @property
    def audio(self) -> tuple[Rendition, ...]:
        return tuple(r for r in self.renditions if r.media_type == "AUDIO")

    @property
    def subtitles(self) -> tuple[Rendition, ...]:
        return tuple(r for r in self.renditions if r.media_type == "SUBTITLES")

    def rendition(self, name: str) -> Rendition:
        for rendition in self.renditions:
            if rendition.name == name:
                return rendition
        raise ConfigError(f"pool {self.kind!r} has no rendition {name!r}")

    @property
    def total_bytes(self) -> int:
        """Bytes on disk: every segment and init section."""
        files = [f for r in self.renditions for f in r.segment_files]
        files += [r.init_file for r in self.renditions if r.init_file is not None]
        return sum(f.stat().st_size for f in files)


# --- public entry points ------------------------------------------------------------------------


def build_pool(out_dir: Path, kind: str, seconds: int = 12, segment_seconds: int = 2) -> Pool:
    """Build (or load from the cache under `out_dir`) the pool for one kind of channel."""
    if kind not in KINDS:
        raise ConfigError(f"unknown media kind {kind!r} (known: {', '.join(KINDS)})")
    if segment_seconds <= 0 or seconds <= 0 or seconds % segment_seconds:
        raise ConfigError("pool seconds must be a positive multiple of segment_seconds")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    container = "fmp4" if kind == "fmp4" else "ts"
    with build_lock(out_dir):
        pool = _load_or_build(out_dir, container, seconds, segment_seconds)
    if kind in ("aes", "byterange"):
        # Served encrypted or packed: I-frame ranges and subtitles are not offered on these channels.
        renditions = tuple(replace(r, iframes=(), iframe_bandwidth=0) for r in pool.renditions if r.is_video)
        return replace(pool, kind=kind, renditions=renditions + pool.audio)
    return replace(pool, kind=kind)


def build_pools(
    out_dir: Path, kinds: Iterable[str] = KINDS, seconds: int = 12, segment_seconds: int = 2
) -> dict[str, Pool]:
    return {kind: build_pool(out_dir, kind, seconds, segment_seconds) for kind in kinds}


# --- cache and lock -----------------------------------------------------------------------------


@contextmanager
def build_lock(out_dir: Path, name: str = ".build.lock") -> Iterator[None]:
    """Serialise media builders (pytest-xdist workers, the benchmark) on one directory."""
    # flock, not a lock-file-exists check: the lock dies with a crashed builder.
    with open(out_dir / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tag(seconds: int, segment_seconds: int) -> str:
    return f"v{MEDIA_VERSION}-{seconds}s-{segment_seconds}s"


def _load_or_build(out_dir: Path, container: str, seconds: int, segment_seconds: int) -> Pool:
    final = out_dir / f"{container}-{_tag(seconds, segment_seconds)}"
    if (final / MANIFEST).exists():
        return _read_manifest(final)
    sources = _ensure_sources(out_dir, seconds, segment_seconds)
    # Build beside the final directory and rename: a half-built pool is never taken for a cached one.
    work = Path(tempfile.mkdtemp(prefix=f".{container}-", dir=out_dir))
    try:
        pool = _cut_pool(work, sources, container, seconds, segment_seconds)
        _write_manifest(pool)
        work.chmod(0o755)  # mkdtemp makes it private; the cache is shared with other users' runs
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _read_manifest(final)


def _write_manifest(pool: Pool) -> None:
    def rendition(r: Rendition) -> dict[str, Any]:
        return {
            "name": r.name,
            "media_type": r.media_type,
            "extension": r.extension,
            "segment_files": [str(p.relative_to(pool.root)) for p in r.segment_files],
            "durations": list(r.durations),
            "init_file": str(r.init_file.relative_to(pool.root)) if r.init_file else None,
            "codecs": r.codecs,
            "bandwidth": r.bandwidth,
            "average_bandwidth": r.average_bandwidth,
            "resolution": r.resolution,
            "frame_rate": r.frame_rate,
            "language": r.language,
            "channels": r.channels,
            "iframes": [[i.offset, i.length] for i in r.iframes],
            "iframe_bandwidth": r.iframe_bandwidth,
        }

    data = {
        "version": MEDIA_VERSION,
        "container": pool.container,
        "seconds": pool.seconds,
        "segment_seconds": pool.segment_seconds,
        "renditions": [rendition(r) for r in pool.renditions],
    }
    (pool.root / MANIFEST).write_text(json.dumps(data, indent=1), encoding="utf-8")


def _read_manifest(root: Path) -> Pool:
    data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    renditions = tuple(
        Rendition(
            name=r["name"],
            media_type=r["media_type"],
            extension=r["extension"],
            segment_files=tuple(root / p for p in r["segment_files"]),
            durations=tuple(r["durations"]),
            init_file=root / r["init_file"] if r["init_file"] else None,
            codecs=r["codecs"],
            bandwidth=r["bandwidth"],
            average_bandwidth=r["average_bandwidth"],
            resolution=r["resolution"],
            frame_rate=r["frame_rate"],
            language=r["language"],
            channels=r["channels"],
            iframes=tuple(IFrameRange(offset, length) for offset, length in r["iframes"]),
            iframe_bandwidth=r["iframe_bandwidth"],
        )
        for r in data["renditions"]
    )
    return Pool(
        kind=data["container"],
        container=data["container"],
        root=root,
        seconds=data["seconds"],
        segment_seconds=data["segment_seconds"],
        renditions=renditions,
    )


# --- running the tools --------------------------------------------------------------------------

_T = TypeVar("_T")
_R = TypeVar("_R")


def run_tool(args: Sequence[str]) -> str:
    """Run ffmpeg/ffprobe (or another tool); its stdout, or ConfigError with the tail of stderr."""
    tool = shutil.which(args[0])
    if tool is None:
        raise ConfigError(f"{args[0]} is not installed (Debian: apt-get install ffmpeg)")
    done = subprocess.run([tool, *args[1:]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"{args[0]} failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-2000:]}")
    return done.stdout


def _parallel(func: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return list(pool.map(func, items))


def _ffprobe_json(path: Path | str, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_tool(["ffprobe", "-v", "error", "-of", "json", *args, str(path)]))
    return result


# --- checking media (tests, benchmark) ----------------------------------------------------------

# Input options that let ffmpeg play an HLS playlist from disk or an origin, keys included.
HLS_INPUT_OPTIONS = ("-allowed_extensions", "ALL", "-protocol_whitelist", "file,http,tcp,crypto,data")


def decode_errors(source: str, *input_options: str, output_format: str = "null") -> str:
    """Decode `source` (file or URL, every stream) with -xerror; what ffmpeg printed at warning level.

    A clean decode prints nothing, so "" means clean; a failed run is reported as "exit N: ...".
    """
    tool = shutil.which("ffmpeg")
    if tool is None:
        raise ConfigError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    args = [tool, "-nostdin", "-v", "warning", "-xerror", *input_options, "-i", source]
    done = subprocess.run(
        [*args, "-map", "0", "-f", output_format, "-"], capture_output=True, text=True, check=False
    )
    return done.stderr if done.returncode == 0 else f"exit {done.returncode}: {done.stderr}"


def probe(source: str, *args: str) -> dict[str, Any]:
    """ffprobe's JSON for `source` (file or URL), e.g. probe(path, "-show_entries", "frame=pict_type")."""
    return _ffprobe_json(source, *args)


# --- stage 1: encode each source once -----------------------------------------------------------


def _ensure_sources(out_dir: Path, seconds: int, segment_seconds: int) -> Path:
    final = out_dir / f"source-{_tag(seconds, segment_seconds)}"
    if (final / "done").exists():
        return final
    work = Path(tempfile.mkdtemp(prefix=".source-", dir=out_dir))
    try:
        jobs: list[list[str]] = [_video_encode(rung, work, seconds, segment_seconds) for rung in VIDEO_LADDER]
        jobs.append(_audio_encode(work, seconds))
        _parallel(run_tool, jobs)
        (work / "done").write_text("ok", encoding="utf-8")
        work.chmod(0o755)  # mkdtemp makes it private; the cache is shared with other users' runs
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _video_encode(rung: _VideoRung, work: Path, seconds: int, segment_seconds: int) -> list[str]:
    gop = str(FPS * segment_seconds)
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={rung.width}x{rung.height}:rate={FPS}:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-level", "3.0",
        "-pix_fmt", "yuv420p",
        "-b:v", f"{rung.kbps}k", "-maxrate", f"{rung.kbps}k", "-bufsize", f"{2 * rung.kbps}k",
        "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        "-an", str(work / f"{rung.name}.mp4"),
    ]  # fmt: skip


def _audio_encode(work: Path, seconds: int) -> list[str]:
    # Stop a little short of `seconds`: one more AAC frame past the end would make the segmenter
    # open an extra, 21 ms segment and the audio pool would be one segment longer than the video's.
    duration = seconds - 0.02
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={AUDIO_RATE}:duration={duration}",
        "-ac", "2", "-c:a", "aac", "-b:a", "64k", str(work / "audio.m4a"),
    ]  # fmt: skip


# --- stage 2: cut the sources into segments -----------------------------------------------------


def _cut_pool(work: Path, sources: Path, container: str, seconds: int, segment_seconds: int) -> Pool:
    names = [rung.name for rung in VIDEO_LADDER] + ["audio"]
    inputs = [sources / f"{rung.name}.mp4" for rung in VIDEO_LADDER] + [sources / "audio.m4a"]
    commands = [
        _segment_cmd(src, work / name, container, segment_seconds)
        for name, src in zip(names, inputs, strict=True)
    ]
    _parallel(run_tool, commands)
    expected = seconds // segment_seconds
    renditions: list[Rendition] = []
    audio = _describe(work / "audio", "audio", "AUDIO", container, expected)
    audio = replace(audio, codecs=AUDIO_CODECS, language="en", channels="2")
    for rung in VIDEO_LADDER:
        video = _describe(work / rung.name, rung.name, "VIDEO", container, expected)
        renditions.append(
            replace(
                video,
                codecs=_avc_codecs(video.init_file or video.segment_files[0]),
                resolution=f"{rung.width}x{rung.height}",
                frame_rate=f"{FPS:.3f}",
            )
        )
    renditions.append(audio)
    if container == "ts":
        for rendition in renditions:
            _mark_discontinuity(rendition.segment_files[0])
        renditions = _parallel(_with_iframes, renditions)
        renditions.append(_write_subtitles(work / "subs", renditions[0], segment_seconds, expected))
    return Pool(container, container, work, seconds, segment_seconds, tuple(renditions))


def _segment_cmd(source: Path, out: Path, container: str, segment_seconds: int) -> list[str]:
    out.mkdir()
    extension = "m4s" if container == "fmp4" else "ts"
    fmp4 = ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"] if container == "fmp4" else []
    return [
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-c", "copy",
        "-f", "hls", "-hls_time", str(segment_seconds), "-hls_list_size", "0", "-start_number", "0", *fmp4,
        "-hls_segment_filename", str(out / f"%d.{extension}"), str(out / "index.m3u8"),
    ]  # fmt: skip


def _describe(directory: Path, name: str, media_type: str, container: str, expected: int) -> Rendition:
    durations: list[str] = []
    files: list[Path] = []
    for line in (directory / "index.m3u8").read_text(encoding="utf-8").splitlines():
        if line.startswith("#EXTINF:"):
            durations.append(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#"):
            files.append(directory / line)
    if len(files) != expected:
        raise ConfigError(f"ffmpeg cut {name} into {len(files)} segments, expected {expected}")
    (directory / "index.m3u8").unlink()
    peak, average = _bit_rates([f.stat().st_size for f in files], durations)
    init = directory / "init.mp4"
    return Rendition(
        name=name,
        media_type=media_type,
        extension="m4s" if container == "fmp4" else "ts",
        segment_files=tuple(files),
        durations=tuple(durations),
        init_file=init if init.exists() else None,
        bandwidth=peak,
        average_bandwidth=average,
    )


def _bit_rates(sizes: Sequence[int], durations: Sequence[str]) -> tuple[int, int]:
    seconds = [float(d) for d in durations]
    peak = max(size * 8 / max(d, 0.001) for size, d in zip(sizes, seconds, strict=True))
    return round(peak), round(sum(sizes) * 8 / sum(seconds))


def _avc_codecs(path: Path) -> str:
    """RFC 6381 codec string read from the SPS (TS) or the avcC box (fMP4) ffmpeg wrote."""
    data = path.read_bytes()
    at = data.find(b"avcC")
    if at >= 0:
        profile = data[at + 5 : at + 8]  # after 'avcC' and configurationVersion
    else:
        at = data.find(b"\x00\x00\x01\x67")  # SPS NAL unit start code
        if at < 0:
            raise ConfigError(f"no H.264 SPS found in {path}")
        profile = data[at + 4 : at + 7]
    return "avc1." + profile.hex()


def _mark_discontinuity(segment: Path) -> None:
    """Set the discontinuity_indicator on the first packet of each elementary stream.

    The origin loops the pool, so the last segment is followed by the first one again: continuity
    counters and the PCR jump there. Without the flag ffmpeg's demuxer marks those packets corrupt
    (and `-xerror` fails); with it the jump is declared, as ISO 13818-1 §2.4.3.5 intends. The first
    packet of each PES stream already carries an adaptation field (PCR / random access), so this is a
    one-bit change that moves no byte.
    """
    data = bytearray(segment.read_bytes())
    seen: set[int] = set()
    for at in range(0, len(data) - 187, 188):
        pid = ((data[at + 1] & 0x1F) << 8) | data[at + 2]
        has_adaptation = data[at + 3] & 0x20 and data[at + 4] > 0
        if pid not in seen and has_adaptation:
            data[at + 5] |= 0x80
        seen.add(pid)
    segment.write_bytes(bytes(data))


def _with_iframes(rendition: Rendition) -> Rendition:
    if not rendition.is_video:
        return rendition
    ranges = tuple(_iframe_range(path) for path in rendition.segment_files)
    peak, _ = _bit_rates([r.length for r in ranges], rendition.durations)
    return replace(rendition, iframes=ranges, iframe_bandwidth=peak)


def _iframe_range(segment: Path) -> IFrameRange:
    packets = _ffprobe_json(segment, "-select_streams", "v", "-show_entries", "packet=pos,flags")["packets"]
    if len(packets) < 2 or "K" not in packets[0]["flags"]:
        raise ConfigError(f"{segment} does not start with a keyframe")
    # The IDR frame ends where the next video PES starts; start at 0 to keep the PAT/PMT with it.
    return IFrameRange(offset=0, length=int(packets[1]["pos"]))


def _write_subtitles(directory: Path, video: Rendition, segment_seconds: int, count: int) -> Rendition:
    directory.mkdir()
    probe = _ffprobe_json(video.segment_files[0], "-select_streams", "v", "-show_entries", "stream=start_pts")
    first_pts = int(probe["streams"][0]["start_pts"])
    files: list[Path] = []
    for index in range(count):
        start = index * segment_seconds
        text = (
            "WEBVTT\n"
            f"X-TIMESTAMP-MAP=MPEGTS:{first_pts},LOCAL:00:00:00.000\n\n"
            f"cue-{index}\n"
            f"{_vtt_time(start + 0.2)} --> {_vtt_time(start + segment_seconds - 0.2)}\n"
            f"Test pool segment {index}\n"
        )
        path = directory / f"{index}.vtt"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    durations = [f"{segment_seconds:.6f}"] * count
    peak, average = _bit_rates([f.stat().st_size for f in files], durations)
    return Rendition(
        name="subs",
        media_type="SUBTITLES",
        extension="vtt",
        segment_files=tuple(files),
        durations=tuple(durations),
        bandwidth=peak,
        average_bandwidth=average,
        language="en",
    )


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
