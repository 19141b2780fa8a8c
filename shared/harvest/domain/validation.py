"""Rules for a CreateStreamPackageHarvestJob request, checked before anything is stored.

Pure functions of the request, the registry, the settings and `now`. Each broken rule raises a
named error whose code names the field (FieldError) and whose message says which rule and why,
so an SDK user can fix the request from the message alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from harvest.domain.destination import CosLocation, normalize_manifest, parse_destination
from harvest.domain.registry import MANIFEST_SUFFIXES, PROTOCOLS, Channel, Endpoint, Registry
from harvest.domain.timeparse import TimeFormat, parse_time, parse_time_format, shown
from harvest.domain.urlpolicy import Resolver, UrlPolicy, local_names_only, system_resolver
from harvest.errors import (
    VALUE_REFUSED,
    FieldError,
    MissingParameter,
    TargetRefused,
)
from harvest.settings import Settings

_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # the registry's rule for channel and endpoint names
MAX_WINDOW_SECONDS = 24 * 3600
MAX_CALLBACK_URL_CHARS = 2048
DEFAULT_MANIFEST_STEM = "index"  # + the endpoint's manifest suffix: index.m3u8, index.mpd


@dataclass(frozen=True)
class CreateParams:
    """A Create request's fields, already type-checked (strings), not yet validated."""

    id: str
    channel_name: str
    endpoint_name: str
    time_format: str
    start_time: str
    end_time: str
    destination: str | None = None
    manifest: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class ValidCreate:
    """A Create request that passed every rule. Text fields echo what the user sent (or the default)."""

    id: str
    channel: Channel
    endpoint: Endpoint
    time_format: str  # canonical: "Epoch seconds" or "ISO-8601"
    start_time: str
    end_time: str
    start_epoch: float
    end_epoch: float
    destination: str
    location: CosLocation
    manifest: str
    manifest_key: str  # normalised object key under location.prefix
    callback_url: str


def check_job_id(value: str, field: str = "ID") -> str:
    if not _ID.fullmatch(value):
        raise FieldError(
            field,
            f"{field} {shown(value)} is invalid: use 1-128 characters of A-Z, a-z, 0-9, '_' and '-'",
            code="InvalidParameter.Id",
        )
    return value


LIVE_JOB_PREFIX = "live-"  # IDs of jobs created from live events (harvest.usecases.live_events)


def check_not_reserved(job_id: str) -> None:
    """API callers may not take a live-event job ID, or a stop event's job could be squatted."""
    if job_id.startswith(LIVE_JOB_PREFIX):
        raise FieldError(
            "ID",
            f"ID {shown(job_id)} starts with {LIVE_JOB_PREFIX!r}, which is reserved for the jobs"
            " CSS / StreamLive live events create; choose another ID",
            code="InvalidParameter.Id",
        )


def find_channel(registry: Registry, name: str) -> Channel:
    if not _NAME.fullmatch(name):
        raise FieldError(
            "ChannelName", f"ChannelName {shown(name)} is invalid: names are 1-128 of A-Z a-z 0-9 _ -"
        )
    return registry.channel(name)


def find_endpoint(channel: Channel, name: str) -> Endpoint:
    if not _NAME.fullmatch(name):
        raise FieldError(
            "EndpointName", f"EndpointName {shown(name)} is invalid: names are 1-128 of A-Z a-z 0-9 _ -"
        )
    return channel.endpoint(name)


def check_window(
    start: float, end: float, now: float, endpoint: Endpoint, max_window: int = MAX_WINDOW_SECONDS
) -> None:
    """The window must not run backwards, be at most a day, already over, and inside the startover window."""
    # StartTime == EndTime is an instant (Tencent's own Create example sends one): the VOD is the
    # segment holding it, as a window edge inside a segment takes the whole segment.
    if start > end:
        raise FieldError(
            "EndTime",
            "EndTime must not be earlier than StartTime",
            code=VALUE_REFUSED,
            zh="EndTime 不能早于 StartTime",
        )
    if end - start > max_window:
        raise FieldError(
            "EndTime",
            f"the window from StartTime to EndTime is {end - start:.0f} s;"
            f" at most {max_window} s (24 h) is allowed",
            code=VALUE_REFUSED,
        )
    if end > now:
        raise FieldError(
            "EndTime",
            f"EndTime is {end - now:.0f} s in the future; a harvest can only cover time that has passed",
            code=VALUE_REFUSED,
        )
    window = endpoint.startover_window
    if start < now - window:
        raise FieldError(
            "StartTime",
            f"StartTime is {now - start:.0f} s ago, older than endpoint {endpoint.name!r} keeps"
            f" (its startover window is {window} s)",
            code=VALUE_REFUSED,
        )


def check_callback_url(url: str) -> str:
    """An http(s) URL with a host, at most 2048 characters (InvalidParameter.Url)."""
    field = "CallbackURL"
    if len(url) > MAX_CALLBACK_URL_CHARS:
        raise FieldError(field, f"CallbackURL is longer than {MAX_CALLBACK_URL_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise FieldError(field, "CallbackURL contains whitespace or a control character")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise FieldError(field, f"CallbackURL {shown(url)} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FieldError(field, f"CallbackURL {shown(url)} must be an http:// or https:// URL with a host")
    try:
        parts.hostname.encode("idna")  # what the resolver would do; empty or 64+ character labels fail
    except UnicodeError:
        message = f"CallbackURL host {shown(parts.hostname)} is not a valid host name"
        raise FieldError(field, message) from None
    return url


def _suffixes(endpoint: Endpoint) -> list[str]:
    return [MANIFEST_SUFFIXES[fmt] for _, fmt in PROTOCOLS[endpoint.protocol]]


def default_manifest(job_id: str, endpoint: Endpoint) -> str:
    """`<ID>/index.m3u8`, or `<ID>/index.mpd` for DASH (CMAF: the HLS master, with the MPD beside it)."""
    return f"{job_id}/{DEFAULT_MANIFEST_STEM}{_suffixes(endpoint)[-1]}"


def check_manifest_format(manifest_key: str, endpoint: Endpoint) -> None:
    """Refuse a Manifest named for a format the endpoint cannot write (`x.m3u8` for a DASH endpoint)."""
    suffix = "." + manifest_key.rpartition(".")[2].lower() if "." in manifest_key else ""
    allowed = _suffixes(endpoint)
    named = [fmt for fmt, known in MANIFEST_SUFFIXES.items() if known == suffix]
    if named and suffix not in allowed:
        raise FieldError(
            "Manifest",
            f"Manifest {shown(manifest_key)} names a {named[0]} manifest, but endpoint"
            f" {shown(endpoint.name)} is {endpoint.protocol}: use {' or '.join(allowed)}",
            zh=f"Manifest {shown(manifest_key)} 是 {named[0]} 清单,但端点 {shown(endpoint.name)}"
            f" 的协议是 {endpoint.protocol}:请使用 {' 或 '.join(allowed)}",
        )


def validate_create(params: CreateParams, registry: Registry, settings: Settings, now: float) -> ValidCreate:
    """Check every rule, in the order the fields appear in the API; the first broken rule raises."""
    check_job_id(params.id)
    channel = find_channel(registry, params.channel_name)
    endpoint = find_endpoint(channel, params.endpoint_name)
    time_format: TimeFormat = parse_time_format(params.time_format)
    start = parse_time(params.start_time, time_format, "StartTime", settings.zone)
    end = parse_time(params.end_time, time_format, "EndTime", settings.zone)
    check_window(start, end, now, endpoint)
    # An empty Destination counts as omitted: SDK users clear a field by setting it to "".
    destination = params.destination or settings.default_destination
    if not destination:
        raise MissingParameter(
            "Destination is required: this service has no default destination (HARVEST_DEFAULT_DESTINATION)"
        )
    location = parse_destination(destination, settings.region, settings.destination_buckets)
    manifest = params.manifest if params.manifest is not None else default_manifest(params.id, endpoint)
    manifest_key = normalize_manifest(manifest)
    check_manifest_format(manifest_key, endpoint)
    callback_url = check_callback_url(params.callback_url) if params.callback_url else ""
    if callback_url:
        # Refuse a private target now rather than only when the job ends; the notifier checks again
        # at every connect, so a name that does not resolve yet is left to that check.
        # No DNS in the request path: literal addresses and localhost names are refused here, and
        # the notifier checks every resolved address again when it connects (DNS rebinding).
        check_callback_target(
            callback_url, UrlPolicy.for_callbacks(settings), resolve=local_names_only, unresolved_ok=True
        )
    return ValidCreate(
        id=params.id,
        channel=channel,
        endpoint=endpoint,
        time_format=time_format.canonical,
        start_time=params.start_time,
        end_time=params.end_time,
        start_epoch=start,
        end_epoch=end,
        destination=destination,
        location=location,
        manifest=manifest,
        manifest_key=manifest_key,
        callback_url=callback_url,
    )


# --- callback targets ---------------------------------------------------------------------------


def check_callback_target(
    url: str, policy: UrlPolicy, resolve: Resolver = system_resolver, *, unresolved_ok: bool = False
) -> None:
    """Refuse a CallbackURL the URL-safety policy (domain/urlpolicy) refuses: the same rules as delivery.

    A callback is a request the service makes on the user's behalf; without this check a user
    could aim it at the cloud metadata service or at hosts inside our own network.
    `unresolved_ok` lets a name that does not resolve (yet) pass: Create uses it, and the notifier
    refuses such a name when it is still unresolvable at delivery time.
    """
    check_callback_url(url)
    try:
        policy.check_url(url, resolve, label="CallbackURL", unresolved_ok=unresolved_ok)
    except TargetRefused as exc:
        host = (urlsplit(url).hostname or "")[:255]
        zh = f"CallbackURL 的主机 {host} 被 URL 安全策略拒绝(无法解析,或为回环、私有、链路本地、元数据地址)"
        raise FieldError("CallbackURL", exc.message, zh=zh) from None


# --- the other actions --------------------------------------------------------------------------

# StreamPackage's sibling list actions document 1 to 1000 for both.
MAX_PAGE_SIZE = 1000
MAX_PAGE_NUM = 1000
MAX_DELETE_IDS = 100


def check_page(page_num: int, page_size: int) -> None:
    if not 1 <= page_num <= MAX_PAGE_NUM:
        raise FieldError(
            "PageNum",
            f"PageNum is {page_num}; it must be between 1 and {MAX_PAGE_NUM}",
            zh=f"PageNum 为 {page_num},取值范围为 1 到 {MAX_PAGE_NUM}",
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise FieldError(
            "PageSize",
            f"PageSize is {page_size}; it must be between 1 and {MAX_PAGE_SIZE}",
            zh=f"PageSize 为 {page_size},取值范围为 1 到 {MAX_PAGE_SIZE}",
        )


def check_delete_ids(ids: Sequence[str]) -> list[str]:
    if not 1 <= len(ids) <= MAX_DELETE_IDS:
        raise FieldError("IDs", f"IDs holds {len(ids)} IDs; give between 1 and {MAX_DELETE_IDS}")
    return [check_job_id(job_id, "IDs") for job_id in ids]
