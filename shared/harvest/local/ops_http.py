"""/metrics, /healthz and /readyz for `harvest serve`, as plain functions of a request.

Each route is `OpsRequest -> (status, headers, body)`, independent of the HTTP server that hosts it:
`as_wsgi` mounts one on the gateway's WSGI routes today, and any other server can call the same
functions. None of them needs a signature: they expose no job data, only counts.

- /healthz: 200 while the process is up and serving (for a container's liveness probe).
- /readyz: 200 when the database answers and the object store can be reached, else 503 naming
  what failed (for a load balancer's health check: take the instance out, do not restart it).
- /metrics: the Prometheus text format (docs/operations.md explains every family).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Response = tuple[int, dict[str, str], bytes]
Check = Callable[[], None]  # raises when the thing it checks is not usable


@dataclass(frozen=True)
class OpsRequest:
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)


Route = Callable[[OpsRequest], Response]

_JSON = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _only_get(request: OpsRequest) -> Response | None:
    if request.method in ("GET", "HEAD"):
        return None
    return 405, {**_JSON, "Allow": "GET, HEAD"}, b'{"error": "use GET"}\n'


def healthz(request: OpsRequest) -> Response:
    """Liveness: answering at all is the proof."""
    return _only_get(request) or (200, dict(_JSON), b'{"status": "ok"}\n')


def readyz_route(checks: Mapping[str, Check]) -> Route:
    """Readiness: every check must pass; the body says which did not, and why (no secrets: the
    checks' errors are our own StorageError texts, which never carry credentials)."""

    def readyz(request: OpsRequest) -> Response:
        refused = _only_get(request)
        if refused:
            return refused
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            # Any failure of a check means "not ready" (that is the answer asked for), logged with
            # its cause; the probe itself must answer 503, not fail.
            except Exception as exc:  # noqa: BLE001
                log.warning("readiness check %s failed: %s", name, exc)
                results[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
        ready = all(value == "ok" for value in results.values())
        body = {"status": "ready" if ready else "not ready", "checks": results}
        return (200 if ready else 503), dict(_JSON), (json.dumps(body) + "\n").encode()

    return readyz


def metrics_route(exposition: Callable[[], bytes], content_type: str) -> Route:
    def metrics(request: OpsRequest) -> Response:
        refused = _only_get(request)
        if refused:
            return refused
        return 200, {"Content-Type": content_type, "Cache-Control": "no-store"}, exposition()

    return metrics


# --- mounting on a WSGI host ---------------------------------------------------------------------


def as_wsgi(route: Route) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The route as a WSGI app (the gateway's `extra_routes` take WSGI apps)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        status, response_headers, body = route(OpsRequest(str(environ["REQUEST_METHOD"]), path, headers))
        reason = {200: "OK", 405: "Method Not Allowed", 503: "Service Unavailable"}.get(status, "")
        start_response(
            f"{status} {reason}".strip(),
            [*response_headers.items(), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app
