"""Finalizer function: finalize and notify messages from the finalize topic."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harvest.domain.job import Message
from harvest.handlers.queue_records import process_records
from harvest.usecases.harvest import HarvestDeps, finalize_job, notify_ended

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def make_handler(deps: HarvestDeps) -> Handler:
    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        def handle(message: Message) -> None:
            if message.body["kind"] == "finalize":
                finalize_job(deps, message.body["job_id"])
            elif message.body["kind"] == "notify":
                notify_ended(deps, message.body["job_id"])

        return process_records(event, context, handle)

    return main_handler
