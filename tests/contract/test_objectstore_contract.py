"""ObjectStore adapters against ports.ObjectStore: the same cases on LocalDiskStore (a tmp dir) and on
CosStore (the real COS SDK against the moto-based COS stand-in, which checks COS signatures), and on
the unit tests' MemoryObjectStore (tests/support/fakes.py), so the fake keeps the same promises.

Adapter-specific behaviour follows: atomic local writes, and for COS multipart uploads, integrity
checks, error translation, and boto3 seeing what the COS SDK wrote.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from tests.support.cos_server import APPID, CosServer, cos_signature
from tests.support.fakes import MemoryObjectStore

from harvest.adapters.objectstore import local as local_store
from harvest.adapters.objectstore.cos import CosStore
from harvest.adapters.objectstore.local import TEMP_PREFIX, LocalDiskStore
from harvest.errors import ConfigError, RetryableError, StorageError
from harvest.ports import ObjectStore
from harvest.settings import Settings

pytest_plugins = ("tests.support.cos_server",)

MiB = 1024 * 1024
PAGE_SIZE = 3  # tiny list pages, so a handful of keys takes the paging path
LOCAL_BUCKET = f"harvest-local-{APPID}"


@dataclass(frozen=True)
class Target:
    store: ObjectStore
    bucket: str


def make_cos_store(server: CosServer, secret_key: str | None = None, port: int | None = None) -> CosStore:
    return CosStore(
        region=server.region,
        secret_id=server.secret_id,
        secret_key=secret_key or server.secret_key,
        scheme="http",
        ip=server.ip,
        port=port or server.port,
        multipart_threshold=MiB,
        part_size=MiB,
        list_page_size=PAGE_SIZE,
        sdk_retries=0,  # the SDK sleeps between its own retries; one attempt shows the error
    )


@pytest.fixture(params=["local", "cos", "memory"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "local":
        return Target(LocalDiskStore(tmp_path / "cos"), LOCAL_BUCKET)
    if request.param == "memory":
        return Target(MemoryObjectStore(), LOCAL_BUCKET)
    server: CosServer = request.getfixturevalue("cos_server")
    return Target(make_cos_store(server), server.create_bucket())


@pytest.fixture
def cos(cos_server: CosServer) -> tuple[CosStore, str]:
    return make_cos_store(cos_server), cos_server.create_bucket()


def patterned(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset that matters: a shifted or duplicated part would not match."""
    block = hashlib.sha256(str(seed).encode()).digest() + bytes(range(256))
    return (block * (size // len(block) + 1))[:size]


# --- the shared contract ---------------------------------------------------------------------------


def test_put_then_get_size_and_list_round_trip(target: Target) -> None:
    # GIVEN a playlist and a segment written under one prefix
    target.store.put(target.bucket, "vod/job-1/main.m3u8", b"#EXTM3U\n", "application/vnd.apple.mpegurl")
    target.store.put(target.bucket, "vod/job-1/seg-0.ts", b"\x47" * 188, "video/mp2t")
    # WHEN they are read back
    # THEN the bytes, the sizes and the listing all agree
    assert target.store.get(target.bucket, "vod/job-1/main.m3u8") == b"#EXTM3U\n"
    assert target.store.size(target.bucket, "vod/job-1/seg-0.ts") == 188
    assert target.store.list(target.bucket, "vod/job-1/") == [
        ("vod/job-1/main.m3u8", 8),
        ("vod/job-1/seg-0.ts", 188),
    ]


def test_writing_the_same_key_again_replaces_the_object(target: Target) -> None:
    # GIVEN an object (harvest keys are deterministic, so a redelivered chunk rewrites them)
    target.store.put(target.bucket, "vod/seg.ts", b"first version, longer", "video/mp2t")
    # WHEN the same key is written again
    target.store.put(target.bucket, "vod/seg.ts", b"second", "video/mp2t")
    # THEN only the new content is there, under one key
    assert target.store.get(target.bucket, "vod/seg.ts") == b"second"
    assert target.store.size(target.bucket, "vod/seg.ts") == 6
    assert target.store.list(target.bucket, "vod/") == [("vod/seg.ts", 6)]


def test_a_missing_object_has_no_size_and_cannot_be_read(target: Target) -> None:
    # GIVEN an object next to the one asked for
    target.store.put(target.bucket, "vod/present.ts", b"x", "video/mp2t")
    # WHEN a key that was never written is asked for
    # THEN its size is None, reading it is a StorageError, and no prefix of it lists anything
    assert target.store.size(target.bucket, "vod/absent.ts") is None
    with pytest.raises(StorageError):
        target.store.get(target.bucket, "vod/absent.ts")
    assert target.store.list(target.bucket, "vod/absent") == []
    assert target.store.list(target.bucket, "elsewhere/") == []


def test_binary_content_and_empty_objects_come_back_byte_exact(target: Target) -> None:
    # GIVEN every byte value, line endings, NULs and an empty object
    payload = bytes(range(256)) * 4 + b"\r\n\x00\r\x00\n" + patterned(10_000)
    target.store.put(target.bucket, "bin/all-bytes.key", payload, "application/octet-stream")
    target.store.put(target.bucket, "bin/empty.vtt", b"", "text/vtt")
    # WHEN read back
    # THEN nothing was transcoded, trimmed or decoded on the way
    assert target.store.get(target.bucket, "bin/all-bytes.key") == payload
    assert target.store.get(target.bucket, "bin/empty.vtt") == b""
    assert target.store.size(target.bucket, "bin/empty.vtt") == 0


def test_an_object_above_the_multipart_threshold_comes_back_byte_exact(target: Target) -> None:
    # GIVEN 12 MiB and a few bytes (above the 1 MiB threshold the COS store is given: 13 parts)
    payload = patterned(12 * MiB + 7, seed=1)
    # WHEN it is written and read back
    target.store.put(target.bucket, "vod/whole.mp4", payload, "video/mp4")
    # THEN it is the same object, byte for byte
    assert target.store.size(target.bucket, "vod/whole.mp4") == len(payload)
    assert (
        hashlib.sha256(target.store.get(target.bucket, "vod/whole.mp4")).digest()
        == hashlib.sha256(payload).digest()
    )


def pieces(payload: bytes, sizes: tuple[int, ...] = (1, 255, 65536, 300_001)) -> Iterator[bytes]:
    """`payload` in chunks of uneven sizes (cycling through `sizes`), as a socket would hand it over."""
    offset, turn = 0, 0
    while offset < len(payload):
        size = sizes[turn % len(sizes)]
        yield payload[offset : offset + size]
        offset, turn = offset + size, turn + 1


class CutShort(Exception):
    """The source of a streamed write failed part way."""


@pytest.mark.parametrize("size", [0, 1000, 3 * MiB + 5])
def test_a_streamed_object_is_stored_byte_exact(target: Target, size: int) -> None:
    # GIVEN an object arriving in uneven chunks (below, and far above, the COS store's 1 MiB threshold)
    payload = patterned(size, seed=3)
    # WHEN it is written as a stream
    written = target.store.put_stream(target.bucket, "vod/streamed.ts", pieces(payload), "video/mp2t")
    # THEN every byte arrived, and the store reports the size it wrote
    assert written == size == target.store.size(target.bucket, "vod/streamed.ts")
    assert target.store.get(target.bucket, "vod/streamed.ts") == payload


def test_objects_written_without_sync_each_are_whole_and_synced_once(target: Target) -> None:
    # GIVEN a chunk's segments written with durable=False (the chunk loop's way: no fsync each)
    payloads = {f"vod/v{i % 2}/seg{i}.ts": patterned(1000 + i, seed=i) for i in range(6)}
    for key, payload in payloads.items():
        assert target.store.put_stream(
            target.bucket, key, pieces(payload), "video/mp2t", durable=False
        ) == len(payload)
    # WHEN the chunk syncs them all at once
    target.store.sync(target.bucket, list(payloads))
    # THEN every object is there, byte exact, and listed with its size
    for key, payload in payloads.items():
        assert target.store.get(target.bucket, key) == payload
    assert target.store.list(target.bucket, "vod/") == sorted((k, len(v)) for k, v in payloads.items())


def test_a_stream_that_fails_part_way_leaves_the_old_object_whole(target: Target) -> None:
    # GIVEN an existing object, and a new version whose source fails after 2 MiB
    target.store.put(target.bucket, "vod/seg.ts", b"old version", "video/mp2t")

    def failing() -> Iterator[bytes]:
        yield from pieces(patterned(2 * MiB, seed=4))
        raise CutShort("the origin cut the transfer")

    # WHEN it is written as a stream
    with pytest.raises(CutShort):
        target.store.put_stream(target.bucket, "vod/seg.ts", failing(), "video/mp2t")
    # THEN the source's own error came through, and the old object is untouched
    assert target.store.get(target.bucket, "vod/seg.ts") == b"old version"
    assert target.store.list(target.bucket, "vod/") == [("vod/seg.ts", 11)]


@pytest.mark.parametrize(
    "key",
    [
        "vod/with space/seg 1.ts",
        "vod/ünïcødé/中文-セグメント.ts",
        "vod/plus+percent%20and&amp=eq.ts",
        "vod/hash#question?.ts",
        "vod/emoji-🎬.m3u8",
    ],
)
def test_keys_with_spaces_unicode_and_url_syntax_round_trip(target: Target, key: str) -> None:
    # GIVEN a key that needs URL encoding (and signing) to travel intact
    data = key.encode("utf-8")
    # WHEN it is written, sized, read and listed
    target.store.put(target.bucket, key, data, "video/mp2t")
    # THEN the key comes back exactly as given, everywhere
    assert target.store.get(target.bucket, key) == data
    assert target.store.size(target.bucket, key) == len(data)
    assert target.store.list(target.bucket, "vod/") == [(key, len(data))]


def test_list_returns_every_key_under_the_prefix_sorted_across_pages(target: Target) -> None:
    # GIVEN 8 keys under a prefix (more than two pages of 3 for the COS store), written out of order,
    # and neighbours that share the prefix's text but not its directory
    keys = [f"vod/job-2/seg-{index:03d}.ts" for index in (7, 0, 5, 2, 6, 1, 4, 3)]
    for index, key in enumerate(keys):
        target.store.put(target.bucket, key, b"s" * index, "video/mp2t")
    target.store.put(target.bucket, "vod/job-20/other.ts", b"o", "video/mp2t")
    target.store.put(target.bucket, "vod/job-2.m3u8", b"p", "application/vnd.apple.mpegurl")
    # WHEN the job's prefix is listed
    listed = target.store.list(target.bucket, "vod/job-2/")
    # THEN all 8 come back once each, sorted by key, with their sizes; a bare text prefix matches too
    assert listed == sorted((key, keys.index(key)) for key in keys)
    assert [key for key, _ in target.store.list(target.bucket, "vod/job-2")] == [
        "vod/job-2.m3u8",
        *sorted(keys),
        "vod/job-20/other.ts",
    ]


@pytest.mark.parametrize(
    "key",
    [
        "../escape.ts",
        "vod/../../escape.ts",
        "/absolute.ts",
        "vod\\windows.ts",
        "vod//double.ts",
        "vod/./x.ts",
        "vod/trailing/",
        "",
    ],
)
def test_keys_that_are_not_plain_relative_paths_are_refused(target: Target, key: str) -> None:
    # GIVEN a key that would resolve outside its place (on disk, or differently on COS and in a browser)
    # WHEN it is written
    # THEN the store refuses it before touching anything
    with pytest.raises(StorageError):
        target.store.put(target.bucket, key, b"payload", "video/mp2t")
    with pytest.raises(StorageError):
        target.store.size(target.bucket, key)


def test_bucket_names_that_are_not_cos_names_are_refused(target: Target) -> None:
    # GIVEN bucket names COS would never accept, some of them paths
    for bucket in ("..", "a/b", "bucket.", "-bucket", ""):
        # WHEN used / THEN refused
        with pytest.raises(StorageError):
            target.store.put(bucket, "vod/x.ts", b"x", "video/mp2t")


# --- LocalDiskStore ----------------------------------------------------------------------------------


def test_local_objects_live_at_root_bucket_key_and_never_outside(tmp_path: Path) -> None:
    # GIVEN a local store rooted at <data-dir>/cos
    store = LocalDiskStore(tmp_path / "data" / "cos")
    # WHEN an object is written, and an escaping key is tried
    store.put(LOCAL_BUCKET, "vod/job/seg.ts", b"segment", "video/mp2t")
    with pytest.raises(StorageError):
        store.put(LOCAL_BUCKET, "../../outside.ts", b"evil", "video/mp2t")
    # THEN the object is the file root/bucket/key, and nothing was written anywhere else
    assert (tmp_path / "data" / "cos" / LOCAL_BUCKET / "vod" / "job" / "seg.ts").read_bytes() == b"segment"
    every_file = sorted(
        path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file()
    )
    assert every_file == [f"data/cos/{LOCAL_BUCKET}/vod/job/seg.ts"]


def test_a_local_directory_removed_between_writes_is_made_again(tmp_path: Path) -> None:
    # GIVEN a store that has written into vod/job/ (and remembers that directory exists)
    store = LocalDiskStore(tmp_path)
    store.put(LOCAL_BUCKET, "vod/job/a.ts", b"first", "video/mp2t")
    # WHEN the directory is removed behind its back (a cleanup), and the next object goes there
    shutil.rmtree(tmp_path / LOCAL_BUCKET / "vod")
    store.put(LOCAL_BUCKET, "vod/job/b.ts", b"second", "video/mp2t")
    # THEN it is written whole
    assert store.list(LOCAL_BUCKET, "vod/") == [("vod/job/b.ts", 6)]


def test_local_sync_without_syncfs_fsyncs_each_object_and_each_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a platform without syncfs(2), and a chunk's objects written with durable=False
    monkeypatch.setattr(local_store, "_syncfs_function", lambda: None)
    store = LocalDiskStore(tmp_path)
    keys = ["vod/v1/a.ts", "vod/v1/b.ts", "vod/v2/c.ts"]
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for key in keys:
        store.put_stream(LOCAL_BUCKET, key, [b"x" * 100], "video/mp2t", durable=False)
    assert synced == []  # nothing fsynced while writing
    # WHEN the chunk syncs them
    store.sync(LOCAL_BUCKET, keys)
    # THEN every file and each of their directories was fsynced exactly once
    paths = [tmp_path / LOCAL_BUCKET / key for key in keys] + [
        tmp_path / LOCAL_BUCKET / "vod" / "v1",
        tmp_path / LOCAL_BUCKET / "vod" / "v2",
    ]
    assert sorted(synced) == sorted(path.stat().st_ino for path in paths)


def test_local_writes_leave_no_temporary_files_behind(tmp_path: Path) -> None:
    # GIVEN a store that has written and rewritten a few objects
    store = LocalDiskStore(tmp_path)
    for round_number in range(3):
        for index in range(4):
            data = patterned(1000 + round_number, index)
            store.put(LOCAL_BUCKET, f"vod/seg-{index}.ts", data, "video/mp2t")
    # WHEN the bucket directory is inspected
    names = sorted(path.name for path in (tmp_path / LOCAL_BUCKET / "vod").iterdir())
    # THEN only the final objects are there
    assert names == [f"seg-{index}.ts" for index in range(4)]


def test_a_local_write_that_fails_midway_keeps_the_old_object_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an existing object
    store = LocalDiskStore(tmp_path)
    store.put(LOCAL_BUCKET, "vod/seg.ts", b"old and complete", "video/mp2t")

    # WHEN the process dies between writing the new bytes and renaming them into place
    def crash(source: str, destination: str) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError):
        store.put(LOCAL_BUCKET, "vod/seg.ts", b"new", "video/mp2t")
    monkeypatch.undo()
    # THEN readers still see the old object, whole, and no temporary file is left
    assert store.get(LOCAL_BUCKET, "vod/seg.ts") == b"old and complete"
    assert [path.name for path in (tmp_path / LOCAL_BUCKET / "vod").iterdir()] == ["seg.ts"]


def test_local_listing_ignores_a_temporary_file_left_by_a_crash(tmp_path: Path) -> None:
    # GIVEN an object and a temporary file a killed process left next to it
    store = LocalDiskStore(tmp_path)
    store.put(LOCAL_BUCKET, "vod/seg.ts", b"whole", "video/mp2t")
    (tmp_path / LOCAL_BUCKET / "vod" / f"{TEMP_PREFIX}abc123").write_bytes(b"half")
    # WHEN the prefix is listed / THEN only the object is reported
    assert store.list(LOCAL_BUCKET, "vod/") == [("vod/seg.ts", 5)]
    # AND keys that would collide with temporary names are refused
    with pytest.raises(StorageError):
        store.put(LOCAL_BUCKET, f"vod/{TEMP_PREFIX}x", b"x", "video/mp2t")


def test_a_local_key_that_is_a_directory_is_not_an_object(tmp_path: Path) -> None:
    # GIVEN an object whose key makes `vod` a directory on disk
    store = LocalDiskStore(tmp_path)
    store.put(LOCAL_BUCKET, "vod/seg.ts", b"x", "video/mp2t")
    # WHEN the directory's name is asked for as a key
    # THEN it does not exist as an object
    assert store.size(LOCAL_BUCKET, "vod") is None
    with pytest.raises(StorageError):
        store.get(LOCAL_BUCKET, "vod")


# --- CosStore ---------------------------------------------------------------------------------------


def test_cos_large_objects_go_up_in_checked_parts(cos_server: CosServer, cos: tuple[CosStore, str]) -> None:
    store, bucket = cos
    # GIVEN 12 MiB + 7 bytes and a 1 MiB threshold and part size
    payload = patterned(12 * MiB + 7, seed=2)
    # WHEN it is written
    store.put(bucket, "vod/big.mp4", payload, "video/mp4")
    # THEN it went up as 13 parts, each with a Content-MD5 COS checks, and came back whole
    parts = [seen for seen in cos_server.requests_for(bucket) if "partNumber" in seen.query]
    assert sorted(int(seen.query["partNumber"]) for seen in parts) == list(range(1, 14))
    assert all("content-md5" in seen.headers for seen in parts)
    assert store.get(bucket, "vod/big.mp4") == payload


def test_cos_small_objects_are_one_put_with_content_md5_and_content_type(
    cos_server: CosServer, cos: tuple[CosStore, str]
) -> None:
    store, bucket = cos
    # WHEN a small playlist is written
    store.put(bucket, "vod/main.m3u8", b"#EXTM3U\n", "application/vnd.apple.mpegurl")
    # THEN it is a single PUT carrying the body's MD5, and COS keeps the content type players need
    puts = [seen for seen in cos_server.requests_for(bucket) if seen.method == "PUT" and seen.path != "/"]
    assert len(puts) == 1
    assert puts[0].headers["content-md5"] == base64.b64encode(hashlib.md5(b"#EXTM3U\n").digest()).decode()
    head = cos_server.cos_client().head_object(Bucket=bucket, Key="vod/main.m3u8")
    assert head["Content-Type"] == "application/vnd.apple.mpegurl"


def test_a_streamed_segment_below_the_threshold_costs_one_put_and_no_head(
    cos_server: CosServer, cos: tuple[CosStore, str]
) -> None:
    store, bucket = cos
    # WHEN a segment below the multipart threshold is streamed, as the chunk loop does
    payload = patterned(300_000, seed=9)
    store.put_stream(bucket, "vod/seg-1.ts", pieces(payload), "video/mp2t", durable=False)
    # THEN COS saw one PUT (its MD5 ETag checked) and no HEAD to re-read the size
    seen = [(r.method, r.path) for r in cos_server.requests_for(bucket) if r.path.endswith("seg-1.ts")]
    assert [method for method, _path in seen] == ["PUT"]
    assert store.get(bucket, "vod/seg-1.ts") == payload


def test_a_large_stream_goes_up_part_by_part_and_a_failed_one_is_aborted(
    cos_server: CosServer, cos: tuple[CosStore, str]
) -> None:
    store, bucket = cos
    # GIVEN a 5 MiB stream (1 MiB threshold and parts), and one that fails after 3 MiB
    payload = patterned(5 * MiB, seed=5)

    def failing() -> Iterator[bytes]:
        yield from pieces(payload[: 3 * MiB])
        raise CutShort("cut")

    # WHEN both are written
    store.put_stream(bucket, "vod/ok.ts", pieces(payload), "video/mp2t")
    with pytest.raises(CutShort):
        store.put_stream(bucket, "vod/cut.ts", failing(), "video/mp2t")
    # THEN the first went up in 5 checked parts; the second's upload was aborted, leaving nothing
    parts = [seen for seen in cos_server.requests_for(bucket) if "partNumber" in seen.query]
    assert sorted(int(seen.query["partNumber"]) for seen in parts if "ok.ts" in seen.path) == [1, 2, 3, 4, 5]
    assert store.get(bucket, "vod/ok.ts") == payload
    assert cos_server.boto3_client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert store.size(bucket, "vod/cut.ts") is None


def test_a_failed_part_aborts_the_multipart_upload(cos_server: CosServer, cos: tuple[CosStore, str]) -> None:
    store, bucket = cos
    # GIVEN COS failing the third part of an upload with a 500
    third_part = cos_server.failing(lambda method, path, query: query.get("partNumber") == "3")
    # WHEN a large object is written
    with third_part, pytest.raises(RetryableError):
        store.put(bucket, "vod/big.mp4", patterned(4 * MiB), "video/mp4")
    # THEN the upload was aborted (no parts left billed) and no object appeared
    uploads = cos_server.boto3_client().list_multipart_uploads(Bucket=bucket)
    assert uploads.get("Uploads", []) == []
    seen = cos_server.requests_for(bucket)
    assert any(request.method == "DELETE" and "uploadId" in request.query for request in seen)
    assert store.size(bucket, "vod/big.mp4") is None


def test_an_etag_that_is_not_the_md5_of_the_data_fails_the_write(
    cos_server: CosServer, cos: tuple[CosStore, str]
) -> None:
    store, bucket = cos
    # GIVEN a COS that answers a PUT with some other ETag
    wrong_etag = cos_server.answering_etag(lambda method, path, query: method == "PUT", '"0123456789abcdef"')
    # WHEN an object is written / THEN the write is reported as failed, worth retrying
    with wrong_etag, pytest.raises(RetryableError, match="ETag"):
        store.put(bucket, "vod/seg.ts", b"segment bytes", "video/mp2t")


def test_a_wrong_secret_key_is_refused_by_signature_check(
    cos_server: CosServer, cos: tuple[CosStore, str]
) -> None:
    _store, bucket = cos
    # GIVEN a store signing with the wrong SecretKey
    wrong = make_cos_store(cos_server, secret_key="not-the-secret-key")
    # WHEN it writes / THEN COS answers SignatureDoesNotMatch: a StorageError, not worth retrying
    with pytest.raises(StorageError, match="SignatureDoesNotMatch") as caught:
        wrong.put(bucket, "vod/seg.ts", b"x", "video/mp2t")
    assert not isinstance(caught.value, RetryableError)
    with pytest.raises(StorageError):
        wrong.list(bucket, "vod/")


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalError"), (503, "SlowDown"), (503, "ServiceUnavailable")]
)
def test_cos_throttling_and_server_errors_are_retryable(
    cos_server: CosServer, cos: tuple[CosStore, str], status: int, code: str
) -> None:
    store, bucket = cos
    # GIVEN COS failing every request for a moment
    with cos_server.failing(lambda method, path, query: True, status, code):
        # WHEN any operation runs / THEN it raises RetryableError naming the code
        with pytest.raises(RetryableError, match=code):
            store.put(bucket, "vod/seg.ts", b"x", "video/mp2t")
        with pytest.raises(RetryableError, match=code):
            store.get(bucket, "vod/seg.ts")
        with pytest.raises(RetryableError):
            store.list(bucket, "vod/")


def test_an_unreachable_cos_is_retryable(cos_server: CosServer) -> None:
    # GIVEN a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    store = make_cos_store(cos_server, port=closed_port)
    # WHEN the store is used / THEN the transport failure is retryable
    with pytest.raises(RetryableError):
        store.size(f"bucket-{APPID}", "vod/seg.ts")


def test_boto3_sees_what_the_cos_sdk_wrote_and_the_other_way_round(
    cos_server: CosServer, cos: tuple[CosStore, str]
) -> None:
    store, bucket = cos
    # GIVEN objects written through the COS SDK, one of them multipart
    big = patterned(2 * MiB + 1, seed=3)
    store.put(bucket, "vod/main.m3u8", b"#EXTM3U\n", "application/vnd.apple.mpegurl")
    store.put(bucket, "vod/big.mp4", big, "video/mp4")
    # WHEN a plain S3 client reads the same bucket
    s3 = cos_server.boto3_client()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="vod/")["Contents"]
    # THEN it sees the same keys, sizes and bytes
    assert [(item["Key"], item["Size"]) for item in listed] == [
        ("vod/big.mp4", len(big)),
        ("vod/main.m3u8", 8),
    ]
    assert s3.get_object(Bucket=bucket, Key="vod/big.mp4")["Body"].read() == big
    # AND what boto3 writes, the COS store reads
    s3.put_object(Bucket=bucket, Key="vod/from-boto3.ts", Body=b"boto3 bytes")
    assert store.get(bucket, "vod/from-boto3.ts") == b"boto3 bytes"


def test_cos_store_from_settings_uses_the_function_credentials(cos_server: CosServer) -> None:
    # GIVEN the settings an SCF function would read (TENCENTCLOUD_* credentials, a test endpoint)
    settings = Settings(
        region=cos_server.region,
        object_store="cos",
        cloud_secret_id=cos_server.secret_id,
        cloud_secret_key=cos_server.secret_key,
        cloud_token="session-token-from-scf",
        cos_scheme="http",
        cos_endpoint_ip=cos_server.ip,
        cos_endpoint_port=cos_server.port,
        cos_multipart_threshold=MiB,
    )
    bucket = cos_server.create_bucket()
    # WHEN a store is built from them and used
    store = CosStore.from_settings(settings)
    store.put(bucket, "vod/seg.ts", patterned(MiB + 1), "video/mp2t")
    # THEN the signed requests were accepted, and carried the session token
    assert store.get(bucket, "vod/seg.ts") == patterned(MiB + 1)
    tokens = {seen.headers.get("x-cos-security-token") for seen in cos_server.requests_for(bucket)[1:]}
    assert tokens == {"session-token-from-scf"}


def test_cos_store_settings_without_credentials_are_a_config_error() -> None:
    # GIVEN cos chosen but no execution-role credentials / WHEN built / THEN a ConfigError names them
    with pytest.raises(ConfigError, match="TENCENTCLOUD_SECRETKEY"):
        CosStore.from_settings(Settings(object_store="cos", cloud_secret_id="AKIDonly"))


@pytest.mark.parametrize("part_size", [0, MiB - 1])
def test_parts_below_the_cos_minimum_are_a_config_error(part_size: int) -> None:
    with pytest.raises(ConfigError):
        CosStore(region="ap-singapore", secret_id="id", secret_key="key", part_size=part_size)


# --- the stand-in checks signatures for real ---------------------------------------------------------


def _signed_get(server: CosServer, host: str, sign_path: str, request_path: str, secret_key: str) -> int:
    """Status of a GET to `request_path`, signed (with host) as if for `sign_path`."""
    now = int(time.time())
    sign_time = f"{now - 60};{now + 600}"
    signature = cos_signature(secret_key, "GET", sign_path, {}, {"host": host}, sign_time)
    authorization = (
        f"q-sign-algorithm=sha1&q-ak={server.secret_id}&q-sign-time={sign_time}&q-key-time={sign_time}"
        f"&q-header-list=host&q-url-param-list=&q-signature={signature}"
    )
    session = requests.Session()
    session.trust_env = False
    headers = {"Host": host, "Authorization": authorization}
    response = session.get(f"{server.endpoint_url}{request_path}", headers=headers, timeout=10)
    return response.status_code


def test_the_stand_in_accepts_a_hand_made_signature_and_refuses_it_for_another_key(
    cos_server: CosServer, cos: tuple[CosStore, str]
) -> None:
    store, bucket = cos
    store.put(bucket, "vod/a.ts", b"a", "video/mp2t")
    store.put(bucket, "vod/b.ts", b"b", "video/mp2t")
    host = f"{bucket}.cos.{cos_server.region}.myqcloud.com"
    # GIVEN a signature computed independently of the SDK, for vod/a.ts
    # WHEN it is sent for vod/a.ts / THEN the object is served
    assert _signed_get(cos_server, host, "/vod/a.ts", "/vod/a.ts", cos_server.secret_key) == 200
    # WHEN the same signature is replayed for vod/b.ts, or made with another key / THEN 403
    assert _signed_get(cos_server, host, "/vod/a.ts", "/vod/b.ts", cos_server.secret_key) == 403
    assert _signed_get(cos_server, host, "/vod/a.ts", "/vod/a.ts", "another-key") == 403

    # AND a request with no signature at all is refused
    session = requests.Session()
    session.trust_env = False
    unsigned = session.get(f"{cos_server.endpoint_url}/vod/a.ts", headers={"Host": host}, timeout=10)
    assert unsigned.status_code == 403
