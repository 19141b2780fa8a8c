"""Every queue backend against one contract, on its publish side and on its consume side.

Backends (tests/support/queue_backends.py): the SQL queue on SQLite (as `harvest serve` runs it)
and on PostgreSQL (skipped, saying why, when it is unreachable), and CKafka: the real adapter and
the Tencent SDK into a stand-in that checks what CKafka's API would receive, consumed through the
CKafka trigger's events and the parser the functions run.

The contract: whatever is published reaches its topic's consumers exactly as it was sent (topic,
key, body: every kind, any unicode, large bodies), each message once, and one key's messages on
one topic in the order they were published (the job ID is the key: CKafka keeps one job's messages
on one partition). Publishing nothing sends nothing. Bodies are compared in a form that tells
`1`, `1.0` and `true` apart, so a changed type fails as a changed value does.

Lease behaviour (redelivery, nack, dead letters) belongs to the SQL queue alone:
test_queue_contract.py. CKafka's own errors and batching: tests/integration/test_ckafka.py.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.contract.conftest import POSTGRES_URL
from tests.support.queue_backends import CKAFKA_TOPICS, CKafkaBackend, QueueBackend, SqlBackend, WireRecord
from tests.support.tencent_api_standin import MAX_MESSAGE_BYTES, TencentApiStandIn

from harvest.adapters.sql.db import Database
from harvest.domain.job import (
    TOPIC_CALLBACK,
    TOPIC_FINALIZE,
    TOPIC_WORK,
    Message,
    callback_message,
    chunk_message,
    finalize_message,
    plan_message,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "ckafka"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[QueueBackend]:
    if request.param == "ckafka":
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the SDK honours HTTP(S)_PROXY
        datahubs = tuple(topic.datahub_id for topic in CKAFKA_TOPICS)
        # With a token, as SCF's role keys carry one: the stand-in refuses a request without it.
        with TencentApiStandIn(datahub_ids=datahubs, token="scf-session-token") as api:
            yield CKafkaBackend(api)
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.db'}"
    else:
        # Skips the case, naming the address and the error, when PostgreSQL cannot be reached; the
        # schema is dropped with the session's others.
        prefix: str = request.getfixturevalue("postgres_server")
        url = f"{POSTGRES_URL}?schema={prefix}_queue_{uuid.uuid4().hex[:8]}"
    db = Database.connect(url)
    yield SqlBackend(request.param, db)
    db.close()


def canonical(body: dict[str, Any]) -> str:
    """The body as text in which 1, 1.0 and true differ (dict equality would call them equal)."""
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def by_topic_and_key(messages: Sequence[Message]) -> dict[tuple[str, str], list[str]]:
    """Each (topic, key)'s bodies in order: the order the contract promises, and nothing more."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for message in messages:
        groups[(message.topic, message.key)].append(canonical(message.body))
    return dict(groups)


def assert_on_the_wire(backend: QueueBackend, sent: Sequence[Message]) -> list[WireRecord]:
    """Publish side: the transport holds every message under its topic, with its key and its body."""
    records = backend.on_the_wire()
    wire: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record in records:
        wire[record.topic].append((record.key, canonical(json.loads(record.body))))
    expected: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for message in sent:
        expected[message.topic].append((message.key, canonical(message.body)))
    assert dict(wire) == dict(expected)
    return records


def assert_round_trip(
    backend: QueueBackend, sent: Sequence[Message]
) -> tuple[list[WireRecord], list[Message]]:
    """Both sides: on the wire as sent, then handed to consumers whole, once each, in key order.
    Returns what was on the wire (before consumers took it) and what they were handed."""
    wire = assert_on_the_wire(backend, sent)
    consumed = backend.consume()
    assert len(consumed) == len(sent)
    assert by_topic_and_key(consumed) == by_topic_and_key(sent)
    assert backend.consume() == []  # nothing handed out twice
    return wire, consumed


def every_kind(job_id: str) -> list[Message]:
    return [
        plan_message(job_id),
        chunk_message(job_id, 0),
        chunk_message(job_id, 7),
        finalize_message(job_id),
        callback_message(job_id),
    ]


# --- the contract -----------------------------------------------------------------------------------


def test_every_kind_reaches_its_topics_consumers_whole(backend: QueueBackend) -> None:
    # GIVEN every kind of message for two jobs, published together
    sent = every_kind("job-a") + every_kind("job-b")
    # WHEN they are published and consumed
    backend.queue.publish(sent)
    _, consumed = assert_round_trip(backend, sent)
    # THEN (beyond the round trip) each consumer saw only its topic's kinds, each message exactly as built
    kinds = {(m.topic, m.body["kind"]) for m in consumed}
    assert kinds == {
        (TOPIC_WORK, "plan"),
        (TOPIC_WORK, "chunk"),
        (TOPIC_FINALIZE, "finalize"),
        (TOPIC_CALLBACK, "callback"),
    }
    assert sorted(consumed, key=repr) == sorted(sent, key=repr)


def test_one_keys_messages_keep_their_order_across_publishes(backend: QueueBackend) -> None:
    # GIVEN six jobs' chunk messages interleaved, with finalize messages among them, over three publishes
    jobs = [f"order-{n}" for n in range(6)]
    chunks = [chunk_message(job, index) for index in range(30) for job in jobs]
    sent = []
    for n, message in enumerate(chunks):
        if n % 45 == 44:
            sent.append(finalize_message(jobs[n // 45]))
        sent.append(message)
    # WHEN they are published in three calls and consumed
    for start in range(0, len(sent), 60):
        backend.queue.publish(sent[start : start + 60])
    wire, _ = assert_round_trip(backend, sent)
    # THEN each job's messages stayed on one partition of each topic (CKafka spreads the jobs over
    # several, so the order held across partitions too; the SQL queue has one)
    partitions: dict[tuple[str, str], set[int]] = defaultdict(set)
    for record in wire:
        partitions[(record.topic, record.key)].add(record.partition)
    assert len(partitions) == 6 + 4
    assert all(len(used) == 1 for used in partitions.values())
    if backend.name == "ckafka":
        assert len({record.partition for record in wire if record.topic == TOPIC_WORK}) > 1


def test_a_key_other_than_the_job_id_travels_as_given(backend: QueueBackend) -> None:
    # GIVEN messages whose partition key is not their job ID
    sent = [
        Message(TOPIC_WORK, {"kind": "plan", "job_id": "job-k"}, key="tenant-7"),
        Message(TOPIC_WORK, {"kind": "chunk", "job_id": "job-k", "chunk": 2}, key="tenant-7"),
        Message(TOPIC_FINALIZE, {"kind": "finalize", "job_id": "job-k"}, key="job-k/final"),
    ]
    # WHEN published and consumed THEN the keys arrive as given, not replaced by the job ID
    backend.queue.publish(sent)
    _, consumed = assert_round_trip(backend, sent)
    assert [m.key for m in consumed if m.topic == TOPIC_WORK] == ["tenant-7", "tenant-7"]


UNICODE = (
    "直播回看 ✓ émigré Ωmega مرحبا עברית 🎬🧵👩‍👩‍👧 e\u0301 \u2028\u2029 \u200b"
    ' "quoted" \\back\\slash\\ \t tab \n newline \u0000 nul \u007f \ufeff'
)


def test_unicode_in_bodies_and_keys_round_trips_exactly(backend: QueueBackend) -> None:
    # GIVEN bodies and keys with multi-byte, astral, combining, right-to-left, JSON-escaped and
    # control characters, and values of every JSON type
    sent = [
        Message(
            TOPIC_WORK,
            {
                "kind": "chunk",
                "job_id": "作业-ü-🎬",
                "chunk": 3,
                "note": UNICODE,
                "nested": {"list": [1, 1.5, True, None, "", UNICODE[::-1]], "名字": "值"},
                "big": 2**62,
                "float": 0.1,
            },
            key="作业-ü-🎬",
        ),
        Message(TOPIC_FINALIZE, {"kind": "finalize", "job_id": "job-é", "why": UNICODE}, key="job-é"),
    ]
    # WHEN published and consumed THEN every character and every type comes back as sent
    backend.queue.publish(sent)
    _, consumed = assert_round_trip(backend, sent)
    note = next(m for m in consumed if m.topic == TOPIC_WORK).body["note"]
    assert note == UNICODE
    assert len(note) == len(UNICODE)


def test_a_large_message_round_trips_byte_exact(backend: QueueBackend) -> None:
    # GIVEN a message of about 800 KB as serialized (within CKafka's default 1 MiB per message, the
    # smallest limit of the three backends), with a small message either side of it
    blob = "".join(uuid.UUID(int=n).hex for n in range(18_000)) + "漢字" * 10_000 + "🎞" * 4_000
    body = {"kind": "chunk", "job_id": "job-big", "chunk": 0, "blob": blob}
    large = Message(TOPIC_WORK, body, key="job-big")
    sent = [plan_message("job-big"), large, chunk_message("job-big", 1)]
    # WHEN published and consumed
    backend.queue.publish(sent)
    wire, consumed = assert_round_trip(backend, sent)
    # THEN the large body came back whole and unshifted, and it was large on the wire as well
    assert [m.body.get("blob") for m in consumed] == [None, blob, None]
    sizes = [len(record.body.encode()) for record in wire]
    assert 700_000 < max(sizes) <= MAX_MESSAGE_BYTES


def test_more_messages_than_one_send_carries_arrive_whole_and_in_order(backend: QueueBackend) -> None:
    # GIVEN 1,201 chunk messages of one job in one publish (CKafka sends at most 500 a request),
    # with a finalize message of other jobs before, inside and after the run
    chunks = [chunk_message("job-many", index) for index in range(1_201)]
    sent = [finalize_message("first"), *chunks[:600], finalize_message("middle"), *chunks[600:]]
    sent.append(finalize_message("last"))
    # WHEN it is published and consumed
    backend.queue.publish(sent)
    _, consumed = assert_round_trip(backend, sent)
    # THEN every chunk came once, in order
    assert [m.body["chunk"] for m in consumed if m.topic == TOPIC_WORK] == list(range(1_201))


def test_publishing_nothing_sends_nothing(backend: QueueBackend) -> None:
    # WHEN an empty batch is published (a relay flush with an empty outbox)
    backend.queue.publish([])
    # THEN it succeeds, and nothing is on the wire or handed to a consumer
    assert backend.on_the_wire() == []
    assert backend.consume() == []
