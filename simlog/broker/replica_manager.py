"""The replica manager: every partition replica on this broker (Kafka's ReplicaManager).

It turns metadata into roles (make leader / make follower, with leader epochs), serves
Produce, Fetch, ListOffsets and OffsetsForLeaderEpoch for the partitions it leads, keeps
the two purgatories and the fetch-session cache (KIP-227, `fetch_session.py`: a fetch is
read and answered through its session context), sends AlterPartition for ISR changes,
runs the ISR-shrink and high-watermark-checkpoint timers, and owns the replica fetchers
that make this broker a follower (`replica_fetcher.py`).

It does not know how to reach the controller or how logs are opened: its host (the
BrokerNode) passes those in as a `ReplicaManagerHost`.

Invariants:
- Partitions are iterated sorted by (topic, partition) wherever order can reach a
  message or the trace.
- Whenever a partition's LEO moves (leader append) waiting follower fetches are
  checked; whenever its HW moves, waiting produces and consumer fetches are checked;
  whenever its leadership changes, both are, so they answer with the error at once.
- At most one AlterPartition per partition is in flight; it is resent after
  `controller_request_timeout_us` while the same change is still pending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from simlog.broker import fetch_session
from simlog.broker.config import TRUNCATION_HIGH_WATERMARK, BrokerConfig, TopicSettings
from simlog.broker.delayed import DelayedFetch, DelayedProduce, FetchSpec, ProduceStatus
from simlog.broker.fetch_session import FetchContext, FetchSession, FetchSessionCache
from simlog.broker.partition import NO_LEADER, Partition, PendingIsrChange, ReadOutcome
from simlog.broker.purgatory import Purgatory
from simlog.broker.replica_fetcher import ReplicaFetcher
from simlog.broker.replica_log import ReplicaLog
from simlog.protocol.controller import (
    AlterPartitionRequest,
    AlterPartitionRequestPartition,
    AlterPartitionRequestTopic,
    AlterPartitionResponse,
)
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import FetchEpochEndOffset as DivergingEpoch
from simlog.protocol.fetch import (
    FetchLeaderIdAndEpoch,
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopicResponse,
)
from simlog.protocol.list_offsets import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from simlog.protocol.offsets_for_leader_epoch import (
    EpochEndOffset,
    OffsetForLeaderTopicResult,
    OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse,
)
from simlog.protocol.produce import (
    ACKS_ALL,
    ACKS_NONE,
    ProducePartitionResponse,
    ProduceRequest,
    ProduceResponse,
    ProduceTopicResponse,
)
from simlog.runtime import FileSlice, Message, Runtime, Timer, ms_to_us

TopicPartition = tuple[str, int]
ALTER_PARTITION_RETRY_BACKOFF_US = ms_to_us(100)


class ReplicaManagerHost(Protocol):
    """What the broker node provides to its replica manager."""

    def open_log(self, topic: str, partition: int, topic_config: Mapping[str, Any]) -> ReplicaLog:
        ...

    def send_to_controller(self, msg: Message) -> None: ...

    def broker_host(self, broker_id: int) -> str | None: ...

    def broker_epoch(self) -> int: ...

    def broker_eligible(self, broker_id: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class PartitionState:
    """A partition's replication state from metadata (PartitionRegistration's fields)."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


@dataclass(slots=True)
class _InflightAlter:
    change: PendingIsrChange
    timer: Timer | None


class ReplicaManager:
    def __init__(self, rt: Runtime, config: BrokerConfig, host: ReplicaManagerHost) -> None:
        self.rt = rt
        self.config = config
        self.host = host
        self.broker_id = config.broker_id
        self.partitions: dict[TopicPartition, Partition] = {}
        self.topic_configs: dict[str, dict[str, Any]] = {}
        self.produce_purgatory = Purgatory(rt, "produce")
        self.fetch_purgatory = Purgatory(rt, "fetch")
        # KIP-227 sessions of the fetchers that fetch from this broker (memory only)
        self.fetch_sessions = FetchSessionCache(
            lambda: rt.random, rt.now,
            max_entries=config.max_incremental_fetch_session_cache_slots,
            lookup=self.partitions.get)
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self._following: dict[TopicPartition, ReplicaFetcher] = {}  # who fetches tp
        self._alters: dict[TopicPartition, _InflightAlter] = {}
        self._next_correlation_id = 1
        self._pending: dict[int, Callable[[Message], None]] = {}
        self._timers: list[Timer] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._timers.append(self.rt.set_timer(self._shrink_interval_us(), self._isr_tick))
        self._timers.append(self.rt.set_timer(
            self.config.replica_high_watermark_checkpoint_interval_us, self._checkpoint_tick))

    def stop(self) -> None:
        for t in self._timers:
            t.cancel()
        for f in self.fetchers.values():
            f.shutdown()
        self.checkpoint_high_watermarks()

    def _shrink_interval_us(self) -> int:
        return max(1, self.config.replica_lag_time_max_us // 2)

    def _isr_tick(self) -> None:
        now = self.rt.now()
        for tp in sorted(self.partitions):
            self.partitions[tp].maybe_shrink_isr(now)
        self._timers = [t for t in self._timers if t.active]
        self._timers.append(self.rt.set_timer(self._shrink_interval_us(), self._isr_tick))

    def _checkpoint_tick(self) -> None:
        self.checkpoint_high_watermarks()
        self._timers = [t for t in self._timers if t.active]
        self._timers.append(self.rt.set_timer(
            self.config.replica_high_watermark_checkpoint_interval_us, self._checkpoint_tick))

    def checkpoint_high_watermarks(self) -> None:
        for tp in sorted(self.partitions):
            self.partitions[tp].checkpoint_high_watermark()

    # ------------------------------------------------------------------ correlation

    def next_correlation_id(self) -> int:
        cid = self._next_correlation_id
        self._next_correlation_id += 1
        return cid

    def expect_response(self, correlation_id: int, handler: Callable[[Message], None]) -> None:
        self._pending[correlation_id] = handler

    def forget_response(self, correlation_id: int) -> None:
        self._pending.pop(correlation_id, None)

    def on_response(self, msg: Message) -> bool:
        """Route a response to whoever sent the request. False if nobody waits for it."""
        handler = self._pending.pop(getattr(msg, "correlation_id", -1), None)
        if handler is None:
            return False
        handler(msg)
        return True

    # ------------------------------------------------------------------ metadata → roles

    def partition(self, tp: TopicPartition) -> Partition | None:
        return self.partitions.get(tp)

    def leader_partition(self, tp: TopicPartition) -> Partition | None:
        p = self.partitions.get(tp)
        return p if p is not None and p.is_leader else None

    def set_topic_config(self, topic: str, config: Mapping[str, Any]) -> None:
        self.topic_configs[topic] = dict(config)
        settings = TopicSettings.resolve(self.config, self.topic_configs[topic])
        for tp in sorted(self.partitions):
            if tp[0] == topic:
                p = self.partitions[tp]
                p.settings = settings
                p.fetch_changed()  # (follower.truncation: what a fetcher sends)

    def _get_or_create(self, topic: str, index: int) -> Partition:
        tp = (topic, index)
        p = self.partitions.get(tp)
        if p is None:
            cfg = self.topic_configs.get(topic, {})
            log = self.host.open_log(topic, index, cfg)
            p = Partition(topic, index, self.broker_id, log,
                          TopicSettings.resolve(self.config, cfg),
                          self.config.replica_lag_time_max_us,
                          alter_isr=self._send_alter_partition, emit=self.rt.emit,
                          eligible=self.host.broker_eligible,
                          on_fetch_change=self._on_fetch_change)
            self.partitions[tp] = p
            log.set_flush_callback(lambda: self._on_log_flushed(tp))
        return p

    def _on_fetch_change(self, p: Partition) -> None:
        """Partition.fetch_changed: the fetcher following p rebuilds its fetch data."""
        tp = (p.topic, p.index)
        f = self._following.get(tp)
        if f is not None:
            f.mark_dirty(tp)

    def log_start_moved(self, tp: TopicPartition) -> None:
        """The host's retention moved tp's log start (outside any partition call)."""
        p = self.partitions.get(tp)
        if p is not None:
            p.fetch_changed()

    def on_connection_reset(self, node: str) -> None:
        """node's process is down (a `runtime.ConnectionReset` from it): fetchers with a
        fetch in flight to it fail it now instead of waiting replica.socket.timeout.ms."""
        for leader in sorted(self.fetchers):
            self.fetchers[leader].connection_reset(node)

    def _on_log_flushed(self, tp: TopicPartition) -> None:
        """A forced flush completed: the leader may count the records (HW, acks=1); a
        follower's fetcher may report its new log end."""
        p = self.partitions.get(tp)
        if p is not None and p.is_leader:
            moved = p.maybe_increment_hw(self.rt.now())
            self._complete_delayed(tp, produce=True, fetch=moved)
        f = self._following.get(tp)
        if f is not None:
            f.mark_dirty(tp)  # its flush no longer holds the fetcher
        # Whatever tp is now (follower, leader, gone), a fetcher may have been held for
        # this flush while tp was its partition: let every fetcher look again.
        for leader in sorted(self.fetchers):
            self.fetchers[leader].wake()

    def apply_partition_state(self, st: PartitionState) -> None:
        """Make this broker leader or follower of one partition, as metadata says."""
        if self.broker_id not in st.replicas:
            self.remove_partition((st.topic, st.partition))
            return
        tp = (st.topic, st.partition)
        p = self._get_or_create(st.topic, st.partition)
        now = self.rt.now()
        isr = frozenset(st.isr)
        if st.leader == self.broker_id:
            self._stop_fetching(tp)
            p.make_leader(st.leader_epoch, st.partition_epoch, st.replicas, isr, now)
            self._alters.pop(tp, None)  # metadata settles any change in flight
        else:
            changed = p.make_follower(st.leader, st.leader_epoch, st.partition_epoch,
                                      st.replicas, isr)
            self._alters.pop(tp, None)
            if changed:
                self._stop_fetching(tp)
                if p.settings.follower_truncation == TRUNCATION_HIGH_WATERMARK:
                    # Before KIP-101: cut back to the local high watermark and refetch.
                    p.truncate_to(p.high_watermark, reason="high_watermark")
                if st.leader != NO_LEADER:
                    self._start_fetching(tp, st.leader, st.leader_epoch)
        self._complete_delayed(tp, produce=True, fetch=True)

    def remove_partition(self, tp: TopicPartition) -> None:
        p = self.partitions.pop(tp, None)
        if p is None:
            return
        p.fetch_changed()
        self._stop_fetching(tp)
        self._alters.pop(tp, None)
        p.checkpoint_high_watermark()
        self._complete_delayed(tp, produce=True, fetch=True)

    def _start_fetching(self, tp: TopicPartition, leader: int, leader_epoch: int) -> None:
        f = self.fetchers.get(leader)
        if f is None:
            f = ReplicaFetcher(self, leader)
            self.fetchers[leader] = f
        self._following[tp] = f
        f.add_partition(tp, leader_epoch)

    def _stop_fetching(self, tp: TopicPartition) -> None:
        self._following.pop(tp, None)
        for leader in sorted(self.fetchers):
            self.fetchers[leader].remove_partition(tp)

    def _complete_delayed(self, tp: TopicPartition, produce: bool, fetch: bool) -> None:
        if produce:
            self.produce_purgatory.check_and_complete(tp)
        if fetch:
            p = self.partitions.get(tp)
            if p is not None:
                # Waiting fetches of sessions where tp is parked watch it from now on
                # (each is filed in the order it began), so all that would have watched
                # it from the start are checked here.
                p.fetch_changed()
            self.fetch_purgatory.check_and_complete(tp)

    # ------------------------------------------------------------------ AlterPartition

    def _send_alter_partition(self, p: Partition, change: PendingIsrChange) -> None:
        tp = (p.topic, p.index)
        old = self._alters.pop(tp, None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        inflight = _InflightAlter(change, None)
        self._alters[tp] = inflight
        self._transmit_alter(tp, inflight)

    def _transmit_alter(self, tp: TopicPartition, inflight: _InflightAlter) -> None:
        p = self.partitions.get(tp)
        if p is None or p.pending is not inflight.change or self._alters.get(tp) is not inflight:
            return
        cid = self.next_correlation_id()
        req = AlterPartitionRequest(
            correlation_id=cid, broker_id=self.broker_id, broker_epoch=self.host.broker_epoch(),
            topics=(AlterPartitionRequestTopic(topic_name=tp[0], partitions=(
                AlterPartitionRequestPartition(partition_index=tp[1],
                                               leader_epoch=p.leader_epoch,
                                               new_isr=tuple(sorted(inflight.change.isr)),
                                               partition_epoch=p.partition_epoch),)),))
        self.expect_response(cid, lambda msg: self._on_alter_response(tp, inflight, msg))
        self.host.send_to_controller(req)

        def retry() -> None:
            self.forget_response(cid)
            self._transmit_alter(tp, inflight)

        inflight.timer = self.rt.set_timer(self.config.controller_request_timeout_us, retry)

    def _on_alter_response(self, tp: TopicPartition, inflight: _InflightAlter,
                           msg: Message) -> None:
        if not isinstance(msg, AlterPartitionResponse):
            return
        if inflight.timer is not None:
            inflight.timer.cancel()
            inflight.timer = None
        p = self.partitions.get(tp)
        if p is None or p.pending is not inflight.change:
            return
        if msg.error_code is not Errors.NONE:
            # NOT_CONTROLLER, timeouts: the same change goes again, to the new controller.
            inflight.timer = self.rt.set_timer(ALTER_PARTITION_RETRY_BACKOFF_US,
                                               lambda: self._transmit_alter(tp, inflight))
            return
        for t in msg.topics:
            for r in t.partitions:
                if (t.topic_name, r.partition_index) != tp:
                    continue
                if self._alters.get(tp) is inflight:
                    del self._alters[tp]
                moved = p.on_alter_partition_result(r.error_code, r.leader_epoch,
                                                    frozenset(r.isr), r.partition_epoch,
                                                    self.rt.now())
                if moved:
                    self._complete_delayed(tp, produce=True, fetch=True)

    # ------------------------------------------------------------------ Produce

    def handle_produce(self, src: str, req: ProduceRequest) -> None:
        nbytes = sum(len(pd.records) for t in req.topic_data for pd in t.partition_data)
        self.rt.charge_cpu(self.config.request_cost_us(nbytes))
        statuses: dict[TopicPartition, ProduceStatus] = {}
        for t in req.topic_data:
            for pd in t.partition_data:
                tp = (t.name, pd.index)
                statuses[tp] = self._append_one(tp, pd.records, req.acks)
        if req.acks == ACKS_NONE:
            return

        def respond(sts: dict[TopicPartition, ProduceStatus]) -> None:
            self.rt.send(src, _produce_response(req.correlation_id, sts))

        if req.acks == ACKS_ALL and any(st.error is Errors.NONE for st in statuses.values()):
            for st in statuses.values():
                st.acks_pending = st.error is Errors.NONE
        else:
            # acks=1 waits only for a forced flush (flush.messages) still in flight
            for tp, st in statuses.items():
                p = self.partitions.get(tp)
                st.acks_pending = (st.error is Errors.NONE and p is not None
                                   and p.log.committable_end_offset < st.required_offset)
        if any(st.acks_pending for st in statuses.values()):
            op = DelayedProduce(ms_to_us(req.timeout_ms), statuses, self.leader_partition,
                                respond, all_replicas=req.acks == ACKS_ALL)
            self.produce_purgatory.try_complete_else_watch(op, sorted(statuses))
        else:
            respond(statuses)

    def _append_one(self, tp: TopicPartition, records: bytes, acks: int) -> ProduceStatus:
        if acks not in (-1, 0, 1):
            return ProduceStatus(-1, -1, Errors.INVALID_REQUIRED_ACKS, False)
        p = self.partitions.get(tp)
        if p is None:
            err = (Errors.NOT_LEADER_OR_FOLLOWER if tp[0] in self.topic_configs
                   else Errors.UNKNOWN_TOPIC_OR_PARTITION)
            return ProduceStatus(-1, -1, err, False)
        out = p.append_records_to_leader(records, acks)
        if out.error is not Errors.NONE:
            return ProduceStatus(-1, -1, out.error, False)
        if not out.duplicate:
            hw_moved = p.maybe_increment_hw(self.rt.now())
            self._complete_delayed(tp, produce=hw_moved, fetch=True)
        return ProduceStatus(out.last_offset + 1, out.first_offset, Errors.NONE, False,
                             out.log_start_offset)

    # ------------------------------------------------------------------ Fetch

    def handle_fetch(self, src: str, req: FetchRequest) -> None:
        is_follower = req.replica_id >= 0
        ctx = self.fetch_sessions.new_context(req, is_follower)
        if ctx.error is not Errors.NONE:
            self.rt.charge_cpu(self.config.request_cost_us(0))
            self.rt.send(src, FetchResponse(correlation_id=req.correlation_id,
                                            error_code=ctx.error))
            return
        session = ctx.session
        # a full fetch: the request's partitions; an incremental one: every partition
        # of the session, as last asked, of which only those not parked are read
        specs = ctx.specs() if session is None else None
        results, total, errors = self._read_all(req, ctx, specs)
        self.rt.charge_cpu(self.config.request_cost_us(total))
        if (req.max_wait_ms <= 0 or total >= req.min_bytes or errors
                or (specs is not None and not specs)):
            self.rt.send(src, self._fetch_response(req, ctx, results))
            return
        partitions = self.partitions
        epochs = {}
        for tp in (specs if session is None else session.dirty):
            p = partitions.get(tp)
            epochs[tp] = p.leader_epoch if p is not None else -1

        def respond() -> None:
            if session is not None and session.waiter is op:
                session.waiter = None
            # a session changed under the wait (pinned): the copy taken, as before
            final, nbytes, _ = self._read_all(req, ctx, op.specs if op.session is None else None)
            self.rt.charge_cpu(self.config.request_cost_us(nbytes))
            self.rt.send(src, self._fetch_response(req, ctx, final))

        op = DelayedFetch(ms_to_us(req.max_wait_ms), specs, epochs, req.min_bytes, is_follower,
                          self.leader_partition, respond, session=session)
        if session is not None:
            session.waiter = op
            keys = sorted(session.dirty)
        else:
            keys = op.order
        self.fetch_purgatory.try_complete_else_watch(op, keys)

    def _read_all(self, req: FetchRequest, ctx: FetchContext,
                  specs: dict[TopicPartition, FetchSpec] | None
                  ) -> tuple[dict[TopicPartition, ReadOutcome], int, bool]:
        """Read the partitions of specs, or (None) those of ctx's session that are not
        parked: (outcomes, record bytes read, any error or diverging epoch). A parked
        partition is not touched: its read would find nothing and change nothing but
        the follower's fetch times, which its parked state gets lazily (see
        `simlog.broker.fetch_session`). A quiet partition that is read (nothing to
        read, nothing changed) costs a few comparisons here and in
        Partition.read_as_leader."""
        now = self.rt.now()
        ctx.read_us = now
        remaining = req.max_bytes
        replica_id = req.replica_id
        partitions = self.partitions
        out: dict[TopicPartition, ReadOutcome] = {}
        total = 0
        errors = False
        session: FetchSession | None = None
        if specs is None:
            session = ctx.session
            assert session is not None
            if fetch_session.VERIFY_PARKING:
                session.check_parked()
            todo = session.begin_read(now)
            parts = session.partitions
        else:
            todo = list(specs)
        try:
            i = 0
            while i < len(todo):  # (a session's list may grow while it is read)
                tp = todo[i]
                i += 1
                if session is not None:
                    cached = parts.get(tp)
                    if cached is None:  # pragma: no cover - forgotten meanwhile
                        continue
                    session.cursor = tp
                    spec = cached.spec
                else:
                    spec = specs[tp]  # type: ignore[index]
                p = partitions.get(tp)
                if p is None:
                    out[tp] = ReadOutcome(Errors.UNKNOWN_TOPIC_OR_PARTITION
                                          if tp[0] not in self.topic_configs
                                          else Errors.NOT_LEADER_OR_FOLLOWER)
                    errors = True
                    continue
                hw_before = p.high_watermark
                max_bytes = spec.max_bytes if spec.max_bytes < remaining else remaining
                r = p.read_as_leader(spec.fetch_offset, max_bytes if max_bytes > 1 else 1,
                                     spec.current_leader_epoch, spec.last_fetched_epoch,
                                     replica_id, now)
                out[tp] = r
                if r.records:
                    n = r.size_bytes
                    total += n
                    remaining = remaining - n if remaining > n else 0
                if r.error is not Errors.NONE or r.diverging_epoch is not None:
                    errors = True
                if p.high_watermark != hw_before:
                    self._complete_delayed(tp, produce=True, fetch=True)
        finally:
            if session is not None:
                session.end_read()
        return out, total, errors

    def _fetch_response(self, req: FetchRequest, ctx: FetchContext,
                        results: dict[TopicPartition, ReadOutcome]) -> FetchResponse:
        error, session_id, answer = ctx.finish(results)
        if error is not Errors.NONE:
            return FetchResponse(correlation_id=req.correlation_id, error_code=error,
                                 session_id=session_id)
        by_topic: dict[str, list[FetchPartitionResponse]] = {}
        for tp in answer:
            r = results[tp]
            topic, idx = tp
            p = self.partitions.get(tp)
            current = None
            if r.error in (Errors.NOT_LEADER_OR_FOLLOWER, Errors.FENCED_LEADER_EPOCH) and p:
                current = FetchLeaderIdAndEpoch(leader_id=p.leader_id,
                                                leader_epoch=p.leader_epoch)
            diverging = None
            if r.diverging_epoch is not None:
                diverging = DivergingEpoch(epoch=r.diverging_epoch[0],
                                           end_offset=r.diverging_epoch[1])
            records = r.records
            if isinstance(records, FileSlice):  # pragma: no cover - adapters give bytes
                raise TypeError("fetch responses carry bytes in this world")
            by_topic.setdefault(topic, []).append(FetchPartitionResponse(
                partition_index=idx, error_code=r.error, high_watermark=r.high_watermark,
                last_stable_offset=r.high_watermark, log_start_offset=r.log_start_offset,
                diverging_epoch=diverging, current_leader=current, records=records))
        return FetchResponse(correlation_id=req.correlation_id, session_id=session_id,
                             responses=tuple(FetchTopicResponse(topic=t, partitions=tuple(ps))
                                             for t, ps in by_topic.items()))

    # ------------------------------------------------------------------ ListOffsets

    def handle_list_offsets(self, src: str, req: ListOffsetsRequest) -> None:
        self.rt.charge_cpu(self.config.request_cost_us(0))
        topics = []
        for t in req.topics:
            parts = []
            for lp in t.partitions:
                parts.append(self._list_offset((t.name, lp.partition_index), lp.timestamp,
                                               lp.current_leader_epoch, req.replica_id))
            topics.append(ListOffsetsTopicResponse(name=t.name, partitions=tuple(parts)))
        self.rt.send(src, ListOffsetsResponse(correlation_id=req.correlation_id,
                                              topics=tuple(topics)))

    def _list_offset(self, tp: TopicPartition, timestamp: int, current_leader_epoch: int,
                     replica_id: int) -> ListOffsetsPartitionResponse:
        p = self.partitions.get(tp)
        if p is None or not p.is_leader:
            err = (Errors.UNKNOWN_TOPIC_OR_PARTITION if p is None and tp[0] not in
                   self.topic_configs else Errors.NOT_LEADER_OR_FOLLOWER)
            return ListOffsetsPartitionResponse(partition_index=tp[1], error_code=err)
        err = p.check_leader_epoch(current_leader_epoch)
        if err is not Errors.NONE:
            return ListOffsetsPartitionResponse(partition_index=tp[1], error_code=err)
        # Consumers see up to the HW; a follower (replica_id >= 0) asks for the LEO.
        last = p.log_end_offset if replica_id >= 0 else p.high_watermark
        if timestamp == EARLIEST_TIMESTAMP:
            offset = p.log.log_start_offset
        elif timestamp == LATEST_TIMESTAMP:
            offset = last
        else:
            found = p.log.offset_for_timestamp(timestamp) if timestamp >= 0 else None
            if timestamp == MAX_TIMESTAMP or found is None or found[0] >= last:
                return ListOffsetsPartitionResponse(partition_index=tp[1],
                                                    leader_epoch=p.leader_epoch)
            return ListOffsetsPartitionResponse(partition_index=tp[1], timestamp=found[1],
                                                offset=found[0], leader_epoch=found[2])
        return ListOffsetsPartitionResponse(partition_index=tp[1], offset=offset,
                                            leader_epoch=p.leader_epoch)

    # ------------------------------------------------------------------ OffsetsForLeaderEpoch

    def handle_offsets_for_leader_epoch(self, src: str, req: OffsetsForLeaderEpochRequest) -> None:
        self.rt.charge_cpu(self.config.request_cost_us(0))
        topics = []
        for t in req.topics:
            parts = []
            for op in t.partitions:
                parts.append(self._epoch_end_offset((t.topic, op.partition), op.leader_epoch,
                                                    op.current_leader_epoch))
            topics.append(OffsetForLeaderTopicResult(topic=t.topic, partitions=tuple(parts)))
        self.rt.send(src, OffsetsForLeaderEpochResponse(correlation_id=req.correlation_id,
                                                        topics=tuple(topics)))

    def _epoch_end_offset(self, tp: TopicPartition, epoch: int,
                          current_leader_epoch: int) -> EpochEndOffset:
        p = self.partitions.get(tp)
        if p is None or not p.is_leader:
            return EpochEndOffset(partition=tp[1], error_code=Errors.NOT_LEADER_OR_FOLLOWER)
        err = p.check_leader_epoch(current_leader_epoch)
        if err is not Errors.NONE:
            return EpochEndOffset(partition=tp[1], error_code=err)
        found = p.log.end_offset_for_epoch(epoch)
        if found is None:
            return EpochEndOffset(partition=tp[1])
        return EpochEndOffset(partition=tp[1], leader_epoch=found[0], end_offset=found[1])


def _produce_response(correlation_id: int,
                      statuses: dict[TopicPartition, ProduceStatus]) -> ProduceResponse:
    by_topic: dict[str, list[ProducePartitionResponse]] = {}
    for (topic, idx), st in statuses.items():
        by_topic.setdefault(topic, []).append(ProducePartitionResponse(
            index=idx, error_code=st.error,
            base_offset=st.base_offset if st.error is Errors.NONE else -1,
            log_start_offset=st.log_start_offset))
    return ProduceResponse(correlation_id=correlation_id, responses=tuple(
        ProduceTopicResponse(name=t, partition_responses=tuple(ps))
        for t, ps in by_topic.items()))
