"""StreamPackage's read-only channel actions, answered from the channel registry.

`DescribeStreamPackageChannels` and `DescribeStreamPackageChannel` return ChannelInfo exactly as
the SDK's models (mdp/v20200527/models.py) shape it, so the SDK deserialises them without a
warning. The registry knows a channel's name and id and, per endpoint, its name, URL, protocol
and startover window; every other field is empty (empty string, list, false, 0 or null):

- ChannelInfo.Protocol: the endpoints' protocol when they all share one, else empty;
- Points.Inputs: empty (the registry knows where we read, not what feeds the channel);
- EndpointInfo.Manifest: the URL's file name without extension ("main" for .../main.m3u8);
- TimeShiftEnable: true (a harvestable endpoint has a startover window); TimeShiftDuration:
  the window in whole days, rounded up, as StreamPackage counts it. The exact window in seconds
  is in our extension action DescribeStreamPackageHarvestSettings;
- AuthInfo: empty lists and AuthKey "" (an origin header the registry holds is a secret; never
  returned).

DescribeStreamPackageHarvestSettings (our extension, like the progress action) tells a client
such as the console what the Create rules depend on: the region, the default destination, the
allowed buckets, the longest window and each endpoint's exact startover window.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harvest.domain.registry import Channel, Endpoint
from harvest.domain.validation import MAX_WINDOW_SECONDS
from harvest.errors import ChannelNotFound, FieldError

if TYPE_CHECKING:  # actions.py imports this module to register the actions below
    from harvest.api.actions import ActionContext

MAX_CHANNEL_PAGE = 1000  # PageNum and PageSize: "Value range: [1, 1000]" in the SDK's model
DEFAULT_CHANNEL_PAGE_SIZE = 10
SETTINGS_ACTION = "DescribeStreamPackageHarvestSettings"

Payload = dict[str, Any]
DAY_SECONDS = 86400


def _manifest_name(url: str) -> str:
    return PurePosixPath(urlsplit(url).path).stem


def endpoint_info(endpoint: Endpoint) -> Payload:
    return {
        "Name": endpoint.name,
        "Url": endpoint.url,
        "AuthInfo": {"WhiteIpList": [], "BlackIpList": [], "AuthKey": ""},
        "Protocol": endpoint.protocol,
        "Manifest": _manifest_name(endpoint.url),
        "TimeShiftEnable": True,
        "TimeShiftDuration": math.ceil(endpoint.startover_window / DAY_SECONDS),
        "SSAIEnable": False,
        "SSAIInfo": None,
        "CustomUrlParamIndex": 0,
        "CustomUrlParam": "",
        "DRMEnabled": False,
        "DRMInfo": None,
        "AbsolutePathEnable": False,
    }


def channel_info(channel: Channel) -> Payload:
    endpoints = [channel.endpoints[name] for name in sorted(channel.endpoints)]
    protocols = {endpoint.protocol for endpoint in endpoints}
    return {
        "Id": channel.id,
        "Name": channel.name,
        "Protocol": protocols.pop() if len(protocols) == 1 else "",
        "Points": {"Inputs": [], "Endpoints": [endpoint_info(endpoint) for endpoint in endpoints]},
        "CacheInfo": None,
    }


def _check_channel_page(page_num: int, page_size: int) -> None:
    if not 1 <= page_num <= MAX_CHANNEL_PAGE:
        raise FieldError("PageNum", f"PageNum is {page_num}; it must be between 1 and {MAX_CHANNEL_PAGE}")
    if not 1 <= page_size <= MAX_CHANNEL_PAGE:
        raise FieldError("PageSize", f"PageSize is {page_size}; it must be between 1 and {MAX_CHANNEL_PAGE}")


def list_channels(channels: dict[str, Channel], page_num: int, page_size: int) -> Payload:
    """One page of the channels, by name; a page past the end is empty."""
    _check_channel_page(page_num, page_size)
    ordered = [channels[name] for name in sorted(channels)]
    first = (page_num - 1) * page_size
    return {
        "Infos": [channel_info(channel) for channel in ordered[first : first + page_size]],
        "PageNum": page_num,
        "PageSize": page_size,
        "TotalNum": len(ordered),
        "TotalPage": math.ceil(len(ordered) / page_size),
    }


def find_channel(channels: dict[str, Channel], channel_id: str) -> Payload:
    """The channel whose Id is `channel_id` (StreamPackage names a channel by Id here, not Name)."""
    for channel in channels.values():
        if channel.id == channel_id:
            return channel_info(channel)
    raise ChannelNotFound(f"Id {channel_id[:128]!r} is not the Id of a known channel")


def harvest_settings(
    channels: dict[str, Channel], region: str, default_destination: str, allowed_buckets: tuple[str, ...]
) -> Payload:
    return {
        "Region": region,
        "DefaultDestination": default_destination,
        "AllowedBuckets": list(allowed_buckets),
        "MaxDuration": MAX_WINDOW_SECONDS,
        "Endpoints": [
            {
                "ChannelName": channel.name,
                "ChannelId": channel.id,
                "EndpointName": endpoint.name,
                "Protocol": endpoint.protocol,
                "StartoverWindow": endpoint.startover_window,
            }
            for channel in sorted(channels.values(), key=lambda item: item.name)
            for endpoint in sorted(channel.endpoints.values(), key=lambda item: item.name)
        ],
    }


# --- the actions (registered in actions.ACTIONS) -------------------------------------------------


def _visible(ctx: ActionContext) -> dict[str, Channel]:
    """The channels the caller's key may see (all of them for an unscoped key)."""
    return {name: channel for name, channel in ctx.registry.channels.items() if ctx.caller.sees_channel(name)}


def describe_channels(ctx: ActionContext, params: Payload) -> Payload:
    page_num = params.get("PageNum", 1)
    page_size = params.get("PageSize", DEFAULT_CHANNEL_PAGE_SIZE)
    return list_channels(_visible(ctx), page_num, page_size)


def describe_channel(ctx: ActionContext, params: Payload) -> Payload:
    info = find_channel(ctx.registry.channels, params["Id"])
    ctx.caller.check_channel(info["Name"])
    return {"Info": info}


def describe_harvest_settings(ctx: ActionContext, params: Payload) -> Payload:
    settings = ctx.settings
    return harvest_settings(
        _visible(ctx), settings.region, settings.default_destination, settings.destination_buckets
    )
