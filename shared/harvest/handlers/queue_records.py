"""Shared record loop for the CKafka-triggered functions (worker and finalizer).

Powertools' partial-batch model: every record is processed even when a neighbour fails; an
unreadable record (no step this service knows) is logged at error level, skipped so it cannot
block a CKafka partition, and listed under "unreadable" in the result, where the local pump reads
it to dead-letter the message; if any record failed for a reason worth retrying, the invocation
raises at the end so SCF redelivers the batch, and the records that did succeed are no-ops then.

A step that meets an outage of the database or the object store (`Unavailable`) is not failed:
it is run again in place with backoff (every step is idempotent) until the dependency is back or
the invocation's deadline nears, so a database restart costs the job the restart's length, not
its queue attempts. Only then does the record fail and the queue redeliver it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from harvest.domain.job import Message
from harvest.errors import Unavailable
from harvest.logs import log_context
from harvest.triggers import parse_ckafka_event

log = logging.getLogger(__name__)

OUTAGE_FIRST_WAIT = 0.5
OUTAGE_MAX_WAIT = 5.0  # a dependency that comes back is used again within this long


class BatchFailed(Exception):
    """Some records of the batch must be retried; SCF redelivers the batch when a handler raises."""


def deadline_from(context: Mapping[str, Any] | None, margin: float = 60.0) -> float:
    """A monotonic deadline: SCF's context has time_limit_in_ms but no remaining-time call."""
    limit_ms = (context or {}).get("time_limit_in_ms") if isinstance(context, Mapping) else None
    limit = float(limit_ms) / 1000.0 if isinstance(limit_ms, (int, float)) and limit_ms > 0 else 900.0
    return time.monotonic() + max(limit - margin, limit * 0.5)


def through_outages(
    step: Callable[[], object],
    deadline: float,
    stopping: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run `step`; while it raises Unavailable, wait (0.5 s doubling to 5 s) and run it again.

    Gives up, re-raising, once the next wait would pass `deadline` (monotonic) or `stopping()`.
    """
    wait = OUTAGE_FIRST_WAIT
    while True:
        try:
            step()
            return
        except Unavailable as exc:
            if stopping() or time.monotonic() + wait > deadline:
                raise
            log.warning("%s; running the step again in %.1f s", exc.message, wait)
            sleep(wait)
            wait = min(OUTAGE_MAX_WAIT, wait * 2)


def process_records(
    event: Mapping[str, Any],
    context: Mapping[str, Any] | None,
    handle: Callable[[Message], None],
    stopping: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    request_id = str((context or {}).get("request_id", "")) if isinstance(context, Mapping) else ""
    deadline = deadline_from(context)
    done, unreadable, failed = 0, [], []
    for record in parse_ckafka_event(event):
        if record.message is None:
            log.error("skipping %s: %s", record.ref, record.error)
            unreadable.append(f"{record.ref}: {record.error}")
            continue
        with log_context(request_id=request_id, job_id=record.message.body.get("job_id", "")):
            try:
                through_outages(partial(handle, record.message), deadline, stopping)
                done += 1
            except Exception as exc:
                log.exception("record %s failed: %s", record.ref, exc)
                failed.append(f"{record.ref}: {exc}")
    if failed:
        raise BatchFailed("; ".join(failed))
    return {"processed": done, "skipped": len(unreadable), "unreadable": unreadable}
