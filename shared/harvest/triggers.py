"""SCF CKafka-trigger events: parse them record by record, and build them (the local pump does).

SCF delivers `{"Records": [{"Ckafka": {"topic", "partition", "offset", "msgKey", "msgBody"}}]}`.
One unreadable record must never block its neighbours, so parsing yields a result per record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harvest.domain.job import Message, UnreadableMessage, parse_step


@dataclass(frozen=True)
class TriggerRecord:
    """One CKafka record: either a parsed message or the reason it could not be parsed."""

    topic: str
    partition: int
    offset: int
    message: Message | None
    error: str = ""

    @property
    def ref(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


def _parse_body(topic: str, key: str, body: Any) -> Message:
    if not isinstance(body, str):
        raise UnreadableMessage("msgBody is not a string")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UnreadableMessage(f"msgBody is not JSON: {exc}") from None
    step = parse_step(data)  # a body that is no known step is refused here, once, for every function
    return Message(topic=topic, body=data, key=key if key and key != "None" else step.job_id)


def parse_ckafka_event(event: Mapping[str, Any]) -> Iterator[TriggerRecord]:
    """Yield every record of a CKafka-trigger event; malformed ones carry an error instead."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        return
    for raw in records:
        ck = raw.get("Ckafka") if isinstance(raw, Mapping) else None
        if not isinstance(ck, Mapping):
            yield TriggerRecord("?", -1, -1, None, "record has no Ckafka section")
            continue
        topic = str(ck.get("topic", "?"))
        partition = ck.get("partition", -1)
        offset = ck.get("offset", -1)
        partition = partition if isinstance(partition, int) else -1
        offset = offset if isinstance(offset, int) else -1
        try:
            message = _parse_body(topic, str(ck.get("msgKey") or ""), ck.get("msgBody"))
        except UnreadableMessage as exc:
            yield TriggerRecord(topic, partition, offset, None, f"unreadable record: {exc}")
            continue
        yield TriggerRecord(topic, partition, offset, message)


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
