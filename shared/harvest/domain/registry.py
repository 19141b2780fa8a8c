"""The channel registry: which channels and endpoints exist, and where their live playlists are.

The registry is a YAML file (see README, "Channel registry"). `load_registry` parses and checks it
once at start-up; a mistake there is a ConfigError that names the entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harvest.domain.urlpolicy import ScopedHeaders
from harvest.errors import ChannelNotFound, ConfigError, EndpointNotFound

# Endpoint protocol -> the manifest formats that read it, each from one endpoint URL field, in the
# order their readers run (engine.formats.sources). CMAF segments are read through the DASH MPD first
# (when there is one) so they are stored under names a SegmentTemplate can address.
PROTOCOLS: dict[str, tuple[tuple[str, str], ...]] = {
    "HLS": (("url", "HLS"),),
    "DASH": (("url", "DASH"),),
    "CMAF": (("dash_url", "DASH"), ("url", "HLS")),
}
# The path suffix that marks a URL as one format's manifest: a URL with another format's suffix is
# a registry mistake (an .mpd under an HLS endpoint), refused at load.
MANIFEST_SUFFIXES = {"HLS": ".m3u8", "DASH": ".mpd"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    protocol: str = "HLS"
    startover_window: int = 86400  # seconds of history the endpoint serves
    timeshift_query: str = ""  # e.g. "start={start}&end={end}" (epoch seconds)
    headers: dict[str, str] = field(default_factory=dict)  # sent only to the url's own origin
    dash_url: str = ""  # CMAF: the MPD over the same segments as the HLS master at `url`

    def __post_init__(self) -> None:
        # The headers are often the origin's secret: they carry the one origin they may go to, so the
        # HTTP client leaves them off any request a playlist or a redirect aims at another host.
        object.__setattr__(self, "headers", ScopedHeaders(self.headers, self.url))


@dataclass(frozen=True)
class StreamRule:
    """Maps a live stream (CSS stream_id / StreamLive channel_id) to a channel endpoint."""

    stream_id: str  # exact id, or a glob with '*'
    channel: str
    endpoint: str

    def matches(self, stream_id: str) -> bool:
        pattern = "^" + re.escape(self.stream_id).replace(r"\*", ".*") + "$"
        return re.match(pattern, stream_id) is not None


@dataclass(frozen=True)
class Channel:
    name: str
    id: str
    endpoints: dict[str, Endpoint]

    def endpoint(self, name: str) -> Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise EndpointNotFound(
                f"EndpointName {name!r} is not an endpoint of channel {self.name!r}"
                f" (known: {', '.join(sorted(self.endpoints)) or 'none'})"
            ) from None


@dataclass(frozen=True)
class Registry:
    channels: dict[str, Channel]
    streams: tuple[StreamRule, ...] = ()

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise ChannelNotFound(f"ChannelName {name!r} is not a known channel") from None

    def rule_for_stream(self, stream_id: str) -> StreamRule | None:
        return next((rule for rule in self.streams if rule.matches(stream_id)), None)


def _generated_channel_id(name: str) -> str:
    # Stable across restarts, so a ChannelId never changes under a user's feet.
    return "ch-" + hashlib.sha1(name.encode()).hexdigest()[:16]


def _endpoint(raw: Mapping[str, Any], where: str) -> Endpoint:
    name = str(raw.get("name", ""))
    if not _NAME.match(name):
        raise ConfigError(f"{where}: endpoint name must be 1-128 of A-Z a-z 0-9 _ -, got {name!r}")
    url = str(raw.get("url", ""))
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{where} endpoint {name!r}: url must be http(s), got {url!r}")
    protocol = str(raw.get("protocol", "HLS")).upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{where} endpoint {name!r}: protocol must be one of {', '.join(PROTOCOLS)}")
    window = raw.get("startover_window", 86400)
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        raise ConfigError(f"{where} endpoint {name!r}: startover_window must be a positive integer (s)")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError(f"{where} endpoint {name!r}: headers must be a mapping")
    dash_url = str(raw.get("dash_url") or "")
    if dash_url and (protocol != "CMAF" or urlsplit(dash_url).scheme not in ("http", "https")):
        raise ConfigError(f"{where} endpoint {name!r}: dash_url is an http(s) URL, for protocol CMAF only")
    _check_suffixes(protocol, {"url": url, "dash_url": dash_url}, f"{where} endpoint {name!r}")
    return Endpoint(
        name=name,
        url=url,
        protocol=protocol,
        dash_url=dash_url,
        startover_window=window,
        timeshift_query=str(raw.get("timeshift_query") or ""),
        headers={str(k): str(v) for k, v in headers.items()},
    )


def _check_suffixes(protocol: str, urls: Mapping[str, str], where: str) -> None:
    """Refuse a URL whose path names another format's manifest than the one that will read it."""
    for url_field, fmt in PROTOCOLS[protocol]:
        path = urlsplit(urls[url_field]).path.lower()
        for other, suffix in MANIFEST_SUFFIXES.items():
            if other != fmt and path.endswith(suffix):
                raise ConfigError(
                    f"{where}: {url_field} {urls[url_field]!r} names a {other} manifest ({suffix}),"
                    f" but protocol {protocol} reads {url_field} as {fmt}"
                    f" (rule: an endpoint's URL must be a manifest of its protocol's format)"
                )


def parse_registry(data: Any, source: str = "registry") -> Registry:
    if not isinstance(data, dict) or not isinstance(data.get("channels"), list):
        raise ConfigError(f"{source}: expected a mapping with a 'channels' list")
    channels: dict[str, Channel] = {}
    for i, raw in enumerate(data["channels"]):
        channel = _channel(raw, f"{source}: channels[{i}]")
        if channel.name in channels:
            raise ConfigError(f"{source}: channels[{i}]: channel {channel.name!r} is listed twice")
        channels[channel.name] = channel
    streams = data.get("streams") or []
    rules = tuple(_stream_rule(raw, f"{source}: streams[{i}]", channels) for i, raw in enumerate(streams))
    return Registry(channels=channels, streams=rules)


def _channel(raw: Any, where: str) -> Channel:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    name = str(raw.get("name", ""))
    if not _NAME.match(name):
        raise ConfigError(f"{where}: name must be 1-128 of A-Z a-z 0-9 _ -, got {name!r}")
    endpoints: dict[str, Endpoint] = {}
    for raw_ep in raw.get("endpoints") or []:
        if not isinstance(raw_ep, dict):
            raise ConfigError(f"{where}: each endpoint must be a mapping")
        ep = _endpoint(raw_ep, f"{where} channel {name!r}")
        if ep.name in endpoints:
            raise ConfigError(f"{where}: endpoint {ep.name!r} is listed twice")
        endpoints[ep.name] = ep
    return Channel(name=name, id=str(raw.get("id") or _generated_channel_id(name)), endpoints=endpoints)


def _stream_rule(raw: Any, where: str, channels: Mapping[str, Channel]) -> StreamRule:
    if not isinstance(raw, dict) or not raw.get("stream_id") or not raw.get("channel"):
        raise ConfigError(f"{where}: needs stream_id and channel")
    channel = channels.get(str(raw["channel"]))
    if channel is None:
        raise ConfigError(f"{where}: channel {raw['channel']!r} is not defined")
    endpoint = str(raw.get("endpoint") or next(iter(channel.endpoints), ""))
    if endpoint not in channel.endpoints:
        raise ConfigError(f"{where}: endpoint {endpoint!r} is not an endpoint of {channel.name!r}")
    return StreamRule(stream_id=str(raw["stream_id"]), channel=channel.name, endpoint=endpoint)


def load_registry(path: Path) -> Registry:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read channel registry {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"channel registry {path} is not valid YAML: {exc}") from exc
    return parse_registry(data, str(path))
