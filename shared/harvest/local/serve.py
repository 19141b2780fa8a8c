"""`harvest serve`: the whole service on one machine, a small SCF look-alike.

- an HTTP listener that turns each request into the API-gateway event SCF would deliver and calls
  the api function's handler (and serves the local bucket under /cos/ for players);
- a queue pump that turns queued messages into CKafka-trigger events for the worker and finalizer
  handlers, with N concurrent consumers;
- SIGTERM/SIGINT stop it cleanly; a restart on the same data dir resumes queued work.
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from harvest.api.envelope import CONTENT_TYPE, error_body
from harvest.composition import Backend, build_api_deps, build_backend, build_harvest_deps
from harvest.domain.job import TOPIC_FINALIZE, TOPIC_WORK
from harvest.domain.registry import load_registry
from harvest.errors import ConfigError, HarvestError, RequestSizeLimitExceeded
from harvest.handlers import finalizer, worker
from harvest.handlers.api import make_handler as make_api_handler
from harvest.local.bucket_http import BucketHttp
from harvest.local.gateway import GatewayServer
from harvest.local.http_server import HttpResponse, ServerLimits
from harvest.local.pump import PumpConfig, QueuePump, describe_message
from harvest.logs import configure_logging
from harvest.ports import Delivery
from harvest.settings import Settings
from harvest.usecases.harvest import HarvestDeps, fail_job

log = logging.getLogger(__name__)

# A lease is short and kept alive by a heartbeat, so work held by a killed process is picked up
# again within a minute instead of after SCF's 900 s invocation limit.
LOCAL_LEASE_SECONDS = 30.0
FD_RESERVE = 512


@dataclass
class LocalStack:
    settings: Settings
    backend: Backend
    deps: HarvestDeps
    gateway: GatewayServer
    pump: QueuePump
    stop_event: threading.Event

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.gateway.port}"

    def start(self) -> None:
        self.gateway.start()
        self.pump.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.gateway.stop()
        self.pump.stop(timeout)
        self.backend.db.close()


def _dead_letter_handler(deps: HarvestDeps) -> Callable[[Delivery, str], None]:
    def on_dead_letter(delivery: Delivery, error: str) -> None:
        body = delivery.message.body
        job_id = body.get("job_id")
        if isinstance(job_id, str):
            fail_job(
                deps,
                job_id,
                f"{describe_message(body)} could not be done after {delivery.attempts} attempts: {error}",
            )

    return on_dead_letter


def build_stack(settings: Settings) -> LocalStack:
    if settings.queue_backend != "sql":
        raise ConfigError("harvest serve consumes the SQL queue: unset HARVEST_QUEUE or set it to 'sql'")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = load_registry(settings.channels_file)
    backend = build_backend(settings)
    deps = build_harvest_deps(settings, backend, registry)
    stop_event = threading.Event()
    api_handler = make_api_handler(build_api_deps(settings, backend, registry))
    handlers = {
        TOPIC_WORK: worker.make_handler(deps, stopping=stop_event.is_set),
        TOPIC_FINALIZE: finalizer.make_handler(deps),
    }
    queue = backend.queue
    pump = QueuePump(
        queue,  # type: ignore[arg-type]  # build_backend returns the SqlQueue when queue_backend is sql
        backend.relay,
        handlers,
        _dead_letter_handler(deps),
        PumpConfig(
            consumers=settings.workers, lease_seconds=min(LOCAL_LEASE_SECONDS, settings.visibility_timeout)
        ),
    )
    limits = ServerLimits(
        max_body_bytes=settings.max_body_bytes,
        max_connections=min(settings.max_connections, _connections_the_fd_limit_allows()),
        head_timeout=settings.request_head_timeout,
    )
    gateway = GatewayServer(
        api_handler, settings.host, settings.port, limits=limits, too_large=_too_large_for_the_api
    )
    gateway.mount_wsgi("/cos/", BucketHttp(settings.data_dir / "cos"))
    return LocalStack(settings, backend, deps, gateway, pump, stop_event)


def _too_large_for_the_api(limit: int) -> HttpResponse:
    """A body over the limit, refused while it is read, in the API's own error format."""
    message = f"the request body is larger than {limit} bytes, the most accepted"
    body = error_body(RequestSizeLimitExceeded.code, message, str(uuid.uuid4()))
    data = json.dumps(body, separators=(",", ":")).encode()
    return HttpResponse(200, [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data)))], [data])


def _connections_the_fd_limit_allows() -> int:
    """Raise the soft open-files limit to the hard one, and keep FD_RESERVE descriptors for the rest
    (database, origin and callback connections, bucket files), so a flood of clients meets the
    connection cap's 503 rather than EMFILE everywhere."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-files limit from %d", soft)
    return max(1, soft - FD_RESERVE)


def serve_main() -> int:
    try:
        settings = Settings.from_env()
        configure_logging(secrets=tuple(settings.credentials.values()))
        if not settings.credentials:
            print(
                "error: set HARVEST_SECRET_ID and HARVEST_SECRET_KEY (the key pair clients sign with)",
                file=sys.stderr,
            )
            return 2
        stack = build_stack(settings)
    except HarvestError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    stack.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stack.stop_event.set())
    print(
        f"harvest serve: API at {stack.url}/ (region {settings.region}), bucket at {stack.url}/cos/,"
        f" {settings.workers} consumers, data in {settings.data_dir}",
        flush=True,
    )
    stack.stop_event.wait()
    print("harvest serve: stopping", flush=True)
    stack.stop()
    return 0
