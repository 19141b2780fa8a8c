"""SCF CKafka-trigger events: parse them record by record, and build them (the local pump does).

SCF delivers `{"Records": [{"Ckafka": {"topic", "partition", "offset", "msgKey", "msgBody"}}]}`.
One unreadable record must never block its neighbours, so parsing yields a result per record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harvest.domain.job import Message


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
        raise ValueError("msgBody is not a string")
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or not data["job_id"]:
        raise ValueError("msgBody has no job_id")
    if data.get("kind") not in ("plan", "chunk", "finalize", "callback"):
        raise ValueError(f"unknown message kind {data.get('kind')!r}")
    if data["kind"] == "chunk" and (not isinstance(data.get("chunk"), int) or data["chunk"] < 0):
        raise ValueError("chunk message without a chunk index")
    return Message(topic=topic, body=data, key=key if key and key != "None" else data["job_id"])


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
        except (ValueError, TypeError) as exc:
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
