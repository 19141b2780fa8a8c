"""Finalizer function: finalize messages, and CallbackURL deliveries (on SCF both come on one topic)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harvest.domain.job import Message, MisroutedMessage, StepKind, parse_step
from harvest.handlers.queue_records import process_records
from harvest.ports import Handler
from harvest.usecases.harvest import HarvestDeps, deliver_callback, finalize_job


def make_handler(deps: HarvestDeps, stopping: Callable[[], bool] = lambda: False) -> Handler:
    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        def handle(message: Message) -> None:
            step = parse_step(message.body)
            if step.kind is StepKind.FINALIZE:
                finalize_job(deps, step.job_id)
            elif step.kind is StepKind.CALLBACK:
                deliver_callback(deps, step.job_id)
            else:
                raise MisroutedMessage(f"a {step.kind.value} message reached the finalizer function")

        return process_records(event, context, handle, stopping)

    return main_handler
