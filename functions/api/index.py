"""SCF entry point: `index.main_handler`. The code lives in the harvest layer (shared/)."""

from __future__ import annotations

from typing import Any

_handler: Any = None


def main_handler(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    global _handler
    if _handler is None:  # built on the first call, never at import, then reused by the instance
        from harvest.composition import build_api_handler

        _handler = build_api_handler()
    result: dict[str, Any] = _handler(event, context)
    return result
