"""Finalizer function: finalize messages, and CallbackURL deliveries (on SCF both come on one topic)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harvest.domain.job import Message
from harvest.handlers.queue_records import process_records
from harvest.usecases.harvest import HarvestDeps, deliver_callback, finalize_job

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def make_handler(deps: HarvestDeps, stopping: Callable[[], bool] = lambda: False) -> Handler:
    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        def handle(message: Message) -> None:
            if message.body["kind"] == "finalize":
                finalize_job(deps, message.body["job_id"])
            elif message.body["kind"] == "callback":
                deliver_callback(deps, message.body["job_id"])

        return process_records(event, context, handle, stopping)

    return main_handler
