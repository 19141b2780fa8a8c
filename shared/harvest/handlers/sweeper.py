"""Sweeper function: runs on a timer trigger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harvest.logs import log_context
from harvest.ports import Handler
from harvest.usecases.harvest import HarvestDeps
from harvest.usecases.sweep import sweep


def make_handler(deps: HarvestDeps, stale_after: float) -> Handler:
    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        request_id = str(context.get("request_id", "")) if isinstance(context, Mapping) else ""
        with log_context(request_id=request_id):
            return sweep(deps, stale_after).as_dict()

    return main_handler
