"""`harvest serve`: the whole service on one machine, a small SCF look-alike.

- an HTTP listener that turns each request into the API-gateway event SCF would deliver and calls
  the api function's handler (and serves the local bucket under /cos/ for players);
- a queue pump that runs queued messages through the worker's and finalizer's record loop (the
  one SCF's CKafka trigger feeds), with N concurrent consumers;
- /metrics (Prometheus), /healthz and /readyz on the same port (local/ops_http.py);
- a dead-lettered message holds its job Running for HARVEST_DEAD_LETTER_HOLD seconds, so an
  operator can mend the cause and `harvest admin replay` it (usecases/operations.py);
- HTTPS with HARVEST_TLS_CERT/HARVEST_TLS_KEY or HARVEST_TLS_SELF_SIGNED (local/tls.py); SIGHUP
  reloads the certificate while requests in flight and the queue pump carry on;
- SIGTERM/SIGINT stop it cleanly; a restart on the same data dir resumes queued work.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvest.adapters.objectstore.local import LocalDiskStore
from harvest.api.actions import ACTIONS
from harvest.api.envelope import CONTENT_TYPE, error_body
from harvest.composition import (
    Backend,
    build_api_deps,
    build_backend,
    build_harvest_deps,
    build_operations,
    lease_queue,
)
from harvest.domain.destination import parse_destination
from harvest.domain.job import TOPIC_CALLBACK, TOPIC_FINALIZE, TOPIC_WORK, describe_message
from harvest.domain.registry import load_registry
from harvest.errors import ConfigError, HarvestError, RequestSizeLimitExceeded, StorageError
from harvest.handlers import finalizer, worker
from harvest.handlers.api import make_handler as make_api_handler
from harvest.handlers.batch import through_outages
from harvest.local.bucket_http import BucketHttp
from harvest.local.gateway import GatewayServer, WsgiApp
from harvest.local.http_server import HttpResponse, ServerLimits
from harvest.local.ops_http import Check, as_wsgi, healthz, metrics_route, readyz_route
from harvest.local.pump import PumpConfig, QueuePump
from harvest.local.tls import (
    CertificateReloader,
    certificate_info,
    ensure_self_signed,
    how_to_trust,
    self_signed_names,
    server_context,
)
from harvest.logs import configure_logging
from harvest.metrics import NO_METRICS, instrument_api_handler
from harvest.ports import Delivery, Metrics, ObjectStore, Operations
from harvest.settings import Settings
from harvest.usecases.harvest import HarvestDeps, fail_job
from harvest.usecases.operations import fail_held_jobs

if TYPE_CHECKING:
    from harvest.adapters.prometheus import PrometheusMetrics

log = logging.getLogger(__name__)

SIGNAL_POLL_SECONDS = 0.2  # how soon a signal's handler runs (see serve_main)

# A lease is short and kept alive by a heartbeat, so work held by a killed process is picked up
# again within a minute instead of after SCF's 900 s invocation limit.
LOCAL_LEASE_SECONDS = 30.0
HELD_JOBS_CHECK_SECONDS = 5.0  # how often jobs held by a dead letter are checked against the hold
READINESS_KEY = ".harvest-readyz"  # looked up (never written) to prove the bucket answers
DEAD_LETTER_PATIENCE_SECONDS = 300.0
FD_RESERVE = 512


@dataclass
class LocalStack:
    settings: Settings
    backend: Backend
    deps: HarvestDeps
    gateway: GatewayServer
    pump: QueuePump
    stop_event: threading.Event
    operations: Operations | None = None
    metrics: Metrics = NO_METRICS
    tls: CertificateReloader | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.settings.host}:{self.gateway.port}"

    def reload_certificate(self) -> None:
        """SIGHUP: load the certificate files again for new handshakes; the old pair stays on error."""
        if self.tls is None:
            log.warning("SIGHUP: nothing to reload (harvest serve is not serving HTTPS)")
            return
        try:
            info = self.tls.reload()
        except HarvestError as exc:
            log.error("SIGHUP: certificate not reloaded, the previous one still serves: %s", exc.message)
            return
        except Exception:  # a reload must never pass silently, whatever went wrong
            log.exception("SIGHUP: the certificate reload failed; the previous one may still serve")
            return
        log.info(
            "TLS certificate reloaded: %s, SHA-256 %s, valid until %s",
            ", ".join(info.names) or info.subject,
            info.sha256,
            f"{info.not_after:%Y-%m-%d %H:%M} UTC",
        )

    def start(self) -> None:
        self.gateway.start()
        self.pump.start()
        if self.operations is not None and self.settings.dead_letter_hold > 0:
            threading.Thread(target=self._release_held_jobs, name="dead-letter-hold", daemon=True).start()

    def _release_held_jobs(self) -> None:
        assert self.operations is not None
        while not self.stop_event.wait(HELD_JOBS_CHECK_SECONDS):
            try:
                fail_held_jobs(self.deps, self.operations, self.settings.dead_letter_hold)
            except Exception:
                log.exception("checking jobs held by dead letters failed; will try again")

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.gateway.stop()
        self.pump.stop(timeout)
        self.backend.db.close()


def _dead_letter_handler(
    deps: HarvestDeps, metrics: Metrics = NO_METRICS, hold: float = 0.0
) -> Callable[[Delivery, str], None]:
    """Count the dead letter; fail its job at once, or (hold > 0) leave it Running for a replay."""

    def on_dead_letter(delivery: Delivery, error: str) -> None:
        metrics.dead_lettered(delivery.message.topic)
        body = delivery.message.body
        job_id = body.get("job_id")
        if hold > 0:
            log.error(
                "%s dead-lettered; its job waits up to %.0f s for `harvest admin replay %d`",
                describe_message(body),
                hold,
                delivery.id,
                extra={"job_id": job_id if isinstance(job_id, str) else ""},
            )
            return
        if isinstance(job_id, str):
            reason = f"{describe_message(body)} could not be done after {delivery.attempts} attempts: {error}"
            # A dead letter is reported once: failing its job has to outlast a database outage too.
            deadline = time.monotonic() + DEAD_LETTER_PATIENCE_SECONDS
            through_outages(partial(fail_job, deps, job_id, reason), deadline)

    return on_dead_letter


def _readiness_checks(settings: Settings, operations: Operations, objects: ObjectStore) -> dict[str, Check]:
    """The database answers; the object store answers for the bucket jobs write to (when one is known)."""
    bucket = next(iter(settings.allowed_buckets), "")
    if not bucket and settings.default_destination:
        try:
            bucket = parse_destination(settings.default_destination, settings.region, ()).bucket
        except HarvestError:
            bucket = ""  # start-up checks report a bad default destination; readiness need not
    checks: dict[str, Check] = {"database": operations.ping}
    if isinstance(objects, LocalDiskStore):
        root = objects.root

        def local_bucket() -> None:
            if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
                raise StorageError(f"the local bucket directory {root} is missing or not writable")

        checks["object_store"] = local_bucket
    elif bucket:

        def remote_bucket() -> None:
            objects.size(bucket, READINESS_KEY)  # None (absent) is fine; an unreachable store raises

        checks["object_store"] = remote_bucket
    return checks


def _prometheus() -> PrometheusMetrics:
    try:
        from harvest.adapters.prometheus import PrometheusMetrics
    except ImportError as exc:  # an install without the serve extra
        raise ConfigError(
            f"harvest serve needs prometheus_client for /metrics ({exc}): pip install 'harvest[serve]'"
        ) from exc
    return PrometheusMetrics()


def _ops_routes(
    settings: Settings, metrics: PrometheusMetrics, operations: Operations, objects: ObjectStore
) -> dict[str, WsgiApp]:
    from harvest.adapters.prometheus import CONTENT_TYPE

    return {
        "/metrics": as_wsgi(metrics_route(metrics.exposition, CONTENT_TYPE)),
        "/healthz": as_wsgi(healthz),
        "/readyz": as_wsgi(readyz_route(_readiness_checks(settings, operations, objects))),
    }


def build_stack(settings: Settings) -> LocalStack:
    if settings.queue_backend != "sql":
        raise ConfigError("harvest serve consumes the SQL queue: unset HARVEST_QUEUE or set it to 'sql'")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "cos").mkdir(exist_ok=True)
    registry = load_registry(settings.channels_file)
    tls_files = _tls_files(settings)  # an unusable certificate stops start-up before anything opens
    context = server_context(*tls_files) if tls_files else None
    backend = build_backend(settings)
    operations = build_operations(backend)
    metrics = _prometheus()
    metrics.watch(operations)
    deps = build_harvest_deps(settings, backend, registry, metrics)
    metrics.watch_downloads(lambda: deps.downloads.limit.limit, deps.downloads.size)
    stop_event = threading.Event()
    api_handler = instrument_api_handler(
        make_api_handler(build_api_deps(settings, backend, registry, metrics)), metrics, tuple(ACTIONS)
    )
    handlers = {
        TOPIC_WORK: worker.record_handler(deps),
        TOPIC_FINALIZE: finalizer.record_handler(deps),
        TOPIC_CALLBACK: finalizer.record_handler(deps),
    }
    pump = QueuePump(
        lease_queue(backend),
        backend.relay,
        handlers,
        _dead_letter_handler(deps, metrics, settings.dead_letter_hold),
        PumpConfig(
            consumers=settings.workers, lease_seconds=min(LOCAL_LEASE_SECONDS, settings.visibility_timeout)
        ),
    )
    limits = ServerLimits(
        max_body_bytes=settings.max_body_bytes,
        max_connections=min(settings.max_connections, _connections_the_fd_limit_allows()),
        head_timeout=settings.request_head_timeout,
    )
    bucket = BucketHttp(settings.data_dir / "cos")
    routes: dict[str, WsgiApp] = {"/cos/": bucket, **_ops_routes(settings, metrics, operations, deps.objects)}
    gateway = GatewayServer(
        api_handler,
        settings.host,
        settings.port,
        extra_routes=routes,
        limits=limits,
        too_large=_too_large_for_the_api,
        ssl_context=context,
    )
    tls = CertificateReloader(context, *tls_files, gateway.run_on_loop) if context and tls_files else None
    return LocalStack(settings, backend, deps, gateway, pump, stop_event, operations, metrics, tls)


def _tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with: the configured pair, a self-signed one, or none."""
    if settings.tls_cert is not None and settings.tls_key is not None:
        return settings.tls_cert, settings.tls_key
    if settings.tls_self_signed:
        return ensure_self_signed(settings.data_dir / "tls", self_signed_names(settings.host))
    return None


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


def stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and SIGINT set `stop` (the previous handlers are returned). A handler of our own also
    undoes a SIGINT ignored by the parent, which an exec passes on (a test runner's worker did, and
    Ctrl-C then never reached `harvest demo --keep-running`)."""
    return {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}


def wait_until_set(stop: threading.Event) -> None:
    """Wait for `stop` in short steps, not in one blocking wait: the kernel may deliver a signal to
    any of the process's threads, and Python runs the handler only when the main thread next runs
    bytecode. A main thread blocked without a timeout never did, so a SIGHUP could go unhandled for
    good (seen as a reload that never happened, under load with many threads), and the demo's
    time.sleep(3600) missed Ctrl-C."""
    while not stop.wait(SIGNAL_POLL_SECONDS):
        pass


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
    stop_on_signals(stack.stop_event)
    if stack.tls is not None:
        # SIGHUP reloads the certificate (as for nginx); without TLS it keeps its default (stop).
        # The reload waits for the server's loop: off the signal handler, in its own thread.
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=stack.reload_certificate).start())
    if settings.tls_self_signed and stack.tls is not None:
        print(how_to_trust(stack.tls.cert_file, certificate_info(stack.tls.cert_file)), flush=True)
    print(
        f"harvest serve: API at {stack.url}/ (region {settings.region}), bucket at {stack.url}/cos/,"
        f" console at {stack.url}/console/, metrics at {stack.url}/metrics, {settings.workers} consumers,"
        f" data in {settings.data_dir}",
        flush=True,
    )
    wait_until_set(stack.stop_event)
    print("harvest serve: stopping", flush=True)
    stack.stop()
    return 0
