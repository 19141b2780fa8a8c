"""Live-event end: turn a CSS or StreamLive "push stopped" callback into a harvest job.

Both services POST a JSON notification signed with `sign = md5(callback key + t)`, where `t` is the
Unix time the signature expires (10 minutes after the event by default). CSS sends event_type 1
(push started) and 0 (push stopped) with a `sequence` shared by both events of one push session;
StreamLive sends 329 / 330 for an RTMP input, wrapped in {"data": {...}}.

On a stop, the session's time range becomes a harvest job on the channel endpoint the registry's
`streams` rules map the stream to. Where the session started:
  * CSS: the disconnect carries `push_duration` (ms), so start = event_time - push_duration / 1000.
  * otherwise the start event this process saw for the same session, if any (in memory only: SCF
    may run the start and the stop on different instances, so this is a best effort),
  * otherwise event_time - HARVEST_LIVE_DEFAULT_DURATION (then clipped like any window).
The window is [start - lead, event_time + tail], with its end clipped to now (a harvest covers the
past only), then clipped to the most recent 24 hours and to the endpoint's startover window.

The job ID comes from the session (CSS `sequence`), so a repeated delivery of the same callback
finds the job already there and is answered as a success.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harvest.domain.registry import Registry, StreamRule
from harvest.domain.validation import CreateParams
from harvest.errors import (
    AuthFailure,
    ConfigError,
    InvalidParameter,
    JobAlreadyExists,
    SignatureExpire,
    SignatureFailure,
)
from harvest.ports import JobStore, Relay
from harvest.settings import Settings
from harvest.usecases.api_jobs import create_job

log = logging.getLogger(__name__)

CSS_PUSH_STOP = 0
CSS_PUSH_START = 1
STREAMLIVE_PUSH_START = 329
STREAMLIVE_PUSH_STOP = 330
MAX_WINDOW_SECONDS = 24 * 3600  # the longest harvest the API accepts
MAX_JOB_ID_LENGTH = 128
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]+")


def _env_seconds(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class LiveEventConfig:
    callback_key: str
    lead_seconds: int = 10  # harvest this much before the push started
    tail_seconds: int = 10  # ... and after it stopped
    default_duration: int = 3600  # session length assumed when nothing tells us where it started

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveEventConfig:
        env = os.environ if env is None else env
        key = env.get("HARVEST_CALLBACK_KEY", "").strip()
        if not key:
            # Without a key anyone could compute md5("" + t): refuse to start rather than accept forgeries.
            raise ConfigError("HARVEST_CALLBACK_KEY must be set to the CSS/StreamLive callback key")
        return cls(
            callback_key=key,
            lead_seconds=_env_seconds(env, "HARVEST_LIVE_LEAD_SECONDS", 10, 0),
            tail_seconds=_env_seconds(env, "HARVEST_LIVE_TAIL_SECONDS", 10, 0),
            default_duration=_env_seconds(env, "HARVEST_LIVE_DEFAULT_DURATION", 3600, 1),
        )


class SessionStarts:
    """Start times of push sessions seen by this process, the oldest forgotten first."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._starts: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, session: str, started_at: float) -> None:
        with self._lock:
            self._starts[session] = started_at
            self._starts.move_to_end(session)
            while len(self._starts) > self._capacity:
                self._starts.popitem(last=False)

    def get(self, session: str) -> float | None:
        with self._lock:
            return self._starts.get(session)


@dataclass(frozen=True)
class LiveEvent:
    source: str  # "css" or "streamlive"
    started: bool  # push started (True) or stopped (False)
    stream_ids: tuple[str, ...]  # ids to look up in the registry, most specific first
    session: str  # ties a start to its stop
    event_time: float
    id_suffix: str  # what makes the job ID unique for this session
    push_duration: float | None = None  # seconds, CSS disconnects only


@dataclass(frozen=True)
class LiveEventResult:
    outcome: str  # "created", "duplicate", "started" or "ignored"
    message: str
    job_id: str = ""


@dataclass(frozen=True)
class LiveEventDeps:
    store: JobStore
    relay: Relay  # publishes the new job's plan message at once
    registry: Registry
    settings: Settings
    config: LiveEventConfig
    sessions: SessionStarts = field(default_factory=SessionStarts)
    clock: Callable[[], float] = time.time


# --- parsing and verification ---------------------------------------------------------------------


def flatten_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """StreamLive wraps its fields in "data" (with t/sign inside or beside it); CSS does not."""
    flat = {k: v for k, v in payload.items() if k != "data"}
    inner = payload.get("data")
    if isinstance(inner, Mapping):
        flat.update(inner)
    return flat


def _int_field(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def verify_signature(payload: Mapping[str, Any], key: str, now: float) -> None:
    """sign must equal md5(key + str(t)) and t (the signature's expiry) must not have passed."""
    sign = payload.get("sign")
    if not isinstance(sign, str) or not sign:
        raise AuthFailure("the notification has no sign field")
    t = _int_field(payload, "t")
    if t is None:
        raise AuthFailure("the notification has no valid t field (the signature's expiry time)")
    expected = hashlib.md5((key + str(t)).encode()).hexdigest()
    if not hmac.compare_digest(expected.encode(), sign.strip().lower().encode()):
        raise SignatureFailure("sign does not match md5(callback key + t): check HARVEST_CALLBACK_KEY")
    if t < now:
        raise SignatureExpire(f"the signature expired at t={t}, {int(now - t)} s ago")


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    return str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""


def parse_live_event(payload: Mapping[str, Any], now: float) -> LiveEvent | None:
    """The push start/stop in a flattened notification; None for the other event types."""
    event_type = _int_field(payload, "event_type")
    if event_type is None:
        raise InvalidParameter("the notification has no integer event_type")
    event_time = _int_field(payload, "event_time")
    # StreamLive documents no event_time: the moment we hear of it is the best estimate left.
    when = float(event_time) if event_time is not None and event_time > 0 else now
    if event_type in (CSS_PUSH_START, CSS_PUSH_STOP):
        stream_id = _text(payload, "stream_id") or _text(payload, "channel_id")
        if not stream_id:
            raise InvalidParameter("the CSS notification has no stream_id")
        sequence = _text(payload, "sequence")
        duration = payload.get("push_duration")
        try:
            push_seconds = float(duration) / 1000.0 if duration not in (None, "") else None
        except (TypeError, ValueError):
            push_seconds = None
        return LiveEvent(
            source="css",
            started=event_type == CSS_PUSH_START,
            stream_ids=(stream_id,),
            session=f"css:{stream_id}:{sequence or int(when)}",
            event_time=when,
            id_suffix=sequence or str(int(when)),
            push_duration=push_seconds if push_seconds is not None and push_seconds >= 0 else None,
        )
    if event_type in (STREAMLIVE_PUSH_START, STREAMLIVE_PUSH_STOP):
        channel_id = _text(payload, "channel_id")
        input_id = _text(payload, "input_id")
        if not channel_id and not input_id:
            raise InvalidParameter("the StreamLive notification has neither channel_id nor input_id")
        ids = tuple(i for i in (channel_id, input_id) if i)
        return LiveEvent(
            source="streamlive",
            started=event_type == STREAMLIVE_PUSH_START,
            stream_ids=ids,
            session=f"streamlive:{channel_id}:{input_id}:{_text(payload, 'pipeline')}",
            event_time=when,
            # No sequence here: the event time (or else the signature's expiry t, which a redelivery
            # of the same notification repeats) stands in, so a redelivery maps to the same job.
            id_suffix=str(event_time if event_time is not None else _int_field(payload, "t") or int(when)),
        )
    return None


# --- the job ----------------------------------------------------------------------------------------


def job_id_for(stream_id: str, suffix: str) -> str:
    """`live-<stream>-<suffix>` in [A-Za-z0-9_-], at most 128 characters, stable for a session."""
    tail = "-" + (_NOT_ID_CHAR.sub("-", suffix).strip("-") or "0")
    stream = _NOT_ID_CHAR.sub("-", stream_id).strip("-") or "stream"
    room = MAX_JOB_ID_LENGTH - len("live-") - len(tail)
    if len(stream) > room:
        # Keep the ID unique when two long stream ids share a prefix.
        digest = hashlib.sha1(stream_id.encode()).hexdigest()[:8]
        stream = stream[: max(room - 9, 0)] + "-" + digest
    return ("live-" + stream + tail)[:MAX_JOB_ID_LENGTH]


def harvest_window(
    started_at: float, ended_at: float, now: float, lead: float, tail: float, startover_window: float
) -> tuple[int, int] | None:
    """[start - lead, end + tail] in whole seconds, inside the past, 24 h and the startover window."""
    end = min(ended_at + tail, now)
    start = max(started_at - lead, end - MAX_WINDOW_SECONDS, now - startover_window)
    start_s, end_s = math.ceil(start), math.floor(end)
    if end_s <= start_s:
        return None
    return start_s, end_s


def _rule(registry: Registry, event: LiveEvent) -> tuple[str, StreamRule] | None:
    for stream_id in event.stream_ids:
        rule = registry.rule_for_stream(stream_id)
        if rule is not None:
            return stream_id, rule
    return None


def _session_start(deps: LiveEventDeps, event: LiveEvent) -> tuple[float, str]:
    if event.push_duration is not None:
        return event.event_time - event.push_duration, "push_duration"
    seen = deps.sessions.get(event.session)
    if seen is not None and seen <= event.event_time:
        return seen, "start event"
    return event.event_time - deps.config.default_duration, "default duration"


def handle_live_event(deps: LiveEventDeps, payload: Mapping[str, Any]) -> LiveEventResult:
    """Verify a push notification and act on it.

    Raises AuthFailure (and subclasses) when the signature is missing, wrong or expired, and
    InvalidParameter when the notification is not one we can read; harvest.errors from creating
    the job propagate.
    """
    now = deps.clock()
    flat = flatten_payload(payload)
    verify_signature(flat, deps.config.callback_key, now)
    event = parse_live_event(flat, now)
    if event is None:
        return LiveEventResult("ignored", f"event_type {flat.get('event_type')} is not a push start or stop")
    found = _rule(deps.registry, event)
    if found is None:
        ids = " / ".join(event.stream_ids)
        log.info("no streams rule for %s: ignored", ids, extra={"stream_ids": list(event.stream_ids)})
        return LiveEventResult("ignored", f"stream {ids} matches no streams rule in the registry: ignored")
    stream_id, rule = found
    if event.started:
        deps.sessions.remember(event.session, event.event_time)
        log.info("push started on %s", stream_id, extra={"session": event.session})
        return LiveEventResult("started", f"push started on {stream_id}")

    started_at, basis = _session_start(deps, event)
    endpoint = deps.registry.channel(rule.channel).endpoint(rule.endpoint)
    job_id = job_id_for(stream_id, event.id_suffix)
    window = harvest_window(
        started_at,
        event.event_time,
        now,
        deps.config.lead_seconds,
        deps.config.tail_seconds,
        endpoint.startover_window,
    )
    if window is None:
        message = f"the session on {stream_id} is outside {rule.channel}/{rule.endpoint}'s startover window"
        log.warning("%s: ignored", message, extra={"job_id": job_id})
        return LiveEventResult("ignored", message + ": ignored", job_id)
    # Destination and Manifest are left to the service defaults (HARVEST_DEFAULT_DESTINATION,
    # <ID>/index.m3u8), exactly as for an API request that omits them.
    params = CreateParams(
        id=job_id,
        channel_name=rule.channel,
        endpoint_name=rule.endpoint,
        time_format="Epoch seconds",
        start_time=str(window[0]),
        end_time=str(window[1]),
    )
    try:
        create_job(deps.store, deps.relay, deps.registry, deps.settings, params, now)
    except JobAlreadyExists:
        log.info("job %s already exists (repeated notification)", job_id, extra={"job_id": job_id})
        return LiveEventResult("duplicate", f"job {job_id} was already created", job_id)
    log.info(
        "created job %s for %s [%d, %d] (start from %s)",
        job_id,
        stream_id,
        window[0],
        window[1],
        basis,
        extra={"job_id": job_id, "channel": rule.channel, "endpoint": rule.endpoint},
    )
    return LiveEventResult("created", f"job {job_id} created", job_id)
