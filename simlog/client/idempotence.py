"""The idempotent producer's state: producer id, epochs, per-partition sequences.

What Kafka's TransactionManager does for a non-transactional idempotent producer
(Kafka 2.5+, KIP-360), reduced to what the model needs:

- Get a producer id with InitProducerId before sending anything.
- Give each batch, when first drained, its partition's next base sequence. The broker
  keeps the last five batches per producer and partition, answers a replay as a
  duplicate (with the original offset) and rejects a gap with
  OUT_OF_ORDER_SEQUENCE_NUMBER (OOO).
- A retried batch keeps its sequence and is resent only as the oldest incomplete batch
  of its partition, so with up to five in flight retries still land in order.
- A batch that ends without success (expired, or failed for good) leaves its
  partition *unresolved*: nobody knows whether the broker has its sequences. Once
  no batch of the partition is incomplete, the partition resolves: if a later batch
  was acknowledged past it, it was written and nothing changes; otherwise there is a
  gap and the partition asks for an *epoch bump*. OOO on the batch right after an
  unresolved one (or on the next expected batch) proves the gap at once. Every OOO
  is retried.
- A bump (InitProducerId with the current id and epoch) waits until no Produce is in
  flight. Each partition then moves to the new epoch, restarting at sequence 0, but
  only when it is safe: a partition that asked for the bump after a proven gap
  re-sequences its incomplete batches (none can have been written: the broker accepts
  no sequence past a gap); after UNKNOWN_PRODUCER_ID / INVALID_PRODUCER_EPOCH those of
  them that may have been written are abandoned as `info`; any other partition keeps
  its old epoch until its incomplete batches are done. So a batch that may already be
  in the log is never resent under a new epoch, where the broker could not recognise
  it (which would duplicate it).

Sequences are not wrapped at 2**31 (a run never sends that many batches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from simlog.client.accumulator import ProducerBatch
from simlog.client.metadata import Metadata, TopicPartition
from simlog.client.network import RequestTracker
from simlog.protocol.errors import Errors
from simlog.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from simlog.runtime import Message, Runtime


@dataclass(slots=True)
class _PartitionSequences:
    epoch: int
    next_seq: int = 0
    last_acked: int = -1
    incomplete: list[ProducerBatch] = field(default_factory=list)  # by base sequence
    unresolved: int | None = None  # first sequence after a batch of unknown fate
    reset_pending: bool = False  # restart this partition's sequences at the new epoch
    gap_proven: bool = False  # ...and none of its incomplete batches can be in the log


class IdempotenceState:
    def __init__(self, rt: Runtime, tracker: RequestTracker, metadata: Metadata,
                 retry_backoff_us: int, transaction_timeout_ms: int,
                 on_change: Callable[[], None]) -> None:
        self.rt = rt
        self.tracker = tracker
        self.metadata = metadata
        self.retry_backoff_us = retry_backoff_us
        self.transaction_timeout_ms = transaction_timeout_ms
        self.on_change = on_change
        self.producer_id = -1
        self.producer_epoch = -1
        self.bump_needed = False
        self.bumps = 0
        self._parts: dict[TopicPartition, _PartitionSequences] = {}
        self._request_in_flight = False
        self._next_attempt_us = 0
        self._waiting_for_in_flight = False
        self._attempts = 0
        self._had_id = False
        # Set by the producer: completes a batch that cannot be resent safely.
        self.on_abandon: Callable[[ProducerBatch], None] = lambda b: None

    # --- producer id ---------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True when batches may be drained: an id is known and no bump is pending."""
        return self.producer_id >= 0 and not self.bump_needed

    def request_bump(self, tp: TopicPartition, reason: str, gap_proven: bool = True) -> None:
        """Ask for a new epoch; tp restarts its sequences there. gap_proven: the broker
        showed a sequence gap, so no incomplete batch of tp can be in its log and all
        are resent; otherwise (UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH) those that
        may have been written are abandoned as `info` rather than risk a duplicate."""
        p = self._part(tp)
        p.gap_proven = gap_proven if not p.reset_pending else (p.gap_proven and gap_proven)
        p.reset_pending = True
        p.unresolved = None
        if not self.bump_needed:
            self.rt.emit("producer_epoch_bump_requested", producer_id=self.producer_id,
                         epoch=self.producer_epoch, topic=tp[0], partition=tp[1],
                         reason=reason)
        self.bump_needed = True

    def next_deadline_us(self) -> int | None:
        if self._request_in_flight or self.ready or self._waiting_for_in_flight:
            return None
        return self._next_attempt_us

    def maybe_request(self, produce_in_flight: int) -> None:
        """Send InitProducerId when needed; a bump waits until no Produce request is
        in flight, so no old-epoch batch can complete after sequences restart."""
        if self.ready or self._request_in_flight or self.rt.now() < self._next_attempt_us:
            return
        self._waiting_for_in_flight = self._had_id and produce_in_flight > 0
        if self._waiting_for_in_flight:
            return
        self._attempts += 1
        host = self.tracker.least_loaded(self.metadata.hosts(), self._attempts)
        if host is None:
            self._next_attempt_us = self.rt.now() + self.retry_backoff_us
            return
        req = InitProducerIdRequest(correlation_id=self.tracker.next_correlation_id(),
                                    transaction_timeout_ms=self.transaction_timeout_ms,
                                    producer_id=self.producer_id,
                                    producer_epoch=self.producer_epoch)
        self._request_in_flight = True
        self.tracker.send(host, req, self._on_response)

    def _on_response(self, resp: Message | None) -> None:
        self._request_in_flight = False
        if isinstance(resp, InitProducerIdResponse) and resp.error_code == Errors.NONE:
            self._set_producer(resp.producer_id, resp.producer_epoch)
        else:
            self._next_attempt_us = self.rt.now() + self.retry_backoff_us
            if isinstance(resp, InitProducerIdResponse) and not resp.error_code.retriable \
                    and self.producer_id >= 0:
                # The broker refuses to bump this id (fenced, unknown): ask for a new one.
                self.rt.emit("producer_id_reset", producer_id=self.producer_id,
                             error=resp.error_code.name)
                self.producer_id = self.producer_epoch = -1
                self.bump_needed = False
        self.on_change()

    def _set_producer(self, producer_id: int, epoch: int) -> None:
        self.rt.emit("producer_id", producer_id=producer_id, epoch=epoch)
        if producer_id != self.producer_id:
            # A new id (first, or the broker would not bump): every partition starts
            # over. Nothing is in flight, but a batch of unknown fate still queued is
            # resent under the new id and may be duplicated, as in Kafka.
            for p in self._parts.values():
                p.reset_pending = True
        elif self.producer_id >= 0:
            self.bumps += 1
        self.producer_id = producer_id
        self.producer_epoch = epoch
        self.bump_needed = False
        self._had_id = True
        for tp in sorted(self._parts):
            if self._parts[tp].reset_pending:
                self._maybe_move_to_current_epoch(tp)

    # --- sequences -----------------------------------------------------------
    def _part(self, tp: TopicPartition) -> _PartitionSequences:
        p = self._parts.get(tp)
        if p is None:
            p = self._parts[tp] = _PartitionSequences(epoch=self.producer_epoch)
        return p

    def _maybe_move_to_current_epoch(self, tp: TopicPartition) -> None:
        p = self._part(tp)
        if p.epoch == self.producer_epoch and not p.reset_pending:
            return
        if p.incomplete and not p.reset_pending:
            return  # batches of unknown fate still use the old epoch
        abandoned = [] if p.gap_proven else [b for b in p.incomplete if b.maybe_written]
        p.incomplete = [b for b in p.incomplete if b not in abandoned]
        p.epoch = self.producer_epoch
        p.next_seq = 0
        p.last_acked = -1
        p.unresolved = None
        p.reset_pending = False
        p.gap_proven = False
        for b in abandoned:
            self.on_abandon(b)
        for b in p.incomplete:
            b.producer_id = self.producer_id
            b.producer_epoch = p.epoch
            b.base_sequence = p.next_seq
            b.sequence_reset = True
            p.next_seq += b.count

    def is_current(self, batch: ProducerBatch) -> bool:
        p = self._parts.get(batch.tp)
        return (p is not None and batch.has_sequence and batch.producer_id == self.producer_id
                and batch.producer_epoch == p.epoch)

    def may_drain(self, batch: ProducerBatch) -> bool:
        """Stamp-ready check: a retried batch goes out only as the oldest incomplete
        one of its partition."""
        if not self.ready:
            return False
        self._maybe_move_to_current_epoch(batch.tp)
        if not self.is_current(batch):
            return True
        incomplete = self._parts[batch.tp].incomplete
        return not incomplete or incomplete[0] is batch

    def assign(self, batch: ProducerBatch) -> None:
        """Stamp a batch being drained with its partition's producer state."""
        if self.is_current(batch):
            return
        p = self._part(batch.tp)
        batch.producer_id = self.producer_id
        batch.producer_epoch = p.epoch
        batch.base_sequence = p.next_seq
        p.next_seq += batch.count
        p.incomplete.append(batch)
        p.incomplete.sort(key=lambda b: b.base_sequence)

    def is_next_sequence(self, batch: ProducerBatch) -> bool:
        return batch.base_sequence == self._part(batch.tp).last_acked + 1

    def on_success(self, batch: ProducerBatch) -> None:
        if not self.is_current(batch):
            return
        p = self._parts[batch.tp]
        last = batch.base_sequence + batch.count - 1
        p.last_acked = max(p.last_acked, last)
        self._drop(batch)
        self._maybe_resolve(batch.tp)

    def on_failure(self, batch: ProducerBatch) -> None:
        """A sequenced batch ended without success: its fate is unknown to us."""
        if not self.is_current(batch):
            return
        p = self._parts[batch.tp]
        end = batch.base_sequence + batch.count
        p.unresolved = end if p.unresolved is None else max(p.unresolved, end)
        self._drop(batch)
        self._maybe_resolve(batch.tp)

    def on_out_of_order(self, batch: ProducerBatch) -> None:
        """OOO is always retried; it proves a gap when the batch is the next one
        expected (nothing unresolved) or the one right after an unresolved batch."""
        p = self._parts[batch.tp]
        if p.unresolved is None:
            if not batch.sequence_reset and self.is_next_sequence(batch):
                self.request_bump(batch.tp, "OUT_OF_ORDER_SEQUENCE_NUMBER")
        elif batch.base_sequence == p.unresolved:
            self.request_bump(batch.tp, "OUT_OF_ORDER_SEQUENCE_NUMBER after unresolved")

    def _maybe_resolve(self, tp: TopicPartition) -> None:
        p = self._parts[tp]
        if p.unresolved is None or p.incomplete:
            return
        if p.last_acked >= p.unresolved - 1:
            p.unresolved = None  # a later batch was acknowledged: it was written
        else:
            self.request_bump(tp, "unresolved sequence")

    def _drop(self, batch: ProducerBatch) -> None:
        incomplete = self._parts[batch.tp].incomplete
        if batch in incomplete:
            incomplete.remove(batch)


__all__ = ["IdempotenceState"]
