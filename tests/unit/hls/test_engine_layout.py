"""Object keys of a harvested asset."""

from __future__ import annotations

import pytest

from harvest.engine.layout import (
    FolderNames,
    KeyAllocator,
    content_type,
    layout_for,
    media_extension,
    relative_uri,
    safe_name,
    sniff_extension,
    stored_name,
    url_basename,
    url_extension,
)
from harvest.errors import HarvestFailure
from harvest.formats.hls import playlist_key


@pytest.mark.parametrize(
    ("prefix", "manifest", "master", "root"),
    [
        ("vod/", "show/index.m3u8", "vod/show/index.m3u8", "vod/show/index/"),
        ("", "index.m3u8", "index.m3u8", "index/"),
        ("a/b", "/x.m3u8", "a/b/x.m3u8", "a/b/x/"),
        ("vod/", "show.v2/main", "vod/show.v2/main", "vod/show.v2/main_media/"),
        ("vod/", ".m3u8", "vod/.m3u8", "vod/.m3u8_media/"),
    ],
)
def test_master_key_and_children_folder(prefix: str, manifest: str, master: str, root: str) -> None:
    # GIVEN a destination prefix and a Manifest / WHEN laid out
    layout = layout_for(prefix, manifest)
    # THEN the master sits at prefix + Manifest and the children in a folder named after it
    assert (layout.master_key, layout.root) == (master, root)
    assert playlist_key(layout, "v0_640x360") == f"{root}v0_640x360/playlist.m3u8"
    assert layout.keys_folder == f"{root}keys/"


@pytest.mark.parametrize("manifest", ["", "show/", "../index.m3u8", "a/./b.m3u8", "a//b.m3u8"])
def test_manifests_that_are_not_file_paths_are_refused(manifest: str) -> None:
    with pytest.raises(HarvestFailure, match="is not a file path"):
        layout_for("vod/", manifest)


@pytest.mark.parametrize(
    ("key", "folder", "uri"),
    [
        ("vod/show/index/v0/1.ts", "vod/show/index/v0/", "1.ts"),
        ("vod/show/index/v0/1.ts", "vod/show/index/iframe_0/", "../v0/1.ts"),
        ("vod/show/index/keys/0.key", "vod/show/index/audio/", "../keys/0.key"),
        ("vod/show/index/v0/playlist.m3u8", "vod/show/", "index/v0/playlist.m3u8"),
        ("index/v0/playlist.m3u8", "", "index/v0/playlist.m3u8"),
    ],
)
def test_relative_uris_between_objects(key: str, folder: str, uri: str) -> None:
    assert relative_uri(key, folder) == uri


def test_folder_names_are_readable_and_unique() -> None:
    # GIVEN renditions whose natural names would clash or contain unsafe characters
    names = FolderNames()
    got = [
        names.variant(0, "640x360", 800_000),
        names.variant(1, None, 96_000),
        names.variant(2, None, 0),
        names.media("AUDIO", "aac", "en", "English"),
        names.media("AUDIO", "aac", "en", "English (AD)"),
        names.media("SUBTITLES", "subs", None, "Français / FR"),
        names.iframe(0, "640x360"),
        names.unique("keys"),
    ]
    # THEN every name is distinct, safe, and says what the rendition is
    assert got == [
        "v0_640x360",
        "v1_96k",
        "v2",
        "audio_aac_en",
        "audio_aac_en_2",
        "subs_subs_Fran_ais_FR",
        "iframe_0_640x360",
        "keys_2",
    ]


def test_key_allocator_never_hands_out_a_key_twice() -> None:
    allocator = KeyAllocator()
    assert [allocator.claim("r/", name) for name in ("a.ts", "a.ts", "a.ts", "b", "b")] == [
        "r/a.ts",
        "r/a_2.ts",
        "r/a_3.ts",
        "r/b",
        "r/b_2",
    ]


@pytest.mark.parametrize(
    ("url", "basename", "ext"),
    [
        ("http://h/a/seg_1.ts?token=x", "seg_1.ts", "ts"),
        ("http://h/a/main.MP4", "main.MP4", "mp4"),
        ("http://h/a/segment", "segment", ""),
        ("http://h/a/my%20file.m4s", "my_file.m4s", "m4s"),
        ("http://h/", "x", ""),
        ("http://h", "x", ""),
        ("http://h/a.b/seg#frag", "seg", ""),
        ("relative/dir.d/file.aac?x=a.ts", "file.aac", "aac"),
    ],
)
def test_names_and_extensions_from_urls(url: str, basename: str, ext: str) -> None:
    assert (url_basename(url), url_extension(url)) == (basename, ext)


def test_safe_names_and_content_types() -> None:
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("...") == "x"
    assert content_type("a/b/1.ts") == "video/mp2t"
    assert content_type("a/b/1.vtt") == "text/vtt"
    assert content_type("a/b/0.key") == "application/octet-stream"


@pytest.mark.parametrize(
    ("head", "ext"),
    [
        (b"\x47" + bytes(187) + b"\x47", "ts"),
        (b"\xef\xbb\xbfWEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n", "vtt"),
        (b"\x00\x00\x00\x18styp" + bytes(16), "m4s"),
        (b"\x00\x00\x00\x20ftypiso6" + bytes(20), "m4s"),
        (b"ID3\x04\x00" + bytes(40), "aac"),
        (b"\xff\xf1\x50\x80" + bytes(40), "aac"),
        (b"<html>not media</html>", "bin"),
        (b"\x47" + bytes(187) + b"\x00", "bin"),  # one 0x47 is chance, not a TS sync
    ],
)
def test_media_is_recognised_by_its_first_bytes(head: bytes, ext: str) -> None:
    assert sniff_extension(head) == ext


@pytest.mark.parametrize(
    ("url", "ext", "name"),
    [
        ("http://o/live/get.php?seg=1", "ts", "get.ts"),
        ("http://o/live/?seg=1", "ts", "x.ts"),
        ("http://o/live/segment.m3u8?n=2", "aac", "segment.aac"),
        ("http://o/live/main.mp4?v=1", "m4s", "main.mp4"),
        ("http://o/live/chunk", "m4s", "chunk.m4s"),
    ],
)
def test_stored_names_keep_a_media_suffix_and_replace_any_other(url: str, ext: str, name: str) -> None:
    assert stored_name(url, ext) == name
    assert media_extension(url) in ("", url.partition("?")[0].rsplit(".", 1)[-1])
    assert media_extension("http://o/a/s.php") == media_extension("http://o/a/s.m3u8") == ""
