"""The producer node: Kafka's KafkaProducer as an event-driven state machine.

A workload drives it from inside the node (`world.call_in("p1", lambda p: p.send(...))`):

    producer.send("orders", value=b"...", key=b"k17", headers=(("id", b"p1-42"),),
                  on_complete=lambda r: history.complete(r))

`on_complete` receives exactly one `SendResult` per record: ok (with partition and
offset), fail (certainly not written) or info (may or may not be written); see
results.py and sender.py for which is which. Nothing blocks: a record for a topic
whose metadata is unknown waits (at most `max.block.ms`, then fails) while the
producer fetches metadata; everything else is appended to the accumulator and sent by
the sender when ready.

Memory is bounded as in Kafka: records beyond `buffer.memory` bytes wait (like a
blocked `send`) and fail after `max.block.ms` if no room frees up.

Work happens in one loop (`_run`), entered after every event (a send, a response, a
timer) and never re-entered: callbacks that call `send` from inside the loop only mark
it to run once more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simlog.client.accumulator import (
    PendingRecord,
    ProducerBatch,
    RecordAccumulator,
    estimate_record_size,
)
from simlog.client.config import ProducerConfig
from simlog.client.costs import CpuMeter
from simlog.client.idempotence import IdempotenceState
from simlog.client.network import Waker
from simlog.client.partitioner import StickyPartitioner, partition_for_key
from simlog.client.results import FAIL, SendResult
from simlog.client.sender import Sender
from simlog.client.work_loop import WorkLoopNode
from simlog.protocol.errors import Errors
from simlog.records import Record
from simlog.runtime import Runtime

SendCallback = Callable[[SendResult], None]
Headers = Sequence[tuple[str, bytes | None]]


@dataclass(slots=True)
class _Waiting:
    topic: str
    partition: int | None
    record: Record
    size: int
    on_complete: SendCallback | None
    deadline_us: int


class Producer(WorkLoopNode):
    """An idempotent-by-default Kafka producer. See module docstring."""

    def __init__(self, rt: Runtime, config: ProducerConfig | Mapping[str, Any] | None = None,
                 ) -> None:
        super().__init__(rt)
        if config is None:
            config = ProducerConfig()
        elif not isinstance(config, ProducerConfig):
            config = ProducerConfig.from_kafka(config)
        self._connect(config)
        self.accumulator = RecordAccumulator(config.batch_size, config.linger_us,
                                             config.delivery_timeout_us)
        self.meter = CpuMeter(rt)
        self.idempotence = (IdempotenceState(rt, self.tracker, self.metadata,
                                             config.retry_backoff_us,
                                             config.transaction_timeout_ms, self._kick)
                            if config.enable_idempotence else None)
        self.sender = Sender(rt, config, self.accumulator, self.metadata, self.tracker,
                             self.idempotence, self.meter)
        if self.idempotence is not None:
            self.idempotence.on_abandon = self.sender.abandon
        self.sticky = StickyPartitioner(rt.random, config.batch_size)
        self._waiting: list[_Waiting] = []
        self._waker = Waker(rt, self._kick)
        self.closed = False

    # --- Node ----------------------------------------------------------------
    # --- API -----------------------------------------------------------------
    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: Headers = (), partition: int | None = None,
             on_complete: SendCallback | None = None,
             timestamp_ms: int | None = None) -> None:
        """Queue one record. on_complete gets exactly one SendResult, later (or at
        once for a record that cannot be sent at all)."""
        if timestamp_ms is None:
            timestamp_ms = self.rt.now() // 1000
        hdrs = tuple(headers)
        record = Record(key, value, hdrs, timestamp_ms)
        size = estimate_record_size(key, value, hdrs)
        if self.closed:
            _notify(on_complete, SendResult(FAIL, topic, partition, reason="producer closed"))
            return
        if size + 61 > self.config.max_request_size:
            _notify(on_complete, SendResult(FAIL, topic, partition, error=Errors.MESSAGE_TOO_LARGE,
                                            reason="record larger than max.request.size"))
            return
        waiting = _Waiting(topic, partition, record, size, on_complete,
                           self.rt.now() + self.config.max_block_us)
        count = self.metadata.partition_counts.get(topic)
        if (count is not None and not self._waiting
                and self.sender.buffered_bytes + size <= self.config.buffer_memory):
            # Fast path (most sends), O(1): append, and run the loop only when this
            # record made its partition's head batch sendable (a batch closed behind
            # it, it filled up, linger.ms 0 or a flush); a new lingering batch only
            # sets the wake-up timer. Expiry runs on its own deadline, not per send.
            self._append(waiting, count)
            return
        self._waiting.append(waiting)
        self.metadata.add_topics([topic])
        self._kick()

    def _after_append(self, batch: ProducerBatch, ready_before: int | None) -> None:
        """Wake the sender if the append changed when the partition's head is ready."""
        ready = self.accumulator.ready_at(batch.tp)
        if ready is None or ready == ready_before:
            return
        now = self.rt.now()
        if ready <= now:
            if ready_before is None or ready_before > now:
                self._kick()
        else:
            self._waker.wake_at(ready)

    def partitions_for(self, topic: str) -> int | None:
        """The topic's partition count if known; otherwise None, and metadata for it
        is fetched (Kafka's partitionsFor, without blocking). Lets a workload warm up."""
        self.metadata.add_topics([topic])
        self._kick()
        return self.metadata.partition_counts.get(topic)

    def flush(self) -> None:
        """Send every queued batch without waiting for linger.ms (Kafka's flush(),
        without blocking: completions arrive through the callbacks)."""
        self.accumulator.flushing = True
        self._kick()

    def close(self) -> None:
        """Stop accepting records; queued ones are still sent."""
        self.closed = True
        self.flush()

    def in_flight_requests(self) -> int:
        return self.tracker.total_in_flight()

    # --- the loop --------------------------------------------------------------
    def _run(self) -> None:
        now = self.rt.now()
        self.metadata.maybe_update()
        self._place_waiting(now)
        if self.idempotence is not None:
            self.idempotence.maybe_request(self.sender.produce_in_flight)
        deadline = self.sender.run()
        for d in (self.metadata.next_deadline_us(),
                  self.idempotence.next_deadline_us() if self.idempotence else None,
                  min((w.deadline_us for w in self._waiting), default=None)):
            if d is not None and (deadline is None or d < deadline):
                deadline = d
        if deadline is not None:
            self._waker.wake_at(max(deadline, now + 1) if deadline <= now else deadline)

    def _place_waiting(self, now: int) -> None:
        """Move waiting records into the accumulator, in order: a record stays behind
        every earlier waiting record of its topic, and once buffer.memory is full
        everything after waits. Deadlines grow in send order, so the records past
        max.block.ms are always a prefix of the waiting list."""
        if not self._waiting:
            return
        keep: list[_Waiting] = []
        blocked: set[str] = set()
        waiting = self._waiting
        for i, w in enumerate(waiting):
            count = self.metadata.partition_counts.get(w.topic)
            if count is not None and w.topic not in blocked:
                if (self.sender.buffered_bytes + w.size > self.config.buffer_memory
                        and self.sender.buffered_bytes > 0):
                    rest = waiting[i:]
                    while rest and rest[0].deadline_us <= now:
                        r = rest.pop(0)
                        _notify(r.on_complete, SendResult(
                            FAIL, r.topic, r.partition,
                            reason="buffer.memory full for max.block.ms"))
                    keep.extend(rest)
                    break
                self._append(w, count)
                continue
            error = self.metadata.topic_errors.get(w.topic)
            if error is not None and not error.retriable and count is None:
                _notify(w.on_complete, SendResult(FAIL, w.topic, w.partition, error=error,
                                                  reason=error.name))
            elif w.deadline_us <= now:
                _notify(w.on_complete, SendResult(
                    FAIL, w.topic, w.partition, error=error,
                    reason="topic metadata not available within max.block.ms"))
            else:
                keep.append(w)
                blocked.add(w.topic)
        self._waiting = keep

    def _append(self, w: _Waiting, count: int) -> ProducerBatch | None:
        if w.partition is not None:
            if not 0 <= w.partition < count:
                _notify(w.on_complete, SendResult(FAIL, w.topic, w.partition,
                                                  error=Errors.UNKNOWN_TOPIC_OR_PARTITION,
                                                  reason="partition out of range"))
                return None
            partition = w.partition
        elif w.record.key is not None and not self.config.partitioner_ignore_keys:
            partition = partition_for_key(w.record.key, count)
        else:
            partition = self.sticky.partition(w.topic, count,
                                               self.metadata.available_partitions(w.topic))
        acc = self.accumulator
        tp = (w.topic, partition)
        ready_before = acc.ready_at(tp)
        batch = acc.append(tp, PendingRecord(w.record, w.size, w.on_complete), self.rt.now())
        self.sender.buffered_bytes += w.size
        if w.partition is None and (w.record.key is None or self.config.partitioner_ignore_keys):
            self.sticky.on_append(w.topic, partition, w.size)
        self._after_append(batch, ready_before)
        return batch


def _notify(cb: SendCallback | None, result: SendResult) -> None:
    if cb is not None:
        cb(result)


__all__ = ["Producer", "SendCallback"]
