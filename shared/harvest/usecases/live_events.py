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

The job ID comes from the session (CSS `sequence`; for StreamLive the input and the time its stop
was signed, so an input's two pipelines make one job), and every stop turned into a job is kept in
a ledger (the database's `live_events`), so a repeated or replayed delivery creates nothing, on
any instance, even after the job was deleted. API callers cannot take these IDs: `live-` is
reserved. Since `sign` covers only `t`, a captured notification could be replayed with other
fields while `t` is valid: so `t` may be at most HARVEST_LIVE_SIGN_MAX_AHEAD (900 s) ahead, and
each source address is limited to HARVEST_LIVE_RATE_LIMIT notifications per second.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
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
    InvalidParameter,
    JobAlreadyExists,
    RequestLimitExceeded,
    SignatureExpire,
    SignatureFailure,
)
from harvest.ports import JobRecords, LiveEventLedger, Relay
from harvest.settings import LiveEventConfig, Settings
from harvest.usecases.api_jobs import create_job

log = logging.getLogger(__name__)

CSS_PUSH_STOP = 0
CSS_PUSH_START = 1
STREAMLIVE_PUSH_START = 329
STREAMLIVE_PUSH_STOP = 330
MAX_WINDOW_SECONDS = 24 * 3600  # the longest harvest the API accepts
MAX_JOB_ID_LENGTH = 128
_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]+")


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


class MemoryLedger:
    """A LiveEventLedger for one process (tests, and the default of LiveEventDeps); the composition
    root gives the functions the database's, which every instance shares."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def seen(self, event_key: str) -> tuple[str, float] | None:
        with self._lock:
            return self._rows.get(event_key)

    def record(self, event_key: str, job_id: str, event_time: float) -> None:
        with self._lock:
            self._rows.setdefault(event_key, (job_id, event_time))


RATE_BURST_SECONDS = 4.0  # a source may send this many seconds' worth of notifications at once


class SourceRateLimiter:
    """Token buckets per source address, the least recently seen forgotten past `capacity`."""

    def __init__(
        self, rate: float, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = max(1.0, rate * RATE_BURST_SECONDS)
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, source: str) -> None:
        """Take a token for `source` or raise RequestLimitExceeded."""
        if self._rate <= 0:
            return
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.pop(source, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            allowed = tokens >= 1.0
            self._buckets[source] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        if not allowed:
            raise RequestLimitExceeded(
                f"too many notifications from {source[:64]}: at most {self._rate:g} per second; retry later"
            )


@dataclass(frozen=True)
class LiveEvent:
    source: str  # "css" or "streamlive"
    started: bool  # push started (True) or stopped (False)
    stream_ids: tuple[str, ...]  # ids to look up in the registry, most specific first
    session: str  # ties a start to its stop
    event_time: float
    id_suffix: str  # what makes the job ID unique for this session
    push_duration: float | None = None  # seconds, CSS disconnects only
    signed_at: int = 0  # t, the signature's expiry: StreamLive's stop notifications are grouped by it


@dataclass(frozen=True)
class LiveEventResult:
    outcome: str  # "created", "duplicate", "started" or "ignored"
    message: str
    job_id: str = ""


@dataclass(frozen=True)
class LiveEventDeps:
    store: JobRecords
    relay: Relay  # publishes the new job's plan message at once
    registry: Registry
    settings: Settings
    config: LiveEventConfig
    sessions: SessionStarts = field(default_factory=SessionStarts)
    clock: Callable[[], float] = time.time
    ledger: LiveEventLedger = field(default_factory=MemoryLedger)
    limiter: SourceRateLimiter = field(default_factory=lambda: SourceRateLimiter(5.0))


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


def verify_signature(payload: Mapping[str, Any], key: str, now: float, max_ahead: float = 900) -> None:
    """sign must equal md5(key + str(t)); t (the signature's expiry) must not have passed and may be
    at most `max_ahead` seconds ahead (the senders use now + 10 min)."""
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
    if t > now + max_ahead:
        raise SignatureExpire(
            f"t={t} is {int(t - now)} s ahead; a signature is valid for at most {max_ahead:g} s"
            " (CSS and StreamLive sign with t = now + 600)"
        )


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
            # Both pipelines of an input report the same session: one job, not two.
            session=f"streamlive:{channel_id}:{input_id}",
            event_time=when,
            # No sequence here: the event time (or else the signature's expiry t, which a redelivery
            # of the same notification repeats) stands in, so a redelivery maps to the same job.
            id_suffix=str(event_time if event_time is not None else _int_field(payload, "t") or int(when)),
            signed_at=_int_field(payload, "t") or int(when),
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


def _stop_keys(event: LiveEvent, pipeline_window: int) -> tuple[str, str, str]:
    """(the ledger key of this stop, its job ID suffix, the key of a neighbouring group or "").

    CSS: the session (stream and `sequence`). StreamLive has no sequence, and an input with two
    pipelines reports each stop twice: stops of one input are grouped by t in `pipeline_window`
    slices, and a stop close to one recorded in the previous slice is the same stop."""
    if event.source == "css":
        return event.session, event.id_suffix, ""
    group = event.signed_at // pipeline_window
    return f"{event.session}:{group}", str(group * pipeline_window), f"{event.session}:{group - 1}"


def _handled_before(deps: LiveEventDeps, event: LiveEvent, key: str, neighbour: str) -> str:
    """The job ID an earlier delivery of this stop created, or ""."""
    seen = deps.ledger.seen(key)
    if seen is not None:
        return seen[0]
    earlier = deps.ledger.seen(neighbour) if neighbour else None
    if earlier is not None and event.signed_at - earlier[1] <= deps.config.pipeline_window:
        return earlier[0]
    return ""


def handle_live_event(deps: LiveEventDeps, payload: Mapping[str, Any], source: str = "") -> LiveEventResult:
    """Verify a push notification and act on it.

    Raises RequestLimitExceeded when `source` (the sender's address) sends too often, AuthFailure
    (and subclasses) when the signature is missing, wrong, expired or too far ahead, and
    InvalidParameter when the notification is not one we can read; harvest.errors from creating
    the job propagate. A stop already turned into a job (by any instance, even if the job was
    deleted since) creates nothing.
    """
    deps.limiter.acquire(source or "unknown")
    now = deps.clock()
    flat = flatten_payload(payload)
    verify_signature(flat, deps.config.callback_key, now, deps.config.sign_max_ahead)
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

    key, suffix, neighbour = _stop_keys(event, deps.config.pipeline_window)
    job_id = job_id_for(stream_id, suffix)
    previous = _handled_before(deps, event, key, neighbour)
    if previous:
        log.info("stop already handled as job %s (a replay or the other pipeline)", previous)
        return LiveEventResult("duplicate", f"job {previous} was already created for this stop", previous)
    started_at, basis = _session_start(deps, event)
    endpoint = deps.registry.channel(rule.channel).endpoint(rule.endpoint)
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
        create_job(deps.store, deps.relay, deps.registry, deps.settings, params, now, live_event=True)
    except JobAlreadyExists:
        deps.ledger.record(key, job_id, event.signed_at)
        log.info("job %s already exists (repeated notification)", job_id, extra={"job_id": job_id})
        return LiveEventResult("duplicate", f"job {job_id} was already created", job_id)
    deps.ledger.record(key, job_id, event.signed_at)
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
