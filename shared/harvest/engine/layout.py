"""Where a harvested asset's objects go in the bucket: deterministic, readable keys.

    Destination prefix `vod/` + Manifest `show/index.m3u8` (an HLS endpoint; formats/ name the rest)
      vod/show/index.m3u8                          the master (the Manifest)
      vod/show/index/v0_640x360/playlist.m3u8      one folder per rendition, named after it
      vod/show/index/v0_640x360/14096535.ts        whole-file segments: <media sequence>.<ext>
      vod/show/index/iframe_0_640x360/main.mp4     byte-range resources: their basename
      vod/show/index/keys/0.key                    key files, only when keys are copied

Every name comes from the source playlists alone, processed in a fixed order, so the same job
always gives the same keys and a repeated chunk rewrites the same objects. Playlists refer to each
other and to segments by relative URIs, so the asset can be moved or served from any host.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from harvest.errors import HarvestFailure

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

CONTENT_TYPES = {
    "ts": "video/mp2t",
    "aac": "audio/aac",
    "ac3": "audio/ac3",
    "ec3": "audio/eac3",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
    "m4s": "video/mp4",
    "m4v": "video/mp4",
    "cmfv": "video/mp4",
    "m4a": "audio/mp4",
    "cmfa": "audio/mp4",
    "vtt": "text/vtt",
    "webvtt": "text/vtt",
    "m3u8": "application/vnd.apple.mpegurl",
    "mpd": "application/dash+xml",
    "ttml": "application/ttml+xml",
}


# Suffixes that name media (segments, init sections, subtitles): a URI ending in anything else
# (`get.php?seg=1`, `?seg=1`, `segment.m3u8`) gets its extension from what the media is.
MEDIA_SUFFIXES = frozenset(CONTENT_TYPES) - {"m3u8", "mpd"} | {"mp4a", "cmft", "dfxp", "jpg", "jpeg", "png"}


def safe_name(text: str, limit: int = 64) -> str:
    """A file or folder name of A-Z a-z 0-9 . _ - only (never empty, never a dot name)."""
    name = _UNSAFE.sub("_", text).strip("._")[:limit].strip("._")
    return name or "x"


def _path_basename(url: str) -> str:
    # urlsplit would do, but it costs ~10 us and runs once per segment of every rendition.
    path = url.partition("?")[0].partition("#")[0]
    if "://" in path:
        path = path.split("://", 1)[1].partition("/")[2]
    return path.rpartition("/")[2]


def url_basename(url: str) -> str:
    return safe_name(unquote(_path_basename(url)), limit=100)


def url_extension(url: str) -> str:
    """The lower-case extension of the URL's path ('' when there is none)."""
    _, dot, ext = _path_basename(url).rpartition(".")
    if not (ext.isascii() and ext.isalnum()):  # the usual "ts" or "m4s" needs no cleaning
        ext = _UNSAFE.sub("", ext)
    ext = ext.lower()
    return ext if dot and ext and len(ext) <= 8 else ""


def media_extension(url: str) -> str:
    """The URL's extension when it is a known media suffix, else ''."""
    ext = url_extension(url)
    return ext if ext in MEDIA_SUFFIXES else ""


def stored_name(url: str, ext: str) -> str:
    """The URL's safe basename, its extension replaced by `ext` unless it already names media."""
    base = url_basename(url)
    stem, dot, suffix = base.rpartition(".")
    if dot and suffix.lower() in MEDIA_SUFFIXES:
        return base
    return f"{stem if dot and stem else base}.{ext}"


def sniff_extension(head: bytes) -> str:
    """The extension for media that starts with `head` (its first few hundred bytes), or 'bin'.

    Used only for segments whose URI has no media suffix and whose playlist does not say what they
    are (no EXT-X-MAP, not a subtitles rendition).
    """
    if head[:1] == b"\x47" and (len(head) <= 188 or head[188:189] == b"\x47"):
        return "ts"
    if head.removeprefix(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
        return "vtt"
    if head[4:8] in (b"ftyp", b"styp", b"moof", b"sidx", b"emsg", b"prft", b"moov"):
        return "m4s"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0):
        return "aac"  # packed audio: an ID3 timestamp or an ADTS header first
    return "bin"


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(key.rpartition(".")[2].lower(), "application/octet-stream")


@dataclass(frozen=True)
class Layout:
    """Key names for one asset: the master at `master_key`, every other object under `root`."""

    master_key: str
    root: str  # ends with "/"

    @property
    def master_folder(self) -> str:
        folder = posixpath.dirname(self.master_key)
        return f"{folder}/" if folder else ""

    def folder(self, rendition: str) -> str:
        return f"{self.root}{rendition}/"

    @property
    def keys_folder(self) -> str:
        return f"{self.root}keys/"


def relative_uri(key: str, folder: str) -> str:
    """URI of object `key` as seen from a playlist stored in `folder` (which ends with '/' or is '')."""
    if key.startswith(folder):
        return key[len(folder) :]
    return posixpath.relpath(key, folder.rstrip("/") or ".")


def layout_for(prefix: str, manifest: str) -> Layout:
    """Prefix + Manifest give the master key; the children live in a folder named after the Manifest.

    `vod/` + `show/index.m3u8` -> master `vod/show/index.m3u8`, children under `vod/show/index/`.
    A Manifest without an extension gets `<name>_media/`, so the master object and the folder never
    share a name (a local-disk bucket could not hold both).
    """
    clean_prefix = prefix.strip("/")
    manifest_path = manifest.strip().lstrip("/")
    parts = manifest_path.split("/")
    if not manifest_path or manifest_path.endswith("/") or any(part in ("", ".", "..") for part in parts):
        raise HarvestFailure(f"Manifest {manifest!r} is not a file path like show/index.m3u8")
    master_key = f"{clean_prefix}/{manifest_path}" if clean_prefix else manifest_path
    name, dot, _ = posixpath.basename(master_key).rpartition(".")
    folder = posixpath.dirname(master_key)
    if not (dot and name):
        return Layout(master_key=master_key, root=f"{master_key}_media/")
    return Layout(master_key=master_key, root=f"{folder}/{name}/" if folder else f"{name}/")


@dataclass
class KeyAllocator:
    """Hands out object keys, adding `_2`, `_3` ... on a clash so two resources never share a key."""

    used: set[str] = field(default_factory=set)

    def claim(self, folder: str, filename: str) -> str:
        key = folder + filename
        if key in self.used:
            stem, dot, ext = filename.rpartition(".")
            if not dot:
                stem, ext = filename, ""
            n = 2
            while key in self.used:
                key = f"{folder}{stem}_{n}{'.' + ext if ext else ''}"
                n += 1
        self.used.add(key)
        return key


@dataclass
class FolderNames:
    """Readable, unique rendition folder names: v0_640x360, audio_aac_en, subs_subs_en, iframe_0_640x360."""

    used: set[str] = field(default_factory=set)

    def unique(self, name: str) -> str:
        base = safe_name(name)
        candidate, n = base, 2
        while candidate in self.used or candidate == "keys":
            candidate = f"{base}_{n}"
            n += 1
        self.used.add(candidate)
        return candidate

    def variant(self, index: int, resolution: str | None, bandwidth: int) -> str:
        detail = resolution or (f"{bandwidth // 1000}k" if bandwidth else "")
        return self.unique(f"v{index}_{detail}" if detail else f"v{index}")

    def iframe(self, index: int, resolution: str | None) -> str:
        return self.unique(f"iframe_{index}_{resolution}" if resolution else f"iframe_{index}")

    def media(self, media_type: str, group_id: str, language: str | None, name: str) -> str:
        kind = {"AUDIO": "audio", "SUBTITLES": "subs", "VIDEO": "video"}.get(media_type, media_type.lower())
        return self.unique(f"{kind}_{group_id}_{language or name}")
