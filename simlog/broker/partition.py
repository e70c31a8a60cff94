"""One replica of one partition on this broker: role, ISR, high watermark (Kafka's Partition).

As leader it appends produced batches, tracks every follower's log end offset (LEO) and
last caught-up time from their fetches, moves the high watermark (HW) and proposes ISR
changes; as follower it only keeps the leader's identity and epoch and its own HW (the
fetcher does the fetching). It sends nothing itself: ISR changes go out through the
`alter_isr` callback (the replica manager turns them into AlterPartition requests).

Invariants (Kafka's, KIP-497 and KAFKA-13091 included):
- The leader's HW only grows while it leads, and is the minimum LEO over the *maximal*
  ISR (the committed ISR plus any replica a pending expansion adds, or the ISR before a
  pending shrink) and any replica currently caught up; so an ISR change in flight never
  lets the HW pass a replica the controller may still count as in sync.
- A replica is caught up when its LEO equals the leader's or it reached the leader's LEO
  of its previous fetch within `replica.lag.time.max.ms`.
- The ISR shrinks only through the controller: an isolated leader cannot drop its
  followers, so its HW stops and acks=all requests time out instead of succeeding.
- One ISR change in flight at a time; it is cleared by the controller's answer or by
  the next metadata update for this partition.
- acks=all completes when HW >= last offset + 1; the answer is
  NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR is then below min.insync.replicas.
- The leader's own log counts toward the HW (and acks=1) only up to the log's
  `committable_end_offset`: with flush.messages, records whose forced fsync is still in
  flight do not count (Kafka flushes inside Log.append, before anyone sees them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from simlog.broker.config import TopicSettings
from simlog.broker.producer_state import (
    ProducerStateManager,
    SequenceCheck,
    last_sequence,
)
from simlog.broker.replica_log import BatchInfo, LogAppendError, ReplicaLog
from simlog.protocol.errors import Errors
from simlog.runtime import FileSlice

NO_LEADER = -1
UNKNOWN_OFFSET = -1
NO_EPOCH = -1
# The smallest v2 record batch (its header): what any offset below a log's end occupies.
BATCH_HEADER_BYTES = 61
# "never caught up": Kafka uses 0 on a wall clock; simulated clocks start near 0.
NEVER_US = -(1 << 62)


@dataclass(slots=True)
class ReplicaState:
    """What the leader knows of one follower, from its fetches (Kafka's Replica).

    `parked`: the fetch session (`simlog.broker.fetch_session.FetchSession`) that
    re-reads this partition for this follower lazily. While it is set the follower sits
    at the leader's log end (log_end_offset == last_fetch_leader_leo == the log end) of
    a partition that has not changed since, so each of the session's fetches would only
    set last_caught_up_time_us and last_fetch_time_us to that fetch's time: the session
    skips the read and `FetchSession.release` applies its last one when the state
    leaves parking (any change to the partition, another reader, the session forgetting
    the partition or closing). Until then is_caught_up holds through the log end alone,
    so no reader needs the lazy times (see `Partition.follower_state`)."""

    broker_id: int
    log_end_offset: int = UNKNOWN_OFFSET
    last_caught_up_time_us: int = NEVER_US
    last_fetch_leader_leo: int = UNKNOWN_OFFSET
    last_fetch_time_us: int = 0
    parked: Any = None  # FetchSession | None
    park_loop: int = 0  # the session's read (FetchSession.loops) that parked it

    def is_caught_up(self, leader_leo: int, now_us: int, lag_max_us: int) -> bool:
        return (self.log_end_offset == leader_leo
                or now_us - self.last_caught_up_time_us <= lag_max_us)

    def update_fetch_state(self, fetch_offset: int, fetch_time_us: int,
                           leader_leo: int) -> None:
        """Kafka's rule: a fetch at the leader's LEO proves caught-up now; a fetch at
        the leader's LEO of the previous fetch proves caught-up at that fetch's time."""
        if fetch_offset >= leader_leo:
            self.last_caught_up_time_us = max(self.last_caught_up_time_us, fetch_time_us)
        elif fetch_offset >= self.last_fetch_leader_leo:
            self.last_caught_up_time_us = max(self.last_caught_up_time_us,
                                              self.last_fetch_time_us)
        self.log_end_offset = fetch_offset
        self.last_fetch_leader_leo = leader_leo
        self.last_fetch_time_us = fetch_time_us


@dataclass(frozen=True, slots=True)
class PendingIsrChange:
    """An AlterPartition in flight: `isr` proposed, `maximal_isr` used for the HW."""

    isr: frozenset[int]
    maximal_isr: frozenset[int]
    kind: str  # "expand" | "shrink"


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    error: Errors
    first_offset: int = UNKNOWN_OFFSET
    last_offset: int = UNKNOWN_OFFSET
    duplicate: bool = False
    log_append_time_ms: int = -1
    log_start_offset: int = UNKNOWN_OFFSET


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """One partition's answer to a fetch (Kafka's LogReadResult)."""

    error: Errors
    high_watermark: int = UNKNOWN_OFFSET
    log_start_offset: int = UNKNOWN_OFFSET
    log_end_offset: int = UNKNOWN_OFFSET
    records: bytes | FileSlice = b""
    diverging_epoch: tuple[int, int] | None = None  # (epoch, end_offset)

    @property
    def size_bytes(self) -> int:
        r = self.records
        return r.length if isinstance(r, FileSlice) else len(r)


AlterIsrCallback = Callable[["Partition", PendingIsrChange], None]
EmitCallback = Callable[..., None]
ChangeCallback = Callable[["Partition"], None]


@dataclass
class Partition:
    topic: str
    index: int
    local_broker_id: int
    log: ReplicaLog
    settings: TopicSettings
    replica_lag_time_max_us: int
    alter_isr: AlterIsrCallback = lambda _p, _c: None
    emit: EmitCallback = lambda kind, **fields: None
    # KIP-841: only unfenced brokers not shutting down may join the ISR
    eligible: Callable[[int], bool] = lambda _broker_id: True
    # called whenever something a fetch of this partition reads may have moved (see
    # fetch_changed): the replica manager marks it for its replica fetcher
    on_fetch_change: ChangeCallback = lambda _p: None

    leader_id: int = NO_LEADER
    leader_epoch: int = NO_EPOCH
    partition_epoch: int = NO_EPOCH
    replicas: tuple[int, ...] = ()
    isr: frozenset[int] = frozenset()
    pending: PendingIsrChange | None = None
    high_watermark: int = 0
    leader_epoch_start_offset: int = UNKNOWN_OFFSET
    remotes: dict[int, ReplicaState] = field(default_factory=dict)
    producers: ProducerStateManager = field(default_factory=ProducerStateManager)
    # the last "nothing to read" outcome, shared while it stays true (read_as_leader)
    _idle_read: ReadOutcome | None = field(default=None, init=False, repr=False,
                                           compare=False)

    def __post_init__(self) -> None:
        hw = self.log.read_high_watermark()
        self.high_watermark = max(self.log.log_start_offset, min(hw, self.log.log_end_offset))
        self.rebuild_producer_state()

    # ------------------------------------------------------------------ identity

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.index}"

    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.local_broker_id

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def maximal_isr(self) -> frozenset[int]:
        return self.pending.maximal_isr if self.pending is not None else self.isr

    def fetch_changed(self) -> None:
        """Something a fetch of this partition reads may have moved: its log end, HW,
        log start, leader epoch, role, ISR or replicas. Every follower state parked in a
        fetch session leaves parking (the session reads the partition again at its next
        fetch, and a long poll of it waits on it again), and the replica manager's
        callback tells the replica fetcher following it. O(replicas); called before the
        change where the change replaces follower states, after it otherwise."""
        if self.remotes:
            tp = (self.topic, self.index)
            # (each parked state belongs to its own session: the order cannot matter)
            for st in self.remotes.values():
                s = st.parked
                if s is not None:
                    s.release(tp, st)
        self.on_fetch_change(self)

    def follower_state(self, replica_id: int) -> ReplicaState | None:
        """A copy of what the leader knows of replica_id, lazy times applied (a parked
        state's fetch times as of its session's last fetch); changes nothing."""
        st = self.remotes.get(replica_id)
        if st is None:
            return None
        out = replace(st, parked=None)
        s = st.parked
        if s is not None:
            t = s.virtual_read_us((self.topic, self.index), st.park_loop)
            if t is not None:
                out.last_caught_up_time_us = max(out.last_caught_up_time_us, t)
                out.last_fetch_time_us = t
        return out

    def check_leader_epoch(self, current_leader_epoch: int) -> Errors:
        """KIP-320: a request naming an older epoch is fenced, a newer one is unknown."""
        if current_leader_epoch == NO_EPOCH or current_leader_epoch == self.leader_epoch:
            return Errors.NONE
        if current_leader_epoch < self.leader_epoch:
            return Errors.FENCED_LEADER_EPOCH
        return Errors.UNKNOWN_LEADER_EPOCH

    # ------------------------------------------------------------------ roles

    def make_leader(self, leader_epoch: int, partition_epoch: int, replicas: tuple[int, ...],
                    isr: frozenset[int], now_us: int) -> bool:
        """Apply a partition state naming this broker leader. Returns True when this
        starts a new leader epoch here (followers must be tracked afresh)."""
        if leader_epoch < self.leader_epoch:
            return False
        self.fetch_changed()
        new_epoch = leader_epoch > self.leader_epoch or not self.is_leader
        old_isr = self.isr
        self.leader_id = self.local_broker_id
        self.replicas = tuple(replicas)
        self._set_committed_isr(frozenset(isr), partition_epoch)
        if new_epoch:
            self.leader_epoch = leader_epoch
            self.leader_epoch_start_offset = self.log.log_end_offset
            self.log.assign_epoch_start_offset(leader_epoch, self.leader_epoch_start_offset)
            leo = self.log.log_end_offset
            self.remotes = {}
            for r in sorted(self.replicas):
                if r != self.local_broker_id:
                    st = ReplicaState(r)
                    # ISR members get a full lag window to prove themselves (Kafka).
                    st.last_caught_up_time_us = now_us if r in self.isr else NEVER_US
                    st.last_fetch_leader_leo = leo if r in self.isr else UNKNOWN_OFFSET
                    self.remotes[r] = st
            self.emit("become_leader", partition=self.name, leader_epoch=leader_epoch,
                      isr=sorted(self.isr), log_end_offset=leo, high_watermark=self.high_watermark)
        else:
            self._emit_isr_change(old_isr, self.isr)
            for r in sorted(self.replicas):
                if r != self.local_broker_id and r not in self.remotes:
                    self.remotes[r] = ReplicaState(r)
            for r in sorted(self.remotes):
                if r not in self.replicas:
                    del self.remotes[r]
        self.maybe_increment_hw(now_us)
        return new_epoch

    def make_follower(self, leader_id: int, leader_epoch: int, partition_epoch: int,
                      replicas: tuple[int, ...], isr: frozenset[int]) -> bool:
        """Apply a partition state naming another broker (or none) leader. Returns True
        when the leader or its epoch changed: the fetcher must re-establish its position
        (truncate) before fetching."""
        if leader_epoch < self.leader_epoch:
            return False
        self.fetch_changed()
        changed = (leader_epoch > self.leader_epoch or leader_id != self.leader_id)
        was_leader = self.is_leader
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.replicas = tuple(replicas)
        self._set_committed_isr(frozenset(isr), partition_epoch)
        self.remotes = {}
        if changed or was_leader:
            self.emit("become_follower", partition=self.name, leader=leader_id,
                      leader_epoch=leader_epoch, log_end_offset=self.log.log_end_offset,
                      high_watermark=self.high_watermark)
        return changed or was_leader

    def _set_committed_isr(self, isr: frozenset[int], partition_epoch: int) -> None:
        self.isr = isr
        self.partition_epoch = partition_epoch
        self.pending = None

    # ------------------------------------------------------------------ leader: produce

    def append_records_to_leader(self, records: bytes, required_acks: int) -> AppendOutcome:
        """Validate, deduplicate and append one partition's produce data."""
        if not self.is_leader:
            return AppendOutcome(Errors.NOT_LEADER_OR_FOLLOWER)
        if required_acks == -1 and len(self.isr) < self.settings.min_insync_replicas:
            return AppendOutcome(Errors.NOT_ENOUGH_REPLICAS)
        try:
            batches = self.log.inspect(records)
        except LogAppendError as e:
            return AppendOutcome(_error_named(e.error))
        if not batches:
            return AppendOutcome(Errors.CORRUPT_MESSAGE)
        # Idempotence: every batch is checked against the state as it will be when the
        # batches before it in this request are written.
        trial = self.producers if len(batches) == 1 else _copy_producers(self.producers)
        next_offset = self.log.log_end_offset
        for b in batches:
            count = b.last_offset - b.base_offset + 1
            last_seq = last_sequence(b.base_sequence, count)
            res = trial.check(b.producer_id, b.producer_epoch, b.base_sequence, last_seq)
            if res.status is SequenceCheck.DUPLICATE and res.duplicate is not None:
                if len(batches) == 1:
                    return AppendOutcome(Errors.NONE, res.duplicate.first_offset,
                                         res.duplicate.last_offset, duplicate=True,
                                         log_start_offset=self.log.log_start_offset)
                return AppendOutcome(Errors.DUPLICATE_SEQUENCE_NUMBER)
            if res.status is not SequenceCheck.OK:
                return AppendOutcome(Errors[res.status.name])
            if trial is not self.producers:
                trial.record(b.producer_id, b.producer_epoch, b.base_sequence, last_seq,
                             next_offset, next_offset + count - 1)
            next_offset += count
        try:
            result = self.log.append_as_leader(records, self.leader_epoch)
        except LogAppendError as e:
            return AppendOutcome(_error_named(e.error))
        offset = result.first_offset
        for b in batches:
            count = b.last_offset - b.base_offset + 1
            self.producers.record(b.producer_id, b.producer_epoch, b.base_sequence,
                                  last_sequence(b.base_sequence, count), offset,
                                  offset + count - 1)
            offset += count
        self.fetch_changed()
        return AppendOutcome(Errors.NONE, result.first_offset, result.last_offset,
                             log_append_time_ms=result.log_append_time_ms,
                             log_start_offset=self.log.log_start_offset)

    def check_enough_replicas_reach_offset(self, required_offset: int) -> tuple[bool, Errors]:
        """For acks=all: (done, error). required_offset is last offset + 1."""
        if not self.is_leader:
            return False, Errors.NOT_LEADER_OR_FOLLOWER
        if self.high_watermark >= required_offset:
            if len(self.maximal_isr) >= self.settings.min_insync_replicas:
                return True, Errors.NONE
            return True, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return False, Errors.NONE

    def check_flushed(self, required_offset: int) -> tuple[bool, Errors]:
        """For acks=1: (done, error); done once a forced flush (flush.messages) made the
        records below required_offset durable (at once without a flush policy)."""
        if not self.is_leader:
            return False, Errors.NOT_LEADER_OR_FOLLOWER
        return self.log.committable_end_offset >= required_offset, Errors.NONE

    # ------------------------------------------------------------------ leader: HW, ISR

    def maybe_increment_hw(self, now_us: int) -> bool:
        """Raise the HW to the minimum LEO over the maximal ISR and caught-up replicas.
        Returns True when it moved."""
        if not self.is_leader:
            return False
        leo = self.log.log_end_offset
        # the leader's own records count once a forced flush made them durable
        new_hw = self.log.committable_end_offset
        maximal = self.maximal_isr
        for r in sorted(self.remotes):
            st = self.remotes[r]
            # A caught-up replica outside the ISR holds the HW back only while its broker
            # is alive (Kafka: metadataCache.hasAliveBroker); a fenced, isolated broker
            # that was caught up before it vanished must not stall acks=all writes.
            if st.log_end_offset < new_hw and (
                    r in maximal or (self.eligible(r) and st.is_caught_up(
                        leo, now_us, self.replica_lag_time_max_us))):
                new_hw = st.log_end_offset
        if new_hw > self.high_watermark:
            self.high_watermark = new_hw
            self.log.set_high_watermark(new_hw)
            # Only leaders report: one event per commit step, enough for a checker to
            # know every committed prefix (followers' HWs only trail it).
            self.emit("hw", partition=self.name, leader_epoch=self.leader_epoch,
                      high_watermark=new_hw)
            self.fetch_changed()
            return True
        return False

    def update_follower_fetch_state(self, replica_id: int, fetch_offset: int,
                                    now_us: int, leader_leo: int) -> bool:
        """Record a follower's fetch; maybe expand the ISR; returns True if HW moved.
        As Kafka's Partition.updateFollowerFetchState, the HW is recomputed only when
        the follower's log end moved (most fetches of a quiet partition move nothing)."""
        st = self.remotes.get(replica_id)
        if st is None:
            return False
        return self._follower_fetched(st, replica_id, fetch_offset, now_us, leader_leo)

    def _follower_fetched(self, st: ReplicaState, replica_id: int, fetch_offset: int,
                          now_us: int, leader_leo: int) -> bool:
        before = st.log_end_offset
        st.update_fetch_state(fetch_offset, now_us, leader_leo)
        if replica_id not in self.isr:
            self.maybe_expand_isr(replica_id, now_us)
        return before != fetch_offset and self.maybe_increment_hw(now_us)

    def maybe_expand_isr(self, replica_id: int, now_us: int) -> bool:
        """Propose adding a follower that caught up with this leader's epoch."""
        if self.pending is not None or replica_id in self.isr or not self.is_leader:
            return False
        st = self.remotes.get(replica_id)
        if st is None or replica_id not in self.replicas or not self.eligible(replica_id):
            return False
        if st.parked is not None:  # (never: a parked follower is in the ISR)
            st.parked.release((self.topic, self.index), st)
        if not (st.is_caught_up(self.log.log_end_offset, now_us, self.replica_lag_time_max_us)
                and st.log_end_offset >= self.high_watermark
                and st.log_end_offset >= self.leader_epoch_start_offset):
            return False
        new_isr = self.isr | {replica_id}
        self._propose(PendingIsrChange(new_isr, new_isr, "expand"))
        return True

    def out_of_sync_replicas(self, now_us: int) -> list[int]:
        leo = self.log.log_end_offset
        return [r for r in sorted(self.isr)
                if r != self.local_broker_id and (
                    r not in self.remotes
                    or not self.remotes[r].is_caught_up(leo, now_us,
                                                        self.replica_lag_time_max_us))]

    def maybe_shrink_isr(self, now_us: int) -> bool:
        """Propose removing followers that have not caught up for the lag time."""
        if not self.is_leader or self.pending is not None:
            return False
        out = self.out_of_sync_replicas(now_us)
        if not out:
            return False
        new_isr = self.isr - frozenset(out)
        self._propose(PendingIsrChange(new_isr, self.isr, "shrink"))
        return True

    def _propose(self, change: PendingIsrChange) -> None:
        self.fetch_changed()
        self.pending = change
        self.alter_isr(self, change)

    def on_alter_partition_result(self, error: Errors, leader_epoch: int = NO_EPOCH,
                                  isr: frozenset[int] | None = None,
                                  partition_epoch: int = NO_EPOCH, now_us: int = 0) -> bool:
        """The controller answered the pending change. Returns True if HW moved."""
        change = self.pending
        if change is None or not self.is_leader:
            return False
        self.fetch_changed()
        if error is not Errors.NONE or isr is None:
            # Rejected (stale partition epoch, fenced, ineligible): drop the proposal and
            # let the next metadata update or the next check propose again.
            self.pending = None
            return self.maybe_increment_hw(now_us)
        if leader_epoch != self.leader_epoch or partition_epoch < self.partition_epoch:
            return False
        old = self.isr
        self._set_committed_isr(frozenset(isr), partition_epoch)
        self._emit_isr_change(old, self.isr)
        return self.maybe_increment_hw(now_us)

    def _emit_isr_change(self, old: frozenset[int], new: frozenset[int]) -> None:
        if new < old:
            self.emit("isr_shrink", partition=self.name, isr=sorted(new), removed=sorted(old - new),
                      leader_epoch=self.leader_epoch, partition_epoch=self.partition_epoch)
        elif new > old:
            self.emit("isr_expand", partition=self.name, isr=sorted(new), added=sorted(new - old),
                      leader_epoch=self.leader_epoch, partition_epoch=self.partition_epoch)

    # ------------------------------------------------------------------ leader: fetch

    def read_as_leader(self, fetch_offset: int, max_bytes: int, current_leader_epoch: int,
                       last_fetched_epoch: int, replica_id: int, now_us: int) -> ReadOutcome:
        """Serve one partition of a Fetch. Followers (replica_id >= 0) read to the LEO
        and update their fetch state; consumers read below the HW. A read with nothing
        to return (a follower at the log end: most partitions of a fetch session, most
        of the time) shares one outcome object while HW, log start and LEO stay put."""
        if self.leader_id != self.local_broker_id:
            return ReadOutcome(Errors.NOT_LEADER_OR_FOLLOWER)
        if current_leader_epoch != NO_EPOCH and current_leader_epoch != self.leader_epoch:
            return ReadOutcome(self.check_leader_epoch(current_leader_epoch))
        st = None
        if replica_id >= 0:
            st = self.remotes.get(replica_id)
            if st is None:
                return ReadOutcome(Errors.NOT_LEADER_OR_FOLLOWER)
            if st.parked is not None:
                # read by another session (or sessionless): its parking ends here
                st.parked.release((self.topic, self.index), st)
        log = self.log
        leo = log.log_end_offset
        start = log.log_start_offset
        # The latest epoch ends at the log end: no lookup needed on the common path.
        if last_fetched_epoch != NO_EPOCH and not (
                fetch_offset <= leo and last_fetched_epoch == log.latest_epoch()):
            end = log.end_offset_for_epoch(last_fetched_epoch)
            if end is None or end[0] < last_fetched_epoch or end[1] < fetch_offset:
                diverging = end if end is not None else (NO_EPOCH, UNKNOWN_OFFSET)
                return ReadOutcome(Errors.NONE, self.high_watermark, start, leo,
                                   diverging_epoch=diverging)
        if fetch_offset < start or fetch_offset > leo:
            return ReadOutcome(Errors.OFFSET_OUT_OF_RANGE, self.high_watermark, start, leo)
        # The HW is taken before this fetch moves it, as Kafka does: a follower learns
        # the HW its own fetch advanced only on its next fetch.
        hw = self.high_watermark
        max_offset = leo if st is not None else hw
        if fetch_offset < max_offset:
            out = ReadOutcome(Errors.NONE, hw, start, leo,
                              log.read(fetch_offset, max_bytes, max_offset))
        else:
            out = self._idle_read
            if (out is None or out.high_watermark != hw or out.log_start_offset != start
                    or out.log_end_offset != leo):
                out = self._idle_read = ReadOutcome(Errors.NONE, hw, start, leo)
        if st is not None:
            self._follower_fetched(st, replica_id, fetch_offset, now_us, leo)
        return out

    def available_bytes(self, fetch_offset: int, is_follower: bool, max_bytes: int,
                        need: int | None = None) -> int:
        """Bytes a fetch at fetch_offset could read now (for fetch.min.bytes). With
        `need`, a caller that only asks "at least need bytes?" may get just `need`: a
        log without offset gaps holds a whole batch (>= BATCH_HEADER_BYTES) at every
        offset below its end, so no read is needed for need <= BATCH_HEADER_BYTES."""
        end = self.log.log_end_offset if is_follower else self.high_watermark
        if fetch_offset >= end:
            return 0
        if need is not None and need <= BATCH_HEADER_BYTES and not self.log.has_offset_gaps:
            return need
        return self.log.available_bytes(fetch_offset, max_bytes, end)

    # ------------------------------------------------------------------ follower

    def append_as_follower(self, records: bytes | FileSlice) -> int:
        """Append fetched batches; returns the new LEO."""
        if isinstance(records, FileSlice):
            raise TypeError("a follower appends bytes")
        batches = self.log.append_as_follower(records)
        for b in batches:
            count = b.last_offset - b.base_offset + 1
            self.producers.record(b.producer_id, b.producer_epoch, b.base_sequence,
                                  last_sequence(b.base_sequence, count), b.base_offset,
                                  b.last_offset)
        if batches:
            self.fetch_changed()
        return self.log.log_end_offset

    def update_follower_hw(self, leader_hw: int) -> bool:
        """A follower's HW is the leader's, capped by its own LEO."""
        hw = max(self.log.log_start_offset, min(leader_hw, self.log.log_end_offset))
        if hw != self.high_watermark:
            self.high_watermark = hw
            self.log.set_high_watermark(hw)
            return True
        return False

    def follow_log_start(self, offset: int) -> bool:
        """A follower raises its log start to its leader's (retention, DeleteRecords),
        never past its HW. True if it moved."""
        moved = self.log.maybe_increment_log_start_offset(offset)
        if moved:
            self.fetch_changed()
        return moved

    def truncate_to(self, offset: int, reason: str) -> None:
        """Cut the log (and HW) back to offset, if the log is longer."""
        leo = self.log.log_end_offset
        if offset >= leo:
            return
        self.fetch_changed()
        self.log.truncate_to(offset)
        self.high_watermark = min(self.high_watermark, self.log.log_end_offset)
        self.log.set_high_watermark(self.high_watermark)
        self.rebuild_producer_state()
        self.emit("truncate", partition=self.name, from_offset=leo,
                  to_offset=self.log.log_end_offset, reason=reason)

    def truncate_fully_and_start_at(self, offset: int, reason: str) -> None:
        leo = self.log.log_end_offset
        self.fetch_changed()
        self.log.truncate_fully_and_start_at(offset)
        self.high_watermark = offset
        self.log.set_high_watermark(offset)
        self.producers.clear()
        self.emit("truncate", partition=self.name, from_offset=leo, to_offset=offset,
                  reason=reason)

    def rebuild_producer_state(self) -> None:
        self.producers.clear()
        for b in self.log.batches(self.log.log_start_offset):
            count = b.last_offset - b.base_offset + 1
            self.producers.record(b.producer_id, b.producer_epoch, b.base_sequence,
                                  last_sequence(b.base_sequence, count), b.base_offset,
                                  b.last_offset)

    def checkpoint_high_watermark(self) -> None:
        self.log.write_high_watermark(self.high_watermark)


def _error_named(name: str) -> Errors:
    try:
        return Errors[name]
    except KeyError:
        return Errors.UNKNOWN_SERVER_ERROR


def _copy_producers(src: ProducerStateManager) -> ProducerStateManager:
    dst = ProducerStateManager()
    for pid in src.producer_ids():
        entry = src.entry(pid)
        assert entry is not None
        for b in entry.batches:
            dst.record(pid, entry.epoch, b.first_seq, b.last_seq, b.first_offset, b.last_offset)
    return dst


__all__ = ["AppendOutcome", "BatchInfo", "Partition", "PendingIsrChange", "ReadOutcome",
           "ReplicaState"]
