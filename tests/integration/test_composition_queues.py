"""The composition root hands the local queue pump a queue it can lease from, typed, or refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvest.adapters.sql.queue import SqlQueue
from harvest.composition import build_backend, lease_queue
from harvest.domain.job import TOPIC_WORK, plan_message
from harvest.errors import ConfigError
from harvest.settings import Settings


def test_the_sql_backend_lends_its_queue_to_the_pump(tmp_path: Path) -> None:
    # GIVEN the one-machine backend (the SQL queue)
    backend = build_backend(Settings(region="ap-singapore", data_dir=tmp_path))
    try:
        queue = lease_queue(backend)
        # WHEN a message is published through the backend's queue
        backend.queue.publish([plan_message("job-1")])
        # THEN the pump's queue is that same SQL queue and leases it by topic
        assert isinstance(queue, SqlQueue)
        assert queue is backend.queue
        [delivery] = queue.receive(1, 30.0, [TOPIC_WORK])
        assert delivery.message == plan_message("job-1")
    finally:
        backend.db.close()


def test_a_ckafka_backend_has_no_queue_a_pump_could_lease(tmp_path: Path) -> None:
    # GIVEN a backend whose queue is CKafka (SCF's trigger consumes it)
    settings = Settings(
        region="ap-singapore",
        data_dir=tmp_path,
        queue_backend="ckafka",
        ckafka_datahub_id="datahub-work",
        ckafka_finalize_datahub_id="datahub-finalize",
        cloud_secret_id="AKIDtest",
        cloud_secret_key="secret",
    )
    backend = build_backend(settings)
    try:
        # WHEN the wiring asks for a queue to lease from THEN it is refused, naming the setting
        with pytest.raises(ConfigError, match="HARVEST_QUEUE"):
            lease_queue(backend)
    finally:
        backend.db.close()
