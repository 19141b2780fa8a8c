"""ports.ObjectStore on the local disk: object `bucket/key` is the file `root/bucket/key`.

`harvest serve` passes root = <data-dir>/cos, so `https://<bucket>.cos.<region>.myqcloud.com/<key>`
lives at `<data-dir>/cos/<bucket>/<key>` and `harvest.local.bucket_http` serves it to players.

Writes go to a temporary file in the object's directory, then are renamed over the final name: a
reader (or a process crash) sees the old object or the new one, never half of one. Temporary files
carry a reserved prefix so `list` never reports one left behind by a crash.

Durability: `put` and `put_stream` fsync the file and its directory before returning. A chunk's
segments are written with `durable=False` instead (no fsync each), and the chunk calls `sync` once
before it is recorded as done: one syncfs(2) of the bucket's file system per chunk instead of two
fsyncs per segment, which the benchmark's profile found to be the largest cost of a segment.
What a crash can then cost: a process crash nothing (the data is in the page cache). A power cut or
kernel crash can lose the segments written since their chunk's last `sync`; that chunk is not
recorded as done, so its message is redelivered and those segments are fetched again. A file whose
data never reached the disk comes back short or empty (ext4 and XFS grow the on-disk size only as
data is written back), so it fails the redelivered chunk's size check and is fetched again.
The content type is not stored: the HTTP side derives it from the key's extension, as COS's
static-website mode would for the objects the harvester writes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import itertools
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harvest.adapters.objectstore import check_bucket, check_key, check_prefix
from harvest.errors import StorageError

TEMP_PREFIX = ".harvest-partial-"
_FILE_MODE = 0o644  # temporary files are made 0600; the bucket is meant to be served to players


class LocalDiskStore:
    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        # Directories made (or found) by this store: a chunk writes hundreds of segments into one
        # directory, and a mkdir per segment was a visible share of the benchmark's profile.
        self._made: set[Path] = set()

    @property
    def root(self) -> Path:
        return self._root

    def path_of(self, bucket: str, key: str) -> Path:
        """The file that holds `bucket/key` (validated: it cannot lie outside the bucket)."""
        return self._root / check_bucket(bucket) / check_key(key)

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self.put_stream(bucket, key, [data], content_type)

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str, durable: bool = True
    ) -> int:
        """Write chunk by chunk to a temporary file, renamed into place once whole; the bytes written.

        An exception from `chunks` removes the temporary file and is passed on untouched.
        `durable=False` skips the fsyncs: the caller calls `sync` before relying on the object.
        """
        path = self.path_of(bucket, key)
        if path.name.startswith(TEMP_PREFIX):
            raise StorageError(f"object names starting with {TEMP_PREFIX!r} are reserved: {key!r}")
        try:
            if path.parent not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent)
            return _write_atomically(path, chunks, durable)
        except OSError as exc:
            raise StorageError(f"cannot write {bucket}/{key}: {exc}") from exc

    def sync(self, bucket: str, keys: Sequence[str]) -> None:
        """Make `keys` (written with durable=False) durable: one syncfs of the bucket's file system
        where the platform has it, else an fsync of each file and of each directory once."""
        if not keys:
            return
        bucket_dir = self._root / check_bucket(bucket)
        try:
            if _syncfs(bucket_dir):
                return
            for key in keys:
                _fsync_path(self.path_of(bucket, key))
            for directory in {self.path_of(bucket, key).parent for key in keys}:
                _fsync_path(directory)
        except OSError as exc:
            raise StorageError(f"cannot sync {bucket}: {exc}") from exc

    def size(self, bucket: str, key: str) -> int | None:
        path = self.path_of(bucket, key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot stat {bucket}/{key}: {exc}") from exc
        # A directory is where keys with this prefix live, not an object.
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def get(self, bucket: str, key: str) -> bytes:
        path = self.path_of(bucket, key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise StorageError(f"no such object {bucket}/{key}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {bucket}/{key}: {exc}") from exc

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        bucket_dir = self._root / check_bucket(bucket)
        directory = check_prefix(prefix).rpartition("/")[0]
        # Walk only below the prefix's directory part: listing one job's output must not scan the bucket.
        start = bucket_dir / directory if directory else bucket_dir
        found: list[tuple[str, int]] = []
        for dirpath, _dirnames, filenames in os.walk(start, onerror=_raise_unless_missing):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(bucket_dir).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    info = path.stat()
                except FileNotFoundError:  # removed while we walked
                    continue
                if stat.S_ISREG(info.st_mode):
                    found.append((key, info.st_size))
        found.sort()
        return found


# Temporary names unique within this process (pid, then a counter: next() on a count is atomic in
# CPython); O_EXCL still refuses a leftover of an earlier process with the same pid. mkstemp's
# random names cost more Python per object than the write itself on 64 KB segments.
_TEMP_NUMBERS = itertools.count()
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _temp_file(directory: Path) -> tuple[int, str]:
    while True:
        name = f"{directory}/{TEMP_PREFIX}{os.getpid()}-{next(_TEMP_NUMBERS)}"
        try:
            return os.open(name, _TEMP_FLAGS, 0o600), name
        except FileExistsError:
            continue
        except FileNotFoundError:  # removed since this store made it (a cleanup): make it again
            directory.mkdir(parents=True, exist_ok=True)


def _write_atomically(path: Path, chunks: Iterable[bytes], durable: bool) -> int:
    fd, temp_name = _temp_file(path.parent)
    written = 0
    try:
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:  # os.write may write less than asked (a signal, a full disk)
                    view = view[os.write(fd, view) :]
                written += len(chunk)
            if durable:
                os.fsync(fd)
            os.fchmod(fd, _FILE_MODE)
        finally:
            os.close(fd)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    if durable:
        # The rename is only durable once the directory entry is on disk; callers record the chunk
        # as done right after, so a power cut must not lose the object behind that record.
        _fsync_path(path.parent)
    return written


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _syncfs_function() -> Any:
    # Looked up once (find_library may run ldconfig), on first use, never at import time.
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    return getattr(ctypes.CDLL(libc_name, use_errno=True), "syncfs", None)


def _syncfs(directory: Path) -> bool:
    """syncfs(2) on the file system holding `directory` (Linux); False where it is not available."""
    syncfs = _syncfs_function()
    if syncfs is None:
        return False
    fd = os.open(directory, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), str(directory))
    finally:
        os.close(fd)
    return True


def _raise_unless_missing(error: OSError) -> None:
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return  # nothing stored under this prefix yet
    raise StorageError(f"cannot list {error.filename}: {error}") from error
