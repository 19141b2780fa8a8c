"""Metrics without a metrics library: the no-op recorder, bounded label values, instrumented ports.

The use cases know nothing of metrics. The composition root wraps the ports they already use
(JobStore, Origin, the callback notifier) in the thin decorators below, which report to a
`ports.Metrics` recorder: Prometheus on `harvest serve` (adapters/prometheus.py), one JSON line
per invocation on SCF (invocation.py), nothing at all by default.

Every label value passes through one of the `*_label` functions here, each mapping free text to a
small fixed set, so no job ID, URL, key or client-chosen string can become a label value and
the number of series stays bounded whatever the traffic.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from harvest.domain.job import HarvestJob, JobStatus, Message
from harvest.errors import API_CODES, HarvestError
from harvest.ports import ChunkRecord, Handler, JobStore, Metrics


class NoMetrics:
    """ports.Metrics that records nothing (the default everywhere)."""

    def job_created(self) -> None:
        pass

    def job_finished(self, status: str) -> None:
        pass

    def harvested(self, segments: int, nbytes: int, seconds: float | None = None) -> None:
        pass

    def origin_error(self, resource: str, kind: str, retried: bool) -> None:
        pass

    def dead_lettered(self, topic: str) -> None:
        pass

    def callback(self, outcome: str) -> None:
        pass

    def api_request(self, action: str, code: str, seconds: float) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()


# --- bounded label values ------------------------------------------------------------------------

# HTTP statuses worth their own series; any other becomes its class (http_4xx, http_5xx).
_NAMED_STATUSES = frozenset({403, 404, 408, 429, 500, 502, 503, 504})
# The stable failure reasons of adapters/http_origin.describe_network_error and its body checks.
_NETWORK_KINDS = {
    "connection refused": "connection_refused",
    "connection reset": "connection_reset",
    "connection aborted": "connection_aborted",
    "connection error": "connection_error",
    "connect timeout": "connect_timeout",
    "read timeout": "read_timeout",
    "timeout": "timeout",
    "dns lookup failed": "dns",
    "tls error": "tls",
    "short body": "short_body",
    "long body": "long_body",
    "content-range": "bad_range",
    "larger than": "too_large",
    "not utf-8": "not_text",
    "invalid": "invalid_request",
    "too many redirects": "redirects",
    "unsupported url scheme": "invalid_request",
}
ORIGIN_ERROR_KINDS = frozenset(
    {f"http_{status}" for status in _NAMED_STATUSES}
    | {"http_4xx", "http_5xx", "http_other", "other"}
    | set(_NETWORK_KINDS.values())
)
_HTTP_STATUS = re.compile(r"HTTP (\d{3})")


def origin_error_kind(reason: str) -> str:
    """'HTTP 503' -> 'http_503', 'HTTP 418' -> 'http_4xx', 'short body (1 of 2 bytes)' -> 'short_body'."""
    match = _HTTP_STATUS.match(reason)
    if match:
        status = int(match[1])
        if status in _NAMED_STATUSES:
            return f"http_{status}"
        return "http_4xx" if 400 <= status < 500 else "http_5xx" if status >= 500 else "http_other"
    lowered = reason.lower()
    for prefix, kind in _NETWORK_KINDS.items():
        if lowered.startswith(prefix):
            return kind
    return "other"


CALLBACK_OUTCOMES = frozenset({"delivered", "failed", "refused", "other"})


def callback_label(outcome: str) -> str:
    """'delivered: HTTP 200 after 1 attempt' -> 'delivered'."""
    head = outcome.split(":", 1)[0].strip()
    return head if head in CALLBACK_OUTCOMES else "other"


@cache
def api_codes() -> frozenset[str]:
    """Every code the API can answer with (errors.API_CODES), plus 'OK': the `code` label's values."""
    return frozenset({"OK", "other", *API_CODES})


def api_code_label(code: str) -> str:
    return code if code in api_codes() else "other"


def api_action_label(action: str, known: Sequence[str]) -> str:
    return action if action in known else "other"


def job_status_label(status: JobStatus | str) -> str:
    value = status.value if isinstance(status, JobStatus) else str(status)
    return value if value in {s.value for s in JobStatus} else "other"


# --- instrumented ports --------------------------------------------------------------------------


class InstrumentedJobStore:
    """A JobStore that reports jobs created and ended, done chunks (segments, bytes, time taken) and
    callback outcomes.

    Only the reporting methods are written out; everything else goes to the wrapped store unchanged
    (mypy sees __getattr__ and accepts this as a JobStore). A chunk is timed from the worker's
    `get_chunk` to its `complete_chunk` in this process; at most MAX_OPEN_CHUNKS starts are kept.
    """

    MAX_OPEN_CHUNKS = 10_000

    def __init__(
        self, store: JobStore, metrics: Metrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._chunk_starts: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create(self, job: HarvestJob, outbox: Sequence[Message]) -> None:
        self._store.create(job, outbox)
        self._metrics.job_created()

    def finish(
        self, job_id: str, status: JobStatus, err_message: str = "", outbox: Sequence[Message] = ()
    ) -> HarvestJob:
        job = self._store.finish(job_id, status, err_message, outbox)  # raises if someone else ended it
        self._metrics.job_finished(job_status_label(status))
        return job

    def get_chunk(self, job_id: str, index: int) -> ChunkRecord:
        chunk = self._store.get_chunk(job_id, index)
        if not chunk.done:
            with self._lock:
                if len(self._chunk_starts) >= self.MAX_OPEN_CHUNKS:
                    self._chunk_starts.pop(next(iter(self._chunk_starts)))
                self._chunk_starts[(job_id, index)] = self._clock()
        return chunk

    def complete_chunk(
        self, job_id: str, index: int, segments: int, nbytes: int, outbox_if_last: Sequence[Message]
    ) -> bool:
        last = self._store.complete_chunk(job_id, index, segments, nbytes, outbox_if_last)
        with self._lock:
            start = self._chunk_starts.pop((job_id, index), None)
        self._metrics.harvested(segments, nbytes, None if start is None else self._clock() - start)
        return last

    def record_callback(self, job_id: str, outcome: str) -> None:
        self._store.record_callback(job_id, outcome)
        self._metrics.callback(callback_label(outcome))


class OriginErrors:
    """The callback HttpOrigin calls after each failed attempt, reporting it as a bounded label."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __call__(self, resource: str, reason: str, retried: bool) -> None:
        self._metrics.origin_error(resource, origin_error_kind(reason), retried)


def instrument_api_handler(
    handler: Handler, metrics: Metrics, actions: Sequence[str], clock: Callable[[], float] = time.monotonic
) -> Handler:
    """Wrap the api function's handler: count each request by action and answer code, and time it."""

    def main_handler(event: Mapping[str, Any], context: Any) -> Any:
        started = clock()
        result = handler(event, context)
        metrics.api_request(_action_of(event, actions), _code_of(result), clock() - started)
        return result

    return main_handler


def _action_of(event: Mapping[str, Any], actions: Sequence[str]) -> str:
    """The action a request named: the X-TC-Action header (TC3), else the `Action` parameter of an
    HmacSHA1/HmacSHA256 (v1) request, read by the API's own event and parameter parsers."""
    from harvest.api.envelope import read_flat_params
    from harvest.api.events import parse_event

    try:
        request = parse_event(event)
        action = request.header("x-tc-action") or read_flat_params(request).get("Action", "")
    except HarvestError:
        return "other"
    return api_action_label(action.strip(), actions) if action else "other"


def _code_of(result: Any) -> str:
    if not isinstance(result, Mapping):
        return "InternalError"
    try:
        body = json.loads(result.get("body") or "{}")
    except (TypeError, ValueError):
        return "other"
    response = body.get("Response") if isinstance(body, dict) else None
    if not isinstance(response, dict):
        return "other"
    error = response.get("Error")
    if isinstance(error, dict):
        return api_code_label(str(error.get("Code", "")))
    return "OK"
