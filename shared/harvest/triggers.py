"""Record parsers for the batch processor (handlers/batch.py): a trigger's batch, record by record.

- SCF's CKafka trigger delivers `{"Records": [{"Ckafka": {"topic", "partition", "offset",
  "msgKey", "msgBody"}}]}` (`parse_ckafka_event`; `build_ckafka_event` builds one, for tests and
  `harvest invoke`).
- The local queue pump of `harvest serve` hands over the deliveries it leased (`parse_deliveries`).

Another trigger (a queue service, a timer that polls) needs only a parser of its own. One
unreadable record must never block its neighbours, so parsing yields a result per record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harvest.domain.job import Message, Step, UnreadableMessage, parse_step
from harvest.ports import Delivery


@dataclass(frozen=True)
class TriggerRecord:
    """One record of a batch: its message and the step it asks for, or why it could not be read."""

    ref: str  # names the record in logs and results: "work/0@42" (CKafka), "message 42" (local queue)
    message: Message | None
    step: Step | None = None
    error: str = ""

    @property
    def job_id(self) -> str:
        return self.step.job_id if self.step is not None else ""


def _read(ref: str, topic: str, body: Any, key: str) -> TriggerRecord:
    try:
        step = parse_step(body)  # a body that is no known step is refused here, once, for every trigger
    except UnreadableMessage as exc:
        return _unreadable(ref, str(exc))
    return TriggerRecord(ref, Message(topic, body, key or step.job_id), step)


def _unreadable(ref: str, reason: str) -> TriggerRecord:
    return TriggerRecord(ref, None, error=f"unreadable record: {reason}")


# --- SCF's CKafka trigger --------------------------------------------------------------------------


def _ckafka_record(ck: Mapping[str, Any]) -> TriggerRecord:
    topic = str(ck.get("topic", "?"))
    partition, offset = ck.get("partition", -1), ck.get("offset", -1)
    partition = partition if isinstance(partition, int) else -1
    offset = offset if isinstance(offset, int) else -1
    ref = f"{topic}/{partition}@{offset}"
    body = ck.get("msgBody")
    if not isinstance(body, str):
        return _unreadable(ref, "msgBody is not a string")
    try:
        data = json.loads(body)
    except ValueError as exc:
        return _unreadable(ref, f"msgBody is not JSON: {exc}")
    key = str(ck.get("msgKey") or "")
    # SCF writes a record published without a key as "None": the job ID is the key it would have had.
    return _read(ref, topic, data, "" if key == "None" else key)


def parse_ckafka_event(event: Mapping[str, Any]) -> Iterator[TriggerRecord]:
    """Every record of a CKafka-trigger event; malformed ones carry an error instead of a message."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        return
    for raw in records:
        ck = raw.get("Ckafka") if isinstance(raw, Mapping) else None
        if not isinstance(ck, Mapping):
            yield _unreadable("?/-1@-1", "record has no Ckafka section")
            continue
        yield _ckafka_record(ck)


def build_ckafka_event(messages: Sequence[tuple[int, Message]], partition: int = 0) -> dict[str, Any]:
    """The event SCF's CKafka trigger would deliver for these (offset, message) pairs."""
    return {
        "Records": [
            {
                "Ckafka": {
                    "topic": message.topic,
                    "partition": partition,
                    "offset": offset,
                    "msgKey": message.key,
                    "msgBody": json.dumps(message.body, separators=(",", ":")),
                }
            }
            for offset, message in messages
        ]
    }


# --- the local queue pump ---------------------------------------------------------------------------


def delivery_ref(delivery: Delivery) -> str:
    return f"message {delivery.id}"


def parse_deliveries(deliveries: Sequence[Delivery]) -> Iterator[TriggerRecord]:
    """The records of the deliveries a local pump leased, named by queue message ID."""
    for delivery in deliveries:
        message = delivery.message
        yield _read(delivery_ref(delivery), message.topic, message.body, message.key)
