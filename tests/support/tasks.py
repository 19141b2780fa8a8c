"""Download tasks for tests that store plans and chunks without planning a real channel."""

from __future__ import annotations

from harvest.domain.download import DownloadTask


def download_task(url: str, size: int | None = None) -> DownloadTask:
    """A whole-segment task for `url`, stored under its last path segment."""
    name = url.rsplit("/", 1)[-1]
    return DownloadTask(
        url=url, key=f"vod/{name}", range=None, size=size, name=name, content_type="video/mp2t"
    )
