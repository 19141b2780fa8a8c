"""The five harvest-job actions (and one extension), plus the channel actions of channels.py: each
one's parameters (names and types from the SDK's request models, mdp/v20200527/models.py) and the
use case it runs.

Parameters are checked against the model before any rule: an unknown name is UnknownParameter, a
required one absent is MissingParameter, a value of the wrong JSON type is InvalidParameter naming
the field and the type. GET requests carry every value as a string; integers are converted here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harvest.api import channels
from harvest.domain.access import Caller
from harvest.domain.registry import Registry
from harvest.domain.validation import CreateParams
from harvest.errors import InvalidParameter, MissingParameter, UnknownParameter
from harvest.ports import JobRecords, Relay
from harvest.settings import Settings
from harvest.usecases import api_jobs

_INTEGER = re.compile(r"-?[0-9]{1,18}")
PROGRESS_ACTION = "DescribeStreamPackageHarvestJobProgress"  # the CLI's `jobs wait` polls it
CANCEL_ACTION = "CancelStreamPackageHarvestJob"  # our extension: `harvest cancel ID`


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # str, int or list (a list of strings)
    required: bool = False


@dataclass(frozen=True)
class ActionContext:
    """What an action may use for one request."""

    settings: Settings
    registry: Registry
    store: JobRecords
    relay: Relay
    now: float
    caller: Caller = api_jobs.ANYONE  # the authenticated key and its scope


Payload = dict[str, Any]


@dataclass(frozen=True)
class Action:
    name: str
    params: tuple[Param, ...]
    run: Callable[[ActionContext, Payload], Payload]


# --- parameter checking -------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _typed(param: Param, value: Any, from_query: bool) -> Any:
    if param.kind is str:
        if isinstance(value, str):
            return value
        expected = "a string"
    elif param.kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_query and isinstance(value, str) and _INTEGER.fullmatch(value):
            return int(value)
        expected = "an integer"
    else:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        expected = "an array of strings"
    got = f"{value[:32]!r}" if from_query and isinstance(value, str) else _json_type(value)
    raise InvalidParameter(f"{param.name} must be {expected}, got {got}")


def parse_params(action: Action, raw: Mapping[str, Any], from_query: bool) -> Payload:
    known = {param.name for param in action.params}
    for name in raw:
        if name not in known:
            raise UnknownParameter(
                f"{name[:64]!r} is not a parameter of {action.name}"
                f" (its parameters: {', '.join(param.name for param in action.params)})"
            )
    params: Payload = {}
    for param in action.params:
        value = raw.get(param.name)
        if value is None:  # absent, or JSON null: the SDK drops unset fields the same way
            if param.required:
                raise MissingParameter(f"{param.name} is required by {action.name}")
            continue
        params[param.name] = _typed(param, value, from_query)
    return params


# --- the actions --------------------------------------------------------------------------------


def _create(ctx: ActionContext, params: Payload) -> Payload:
    request = CreateParams(
        id=params["ID"],
        channel_name=params["ChannelName"],
        endpoint_name=params["EndpointName"],
        time_format=params["TimeFormat"],
        start_time=params["StartTime"],
        end_time=params["EndTime"],
        destination=params.get("Destination"),
        manifest=params.get("Manifest"),
        callback_url=params.get("CallbackURL"),
    )
    job = api_jobs.create_job(ctx.store, ctx.relay, ctx.registry, ctx.settings, request, ctx.now, ctx.caller)
    return {"Info": job.to_api()}


def _describe(ctx: ActionContext, params: Payload) -> Payload:
    return {"Info": api_jobs.describe_job(ctx.store, params["ID"], ctx.caller).to_api()}


DEFAULT_PAGE_SIZE = 10


def _describe_many(ctx: ActionContext, params: Payload) -> Payload:
    page_num = params.get("PageNum", 1)
    page_size = params.get("PageSize", DEFAULT_PAGE_SIZE)
    page = api_jobs.list_jobs(ctx.store, params.get("ChannelName"), page_num, page_size, ctx.caller)
    return {
        "Infos": [job.to_api() for job in page.jobs],
        "PageNum": page_num,
        "PageSize": page_size,
        "TotalNum": page.total,
    }


def _progress(ctx: ActionContext, params: Payload) -> Payload:
    """Our one extension action: live progress for `harvest jobs wait` (not part of StreamPackage)."""
    job = api_jobs.describe_job(ctx.store, params["ID"], ctx.caller)
    # Exact counters move when a chunk completes; the live ones move during it but may count a
    # redelivered chunk twice, so they are capped at the total.
    live_segments = int(job.extra.get("live_segments", 0))
    segments = min(job.segments_total, max(job.segments_done, live_segments))
    nbytes = max(job.bytes_done, int(job.extra.get("live_bytes", 0)))
    return {
        "ID": job.id,
        "Status": job.status.value,
        "Phase": job.phase.value,
        "ChunksTotal": job.chunks_total,
        "ChunksDone": job.chunks_done,
        "SegmentsTotal": job.segments_total,
        "SegmentsDone": segments,
        "BytesDone": nbytes,
        "ErrMessage": job.err_message,
        "Warnings": [str(warning) for warning in job.extra.get("warnings", ())],  # see hls.parse
    }


def _cancel(ctx: ActionContext, params: Payload) -> Payload:
    """Our second extension: stop a Running job (Failed, 'cancelled by <SecretId> at <time>')."""
    job = api_jobs.cancel_job(ctx.store, ctx.relay, params["ID"], ctx.caller, ctx.now)
    return {"Info": job.to_api()}


def _delete(ctx: ActionContext, params: Payload) -> Payload:
    api_jobs.delete_job(ctx.store, params["ID"], ctx.caller)
    return {}


def _delete_many(ctx: ActionContext, params: Payload) -> Payload:
    api_jobs.delete_jobs(ctx.store, params["IDs"], ctx.caller)
    return {}


def _action(
    name: str, run: Callable[[ActionContext, Payload], Payload], *params: Param
) -> tuple[str, Action]:
    return name, Action(name, params, run)


ACTIONS: dict[str, Action] = dict(
    [
        _action(
            "CreateStreamPackageHarvestJob",
            _create,
            Param("ID", str, True),
            Param("ChannelName", str, True),
            Param("EndpointName", str, True),
            Param("TimeFormat", str, True),
            Param("StartTime", str, True),
            Param("EndTime", str, True),
            Param("Destination", str),
            Param("Manifest", str),
            Param("CallbackURL", str),
        ),
        _action("DescribeStreamPackageHarvestJob", _describe, Param("ID", str, True)),
        _action(
            "DescribeStreamPackageHarvestJobs",
            _describe_many,
            Param("ChannelName", str),
            Param("PageNum", int),
            Param("PageSize", int),
        ),
        _action("DeleteStreamPackageHarvestJob", _delete, Param("ID", str, True)),
        _action("DeleteStreamPackageHarvestJobs", _delete_many, Param("IDs", list, True)),
        _action(PROGRESS_ACTION, _progress, Param("ID", str, True)),
        _action(
            "DescribeStreamPackageChannels",
            channels.describe_channels,
            Param("PageNum", int),
            Param("PageSize", int),
        ),
        _action("DescribeStreamPackageChannel", channels.describe_channel, Param("Id", str, True)),
        _action(channels.SETTINGS_ACTION, channels.describe_harvest_settings),
        _action(CANCEL_ACTION, _cancel, Param("ID", str, True)),
    ]
)
