"""Worker function: plan messages and chunk messages from the work topic."""

from __future__ import annotations

import time
from collections.abc import Callable

from harvest.domain.job import MisroutedMessage, Step, StepKind
from harvest.handlers.batch import RecordHandler, ShouldStop, ckafka_function
from harvest.ports import Handler
from harvest.usecases.harvest import HarvestDeps, harvest_chunk, plan_job


def record_handler(deps: HarvestDeps) -> RecordHandler:
    """One work-topic step; a chunk stops between downloads once `should_stop` says so."""

    def handle(step: Step, should_stop: ShouldStop) -> None:
        if step.kind is StepKind.PLAN:
            plan_job(deps, step.job_id)
        elif step.kind is StepKind.CHUNK:
            harvest_chunk(deps, step.job_id, step.chunk, should_stop)
        else:
            raise MisroutedMessage(f"a {step.kind.value} message reached the worker function")

    return handle


def make_handler(deps: HarvestDeps, clock: Callable[[], float] = time.monotonic) -> Handler:
    """The SCF function: a CKafka-trigger batch through the record loop (handlers/batch.py)."""
    return ckafka_function(record_handler(deps), clock)
