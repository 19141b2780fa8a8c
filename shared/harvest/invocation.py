"""One metrics line per SCF invocation: what CLS charts where `harvest serve` has /metrics.

SCF has no scrape target, but it ships every stdout line to CLS (Cloud Log Service), which can
index JSON fields and chart them. So each function's handler is wrapped to log, when an
invocation ends, one JSON line (through the usual JSON log handler, so secrets are redacted the
same way) of this shape, documented in docs/operations.md:

    {"time": "...", "level": "INFO", "logger": "harvest.metrics", "message": "invocation",
     "request_id": "...", "job_id": "", "metric": "invocation", "function": "worker",
     "cold_start": false, "duration_ms": 812.4, "outcome": "ok",
     "counts": {"jobs_created": 0, "jobs_completed": 0, "jobs_failed": 0, "segments_harvested": 25,
                "bytes_harvested": 26214400, "origin_errors": 1, "origin_retries": 1,
                "dead_lettered": 0, "callbacks_delivered": 0, "callbacks_failed": 0},
     "api_action": "CreateStreamPackageHarvestJob", "api_code": "OK"}

`api_action` and `api_code` appear on the api function's lines only. Every value is a number, a
boolean or one of a small fixed set of strings, never a job ID or URL (those are in the
invocation's other log lines, joined by request_id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from harvest.logs import log_context
from harvest.ports import Handler

log = logging.getLogger("harvest.metrics")


COUNT_NAMES = (
    "jobs_created",
    "jobs_completed",
    "jobs_failed",
    "segments_harvested",
    "bytes_harvested",
    "origin_errors",
    "origin_retries",
    "dead_lettered",
    "callbacks_delivered",
    "callbacks_failed",
)


class InvocationMetrics:
    """ports.Metrics that adds up what one invocation did, for its metrics line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a worker's download threads report concurrently
        self.counts: dict[str, int] = dict.fromkeys(COUNT_NAMES, 0)
        self.api: tuple[str, str] | None = None

    def reset(self) -> None:
        with self._lock:
            self.counts = dict.fromkeys(COUNT_NAMES, 0)
            self.api = None

    def _add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def job_created(self) -> None:
        self._add("jobs_created")

    def job_finished(self, status: str) -> None:
        if status == "Completed":
            self._add("jobs_completed")
        elif status == "Failed":
            self._add("jobs_failed")

    def harvested(self, segments: int, nbytes: int, seconds: float | None = None) -> None:
        self._add("segments_harvested", segments)
        self._add("bytes_harvested", nbytes)

    def origin_error(self, resource: str, kind: str, retried: bool) -> None:
        self._add("origin_errors")
        if retried:
            self._add("origin_retries")

    def dead_lettered(self, topic: str) -> None:
        self._add("dead_lettered")

    def callback(self, outcome: str) -> None:
        self._add("callbacks_delivered" if outcome == "delivered" else "callbacks_failed")

    def api_request(self, action: str, code: str, seconds: float) -> None:
        self.api = (action, code)


def measured(
    handler: Handler,
    function_name: str,
    recorder: InvocationMetrics,
    clock: Callable[[], float] = time.monotonic,
) -> Handler:
    """`handler`, logging one metrics line per invocation (also when it raises)."""
    cold = [True]

    def main_handler(event: Mapping[str, Any], context: Any) -> Any:
        recorder.reset()
        started = clock()
        outcome = "error"
        try:
            result = handler(event, context)
            outcome = "ok"
            return result
        finally:
            fields: dict[str, Any] = {
                "metric": "invocation",
                "function": _function_name(context, function_name),
                "cold_start": cold[0],
                "duration_ms": round((clock() - started) * 1000, 1),
                "outcome": outcome,
                "counts": dict(recorder.counts),
            }
            if recorder.api is not None:
                fields["api_action"], fields["api_code"] = recorder.api
            cold[0] = False
            with log_context(request_id=_request_id(context)):
                log.info("invocation", extra=fields)

    return main_handler


def _request_id(context: Any) -> str:
    value = context.get("request_id") if isinstance(context, Mapping) else None
    return str(value or "")


def _function_name(context: Any, default: str) -> str:
    # SCF's context names the deployed function (e.g. harvest-prod-worker); keep ours when absent.
    name = context.get("function_name") if isinstance(context, Mapping) else None
    return name if isinstance(name, str) and name else default
