"""ports.ObjectStore on the local disk: object `bucket/key` is the file `root/bucket/key`.

`harvest serve` passes root = <data-dir>/cos, so `https://<bucket>.cos.<region>.myqcloud.com/<key>`
lives at `<data-dir>/cos/<bucket>/<key>` and `harvest.local.bucket_http` serves it to players.

Writes go to a temporary file in the object's directory, are fsynced, then renamed over the final
name: a reader (or a crash) sees the old object or the new one, never half of one. Temporary files
carry a reserved prefix so `list` never reports one left behind by a crash.
The content type is not stored: the HTTP side derives it from the key's extension, as COS's
static-website mode would for the objects the harvester writes.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harvest.adapters.objectstore import check_bucket, check_key, check_prefix
from harvest.errors import StorageError

TEMP_PREFIX = ".harvest-partial-"
_FILE_MODE = 0o644  # mkstemp creates 0600; the bucket is meant to be served to players


class LocalDiskStore:
    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def path_of(self, bucket: str, key: str) -> Path:
        """The file that holds `bucket/key` (validated: it cannot lie outside the bucket)."""
        return self._root / check_bucket(bucket) / check_key(key)

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self.put_stream(bucket, key, [data], content_type)

    def put_stream(self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str) -> int:
        """Write chunk by chunk to a temporary file, renamed into place once whole; the bytes written.

        An exception from `chunks` removes the temporary file and is passed on untouched.
        """
        path = self.path_of(bucket, key)
        if path.name.startswith(TEMP_PREFIX):
            raise StorageError(f"object names starting with {TEMP_PREFIX!r} are reserved: {key!r}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return _write_atomically(path, chunks)
        except OSError as exc:
            raise StorageError(f"cannot write {bucket}/{key}: {exc}") from exc

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


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> int:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    written = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), _FILE_MODE)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)
    return written


def _fsync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk; callers record the chunk as
    # done right after a put, so a power cut must not lose the object behind that record.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _raise_unless_missing(error: OSError) -> None:
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return  # nothing stored under this prefix yet
    raise StorageError(f"cannot list {error.filename}: {error}") from error
