"""The idempotent producer's state: producer id, epoch, per-partition sequences.

What Kafka's TransactionManager does for a non-transactional idempotent producer:
- Get a producer id with InitProducerId before sending anything.
- Give each batch, when first drained, the partition's next base sequence; the
  broker keeps the last five batches per producer and partition, drops a replayed
  batch as a duplicate and rejects a gap with OUT_OF_ORDER_SEQUENCE_NUMBER.
- A retried batch keeps its sequence and is sent again only when it is the oldest
  incomplete batch of its partition, so retries go out in order (with up to five in
  flight, order holds without muting the partition).
- When a sequenced batch fails for good, or its outcome is unknown when it expires,
  later sequences cannot be trusted: bump the epoch (KIP-360: InitProducerId with the
  current id and epoch) once nothing is in flight, which restarts every partition's
  sequence at 0. Batches still queued are re-sequenced in queue order.

Sequences are not wrapped at 2**31 (a run never sends that many batches).
"""

from __future__ import annotations

from collections.abc import Callable

from simlog.client.accumulator import ProducerBatch
from simlog.client.metadata import Metadata, TopicPartition
from simlog.client.network import RequestTracker
from simlog.protocol.errors import Errors
from simlog.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from simlog.runtime import Message, Runtime


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
        self._next_seq: dict[TopicPartition, int] = {}
        self._last_acked: dict[TopicPartition, int] = {}
        self._incomplete: dict[TopicPartition, list[ProducerBatch]] = {}
        self._request_in_flight = False
        self._next_attempt_us = 0
        self._waiting_for_in_flight = False
        self._attempts = 0

    # --- producer id ---------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True when batches may be drained: an id is known and no bump is pending."""
        return self.producer_id >= 0 and not self.bump_needed

    def request_bump(self, reason: str) -> None:
        if not self.bump_needed and self.producer_id >= 0:
            self.rt.emit("producer_epoch_bump_requested", producer_id=self.producer_id,
                         epoch=self.producer_epoch, reason=reason)
        self.bump_needed = True

    def next_deadline_us(self) -> int | None:
        if self._request_in_flight or self.ready or self._waiting_for_in_flight:
            return None
        return self._next_attempt_us

    def maybe_request(self, produce_in_flight: int) -> None:
        """Send InitProducerId when needed; a bump waits until no produce request is
        in flight, so no old-epoch batch can complete after sequences restart."""
        if self.ready or self._request_in_flight or self.rt.now() < self._next_attempt_us:
            return
        self._waiting_for_in_flight = self.producer_id >= 0 and produce_in_flight > 0
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
            if isinstance(resp, InitProducerIdResponse) and not resp.error_code.retriable:
                # The broker refuses to bump this id: start afresh with a new one.
                self.producer_id = self.producer_epoch = -1
                self.bump_needed = False
        self.on_change()

    def _set_producer(self, producer_id: int, epoch: int) -> None:
        self.rt.emit("producer_id", producer_id=producer_id, epoch=epoch)
        if self.producer_id >= 0:
            self.bumps += 1
        self.producer_id = producer_id
        self.producer_epoch = epoch
        self.bump_needed = False
        self._next_seq.clear()
        self._last_acked.clear()
        self._incomplete.clear()

    # --- sequences -----------------------------------------------------------
    def is_current(self, batch: ProducerBatch) -> bool:
        return (batch.has_sequence and batch.producer_id == self.producer_id
                and batch.producer_epoch == self.producer_epoch)

    def may_drain(self, batch: ProducerBatch) -> bool:
        """A retried batch goes out only as the oldest incomplete one of its partition."""
        if not self.ready:
            return False
        if not self.is_current(batch):
            return True
        incomplete = self._incomplete.get(batch.tp)
        return not incomplete or incomplete[0] is batch

    def assign(self, batch: ProducerBatch) -> None:
        """Stamp a batch being drained with the producer state (if not current)."""
        if self.is_current(batch):
            return
        seq = self._next_seq.get(batch.tp, 0)
        batch.producer_id = self.producer_id
        batch.producer_epoch = self.producer_epoch
        batch.base_sequence = seq
        self._next_seq[batch.tp] = seq + batch.count
        incomplete = self._incomplete.setdefault(batch.tp, [])
        incomplete.append(batch)
        incomplete.sort(key=lambda b: b.base_sequence)

    def is_next_sequence(self, batch: ProducerBatch) -> bool:
        return batch.base_sequence == self._last_acked.get(batch.tp, -1) + 1

    def on_success(self, batch: ProducerBatch) -> None:
        if not self.is_current(batch):
            return
        last = batch.base_sequence + batch.count - 1
        if last > self._last_acked.get(batch.tp, -1):
            self._last_acked[batch.tp] = last
        self._drop(batch)

    def on_failure(self, batch: ProducerBatch, reason: str) -> None:
        """A sequenced batch ended without success: its sequence range is a hole."""
        if not self.is_current(batch):
            return
        self._drop(batch)
        self.request_bump(reason)

    def _drop(self, batch: ProducerBatch) -> None:
        incomplete = self._incomplete.get(batch.tp)
        if incomplete and batch in incomplete:
            incomplete.remove(batch)


__all__ = ["IdempotenceState"]
