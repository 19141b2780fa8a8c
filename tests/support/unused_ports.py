"""Ports a test's code path must not reach: every call fails the test, naming the port and the call.

A use case's dependencies are all required; a test that exercises only some of them passes these
for the rest (not None), so the types stay checked and a path that does reach one fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from harvest.ports import FetchedPlaylist, T


def _reached(port: str, call: str) -> NoReturn:
    raise AssertionError(f"the code under test was not meant to reach {port}.{call}")


class UnusedOrigin:
    """ports.Origin for code that never fetches (the sweeper, the operations queries)."""

    def get_text(self, url: str, headers: Mapping[str, str]) -> str:
        _reached("Origin", f"get_text({url})")

    def get_playlist(self, url: str, headers: Mapping[str, str]) -> FetchedPlaylist:
        _reached("Origin", f"get_playlist({url})")

    def get_bytes(
        self, url: str, headers: Mapping[str, str], byte_range: tuple[int, int] | None = None
    ) -> bytes:
        _reached("Origin", f"get_bytes({url})")

    def stream(
        self,
        url: str,
        headers: Mapping[str, str],
        byte_range: tuple[int, int] | None,
        sink: Callable[[Iterator[bytes]], T],
    ) -> T:
        _reached("Origin", f"stream({url})")


class UnusedObjectStore:
    """ports.ObjectStore for code that never reads or writes the bucket."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        _reached("ObjectStore", f"put({bucket}/{key})")

    def put_stream(
        self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str, durable: bool = True
    ) -> int:
        _reached("ObjectStore", f"put_stream({bucket}/{key})")

    def sync(self, bucket: str, keys: Sequence[str]) -> None:
        _reached("ObjectStore", f"sync({bucket})")

    def size(self, bucket: str, key: str) -> int | None:
        _reached("ObjectStore", f"size({bucket}/{key})")

    def get(self, bucket: str, key: str) -> bytes:
        _reached("ObjectStore", f"get({bucket}/{key})")

    def list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        _reached("ObjectStore", f"list({bucket}/{prefix})")


class UnusedNotifier:
    """ports.Notifier for jobs without a CallbackURL."""

    def notify(self, url: str, payload: dict[str, Any]) -> str:
        _reached("Notifier", f"notify({url})")
