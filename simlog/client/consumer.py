"""The consumer node: Kafka's KafkaConsumer (manual assignment) as a state machine.

A workload drives it from inside the node:

    consumer.assign([("orders", 0), ("orders", 1)])
    consumer.seek(("orders", 0), 42)                 # optional
    consumer.poll(on_result, timeout_us=100_000)     # on_result(PollResult) later

`poll` hands over up to `max.poll.records` buffered records at once when there are
any, or waits for records (or the timeout) without blocking the node; at most one poll
is pending. Fetching runs continuously for assigned partitions with an empty buffer
(Kafka's prefetch), so a poll usually finds records waiting.

The position of a partition moves when poll hands its records out, never earlier, so
what the workload saw and `position()` agree. Errors that Kafka's poll would raise
(no offset under auto.offset.reset=none, log truncation under none, corrupt batches)
come back in `PollResult.errors` as (partition, message).

Group hook (consumer groups come later): a group client calls `assign` with each new
assignment (positions of partitions kept are kept), reads `positions()` to commit,
and may install `offset_source` to supply committed offsets for partitions that need
a starting position before the auto.offset.reset policy applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simlog.client.config import ConsumerConfig
from simlog.client.costs import CpuMeter
from simlog.client.fetcher import ConsumerRecord, Fetcher
from simlog.client.metadata import TopicPartition
from simlog.client.network import Waker
from simlog.client.offset_fetcher import OffsetFetcher, Truncation
from simlog.client.subscription import (
    AWAIT_VALIDATION,
    FETCHING,
    INITIALIZING,
    FetchPosition,
    SubscriptionState,
)
from simlog.client.work_loop import WorkLoopNode
from simlog.runtime import Runtime

#: committed-offset lookup: (partitions, reply) -> None; reply({tp: (offset, epoch)}),
#: leaving out partitions without a committed offset.
OffsetSource = Callable[[list[TopicPartition],
                         Callable[[Mapping[TopicPartition, tuple[int, int]]], None]], None]


@dataclass(frozen=True, slots=True)
class PollResult:
    records: list[ConsumerRecord] = field(default_factory=list)
    errors: list[tuple[TopicPartition, str]] = field(default_factory=list)


PollCallback = Callable[[PollResult], None]


class Consumer(WorkLoopNode):
    def __init__(self, rt: Runtime, config: ConsumerConfig | Mapping[str, Any] | None = None,
                 ) -> None:
        super().__init__(rt)
        if config is None:
            config = ConsumerConfig()
        elif not isinstance(config, ConsumerConfig):
            config = ConsumerConfig.from_kafka(config)
        self._connect(config)
        self.subscriptions = SubscriptionState(config.auto_offset_reset)
        self.meter = CpuMeter(rt)
        self.offsets = OffsetFetcher(rt, self.tracker, self.metadata, self.subscriptions,
                                     config.isolation_level, config.retry_backoff_us,
                                     self._error)
        self.fetcher = Fetcher(rt, config, self.tracker, self.metadata, self.subscriptions,
                               self.meter, self._error, self.offsets.on_diverging)
        self.offset_source: OffsetSource | None = None
        self._errors: list[tuple[TopicPartition, str]] = []
        self._poll: PollCallback | None = None
        self._poll_timer: Any = None
        self._rotation = 0
        self._committed_pending: set[TopicPartition] = set()
        self._waker = Waker(rt, self._kick)
        self._freed = False  # a poll emptied a buffer: the loop must fetch again

    # --- Node ----------------------------------------------------------------
    # --- API -----------------------------------------------------------------
    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        tps = sorted(set(partitions))
        for tp in self.subscriptions.assign(tps):
            self.fetcher.drop(tp)
        self.metadata.add_topics(tp[0] for tp in tps)
        self._kick()

    def assignment(self) -> list[TopicPartition]:
        return self.subscriptions.partitions()

    def seek(self, tp: TopicPartition, offset: int, leader_epoch: int = -1) -> None:
        """Read tp from offset next. With leader_epoch (the epoch of the record before
        offset, as in OffsetAndMetadata) the position is validated first (KIP-320)."""
        info = self.metadata.leader(tp)
        self.subscriptions.seek(tp, offset, leader_epoch, info.leader_epoch if info else -1)
        self.fetcher.drop(tp)
        self._errors = [e for e in self._errors if e[0] != tp]  # superseded by the seek
        self._kick()

    def seek_to_beginning(self, tps: Iterable[TopicPartition]) -> None:
        for tp in sorted(tps):
            self.subscriptions.request_reset(tp, "earliest")
            self.fetcher.drop(tp)
        self._kick()

    def seek_to_end(self, tps: Iterable[TopicPartition]) -> None:
        for tp in sorted(tps):
            self.subscriptions.request_reset(tp, "latest")
            self.fetcher.drop(tp)
        self._kick()

    def position(self, tp: TopicPartition) -> int | None:
        s = self.subscriptions.get(tp)
        return None if s is None or s.position is None else s.position.offset

    def positions(self) -> dict[TopicPartition, FetchPosition]:
        """Positions of partitions that have one (what a group client commits)."""
        return {tp: s.position for tp, s in sorted(self.subscriptions.assignment.items())
                if s.position is not None}

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.subscriptions.assignment[tp].paused = True

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.subscriptions.assignment[tp].paused = False
        self._kick()

    @property
    def truncations(self) -> list[Truncation]:
        return self.offsets.truncations

    def poll(self, on_result: PollCallback, timeout_us: int = 0) -> None:
        """Hand over buffered records (or errors) now, or when some arrive, or an
        empty result after timeout_us. A second poll replaces a pending one's
        callback only after the first completes: calling poll while one is pending
        raises RuntimeError (Kafka's consumer is single-threaded likewise)."""
        if self._poll is not None:
            raise RuntimeError("a poll is already pending")
        self._poll = on_result
        self._poll_timer = None
        # O(1) unless records are buffered: hand them over now; the work loop runs
        # only if that emptied a buffer (a fetch is due), not on every poll.
        result = self._drain()
        if result.records or result.errors:
            self._finish_poll(result)
        elif timeout_us > 0:
            self._poll_timer = self.rt.set_timer(timeout_us, self._poll_expired)
        else:
            self._finish_poll(PollResult())
        if self._freed:
            self._kick()

    # --- the loop --------------------------------------------------------------
    def _run(self) -> None:
        self._freed = False
        self.metadata.maybe_update()
        self._check_leader_epochs()
        self._initialize()
        deadline = self.offsets.run()
        d = self.fetcher.run()
        for x in (d, self.metadata.next_deadline_us()):
            if x is not None and (deadline is None or x < deadline):
                deadline = x
        if deadline is not None:
            self._waker.wake_at(max(deadline, self.rt.now() + 1))
        if self._poll is not None:
            result = self._drain()
            if result.records or result.errors:
                self._finish_poll(result)
            if self._freed:
                self._dirty = True  # records handed out freed a buffer: fetch again

    def _check_leader_epochs(self) -> None:
        """KIP-320: a grown leader epoch triggers validation of the position."""
        for tp in self.subscriptions.partitions():
            s = self.subscriptions.assignment[tp]
            info = self.metadata.leader(tp)
            if info is None or s.position is None or s.state != FETCHING:
                continue
            if info.leader_epoch > s.position.current_leader_epoch:
                pos = s.position
                s.position = FetchPosition(pos.offset, pos.offset_epoch, info.leader_epoch)
                if pos.current_leader_epoch >= 0 and pos.offset_epoch >= 0:
                    s.state = AWAIT_VALIDATION
                    self.fetcher.drop(tp)

    def _initialize(self) -> None:
        waiting = [tp for tp in self.subscriptions.in_state(INITIALIZING)
                   if tp not in self._committed_pending]
        if not waiting:
            return
        if self.offset_source is None:
            for tp in waiting:
                if not self.subscriptions.request_reset(tp):
                    self._error(tp, "no committed offset and auto.offset.reset=none")
            return
        self._committed_pending.update(waiting)
        self.offset_source(waiting, lambda found: self._on_committed(waiting, found))

    def _on_committed(self, tps: list[TopicPartition],
                      found: Mapping[TopicPartition, tuple[int, int]]) -> None:
        for tp in tps:
            self._committed_pending.discard(tp)
            s = self.subscriptions.get(tp)
            if s is None or s.state != INITIALIZING:
                continue
            if tp in found:
                offset, epoch = found[tp]
                info = self.metadata.leader(tp)
                self.subscriptions.seek(tp, offset, epoch, info.leader_epoch if info else -1)
            elif not self.subscriptions.request_reset(tp):
                self._error(tp, "no committed offset and auto.offset.reset=none")
        self._kick()

    def _error(self, tp: TopicPartition, message: str) -> None:
        self._errors.append((tp, message))

    def _drain(self) -> PollResult:
        errors, self._errors = self._errors, []
        records: list[ConsumerRecord] = []
        budget = self.config.max_poll_records
        tps = sorted(self.fetcher.buffers)
        if tps:
            self._rotation += 1
            start = self._rotation % len(tps)
            tps = tps[start:] + tps[:start]
        for tp in tps:
            if budget <= 0:
                break
            s = self.subscriptions.get(tp)
            if s is not None and s.paused:
                continue  # kept buffered; handed out after resume (Kafka's pause)
            buf = self.fetcher.buffers[tp]
            if s is None or s.position is None or s.position.offset != buf.fetch_offset \
                    or s.state != FETCHING:
                self.fetcher.drop(tp)
                self._freed = True
                continue
            take, buf.records = buf.records[:budget], buf.records[budget:]
            budget -= len(take)
            records.extend(take)
            pos = s.position
            if buf.records:
                last = take[-1]
                s.position = FetchPosition(last.offset + 1, last.leader_epoch,
                                           pos.current_leader_epoch)
                buf.fetch_offset = last.offset + 1
            else:
                s.position = FetchPosition(buf.next_offset, buf.next_epoch,
                                           pos.current_leader_epoch)
                self.fetcher.drop(tp)
                self._freed = True
        return PollResult(records, errors)

    def _poll_expired(self) -> None:
        self._poll_timer = None
        if self._poll is not None:
            self._finish_poll(self._drain())
            if self._freed:
                self._kick()

    def _finish_poll(self, result: PollResult) -> None:
        cb, self._poll = self._poll, None
        if self._poll_timer is not None:
            self._poll_timer.cancel()
            self._poll_timer = None
        if cb is not None:
            cb(result)


__all__ = ["Consumer", "ConsumerRecord", "OffsetSource", "PollCallback", "PollResult"]
