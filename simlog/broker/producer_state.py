"""Idempotent-producer state of one partition: the last five batches per producer id.

Why: the idempotent producer retries a batch whose response it lost; the leader must
write it once and answer the retry with the original offsets. Kafka keeps, per producer
id, the producer epoch and the metadata (sequence range, offset range) of the last five
batches written (`max.in.flight.requests.per.connection` may not exceed five), and
checks every new batch of the same epoch against them.

Rules (Kafka's ProducerStateManager / ProducerAppendInfo, leader appends):
- epoch below the current one: INVALID_PRODUCER_EPOCH (a zombie producer);
- same sequence range as one of the retained batches: a duplicate; the caller answers
  with the original offsets and no error (as Kafka does since KAFKA-5793);
- sequence at or below the last one but not retained: DUPLICATE_SEQUENCE_NUMBER
  (too old to know its offsets; the Java producer treats it as success);
- any other sequence except last + 1 (wrapping at 2^31 - 1), or a new epoch that does
  not start at sequence 0: OUT_OF_ORDER_SEQUENCE_NUMBER.
Follower appends skip the checks and only record what the leader decided, so that a
follower promoted to leader deduplicates retries of batches it replicated.

Invariant: for each producer, `batches` is in offset order, holds at most
NUM_BATCHES_TO_RETAIN entries, and all of them carry the entry's epoch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

NUM_BATCHES_TO_RETAIN = 5
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
INT32_MAX = 2**31 - 1


class SequenceCheck(Enum):
    OK = "ok"
    DUPLICATE = "duplicate"  # retained duplicate: answer with the original offsets
    DUPLICATE_SEQUENCE_NUMBER = "duplicate_sequence_number"
    OUT_OF_ORDER_SEQUENCE_NUMBER = "out_of_order_sequence_number"
    INVALID_PRODUCER_EPOCH = "invalid_producer_epoch"


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=deque)

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: SequenceCheck
    duplicate: BatchMetadata | None = None


def last_sequence(base_sequence: int, record_count: int) -> int:
    """The sequence of a batch's last record; sequences wrap from 2^31 - 1 to 0."""
    return (base_sequence + record_count - 1) % (INT32_MAX + 1)


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """Per-partition producer state. Pure data: no I/O, rebuilt from the log on load
    and after truncation (`clear` then `record` for every batch kept)."""

    def __init__(self) -> None:
        self._producers: dict[int, ProducerEntry] = {}

    def entry(self, producer_id: int) -> ProducerEntry | None:
        return self._producers.get(producer_id)

    def producer_ids(self) -> list[int]:
        return sorted(self._producers)

    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int) -> CheckResult:
        """Validate a leader append of one idempotent batch (no state change)."""
        if producer_id == NO_PRODUCER_ID:
            return CheckResult(SequenceCheck.OK)
        entry = self._producers.get(producer_id)
        if entry is None:
            if first_seq != 0:
                # Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER (or UNKNOWN_PRODUCER_ID for
                # expired state); we keep producer state forever, so out of order it is.
                return CheckResult(SequenceCheck.OUT_OF_ORDER_SEQUENCE_NUMBER)
            return CheckResult(SequenceCheck.OK)
        if epoch < entry.epoch:
            return CheckResult(SequenceCheck.INVALID_PRODUCER_EPOCH)
        if epoch > entry.epoch:
            if first_seq != 0:
                return CheckResult(SequenceCheck.OUT_OF_ORDER_SEQUENCE_NUMBER)
            return CheckResult(SequenceCheck.OK)
        for batch in entry.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return CheckResult(SequenceCheck.DUPLICATE, batch)
        if in_sequence(entry.last_seq, first_seq):
            return CheckResult(SequenceCheck.OK)
        if entry.batches and entry.batches[0].first_seq <= entry.last_seq and (
            first_seq <= entry.last_seq
        ):
            return CheckResult(SequenceCheck.DUPLICATE_SEQUENCE_NUMBER)
        return CheckResult(SequenceCheck.OUT_OF_ORDER_SEQUENCE_NUMBER)

    def record(self, producer_id: int, epoch: int, first_seq: int, last_seq: int,
               first_offset: int, last_offset: int) -> None:
        """Remember a written batch (leader after `check`, or follower unconditionally)."""
        if producer_id == NO_PRODUCER_ID:
            return
        entry = self._producers.get(producer_id)
        if entry is None or epoch != entry.epoch:
            if entry is not None and epoch < entry.epoch:
                return  # a follower never moves an epoch backwards
            entry = ProducerEntry(producer_id, epoch)
            self._producers[producer_id] = entry
        entry.batches.append(BatchMetadata(first_seq, last_seq, first_offset, last_offset))
        while len(entry.batches) > NUM_BATCHES_TO_RETAIN:
            entry.batches.popleft()

    def clear(self) -> None:
        self._producers.clear()
