"""ObjectStore adapters: COS through cos-python-sdk-v5 (`cos.CosStore`) and a local-disk stand-in
(`local.LocalDiskStore`) for `harvest serve`.

Both refuse the same bucket names and keys (`check_bucket`, `check_key`), so a key that works on one
machine works in the cloud and the other way round. The rules are stricter than COS's own: harvest keys
are plain relative paths, and anything else (`..`, `//`, a leading `/`, a backslash) is a bug or an attack.
"""

from __future__ import annotations

import re

from harvest.errors import StorageError

# COS's own bucket-name rule (the SDK's `format_bucket` check): letters, digits and `-`, not at the ends.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]$")
MAX_KEY_BYTES = 850  # COS documents 850 bytes as the longest object key


def check_bucket(bucket: str) -> str:
    if not _BUCKET.match(bucket):
        raise StorageError(f"invalid bucket name {bucket!r}")
    return bucket


def check_key(key: str) -> str:
    """The key itself when it is a plain relative path; StorageError otherwise."""
    if not key:
        raise StorageError("empty object key")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise StorageError(f"object key longer than {MAX_KEY_BYTES} bytes: {key[:60]!r}...")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise StorageError(f"object key must be a relative path without backslashes: {key!r}")
    # Empty, `.` and `..` segments would resolve differently on disk, on COS and in a browser.
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise StorageError(f"object key has an empty, '.' or '..' segment: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A list prefix: empty, or a string whose directory part (up to the last `/`) is a valid key."""
    if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
        raise StorageError(f"list prefix must be relative, without backslashes: {prefix!r}")
    directory, slash, _partial = prefix.rpartition("/")
    if slash:
        check_key(directory)
    return prefix
