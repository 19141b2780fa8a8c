"""Finalizer function: finalize messages, and CallbackURL deliveries (on SCF both come on one topic)."""

from __future__ import annotations

import time
from collections.abc import Callable

from harvest.domain.job import MisroutedMessage, Step, StepKind
from harvest.handlers.batch import RecordHandler, ShouldStop, ckafka_function
from harvest.ports import Handler
from harvest.usecases.harvest import HarvestDeps, deliver_callback, finalize_job


def record_handler(deps: HarvestDeps) -> RecordHandler:
    """One finalize or callback step (neither is long enough to need `should_stop`)."""

    def handle(step: Step, should_stop: ShouldStop) -> None:
        if step.kind is StepKind.FINALIZE:
            finalize_job(deps, step.job_id)
        elif step.kind is StepKind.CALLBACK:
            deliver_callback(deps, step.job_id)
        else:
            raise MisroutedMessage(f"a {step.kind.value} message reached the finalizer function")

    return handle


def make_handler(deps: HarvestDeps, clock: Callable[[], float] = time.monotonic) -> Handler:
    """The SCF function: a CKafka-trigger batch through the record loop (handlers/batch.py)."""
    return ckafka_function(record_handler(deps), clock)
