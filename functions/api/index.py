"""SCF entry point of the API function: `index.main_handler`. The code lives in the harvest layer."""

from __future__ import annotations

from typing import Any

_handler: Any = None


def main_handler(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    global _handler
    if _handler is None:  # built on the first call, never at import, and then reused by the instance
        from harvest.handlers.api import build_api_deps, make_handler
        from harvest.settings import Settings

        _handler = make_handler(build_api_deps(Settings.from_env()))
    result: dict[str, Any] = _handler(event, context)
    return result
