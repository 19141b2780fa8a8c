"""The plan of a harvest job: what to download where, and the manifests to write at the end.

`build_plan` has each format that serves the endpoint (engine.formats) read its live manifests
through the Origin port and select the window, and returns a Plan: download tasks (deduplicated,
byte ranges merged into runs) plus the text of every output manifest. The Plan is plain JSON so
the job store keeps it; workers run its tasks in chunks and the finalizer writes its manifests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harvest.domain.download import DownloadTask
from harvest.domain.registry import Endpoint
from harvest.engine.context import DEFAULT_PLAN_LIMITS, MAX_WARNINGS, PlanContext, PlanLimits, playlist_url
from harvest.engine.formats import DERIVED, FORMATS, derived, manifest_keys, sources
from harvest.engine.layout import content_type, layout_for
from harvest.engine.tasks import TaskBook
from harvest.errors import PlaylistError
from harvest.ports import DestinationLike, Origin

__all__ = ["Plan", "PlanLimits", "build_plan", "playlist_url"]

PLAN_FORMAT = 1


@dataclass(frozen=True)
class Plan:
    """Download tasks and output playlists of one job.

    Each task (harvest.domain.download.DownloadTask) stores one object in `bucket`.
    """

    bucket: str
    master_key: str
    playlists: dict[str, str]  # object key -> manifest text; the Manifest itself is at `master_key`
    tasks: list[DownloadTask] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # malformed tags outside the window, etc.

    @property
    def segment_count(self) -> int:
        return sum(1 for task in self.tasks if task.counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "bucket": self.bucket,
            "master_key": self.master_key,
            "playlists": dict(self.playlists),
            "tasks": [task.to_json() for task in self.tasks],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            bucket=str(data["bucket"]),
            master_key=str(data["master_key"]),
            playlists={str(k): str(v) for k, v in data["playlists"].items()},
            tasks=[DownloadTask.from_json(task) for task in data["tasks"]],
            warnings=[str(w) for w in data.get("warnings", ())],
        )

    def chunks(self, max_tasks: int, max_bytes: int) -> list[list[DownloadTask]]:
        """Split the tasks, in order, into chunks of at most `max_tasks` tasks and `max_bytes` known bytes.

        Deterministic (the same plan always splits the same way); a single task larger than
        `max_bytes` gets a chunk of its own. Tasks of unknown size count 0 bytes.
        """
        max_tasks = max(1, max_tasks)
        chunks: list[list[DownloadTask]] = []
        current: list[DownloadTask] = []
        current_bytes = 0
        for task in self.tasks:
            size = task.size or 0
            if current and (len(current) >= max_tasks or current_bytes + size > max_bytes):
                chunks.append(current)
                current, current_bytes = [], 0
            current.append(task)
            current_bytes += size
        if current:
            chunks.append(current)
        return chunks


# --- the planner --------------------------------------------------------------------------------


def build_plan(
    origin: Origin,
    endpoint: Endpoint,
    start: float,
    end: float,
    destination: DestinationLike,
    manifest: str,
    now: float,
    copy_keys: bool = False,
    pdt_fallback: bool = True,
    limits: PlanLimits = DEFAULT_PLAN_LIMITS,
) -> Plan:
    """Read the endpoint's manifests and plan the VOD for [start, end) at destination/manifest.

    Each format that serves the endpoint's protocol (one for HLS and DASH, both for CMAF) reads
    its live manifests and tells one TaskBook what it needs, so an object two formats share is
    stored once; each then writes its manifests (engine.formats.manifest_keys says where).

    Raises PlaylistError (a HarvestFailure) naming the manifest or rendition when the job cannot
    produce a complete asset.
    """
    layout = layout_for(destination.prefix, manifest)
    ctx = PlanContext(origin, endpoint, start, end, now, copy_keys, pdt_fallback, limits)
    book = TaskBook(layout)
    readings = [(fmt, fmt.read(ctx, url, book)) for fmt, url in sources(endpoint)]
    if book.downloads > limits.max_tasks:
        raise PlaylistError(
            f"the window needs {book.downloads} downloads, more than the"
            f" {limits.max_tasks} one job may plan (the limit, HARVEST_MAX_PLAN_TASKS)"
        )
    book.assign()

    keys = manifest_keys(endpoint, layout.master_key)
    manifests: dict[str, str] = {}
    warnings: list[str] = []
    for fmt, reading in readings:
        manifests.update(reading.write(book, layout, keys[fmt.NAME]))
        warnings += reading.warnings
    by_name = {fmt.NAME: reading for fmt, reading in readings}
    for name, key in keys.items():
        if derived(endpoint, name, set(by_name)):
            source, writer = DERIVED[(endpoint.protocol, name)]
            manifests[key] = writer(by_name[source], book, key)
    if len(warnings) > MAX_WARNINGS:
        warnings[MAX_WARNINGS:] = [f"... and {len(warnings) - MAX_WARNINGS} more"]
    return Plan(
        bucket=destination.bucket,
        master_key=layout.master_key,
        playlists=manifests,
        tasks=book.tasks,
        warnings=warnings,
    )


def manifest_content_type(key: str) -> str:
    """The Content-Type a manifest object is stored with, by its format's extension."""
    for fmt in FORMATS.values():
        if key.endswith(fmt.EXTENSION):
            return fmt.CONTENT_TYPE
    return content_type(key)
