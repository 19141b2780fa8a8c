"""The composition root: the one place that picks adapters from Settings and wires use cases.

Handlers receive what they need from here; nothing below the handlers reads the environment.
`functions/*/index.py` call the `build_*_handler()` functions once per SCF instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from harvest.adapters.callback import CallbackNotifier
from harvest.adapters.http_origin import HttpOrigin
from harvest.adapters.objectstore.local import LocalDiskStore
from harvest.adapters.relay import OutboxRelay
from harvest.adapters.retry import RetryPolicy
from harvest.adapters.sql.db import Database
from harvest.adapters.sql.jobstore import SqlJobStore
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.registry import Registry, load_registry
from harvest.handlers.api import ApiDeps
from harvest.ports import ObjectStore, Queue
from harvest.settings import Settings
from harvest.usecases.harvest import HarvestDeps


@dataclass(frozen=True)
class Backend:
    """The job table, the queue and the outbox relay between them."""

    db: Database
    store: SqlJobStore
    queue: Queue
    relay: OutboxRelay


def build_backend(settings: Settings) -> Backend:
    db = Database.connect(settings.effective_database_url, pool_size=max(8, settings.workers * 2 + 4))
    store = SqlJobStore(db)
    queue: Queue
    if settings.queue_backend == "ckafka":
        from harvest.adapters.ckafka import CKafkaQueue  # the Tencent SDK is only imported when used

        queue = CKafkaQueue.from_settings(settings)
    else:
        queue = SqlQueue(db, max_attempts=settings.queue_max_attempts)
    return Backend(db=db, store=store, queue=queue, relay=OutboxRelay(store, queue))


def build_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "cos":
        from harvest.adapters.objectstore.cos import CosStore

        return CosStore.from_settings(settings)
    return LocalDiskStore(settings.data_dir / "cos")


def build_origin(settings: Settings) -> HttpOrigin:
    # One origin client serves every consumer thread's download pool: size its keep-alive pool
    # for all of them, or urllib3 would open and discard connections under load.
    policy = RetryPolicy(attempts=settings.fetch_attempts, base_delay=settings.fetch_backoff)
    pool = settings.download_concurrency * max(1, settings.workers)
    return HttpOrigin(policy, settings.fetch_timeout, pool)


def build_notifier(settings: Settings) -> CallbackNotifier:
    return CallbackNotifier.from_settings(settings)


def build_harvest_deps(
    settings: Settings, backend: Backend | None = None, registry: Registry | None = None
) -> HarvestDeps:
    backend = backend or build_backend(settings)
    return HarvestDeps(
        settings=settings,
        registry=registry or load_registry(settings.channels_file),
        store=backend.store,
        queue=backend.queue,
        relay=backend.relay,
        objects=build_object_store(settings),
        origin=build_origin(settings),
        notifier=build_notifier(settings),
    )


def build_api_deps(
    settings: Settings, backend: Backend | None = None, registry: Registry | None = None
) -> ApiDeps:
    backend = backend or build_backend(settings)
    return ApiDeps(
        settings=settings,
        registry=registry or load_registry(settings.channels_file),
        store=backend.store,
        relay=backend.relay,
    )


# --- SCF entry points -----------------------------------------------------------------------------


def _settings() -> Settings:
    from harvest.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(
        secrets=(*settings.credentials.values(), settings.cloud_secret_key, settings.cloud_token)
    )
    return settings


def build_api_handler():  # type: ignore[no-untyped-def]
    from harvest.handlers.api import make_handler

    return make_handler(build_api_deps(_settings()))


def build_live_event_end_handler():  # type: ignore[no-untyped-def]
    from harvest.adapters.sql.live_events import SqlLiveEventLedger
    from harvest.handlers.live_event_end import LiveEventDeps, make_handler
    from harvest.usecases.live_events import LiveEventConfig, SourceRateLimiter

    settings = _settings()
    config = LiveEventConfig.from_env()
    from harvest.logs import configure_logging

    configure_logging(secrets=(config.callback_key,))
    backend = build_backend(settings)
    deps = LiveEventDeps(
        store=backend.store,
        relay=backend.relay,
        registry=load_registry(settings.channels_file),
        settings=settings,
        config=config,
        ledger=SqlLiveEventLedger(backend.db),
        limiter=SourceRateLimiter(config.rate_limit),
    )
    return make_handler(deps)


def build_worker_handler():  # type: ignore[no-untyped-def]
    from harvest.handlers.worker import make_handler

    return make_handler(build_harvest_deps(_settings()))


def build_finalizer_handler():  # type: ignore[no-untyped-def]
    from harvest.handlers.finalizer import make_handler

    return make_handler(build_harvest_deps(_settings()))


def build_sweeper_handler():  # type: ignore[no-untyped-def]
    from harvest.handlers.sweeper import make_handler

    settings = _settings()
    return make_handler(build_harvest_deps(settings), stale_after=max(120.0, settings.visibility_timeout))
