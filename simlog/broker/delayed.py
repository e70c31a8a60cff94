"""Delayed produce (acks=all) and delayed fetch (long poll), Kafka's DelayedProduce and
DelayedFetch, as purgatory operations.

DelayedProduce completes when every partition it wrote has its HW past the request's
last offset (or failed: not leader any more, ISR below min.insync.replicas after the
append); partitions still waiting at the timeout answer REQUEST_TIMED_OUT. With acks=1
it waits only for the leader's forced flush (flush.messages) of those offsets.
DelayedFetch completes when fetch.min.bytes are readable, when a partition's leadership
or epoch changed, or at fetch.max.wait.ms; it then reads again and answers.
Both are keyed by (topic, partition); the replica manager checks the keys whenever a
partition's LEO (leader append) or HW moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simlog.broker.partition import Partition
from simlog.broker.purgatory import DelayedOperation
from simlog.protocol.errors import Errors

TopicPartition = tuple[str, int]
PartitionLookup = Callable[[TopicPartition], "Partition | None"]


@dataclass(slots=True)
class ProduceStatus:
    required_offset: int  # last offset + 1
    base_offset: int
    error: Errors = Errors.NONE
    acks_pending: bool = True
    log_start_offset: int = -1


class DelayedProduce(DelayedOperation):
    def __init__(self, delay_us: int, statuses: dict[TopicPartition, ProduceStatus],
                 lookup: PartitionLookup,
                 respond: Callable[[dict[TopicPartition, ProduceStatus]], None],
                 all_replicas: bool = True) -> None:
        super().__init__(delay_us)
        self.statuses = statuses
        self.lookup = lookup
        self.respond = respond
        self.all_replicas = all_replicas  # acks=all; else acks=1 waiting for a flush

    def try_complete(self) -> bool:
        for tp in sorted(self.statuses):
            st = self.statuses[tp]
            if not st.acks_pending:
                continue
            p = self.lookup(tp)
            if p is None:
                st.acks_pending, st.error = False, Errors.NOT_LEADER_OR_FOLLOWER
                continue
            done, err = (p.check_enough_replicas_reach_offset(st.required_offset)
                         if self.all_replicas else p.check_flushed(st.required_offset))
            if err is not Errors.NONE or done:
                st.acks_pending, st.error = False, err
        if all(not st.acks_pending for st in self.statuses.values()):
            return self.force_complete()
        return False

    def on_complete(self) -> None:
        for st in self.statuses.values():
            if st.acks_pending:
                st.acks_pending, st.error = False, Errors.REQUEST_TIMED_OUT
        self.respond(self.statuses)


@dataclass(frozen=True, slots=True)
class FetchSpec:
    """One partition of a waiting fetch, as the request asked for it."""

    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int
    last_fetched_epoch: int
    leader_epoch_at_read: int


class DelayedFetch(DelayedOperation):
    def __init__(self, delay_us: int, specs: dict[TopicPartition, FetchSpec], min_bytes: int,
                 is_follower: bool, lookup: PartitionLookup,
                 respond: Callable[[], None]) -> None:
        super().__init__(delay_us)
        self.specs = specs
        self.order = sorted(specs)
        self.min_bytes = min_bytes
        self.is_follower = is_follower
        self.lookup = lookup
        self.respond = respond

    def try_complete(self) -> bool:
        accumulated = 0
        for tp in self.order:
            spec = self.specs[tp]
            p = self.lookup(tp)
            if p is None or not p.is_leader or p.leader_epoch != spec.leader_epoch_at_read:
                return self.force_complete()  # leadership moved: answer now (with the error)
            end = p.log_end_offset if self.is_follower else p.high_watermark
            if self.is_follower and spec.fetch_offset > end:
                return self.force_complete()  # the leader's log was cut under it
            # a consumer above a new leader's lagging HW just waits, as in Kafka
            if spec.fetch_offset < end:
                accumulated += p.available_bytes(spec.fetch_offset, self.is_follower,
                                                 spec.max_bytes, self.min_bytes - accumulated)
        if accumulated >= self.min_bytes:
            return self.force_complete()
        return False

    def on_complete(self) -> None:
        self.respond()
