"""Delayed produce (acks=all) and delayed fetch (long poll), Kafka's DelayedProduce and
DelayedFetch, as purgatory operations.

DelayedProduce completes when every partition it wrote has its HW past the request's
last offset (or failed: not leader any more, ISR below min.insync.replicas after the
append); partitions still waiting at the timeout answer REQUEST_TIMED_OUT. With acks=1
it waits only for the leader's forced flush (flush.messages) of those offsets.
DelayedFetch completes when fetch.min.bytes are readable, when a partition's leadership
or epoch changed, or at fetch.max.wait.ms; it then reads again and answers. For an
incremental fetch (KIP-227) its partitions are every partition of the fetch session,
listed in the request or not, so an idle follower's empty long poll wakes when any of
them gets data (and answers only what changed); it watches only the session's
partitions that are not parked, and a parked one that changes joins them (see
DelayedFetch), so waiting costs O(partitions not parked), not O(session).
Both are keyed by (topic, partition); the replica manager checks the keys whenever a
partition's LEO (leader append) or HW moves, and a fetch woken by one key looks at that
partition first.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simlog.broker.partition import Partition
from simlog.broker.purgatory import DelayedOperation
from simlog.protocol.errors import Errors

if TYPE_CHECKING:
    from simlog.broker.fetch_session import FetchSession

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
    """One partition of a fetch, as the request (or its fetch session) asked for it."""

    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int
    last_fetched_epoch: int


class DelayedFetch(DelayedOperation):
    """`epochs`: each partition's leader epoch when the fetch was first read; a change
    (or a lost leadership) answers at once.

    With `session` (an incremental fetch), its partitions are the session's and only
    those not parked are looked at (a parked one has nothing readable and the same
    leader epoch, see `simlog.broker.fetch_session`): `epochs` holds the others', and
    a partition that leaves parking while the fetch waits is watched from then on
    (`FetchSession.mark_dirty`) with the epoch it was parked in. `pin()` turns it into
    a fetch over a copy of the session's partitions, all watched, before the session
    changes under it."""

    def __init__(self, delay_us: int, specs: dict[TopicPartition, FetchSpec] | None,
                 epochs: dict[TopicPartition, int], min_bytes: int,
                 is_follower: bool, lookup: PartitionLookup,
                 respond: Callable[[], None], session: FetchSession | None = None) -> None:
        super().__init__(delay_us)
        self.specs = specs if specs is not None else {}
        self.epochs = epochs
        self.order = sorted(self.specs)
        self.min_bytes = min_bytes
        self.is_follower = is_follower
        self.lookup = lookup
        self.respond = respond
        self.session = session

    def pin(self) -> None:
        s = self.session
        if s is None:
            return
        parts = s.partitions
        self.order = sorted(parts)
        self.specs = {tp: parts[tp].spec for tp in self.order}
        epochs = self.epochs
        for tp in self.order:
            if tp not in epochs:
                epochs[tp] = parts[tp].park_epoch
        self.session = None
        for tp in self.order:
            self.watch(tp)

    def _satisfied_by(self, tp: TopicPartition, spec: FetchSpec, need: int) -> int:
        """-1: answer now (leadership moved, or the leader's log was cut under a
        follower); else the bytes readable at the fetch offset (up to `need`)."""
        p = self.lookup(tp)
        if p is None or not p.is_leader:
            return -1  # leadership moved: answer now (with the error)
        epoch = self.epochs.get(tp)
        if epoch is None:  # parked when the fetch began
            epoch = self.session.partitions[tp].park_epoch  # type: ignore[union-attr]
        if p.leader_epoch != epoch:
            return -1
        if self.is_follower:
            end = p.log_end_offset
            if spec.fetch_offset > end:
                return -1
        else:
            end = p.high_watermark  # a consumer above a new leader's lagging HW just waits
        if spec.fetch_offset < end:
            return p.available_bytes(spec.fetch_offset, self.is_follower, spec.max_bytes, need)
        return 0

    def try_complete_for(self, key: Hashable) -> bool:
        # The partition that just changed alone may be enough (the common case: new
        # records on one partition of a long-polling session); else look at them all.
        s = self.session
        if s is None:
            spec = self.specs.get(key)  # type: ignore[call-overload]
        else:
            spec = s.partitions[key].spec if key in s.dirty else None  # type: ignore[index]
        if spec is not None:
            got = self._satisfied_by(key, spec, self.min_bytes)  # type: ignore[arg-type]
            if got < 0 or got >= self.min_bytes:
                return self.force_complete()
        return self.try_complete()

    def try_complete(self) -> bool:
        accumulated = 0
        s = self.session
        if s is None:
            specs = self.specs
            items: Iterable[tuple[TopicPartition, FetchSpec]] = (
                (tp, specs[tp]) for tp in self.order)
        else:
            parts = s.partitions
            items = ((tp, parts[tp].spec) for tp in sorted(s.dirty))
        for tp, spec in items:
            got = self._satisfied_by(tp, spec, self.min_bytes - accumulated)
            if got < 0:
                return self.force_complete()
            accumulated += got
            if accumulated >= self.min_bytes:
                break  # (what the rest could add or report only completes it too)
        if accumulated >= self.min_bytes:
            return self.force_complete()
        return False

    def on_complete(self) -> None:
        self.respond()
