"""The record accumulator: per-partition queues of batches waiting to be sent.

Records are appended to the last open batch of their partition until `batch.size`
would be exceeded (a record larger than that gets a batch of its own). A batch is
*ready* to drain when it is full, another batch queues behind it, it has lingered
`linger.ms`, or a flush was asked for; a retried batch is ready once its backoff has
passed. Batches keep their records (not bytes) because producer id, epoch and base
sequence sit inside the CRC and may change between attempts (epoch bump): the bytes
are built at drain time and cached while those fields stay the same.

Invariants:
- Within a partition's queue, batches are in creation order; a retried batch goes
  back before every batch created after it, so once re-queued it leaves first
  (with idempotence that is also base-sequence order).
- A batch is in at most one place: its queue, or in flight in exactly one request.
- Every batch created is also in `expiry`, a heap by (delivery deadline, creation
  order), until it is reported; the sender looks only at its top, on a timer at the
  earliest deadline, so a send costs no scan of the queues (O(1) amortised).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from simlog.client.metadata import TopicPartition
from simlog.client.results import SendResult
from simlog.records import HEADER_SIZE, Compression, Record, build_batch

RECORD_OVERHEAD = 21  # length, attributes, deltas, key/value/header-count varints


def estimate_record_size(key: bytes | None, value: bytes | None,
                         headers: tuple[tuple[str, bytes | None], ...]) -> int:
    size = RECORD_OVERHEAD + (len(key) if key else 0) + (len(value) if value else 0)
    for hk, hv in headers:
        size += 2 + len(hk) + (len(hv) if hv else 0)
    return size


@dataclass(slots=True)
class PendingRecord:
    record: Record
    size: int
    on_complete: Callable[[SendResult], None] | None


@dataclass(eq=False, slots=True)
class ProducerBatch:
    """A batch for one partition and its delivery state."""

    tp: TopicPartition
    created_us: int
    deadline_us: int  # created + delivery.timeout.ms
    seq_no: int = 0  # creation order within the producer: retries keep this order
    records: list[PendingRecord] = field(default_factory=list)
    size_bytes: int = HEADER_SIZE
    closed: bool = False
    attempts: int = 0
    retry_at_us: int = 0
    in_flight: bool = False
    reported: bool = False  # callbacks ran (an in-flight batch may expire before its answer)
    # True once any attempt may have reached a log (no answer, or a broker error
    # after the append); decides fail versus info if the batch finally fails.
    maybe_written: bool = False
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    sequence_reset: bool = False  # re-sequenced at a new epoch after a proven gap
    last_error: object = None
    _bytes: bytes | None = None
    _bytes_key: tuple[int, int, int] | None = None

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def has_sequence(self) -> bool:
        return self.base_sequence >= 0

    def raw_size(self) -> int:
        return self.size_bytes - HEADER_SIZE

    def build(self, codec: Compression) -> tuple[bytes, bool]:
        """The batch bytes for the current producer state; True when freshly built."""
        key = (self.producer_id, self.producer_epoch, self.base_sequence)
        if self._bytes is not None and self._bytes_key == key:
            return self._bytes, False
        self._bytes = build_batch([r.record for r in self.records], compression=codec,
                                  producer_id=self.producer_id,
                                  producer_epoch=self.producer_epoch,
                                  base_sequence=self.base_sequence)
        self._bytes_key = key
        return self._bytes, True


class RecordAccumulator:
    """Per-partition deques of ProducerBatch."""

    def __init__(self, batch_size: int, linger_us: int, delivery_timeout_us: int) -> None:
        self.batch_size = batch_size
        self.linger_us = linger_us
        self.delivery_timeout_us = delivery_timeout_us
        self.queues: dict[TopicPartition, deque[ProducerBatch]] = {}
        self.flushing = False
        self._created = 0
        # (deadline_us, seq_no, batch) of every unreported batch; reported ones are
        # dropped lazily when they reach the top.
        self.expiry: list[tuple[int, int, ProducerBatch]] = []

    def append(self, tp: TopicPartition, rec: PendingRecord, now_us: int) -> ProducerBatch:
        q = self.queues.get(tp)
        if q is None:
            q = self.queues[tp] = deque()
        elif q:
            last = q[-1]
            if not last.closed and last.attempts == 0 and (
                    last.size_bytes + rec.size <= self.batch_size):
                last.records.append(rec)
                last.size_bytes += rec.size
                return last
            last.closed = True
        self._created += 1
        batch = ProducerBatch(tp=tp, created_us=now_us,
                              deadline_us=now_us + self.delivery_timeout_us,
                              seq_no=self._created)
        batch.records.append(rec)
        batch.size_bytes += rec.size
        q.append(batch)
        heapq.heappush(self.expiry, (batch.deadline_us, batch.seq_no, batch))
        return batch

    def next_expiry(self) -> ProducerBatch | None:
        """The unreported batch with the earliest delivery deadline (None: none)."""
        heap = self.expiry
        while heap and heap[0][2].reported:
            heapq.heappop(heap)
        return heap[0][2] if heap else None

    def pop_expiry(self) -> None:
        heapq.heappop(self.expiry)

    def partitions(self) -> list[TopicPartition]:
        return sorted(tp for tp, q in self.queues.items() if q)

    def head(self, tp: TopicPartition) -> ProducerBatch | None:
        q = self.queues.get(tp)
        return q[0] if q else None

    def ready_at(self, tp: TopicPartition) -> int | None:
        """When the head batch of tp may be sent (<= now: now), None if queue empty."""
        q = self.queues.get(tp)
        if not q:
            return None
        b = q[0]
        if b.attempts > 0:
            return b.retry_at_us
        if len(q) > 1 or b.closed or self.flushing or b.size_bytes >= self.batch_size:
            return b.created_us
        return b.created_us + self.linger_us

    def pop_head(self, tp: TopicPartition) -> ProducerBatch:
        b = self.queues[tp].popleft()
        b.closed = True
        return b

    def reenqueue(self, batch: ProducerBatch) -> None:
        """Put a batch to retry back in its queue before every batch created after it,
        so a partition's batches always leave in creation order (responses to
        pipelined requests may bring retries back in any order)."""
        q = self.queues.setdefault(batch.tp, deque())
        batch.closed = True
        batch.in_flight = False
        i = 0
        while i < len(q) and q[i].seq_no < batch.seq_no:
            i += 1
        q.insert(i, batch)

    def remove(self, batch: ProducerBatch) -> None:
        q = self.queues.get(batch.tp)
        if q is not None and batch in q:
            q.remove(batch)

    def all_batches(self) -> list[ProducerBatch]:
        return [b for tp in self.partitions() for b in self.queues[tp]]

    def empty(self) -> bool:
        return not any(self.queues.values())


__all__ = ["PendingRecord", "ProducerBatch", "RecordAccumulator", "estimate_record_size"]
