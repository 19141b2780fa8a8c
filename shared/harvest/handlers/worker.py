"""Worker function: plan messages and chunk messages from the work topic."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from harvest.domain.job import Message, MisroutedMessage, StepKind, parse_step
from harvest.handlers.queue_records import deadline_from, process_records
from harvest.ports import Handler
from harvest.usecases.harvest import HarvestDeps, harvest_chunk, plan_job


def make_handler(deps: HarvestDeps, stopping: Callable[[], bool] = lambda: False) -> Handler:
    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        deadline = deadline_from(context)

        def should_stop() -> bool:
            return stopping() or time.monotonic() > deadline

        def handle(message: Message) -> None:
            step = parse_step(message.body)
            if step.kind is StepKind.PLAN:
                plan_job(deps, step.job_id)
            elif step.kind is StepKind.CHUNK:
                harvest_chunk(deps, step.job_id, step.chunk, should_stop)
            else:
                raise MisroutedMessage(f"a {step.kind.value} message reached the worker function")

        return process_records(event, context, handle, stopping)

    return main_handler
