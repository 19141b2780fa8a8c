"""Outbox relay: moves messages committed with job changes onto the queue.

A job change and its messages commit together in the job database's outbox (ports.Outbox); the
relay then publishes them and only afterwards forgets them. A crash between the two publishes them
again on the next flush (at-least-once, which every handler tolerates); no order of failures loses
one. Several relays may flush at once: at worst a message is published twice.
"""

from __future__ import annotations

from harvest.domain.job import Message
from harvest.ports import Outbox, Queue


class OutboxRelay:
    def __init__(self, store: Outbox, queue: Queue) -> None:
        self._store = store
        self._queue = queue

    def flush(self, limit: int = 500) -> int:
        """Publish up to `limit` pending messages, oldest first; how many were published."""
        pending: list[tuple[int, Message]] = self._store.pending_outbox(limit)
        if not pending:
            return 0
        self._queue.publish([message for _, message in pending])
        self._store.delete_outbox([outbox_id for outbox_id, _ in pending])
        return len(pending)

    def drain(self, batch: int = 500) -> int:
        """Flush until the outbox is empty (as far as this caller can tell); how many were published."""
        total = 0
        while True:
            published = self.flush(batch)
            total += published
            if published < batch:
                return total
