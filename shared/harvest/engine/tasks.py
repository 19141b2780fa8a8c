"""The download tasks of a plan: one per stored object, whatever format asked for it.

Formats tell the TaskBook what they need (a URL, maybe a byte range, a folder and a file name);
after every format has asked, `assign` gives each source object one key (byte ranges into one file
merged into contiguous runs) and one task. Formats then ask `locate` where their media ended up, so
two formats that read the same segment (a CMAF endpoint's HLS and DASH manifests) share one object.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from harvest.domain.download import DownloadTask
from harvest.engine.layout import KeyAllocator, Layout, content_type, relative_uri, stored_name, url_basename
from harvest.hls.model import ByteRange

AES_KEY_BYTES = 16  # RFC 8216 §5.2: an AES-128 key file is exactly 16 octets


@dataclass(slots=True)
class _Run:
    offset: int
    end: int
    key: str = ""
    counts: bool = False


# A 24 h plan of many renditions holds hundreds of thousands of these at once: slots, and the
# containers only byte-range sources use are made when first needed (an empty list or dict per
# object cost more than the object).
@dataclass(slots=True)
class _Resource:
    """Everything the renditions need from one source URL."""

    url: str
    folder: str  # the first rendition that needs it stores it
    ext: str  # the media's extension, for the stored name of byte-range runs
    whole_name: str | None = None  # set once any rendition needs the whole file
    whole_counts: bool = False
    ranges: list[tuple[int, int, bool]] | None = None  # (offset, end, is media)
    separate: dict[tuple[int, int], str] | None = None  # (offset, end) -> its own file
    whole_key: str | None = None
    runs: list[_Run] | None = None
    run_starts: list[int] | None = None


class TaskBook:
    """Collects needs across renditions, then assigns keys; `tasks()` makes one task per object.

    The tasks are made afresh on each call rather than kept: for a plan of 400,000 objects the
    DownloadTask list was a third of the planner's memory, and its callers only stream through it.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.resources: dict[str, _Resource] = {}
        self.keys: dict[str, str] = {}  # key file URL -> object key (copy_keys only)
        self.allocator = KeyAllocator()
        self.assigned = False

    def need(
        self,
        url: str,
        byterange: ByteRange | None,
        folder: str,
        filename: str,
        media: bool,
        ext: str,
        separate: bool = False,
    ) -> None:
        """Ask for `url` (or its `byterange`), stored in `folder` as `filename` when it is first asked for.

        Byte ranges into one resource are merged into contiguous runs named after the resource,
        unless `separate`: then the range is an object of its own named `filename` (a DASH
        SegmentBase segment becomes a file a SegmentTemplate can address, and a player that ignores
        byte ranges can still play it).
        """
        resource = self.resources.get(url)
        if resource is None:
            resource = self.resources[url] = _Resource(url=url, folder=folder, ext=ext)
        if byterange is None:
            if resource.whole_name is None:
                resource.whole_name, resource.folder = filename, folder
            resource.whole_counts = resource.whole_counts or media
        else:
            if resource.ranges is None:
                resource.ranges = []
            resource.ranges.append((byterange.offset, byterange.end, media))
            if separate:
                if resource.separate is None:
                    resource.separate = {}
                resource.separate.setdefault((byterange.offset, byterange.end), filename)

    @property
    def downloads(self) -> int:
        """Objects asked for so far (each becomes at least one task)."""
        return len(self.resources) + len(self.keys)

    def need_key(self, url: str) -> None:
        if url not in self.keys:
            self.keys[url] = f"{self.layout.keys_folder}{len(self.keys)}.key"

    def assign(self) -> None:
        """Give every object its key, in the order the objects were first asked for."""
        for resource in self.resources.values():
            if resource.whole_name is not None:
                self._whole(resource, resource.whole_name)
            else:
                self._ranged(resource)
        for key in self.keys.values():
            self.allocator.claim("", key)
        self.allocator = KeyAllocator()  # every key is given: the set of used ones is not needed again
        self.assigned = True

    def task_count(self) -> int:
        """How many tasks `tasks()` yields, counted without making them."""
        assert self.assigned, "task_count() before assign()"
        objects = sum(1 if r.whole_key is not None else len(r.runs or ()) for r in self.resources.values())
        return objects + len(self.keys)

    def tasks(self) -> Iterator[DownloadTask]:
        """One task per object, in assignment order (the same order every time)."""
        assert self.assigned, "tasks() before assign()"
        for resource in self.resources.values():
            if resource.whole_key is not None:
                yield self._task(resource.url, resource.whole_key, None, None, resource.whole_counts)
            else:
                for run in resource.runs or ():
                    length = run.end - run.offset
                    yield self._task(resource.url, run.key, (run.offset, length), length, run.counts)
        for url, key in self.keys.items():
            yield self._task(url, key, None, AES_KEY_BYTES, counts=False)

    def _whole(self, resource: _Resource, filename: str) -> None:
        # Any byte ranges into a file that is also stored whole point into that one object.
        resource.whole_key = self.allocator.claim(resource.folder, filename)
        resource.whole_counts = resource.whole_counts or any(
            is_media for _, _, is_media in resource.ranges or ()
        )
        # Read by nothing once the key is given.
        resource.whole_name = None
        resource.ranges = resource.separate = None

    def _ranged(self, resource: _Resource) -> None:
        runs: list[_Run] = []
        separate = resource.separate or {}
        for offset, end, media in sorted(resource.ranges or ()):
            if (offset, end) in separate:
                if not (runs and (runs[-1].offset, runs[-1].end) == (offset, end)):
                    runs.append(_Run(offset=offset, end=end, counts=media))
                continue
            if runs and offset <= runs[-1].end and (runs[-1].offset, runs[-1].end) not in separate:
                runs[-1].end = max(runs[-1].end, end)
                runs[-1].counts = runs[-1].counts or media
            else:
                runs.append(_Run(offset=offset, end=end, counts=media))
        basename = stored_name(resource.url, resource.ext)
        stem, dot, ext = basename.rpartition(".")
        for run in runs:
            # One run keeps the source's name; several are told apart by where they start.
            if (run.offset, run.end) in separate:
                filename = separate[(run.offset, run.end)]
            elif len(runs) == 1:
                filename = basename
            else:
                filename = f"{stem}_{run.offset}.{ext}" if dot else f"{basename}_{run.offset}"
            run.key = self.allocator.claim(resource.folder, filename)
        resource.runs = runs
        resource.run_starts = [run.offset for run in runs]
        resource.ranges = None

    def _task(
        self, url: str, key: str, rng: tuple[int, int] | None, size: int | None, counts: bool
    ) -> DownloadTask:
        name = key[len(self.layout.root) :] if key.startswith(self.layout.root) else key
        if rng is not None:
            name += f" (bytes {rng[0]}-{rng[0] + rng[1] - 1} of {url_basename(url)})"
        return DownloadTask(url, key, rng, size, name, content_type(key), counts)

    def locate(self, url: str, byterange: ByteRange | None) -> tuple[str, ByteRange | None]:
        """The stored object holding (url, byterange), and the range re-based to that object.

        A range stored as an object of its own (`need(..., separate=True)`) is that whole object: None.
        """
        resource = self.resources[url]
        if resource.whole_key is not None:
            return resource.whole_key, byterange
        assert byterange is not None
        assert resource.runs is not None
        assert resource.run_starts is not None
        run = resource.runs[bisect.bisect_right(resource.run_starts, byterange.offset) - 1]
        if (byterange.offset, byterange.end) == (run.offset, run.end) and (
            run.offset,
            run.end,
        ) in (resource.separate or {}):
            return run.key, None
        return run.key, ByteRange(byterange.length, byterange.offset - run.offset)


class ObjectLocator:
    """Relative URIs of stored objects as seen from a manifest stored in `folder`."""

    def __init__(self, book: TaskBook, folder: str) -> None:
        self.book = book
        self.folder = folder
        self.prefixes: dict[str, str] = {}  # object folder -> its relative path from `folder`

    def relative(self, key: str) -> str:
        # posixpath.relpath costs ~15 us; an I-frame playlist pointing into another rendition's
        # folder would pay it per segment, so the answer is kept per object folder.
        folder, _, name = key.rpartition("/")
        prefix = self.prefixes.get(folder)
        if prefix is None:
            probe = f"{folder}/x" if folder else "x"
            prefix = self.prefixes[folder] = relative_uri(probe, self.folder)[:-1]
        return prefix + name

    def located(self, url: str, byterange: ByteRange | None) -> tuple[str, ByteRange | None]:
        """The relative URI of the object holding (url, byterange), and the range within it."""
        key, rebased = self.book.locate(url, byterange)
        return self.relative(key), rebased
