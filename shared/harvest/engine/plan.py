"""The plan of a harvest job: what to download where, and the manifests to write at the end.

`build_plan` has each format that serves the endpoint (engine.formats) read its live manifests
through the Origin port and select the window, and returns a Plan: download tasks (deduplicated,
byte ranges merged into runs) plus the text of every output manifest. The Plan is plain JSON so
the job store keeps it; workers run its tasks in chunks and the finalizer writes its manifests.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from harvest.domain.download import DownloadTask
from harvest.domain.registry import Endpoint
from harvest.engine.context import DEFAULT_PLAN_LIMITS, MAX_WARNINGS, PlanContext, PlanLimits, playlist_url
from harvest.engine.formats import DERIVED, FORMATS, derived, manifest_keys, sources
from harvest.engine.layout import content_type, layout_for
from harvest.engine.tasks import TaskBook
from harvest.errors import PlaylistError
from harvest.ports import DestinationLike, Origin

__all__ = ["Chunks", "Plan", "PlanLimits", "build_plan", "playlist_url"]

PLAN_FORMAT = 1


# A plan's JSON says so when its tasks are kept only in its chunk rows (the store reads them back
# from there): a 24 h plan's task list was stored twice, and read whole by the finalizer.
TASKS_IN_CHUNKS = "tasks_in_chunks"


@dataclass(frozen=True)
class Plan:
    """Download tasks and output playlists of one job.

    Each task (harvest.domain.download.DownloadTask) stores one object in `bucket`.
    """

    bucket: str
    master_key: str
    playlists: dict[str, str]  # object key -> manifest text; the Manifest itself is at `master_key`
    tasks: Sequence[DownloadTask] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # malformed tags outside the window, etc.

    @property
    def segment_count(self) -> int:
        return sum(1 for task in self.tasks if task.counts)

    def to_json(self, with_tasks: bool = True) -> dict[str, Any]:
        """The plan as stored; without its tasks (`with_tasks=False`) when the chunks hold them."""
        data: dict[str, Any] = {
            "format": PLAN_FORMAT,
            "bucket": self.bucket,
            "master_key": self.master_key,
            "playlists": dict(self.playlists),
        }
        if with_tasks:
            data["tasks"] = [task.to_json() for task in self.tasks]
        else:
            data[TASKS_IN_CHUNKS] = True
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            bucket=str(data["bucket"]),
            master_key=str(data["master_key"]),
            playlists={str(k): str(v) for k, v in data["playlists"].items()},
            tasks=[DownloadTask.from_json(task) for task in data.get("tasks", ())],
            warnings=[str(w) for w in data.get("warnings", ())],
        )

    def chunks(self, max_tasks: int, max_bytes: int) -> Chunks:
        """Split the tasks, in order, into chunks of at most `max_tasks` tasks and `max_bytes` known bytes.

        Deterministic (the same plan always splits the same way); a single task larger than
        `max_bytes` gets a chunk of its own. Tasks of unknown size count 0 bytes. The chunks are
        made as they are read, so a big plan is never held as lists of tasks all at once.
        """
        max_tasks = max(1, max_tasks)
        stops: list[int] = []
        count = current_bytes = 0
        for index, task in enumerate(self.tasks):
            size = task.size or 0
            if count and (count >= max_tasks or current_bytes + size > max_bytes):
                stops.append(index)
                count = current_bytes = 0
            count += 1
            current_bytes += size
        if count:
            stops.append(len(self.tasks))
        return Chunks(self.tasks, stops)


class Chunks(Sequence[list[DownloadTask]]):
    """A plan's tasks cut into chunks at fixed task indexes; each chunk is a list made when read."""

    def __init__(self, tasks: Sequence[DownloadTask], stops: list[int]) -> None:
        self._tasks = tasks
        self._stops = stops

    def __len__(self) -> int:
        return len(self._stops)

    def __iter__(self) -> Iterator[list[DownloadTask]]:
        tasks = iter(self._tasks)
        start = 0
        for stop in self._stops:
            yield list(itertools.islice(tasks, stop - start))
            start = stop

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=False))


    @overload
    def __getitem__(self, index: int) -> list[DownloadTask]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[DownloadTask]]: ...

    def __getitem__(self, index: int | slice) -> list[DownloadTask] | list[list[DownloadTask]]:
        if isinstance(index, slice):
            return list(itertools.islice(self, *index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = self._stops[index - 1] if index else 0
        return list(itertools.islice(iter(self._tasks), start, self._stops[index]))


class PlannedTasks(Sequence[DownloadTask]):
    """The tasks of a plan just built, made from the TaskBook on each pass instead of held in a list.

    A pass costs a few microseconds per task; a list of 400,000 tasks cost about 100 MB.
    """

    def __init__(self, book: TaskBook) -> None:
        self._book = book
        self._count = book.task_count()

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[DownloadTask]:
        return self._book.tasks()

    def __eq__(self, other: object) -> bool:
        # Equal to any sequence of the same tasks, as the list a plan read back from JSON holds.
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(other) == self._count and all(a == b for a, b in zip(self, other, strict=False))


    @overload
    def __getitem__(self, index: int) -> DownloadTask: ...

    @overload
    def __getitem__(self, index: slice) -> list[DownloadTask]: ...

    def __getitem__(self, index: int | slice) -> DownloadTask | list[DownloadTask]:
        if isinstance(index, slice):
            return list(itertools.islice(self, *index.indices(self._count)))
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return next(itertools.islice(self._book.tasks(), index, None))


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
        tasks=PlannedTasks(book),
        warnings=warnings,
    )


def manifest_content_type(key: str) -> str:
    """The Content-Type a manifest object is stored with, by its format's extension."""
    for fmt in FORMATS.values():
        if key.endswith(fmt.EXTENSION):
            return fmt.CONTENT_TYPE
    return content_type(key)
