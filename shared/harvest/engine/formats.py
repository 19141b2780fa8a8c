"""The format seam: which manifest formats read an endpoint and write its VOD.

A format is a module with NAME, EXTENSION, CONTENT_TYPE and `read(ctx, url, book) -> Reading`;
the Reading's `write(book, layout, manifest_key)` returns the format's manifests by object key.
FORMATS lists them; the registry's PROTOCOLS table says which formats serve each endpoint
protocol, and from which endpoint URL. A third format is one module here and one row in each table.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from harvest.domain.registry import PROTOCOLS, Endpoint
from harvest.engine.context import PlanContext
from harvest.engine.layout import Layout
from harvest.engine.tasks import TaskBook
from harvest.errors import ConfigError
from harvest.formats import dash, dash_from_hls, hls


class Reading(Protocol):
    """One format's view of the window, kept until the book has assigned object keys."""

    warnings: list[str]

    def write(self, book: TaskBook, layout: Layout, manifest_key: str) -> dict[str, str]: ...


class Format(Protocol):
    """What a format module provides (harvest.formats.hls, harvest.formats.dash)."""

    NAME: str
    EXTENSION: str
    CONTENT_TYPE: str

    def read(self, ctx: PlanContext, url: str, book: TaskBook) -> Reading: ...


FORMATS: dict[str, Format] = {hls.NAME: hls, dash.NAME: dash}

# A format a protocol promises but the endpoint gives no URL for, written from another format's
# reading: (protocol, format) -> (the reading's format, the writer). A CMAF endpoint without a
# dash_url still gets its MPD, over the objects its HLS playlists name.
DERIVED: dict[tuple[str, str], tuple[str, Callable[[Any, TaskBook, str], str]]] = {
    ("CMAF", dash.NAME): (hls.NAME, dash_from_hls.write),
}


def sources(endpoint: Endpoint) -> Iterator[tuple[Format, str]]:
    """(format, URL) pairs that read `endpoint`, in the order their readers run.

    The first reader to ask for an object names it, so a CMAF endpoint lists DASH first: its
    segments are then stored under their DASH numbers, which a SegmentTemplate can address.
    """
    for field, name in PROTOCOLS[endpoint.protocol]:
        url = getattr(endpoint, field)
        if url:
            yield FORMATS[name], url


def derived(endpoint: Endpoint, name: str, read: set[str]) -> bool:
    """Whether format `name` is written for `endpoint` from another format's reading (see DERIVED)."""
    row = DERIVED.get((endpoint.protocol, name))
    return name not in read and row is not None and row[0] in read


def manifest_keys(endpoint: Endpoint, master_key: str) -> dict[str, str]:
    """The object key of each format's manifest: the Manifest for its own format, siblings beside it.

    `main.m3u8` on a CMAF endpoint gives {"HLS": "main.m3u8", "DASH": "main.mpd"}; `main.mpd` the
    other way round. A Manifest whose extension names none of them belongs to the format of the
    endpoint's `url`.
    """
    rows = [(field, name) for field, name in PROTOCOLS[endpoint.protocol] if getattr(endpoint, field)]
    if not rows:
        raise ConfigError(f"endpoint {endpoint.name!r} has no URL for protocol {endpoint.protocol}")
    read = {name for _, name in rows}
    rows += [(field, name) for field, name in PROTOCOLS[endpoint.protocol] if derived(endpoint, name, read)]
    stem, ext = posixpath.splitext(master_key)
    own = next((name for _, name in rows if ext.lower() == FORMATS[name].EXTENSION), None)
    own = own or next((name for field, name in rows if field == "url"), rows[0][1])
    return {name: master_key if name == own else stem + FORMATS[name].EXTENSION for _, name in rows}
