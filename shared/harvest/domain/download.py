"""One download task: a source URL (or a byte range of it) to store as one object of the asset.

The planner makes them (harvest.engine.tasks), the job store keeps them in the plan and its
chunks as JSON, workers fetch them and the finalizer checks the bucket against them. The JSON form
is what plans stored before this type existed already hold, key for key, so a job planned by an
older release is still harvested and finalized by this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)  # slots: a big plan makes hundreds of thousands
class DownloadTask:
    url: str
    key: str  # the object key in the plan's bucket
    range: tuple[int, int] | None  # (offset, length) within the source, or None for all of it
    size: int | None  # the bytes expected, or None when only the origin knows
    name: str  # how error messages name it: the key under the asset's root, and the range
    content_type: str
    counts: bool = True  # a media segment (counted in progress), not an init section or key

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "key": self.key,
            "range": [self.range[0], self.range[1]] if self.range is not None else None,
            "size": self.size,
            "name": self.name,
            "content_type": self.content_type,
            "counts": self.counts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DownloadTask:
        """A task as stored; what a stored task leaves out gets the meaning it always had."""
        rng = data.get("range")
        size = data.get("size")
        return cls(
            url=str(data["url"]),
            key=str(data["key"]),
            range=(int(rng[0]), int(rng[1])) if rng else None,
            size=int(size) if size is not None else None,
            name=str(data.get("name") or data["key"]),
            content_type=str(data.get("content_type") or DEFAULT_CONTENT_TYPE),
            counts=bool(data.get("counts", True)),
        )
