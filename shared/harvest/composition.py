"""The composition root: the one place that picks adapters from Settings and wires use cases.

Handlers receive what they need from here; nothing below the handlers reads the environment.
`functions/*/index.py` call the `build_*_handler()` functions once per SCF instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harvest.adapters.callback import CallbackNotifier
from harvest.adapters.http_origin import HttpOrigin
from harvest.adapters.objectstore.local import LocalDiskStore
from harvest.adapters.relay import OutboxRelay
from harvest.adapters.retry import RetryPolicy
from harvest.adapters.role_keys import KeySource, environment_keys, fixed_keys
from harvest.adapters.sql.credentials import SqlCredentialStore
from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.operations import SqlOperations
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.registry import Registry, load_registry
from harvest.domain.urlpolicy import UrlPolicy
from harvest.errors import ConfigError
from harvest.handlers.api import ApiDeps
from harvest.invocation import InvocationMetrics, measured
from harvest.metrics import NO_METRICS, InstrumentedJobStore, OriginErrors, instrument_api_handler
from harvest.ports import Handler, JobStore, LeaseQueue, Metrics, ObjectStore, Operations, Queue
from harvest.settings import LiveEventConfig, Settings, check_scf_environment, running_on_scf
from harvest.usecases.download_pool import DownloadPool
from harvest.usecases.harvest import HarvestDeps


@dataclass(frozen=True)
class Backend:
    """The job table, the queue and the outbox relay between them."""

    db: Database
    store: SqlJobStore
    queue: Queue
    relay: OutboxRelay
    # The same queue, typed for consuming, when it is the SQL queue this process leases from
    # (`harvest serve`); None with CKafka, whose messages SCF's trigger delivers instead.
    consumable: LeaseQueue | None = None


def lease_queue(backend: Backend) -> LeaseQueue:
    """The queue a local pump consumes. Raises ConfigError when the backend's queue is CKafka."""
    if backend.consumable is None:
        raise ConfigError("HARVEST_QUEUE is ckafka: SCF's trigger consumes it, no local pump leases from it")
    return backend.consumable


def _role_keys(settings: Settings) -> KeySource:
    """On SCF the role's keys rotate under a warm instance: read them at every request. Elsewhere
    the keys given at start-up (the same variables, read once by Settings) stay."""
    if running_on_scf():
        return environment_keys()
    return fixed_keys(settings.cloud_secret_id, settings.cloud_secret_key, settings.cloud_token)


def build_backend(settings: Settings) -> Backend:
    db = Database.connect(settings.effective_database_url, pool_size=max(8, settings.workers * 2 + 4))
    store = SqlJobStore(db)
    if settings.queue_backend == "ckafka":
        from harvest.adapters.ckafka import CKafkaQueue  # the Tencent SDK is only imported when used

        queue = CKafkaQueue.from_settings(settings, _role_keys(settings))
        return Backend(db=db, store=store, queue=queue, relay=OutboxRelay(store, queue))
    sql_queue = SqlQueue(db, max_attempts=settings.queue_max_attempts)
    return Backend(
        db=db, store=store, queue=sql_queue, relay=OutboxRelay(store, sql_queue), consumable=sql_queue
    )


def build_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "cos":
        from harvest.adapters.objectstore.cos import CosStore

        return CosStore.from_settings(settings, _role_keys(settings))
    return LocalDiskStore(settings.data_dir / "cos")


def build_origin(settings: Settings, metrics: Metrics = NO_METRICS) -> HttpOrigin:
    # One origin client serves the process's download pool and every consumer planning a job (its
    # playlists): size its keep-alive pool for all of them, or urllib3 would open and discard
    # connections under load.
    policy = RetryPolicy(attempts=settings.fetch_attempts, base_delay=settings.fetch_backoff)
    pool = settings.download_concurrency + max(1, settings.workers)
    on_error = None if metrics is NO_METRICS else OriginErrors(metrics)
    targets = UrlPolicy.for_origins(settings)
    return HttpOrigin(policy, settings.fetch_timeout, pool, on_error=on_error, targets=targets)


def build_operations(backend: Backend) -> Operations:
    """What operators and /metrics read: the job table and the SQL queue (empty with CKafka)."""
    return SqlOperations(backend.db)


def _measured(store: JobStore, metrics: Metrics) -> JobStore:
    return store if metrics is NO_METRICS else InstrumentedJobStore(store, metrics)


def build_notifier(settings: Settings) -> CallbackNotifier:
    return CallbackNotifier.from_settings(settings)


def build_harvest_deps(
    settings: Settings,
    backend: Backend | None = None,
    registry: Registry | None = None,
    metrics: Metrics = NO_METRICS,
) -> HarvestDeps:
    backend = backend or build_backend(settings)
    return HarvestDeps(
        settings=settings,
        registry=registry or load_registry(settings.channels_file),
        store=_measured(backend.store, metrics),
        queue=backend.queue,
        relay=backend.relay,
        objects=build_object_store(settings),
        origin=build_origin(settings, metrics),
        notifier=build_notifier(settings),
        downloads=DownloadPool(settings.download_concurrency, adaptive=settings.download_adaptive),
    )


def build_api_deps(
    settings: Settings,
    backend: Backend | None = None,
    registry: Registry | None = None,
    metrics: Metrics = NO_METRICS,
) -> ApiDeps:
    backend = backend or build_backend(settings)
    limiter, ledger = None, None
    if backend.db.is_postgres:
        # Shared by every process on this database, so the limit and the ledger hold service-wide.
        from harvest.adapters.sql.guards import SqlRateLimiter, SqlSignatureLedger

        limiter = SqlRateLimiter(backend.db, settings.rate_limit)
        ledger = SqlSignatureLedger(backend.db, settings.signature_max_skew)
    return ApiDeps(
        settings=settings,
        registry=registry or load_registry(settings.channels_file),
        store=_measured(backend.store, metrics),
        relay=backend.relay,
        rate_limiter=limiter,
        replay_ledger=ledger,
        credentials=SqlCredentialStore(backend.db),
    )


# --- SCF entry points -----------------------------------------------------------------------------
#
# Each builds its function's handler once per instance. On SCF a function missing a setting it
# needs (settings.SCF_REQUIRED_SETTINGS), or given one it cannot use, does not start half-configured:
# it logs one line naming the setting and then answers every call as a broken deployment should -
# the API with InternalError and a RequestId, live_event_end with HTTP 503, the queue and timer
# functions by failing the invocation (the trigger retries; the log says why).

log = logging.getLogger(__name__)


def _settings(function: str) -> Settings:
    from harvest.logs import configure_logging

    configure_logging()
    if running_on_scf():
        check_scf_environment(function)
    settings = Settings.from_env()
    configure_logging(
        secrets=(*settings.credentials.values(), settings.cloud_secret_key, settings.cloud_token)
    )
    return settings


def _unconfigured(function: str, exc: ConfigError) -> ConfigError:
    log.error("%s cannot start: configuration error: %s", function, exc.message)
    return exc


def _failing_invocation(error: ConfigError) -> Handler:
    def main_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        raise error

    return main_handler


def build_api_handler() -> Handler:
    from harvest.api.actions import ACTIONS
    from harvest.handlers.api import make_handler, unconfigured_handler

    metrics = InvocationMetrics()
    try:
        handler = make_handler(build_api_deps(_settings("api"), metrics=metrics))
    except ConfigError as exc:
        return unconfigured_handler(_unconfigured("api", exc))
    return measured(instrument_api_handler(handler, metrics, tuple(ACTIONS)), "api", metrics)


def build_live_event_end_handler() -> Handler:
    from harvest.adapters.sql.live_events import SqlLiveEventLedger
    from harvest.handlers.live_event_end import LiveEventDeps, make_handler, unconfigured_handler
    from harvest.logs import configure_logging
    from harvest.usecases.live_events import SourceRateLimiter

    metrics = InvocationMetrics()
    try:
        settings = _settings("live_event_end")
        config = LiveEventConfig.from_env()
        configure_logging(secrets=(config.callback_key,))
        registry = load_registry(settings.channels_file)
        backend = build_backend(settings)
    except ConfigError as exc:
        return unconfigured_handler(_unconfigured("live_event_end", exc))
    deps = LiveEventDeps(
        store=_measured(backend.store, metrics),
        relay=backend.relay,
        registry=registry,
        settings=settings,
        config=config,
        ledger=SqlLiveEventLedger(backend.db),
        limiter=SourceRateLimiter(config.rate_limit),
    )
    return measured(make_handler(deps), "live_event_end", metrics)


def _queue_function(name: str, make_handler: Callable[[HarvestDeps], Handler]) -> Handler:
    """A CKafka-triggered function (worker, finalizer): its handler on HarvestDeps, measured; one
    that cannot start fails every invocation, so the trigger retries rather than losing records."""
    metrics = InvocationMetrics()
    try:
        deps = build_harvest_deps(_settings(name), metrics=metrics)
    except ConfigError as exc:
        return _failing_invocation(_unconfigured(name, exc))
    return measured(make_handler(deps), name, metrics)


def build_worker_handler() -> Handler:
    from harvest.handlers.worker import make_handler

    return _queue_function("worker", make_handler)


def build_finalizer_handler() -> Handler:
    from harvest.handlers.finalizer import make_handler

    return _queue_function("finalizer", make_handler)


def build_sweeper_handler() -> Handler:
    from harvest.handlers.sweeper import make_handler

    metrics = InvocationMetrics()
    try:
        settings = _settings("sweeper")
        deps = build_harvest_deps(settings, metrics=metrics)
    except ConfigError as exc:
        return _failing_invocation(_unconfigured("sweeper", exc))
    handler = make_handler(deps, stale_after=max(120.0, settings.visibility_timeout))
    return measured(handler, "sweeper", metrics)
