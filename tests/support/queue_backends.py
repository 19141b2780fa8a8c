"""The queue backends the queue contract suite runs on, each with its publish and its consume side.

- `SqlBackend` (SQLite, as `harvest serve` runs it, and PostgreSQL): `SqlQueue` publishes into the
  queue table; consumers lease with `receive`, read the deliveries with
  `harvest.triggers.parse_deliveries` and `ack`, as the local pump does.
- `CKafkaBackend`: `CKafkaQueue.from_settings` publishes through the real Tencent SDK into
  TencentApiStandIn, which checks what CKafka's API would receive (TC3 signature and token,
  SendMessage's shape, at most 500 messages a request, the topic's largest message). A small model
  of the CKafka instance then does what CKafka and SCF's trigger do: it files each DataHub's
  records on a partition chosen by their key, numbers them per partition, and hands them out as the
  CKafka trigger's events (docs/platform/scf.md, "CKafka": `{"Records": [{"Ckafka": {topic,
  partition, offset, msgKey, msgBody}}]}`), each partition in order, `maxMsgNum` records at a time,
  to `harvest.triggers.parse_ckafka_event`, the parser the worker and finalizer run.

Both sides are seen as the contract needs them: `on_the_wire()` is what the transport holds after a
publish (the queue table's rows; the SendMessage records CKafka accepted), `consume()` the messages
a consumer is handed, each once.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tests.support.tencent_api_standin import TencentApiStandIn

from harvest.adapters.ckafka import CKafkaQueue
from harvest.adapters.sql.db import Database
from harvest.adapters.sql.queue import SqlQueue
from harvest.domain.job import TOPIC_CALLBACK, TOPIC_FINALIZE, TOPIC_WORK, Message
from harvest.ports import Queue
from harvest.settings import Settings
from harvest.triggers import delivery_ref, parse_ckafka_event, parse_deliveries

LEASE = 60.0


@dataclass(frozen=True)
class WireRecord:
    """One published message as the transport holds it, before any consumer."""

    topic: str  # the port's topic it was filed under (for CKafka: the topic of the DataHub it went to)
    key: str
    body: str  # the body as serialized by the adapter
    partition: int = 0  # CKafka's partition for the key; the SQL queue has one


class QueueBackend(Protocol):
    name: str

    @property
    def queue(self) -> Queue:
        """The adapter under test (read-only here, so each backend may hold its own concrete type)."""

    def on_the_wire(self) -> list[WireRecord]:
        """Everything published so far, in the order the transport received it."""

    def consume(self) -> list[Message]:
        """The messages consumers are handed since the last call, in delivery order, each once."""


# --- the SQL queue ----------------------------------------------------------------------------------


class SqlBackend:
    def __init__(self, name: str, db: Database) -> None:
        self.name = name
        self.db = db
        self.queue = SqlQueue(db, max_attempts=3)

    def on_the_wire(self) -> list[WireRecord]:
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT topic, key, body FROM queue_messages ORDER BY id")
        return [WireRecord(row["topic"], row["key"], row["body"]) for row in rows]

    def consume(self) -> list[Message]:
        consumed: list[Message] = []
        while deliveries := self.queue.receive(50, LEASE):
            # Read as the local pump reads them: through the same parser the batch processor is given.
            for delivery, record in zip(deliveries, parse_deliveries(deliveries), strict=True):
                assert delivery.attempts == 1, f"{delivery.message} delivered {delivery.attempts} times"
                assert record.error == "", f"the pump could not read {record.ref}: {record.error}"
                assert record.message is not None
                assert record.ref == delivery_ref(delivery), f"{record.ref} is not the leased message"
                consumed.append(record.message)
                self.queue.ack(delivery.id)
        return consumed


# --- CKafka -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CKafkaTopic:
    """One CKafka topic as a deployment sets it up: its DataHub access, partitions, trigger batch size."""

    port_topic: str  # the Message.topic the service publishes to it
    name: str
    datahub_id: str
    partitions: int
    max_msg_num: int  # the CKafka trigger's batch size (serverless.yml: 1 for work, 10 for finalize)


# All three topics get their own CKafka topic, so every port topic round-trips (serverless.yml leaves
# out the callback topic: callbacks then ride on harvest-finalize, tests/integration/test_ckafka.py).
CKAFKA_TOPICS = (
    CKafkaTopic(TOPIC_WORK, "harvest-work", "datahub-work", partitions=4, max_msg_num=1),
    CKafkaTopic(TOPIC_FINALIZE, "harvest-finalize", "datahub-finalize", partitions=2, max_msg_num=10),
    CKafkaTopic(TOPIC_CALLBACK, "harvest-callback", "datahub-callback", partitions=2, max_msg_num=10),
)


def partition_for(key: str, partitions: int) -> int:
    """The partition a keyed record lands on: a stable hash of the key, as Kafka's partitioner uses
    (which hash does not matter here, only that one key always picks one partition)."""
    return zlib.crc32(key.encode("utf-8")) % partitions


@dataclass
class _PartitionLog:
    records: list[tuple[str, str]] = field(default_factory=list)  # (key, body), offset = index
    delivered: int = 0  # the trigger's committed offset


class CKafkaBackend:
    name = "ckafka"

    def __init__(self, api: TencentApiStandIn, topics: Sequence[CKafkaTopic] = CKAFKA_TOPICS) -> None:
        self.api = api
        self.topics = tuple(topics)
        by_port = {topic.port_topic: topic for topic in self.topics}
        settings = Settings(
            region="ap-singapore",
            queue_backend="ckafka",
            ckafka_datahub_id=by_port[TOPIC_WORK].datahub_id,
            ckafka_finalize_datahub_id=by_port[TOPIC_FINALIZE].datahub_id,
            ckafka_callback_datahub_id=by_port[TOPIC_CALLBACK].datahub_id,
            tencent_api_endpoint=api.endpoint,
            cloud_secret_id=api.secret_id,
            cloud_secret_key=api.secret_key,
            cloud_token=api.token,
        )
        self.queue = CKafkaQueue.from_settings(settings)
        self._logs = {topic.name: [_PartitionLog() for _ in range(topic.partitions)] for topic in self.topics}
        self._filed = {topic.name: 0 for topic in self.topics}  # stand-in records already on partitions

    def on_the_wire(self) -> list[WireRecord]:
        wire = []
        for topic in self.topics:
            for received in self.api.received(topic.datahub_id):
                partition = partition_for(received.key, topic.partitions)
                wire.append(WireRecord(topic.port_topic, received.key, received.body, partition))
        return wire

    def consume(self) -> list[Message]:
        consumed: list[Message] = []
        for topic in self.topics:
            self._file(topic)
            for event in self._trigger_events(topic):
                consumed += self._parse(topic, event)
        return consumed

    def _file(self, topic: CKafkaTopic) -> None:
        """What CKafka does with the records the HTTP access layer accepted: append each to the log
        of its key's partition."""
        received = self.api.received(topic.datahub_id)
        for record in received[self._filed[topic.name] :]:
            self._logs[topic.name][partition_for(record.key, topic.partitions)].records.append(
                (record.key, record.body)
            )
        self._filed[topic.name] = len(received)

    def _trigger_events(self, topic: CKafkaTopic) -> list[dict[str, Any]]:
        """SCF's CKafka trigger: per partition, in offset order, up to maxMsgNum records an event
        (partitions taken in turn; their relative order is no promise of CKafka's)."""
        events = []
        logs = self._logs[topic.name]
        while any(log.delivered < len(log.records) for log in logs):
            for partition, log in enumerate(logs):
                batch = log.records[log.delivered : log.delivered + topic.max_msg_num]
                if not batch:
                    continue
                records = [
                    {
                        "Ckafka": {
                            "topic": topic.name,
                            "partition": partition,
                            "offset": log.delivered + n,
                            # SCF writes "None" for a record without a key (platform doc's example)
                            "msgKey": key or "None",
                            "msgBody": body,
                        }
                    }
                    for n, (key, body) in enumerate(batch)
                ]
                # The trigger hands the function JSON: what the function gets is what survives that.
                events.append(json.loads(json.dumps({"Records": records})))
                log.delivered += len(batch)
        return events

    def _parse(self, topic: CKafkaTopic, event: dict[str, Any]) -> list[Message]:
        messages = []
        sent = event["Records"]
        parsed = list(parse_ckafka_event(event))
        assert len(parsed) == len(sent), f"{len(sent)} records delivered, {len(parsed)} parsed"
        for raw, record in zip(sent, parsed, strict=True):
            assert record.error == "", f"{topic.name}: the function could not read a record: {record.error}"
            assert record.message is not None
            ckafka = raw["Ckafka"]
            delivered = f"{ckafka['topic']}/{ckafka['partition']}@{ckafka['offset']}"
            assert record.ref == delivered, f"record reference {record.ref} is not the delivered {delivered}"
            assert record.message.topic == topic.name, f"parsed as topic {record.message.topic!r}"
            # The function sees the CKafka topic's name; the port's topic is the one it is wired to.
            messages.append(replace(record.message, topic=topic.port_topic))
        return messages
