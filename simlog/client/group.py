"""The group side of the consumer: Kafka's ConsumerCoordinator driving a Consumer.

    c = GroupConsumer(rt, {"bootstrap.servers": "b1,b2", "group.id": "g",
                           "partition.assignment.strategy": "cooperative-sticky"},
                      listener=GroupListener(on_assign=..., on_revoke=..., ...))
    c.subscribe(["orders"])
    c.poll(on_result, timeout_us=100_000)       # as the plain Consumer
    c.commit(on_done=cb)                        # manual commit of the current positions
    c.close()                                   # commit (auto-commit on), leave the group

`GroupConsumer` is the plain `Consumer` (manual assignment) plus a `ConsumerCoordinator`
that uses only the consumer's group hooks: it calls `assign()` with each assignment,
reads `positions()` to commit, and installs `offset_source` so newly assigned
partitions start from the group's committed offset (auto.offset.reset when none).

Rebalance flow (AbstractCoordinator / ConsumerCoordinator):
  FindCoordinator -> [join prepare] -> JoinGroup (MEMBER_ID_REQUIRED: again with the
  id) -> the leader runs the assignor over every member's subscription -> SyncGroup ->
  Stable: heartbeats every heartbeat.interval.ms, auto-commits every
  auto.commit.interval.ms.
- join prepare: with enable.auto.commit the positions are committed first (waiting for
  the answer); the EAGER protocol then revokes every partition (`on_revoke`), the
  COOPERATIVE one keeps them and advertises them as owned.
- after SyncGroup: COOPERATIVE revokes only the partitions no longer assigned and, if
  there were any, rejoins at once (KIP-429's second round, where they are handed out).
- partitions are *lost* (revoked without a commit) when the coordinator fences the
  member (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION) and when no request to the coordinator
  sent in the last session.timeout.ms has been answered: the coordinator has expired
  the member by then, so keeping them could mean two owners.
- heartbeats continue while a join is pending; an answer (even REBALANCE_IN_PROGRESS)
  proves the session alive.
- once the application polls (KafkaConsumer.poll), the group's work that Kafka does
  inside poll waits for a poll: a rejoin (with eager's revocation and the pre-join
  commit), applying a SyncGroup's assignment (the rebalance listener runs in poll),
  KIP-429's second-round rejoin and auto commits. Heartbeats do not wait (Kafka's
  background heartbeat thread). So an application busy with the records of its last poll
  holds up a rebalance until it polls again: eager's stop-the-world waits for the slowest
  member, while cooperative members keep their partitions meanwhile. A client that never
  polls (tests driving the coordinator alone) acts at once.
- static membership (group.instance.id): no LeaveGroup on close; FENCED_INSTANCE_ID
  stops the member for good (another instance with the same id took over).

Listener callbacks are what the workload turns into history ops: `on_assign(generation,
partitions)` (the member's whole new assignment), `on_revoke(partitions, reason)`
(reason "rebalance", "lost", "close" or "fenced"), `on_commit_invoke(token, offsets)`
and `on_commit_done(token, offsets, outcome, error)` with outcome "ok", "fail" (certainly
not committed) or "info" (unknown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simlog.client.config import ConfigError, ConsumerConfig
from simlog.client.consumer import Consumer, PollCallback, PollResult
from simlog.client.metadata import TopicPartition
from simlog.client.network import Waker
from simlog.coordinator.assignors import (
    ASSIGNORS,
    COOPERATIVE,
    Subscription,
    parse_strategies,
    rebalance_protocol,
)
from simlog.protocol.errors import Errors
from simlog.protocol.group import (
    UNKNOWN_GENERATION_ID,
    UNKNOWN_MEMBER_ID,
    ConsumerProtocolError,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupRequestProtocol,
    JoinGroupResponse,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchRequestTopic,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupRequestAssignment,
    SyncGroupResponse,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from simlog.runtime import Message, Runtime, ms_to_us

OK, FAIL, INFO = "ok", "fail", "info"
_FENCING = (Errors.UNKNOWN_MEMBER_ID, Errors.ILLEGAL_GENERATION, Errors.FENCED_INSTANCE_ID,
            Errors.REBALANCE_IN_PROGRESS)
_COORDINATOR_GONE = (Errors.NOT_COORDINATOR, Errors.COORDINATOR_NOT_AVAILABLE,
                     Errors.COORDINATOR_LOAD_IN_PROGRESS)

# states
UNJOINED = "unjoined"
PREPARING = "preparing"      # join prepare: waiting for the pre-join commit
JOINING = "joining"          # JoinGroup in flight
SYNCING = "syncing"          # SyncGroup in flight (or the leader waiting for metadata)
STABLE = "stable"
FAILED = "failed"            # fenced static member, inconsistent protocol: stopped


@dataclass(frozen=True, slots=True)
class GroupConfig:
    group_id: str
    group_instance_id: str | None = None
    session_timeout_us: int = 45_000_000
    heartbeat_interval_us: int = 3_000_000
    max_poll_interval_us: int = 300_000_000
    rebalance_timeout_us: int = 300_000_000
    enable_auto_commit: bool = True
    auto_commit_interval_us: int = 5_000_000
    strategies: tuple[str, ...] = ("range", "cooperative-sticky")
    retry_backoff_us: int = 100_000
    request_timeout_us: int = 30_000_000

    @classmethod
    def from_consumer(cls, config: ConsumerConfig) -> GroupConfig:
        x = config.extra
        if not config.group_id:
            raise ConfigError("group.id is required for a group consumer")

        def ms(key: str, default: int) -> int:
            return ms_to_us(int(x[key])) if key in x else default

        def flag(key: str, default: bool) -> bool:
            v = x.get(key, default)
            return v if isinstance(v, bool) else str(v).lower() == "true"

        max_poll = ms("max.poll.interval.ms", 300_000_000)
        try:
            strategies = tuple(parse_strategies(x.get("partition.assignment.strategy")))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        iid = x.get("group.instance.id")
        return cls(group_id=config.group_id,
                   group_instance_id=None if iid in (None, "") else str(iid),
                   session_timeout_us=ms("session.timeout.ms", 45_000_000),
                   heartbeat_interval_us=ms("heartbeat.interval.ms", 3_000_000),
                   max_poll_interval_us=max_poll,
                   rebalance_timeout_us=ms("rebalance.timeout.ms", max_poll),
                   enable_auto_commit=flag("enable.auto.commit", True),
                   auto_commit_interval_us=ms("auto.commit.interval.ms", 5_000_000),
                   strategies=strategies, retry_backoff_us=config.retry_backoff_us,
                   request_timeout_us=config.request_timeout_us)


@dataclass
class GroupListener:
    on_assign: Callable[[int, list[TopicPartition]], None] | None = None
    on_revoke: Callable[[list[TopicPartition], str], None] | None = None
    on_commit_invoke: Callable[[int, dict[TopicPartition, int]], None] | None = None
    on_commit_done: Callable[[int, dict[TopicPartition, int], str, Errors], None] | None = None
    # partitions lost (reason "lost"), with how long ago (µs of the member's clock) its
    # session lapsed: a member frozen past its session learns only when it runs again;
    # when set it is called instead of on_revoke for them
    on_lost: Callable[[list[TopicPartition], int], None] | None = None


CommitCallback = Callable[[str, Errors], None]


@dataclass
class _Commit:
    token: int
    offsets: dict[TopicPartition, int]
    on_done: CommitCallback | None = None
    done: bool = False


@dataclass
class _OffsetLookup:
    tps: list[TopicPartition]
    reply: Callable[[Mapping[TopicPartition, tuple[int, int]]], None]
    not_before_us: int = 0
    in_flight: bool = False


@dataclass
class GroupStats:
    rebalances: int = 0
    joins: int = 0
    lost: int = 0
    commits_ok: int = 0
    commits_failed: int = 0
    revoked_at_us: dict[TopicPartition, int] = field(default_factory=dict)


class ConsumerCoordinator:
    """Group membership and offsets for one consumer (see the module docstring)."""

    def __init__(self, consumer: Consumer, config: GroupConfig,
                 listener: GroupListener | None = None) -> None:
        self.consumer = consumer
        self.rt: Runtime = consumer.rt
        self.config = config
        self.listener = listener or GroupListener()
        self.protocol = rebalance_protocol(config.strategies)
        self.topics: tuple[str, ...] = ()
        self.coordinator: str | None = None
        self.member_id = UNKNOWN_MEMBER_ID
        self.generation = UNKNOWN_GENERATION_ID
        self.leader = ""
        self.assignment: list[TopicPartition] = []
        self.last_assignment: list[TopicPartition] = []  # sticky's memory across revokes
        self.state = UNJOINED
        self.rejoin_needed = True
        self.closed = False
        self.stats = GroupStats()
        self._join_prepared = False
        self._finding = False
        self._backoff_until_us = 0
        self._hb_in_flight = False
        self._hb_sent_us = -(1 << 62)
        self._confirmed_us: int | None = None  # send time of the last answered request
        self._next_auto_commit_us = 0
        self._auto_commit_in_flight = False
        self._last_committed: dict[TopicPartition, int] = {}
        self._commit_token = 0
        self._pending_sync: tuple[str, dict[str, bytes]] | None = None
        self._lookups: list[_OffsetLookup] = []
        self._members_iid: dict[str, str | None] = {}
        self._last_poll_us: int | None = None
        self._in_poll = False
        self._pending_assignment: tuple[int, list[TopicPartition]] | None = None
        self._left_for_poll_timeout = False
        self._rotation = 0
        self._waker = Waker(self.rt, self.run)
        self._running = False

    # ------------------------------------------------------------------ API

    def subscribe(self, topics: list[str] | tuple[str, ...]) -> None:
        new = tuple(sorted(set(topics)))
        if new != self.topics:
            self.topics = new
            self.consumer.metadata.add_topics(new)
            self.rejoin_needed = True
        self.run()

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None,
               on_done: CommitCallback | None = None) -> int:
        """Commit offsets (default: the consumer's positions of its assignment).
        on_done(outcome, error) once; returns the commit's token (0: nothing sent)."""
        if offsets is None:
            offsets = {tp: pos.offset for tp, pos in self.consumer.positions().items()
                       if tp in set(self.assignment)}
        return self._send_commit(dict(offsets), on_done)

    def close(self, on_done: Callable[[], None] | None = None) -> None:
        """Kafka's close: commit (auto-commit on), revoke, LeaveGroup (dynamic members)."""
        def leave(_outcome: str = OK, _err: Errors = Errors.NONE) -> None:
            self._pending_assignment = None
            self._revoke(list(self.assignment), "close")
            if self.coordinator is not None and self.member_id \
                    and self.config.group_instance_id is None:
                req = LeaveGroupRequest(correlation_id=self._cid(),
                                        group_id=self.config.group_id, member_id=self.member_id)
                self.consumer.tracker.send(self.coordinator, req, lambda _r: None)
            self.closed = True
            self.state = UNJOINED
            if on_done is not None:
                on_done()

        if self.config.enable_auto_commit and self.assignment and self.generation >= 0 \
                and self.commit(on_done=leave):
            return
        leave()

    def fetch_committed(self, tps: list[TopicPartition],
                        reply: Callable[[Mapping[TopicPartition, tuple[int, int]]], None]) -> None:
        """The consumer's offset_source: committed offsets by OffsetFetch (retried until
        answered: the consumer waits for it)."""
        self._lookups.append(_OffsetLookup(sorted(tps), reply))
        self.run()

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            self._step()
        finally:
            self._running = False

    def _step(self) -> None:
        if self.closed or self.state == FAILED or not self.topics:
            return
        now = self.rt.now()
        self._check_session(now)
        deadlines: list[int] = []
        if self._check_poll_interval(now, deadlines):
            self._arm(deadlines)
            return
        if self.coordinator is None:
            if not self._finding and now >= self._backoff_until_us:
                self._find_coordinator()
            elif not self._finding:
                deadlines.append(self._backoff_until_us)
            self._arm(deadlines)
            return
        self._serve_lookups(now, deadlines)
        in_poll = self._polling_now()
        if self._pending_assignment is not None and in_poll:
            self._apply_assignment()
        if self.rejoin_needed and self.state in (UNJOINED, STABLE) and in_poll:
            if now < self._backoff_until_us:
                deadlines.append(self._backoff_until_us)
            else:
                self._prepare_join()
        if self.state == SYNCING and self._pending_sync is not None:
            self._maybe_sync()
            if self._pending_sync is not None:
                deadlines.append(now + self.config.retry_backoff_us)
        # a heartbeat in flight: its answer (or timeout) runs the loop again
        if self.generation >= 0 and self.state in (STABLE, JOINING, SYNCING) \
                and not self._hb_in_flight:
            due = self._hb_sent_us + self.config.heartbeat_interval_us
            if now >= due:
                self._send_heartbeat()
                due = now + self.config.heartbeat_interval_us
            deadlines.append(due)
        if self.state == STABLE and self.config.enable_auto_commit and in_poll:
            if now >= self._next_auto_commit_us:
                self._next_auto_commit_us = now + self.config.auto_commit_interval_us
                self._auto_commit()
            deadlines.append(self._next_auto_commit_us)
        if self._confirmed_us is not None and self.assignment:
            deadlines.append(self._confirmed_us + self.config.session_timeout_us)
        self._arm(deadlines)

    def _arm(self, deadlines: list[int]) -> None:
        if deadlines:
            self._waker.wake_at(max(min(deadlines), self.rt.now() + 1))

    def _cid(self) -> int:
        return self.consumer.tracker.next_correlation_id()

    def _send(self, msg: Message, on_response: Callable[[Message | None], None],
              timeout_us: int | None = None) -> None:
        if self.coordinator is None:
            on_response(None)
            return
        self.consumer.tracker.send(self.coordinator, msg, on_response, timeout_us)

    def _after(self) -> None:
        """Run the loop after a response (and let the consumer use what changed)."""
        self.run()
        self.consumer._kick()

    def _coordinator_unknown(self, disconnect: bool = False) -> None:
        """Forget the coordinator (rediscover after a backoff). With disconnect (a
        timeout, the session ran out) every request in flight to it fails now, as when
        Kafka closes the connection, instead of waiting out its own timeout."""
        old, self.coordinator = self.coordinator, None
        self._backoff_until_us = self.rt.now() + self.config.retry_backoff_us
        if old is not None:
            self.rt.emit("group_coordinator_lost", group=self.config.group_id,
                         coordinator=old)
            if disconnect:
                self.consumer.tracker.disconnect(old)

    def _check_session(self, now: int) -> None:
        if self._confirmed_us is None or not self.assignment:
            return
        if now - self._confirmed_us >= self.config.session_timeout_us:
            self.rt.emit("group_session_lost", group=self.config.group_id,
                         member=self.member_id, generation=self.generation)
            lapsed_ago = now - self._confirmed_us - self.config.session_timeout_us
            self._lose_partitions("session timeout without an answer from the coordinator",
                                  lapsed_ago)
            self.rejoin_needed = True  # to get them back (or others) from the coordinator
            self._join_prepared = False
            if self.state == STABLE:
                self.state = UNJOINED
            self._coordinator_unknown(disconnect=True)

    def poll_called(self) -> None:
        """The application polled (KafkaConsumer.poll): resets max.poll.interval.ms, a
        member that left for being too slow rejoins, and the group work that waits for
        a poll (rejoin, a received assignment, auto commit) runs until poll_returned."""
        self._last_poll_us = self.rt.now()
        self._in_poll = True
        if self._left_for_poll_timeout:
            self._left_for_poll_timeout = False
            self.rejoin_needed = True
        self.run()

    def poll_returned(self) -> None:
        """Poll handed its records to the application, which works on them now."""
        self._in_poll = False

    def _polling_now(self) -> bool:
        """Whether poll-bound work may run now: inside a poll, or for a client that
        never polls at all."""
        return self._in_poll or self._last_poll_us is None

    def _check_poll_interval(self, now: int, deadlines: list[int]) -> bool:
        """Kafka's poll timeout: a member whose application has not polled for
        max.poll.interval.ms leaves the group (its partitions go to the others) until it
        polls again. True while it stays out."""
        if self._left_for_poll_timeout:
            return True
        if self._last_poll_us is None or self.generation < 0:
            return False
        due = self._last_poll_us + self.config.max_poll_interval_us
        if now < due:
            deadlines.append(due)
            return False
        self.rt.emit("group_poll_timeout", group=self.config.group_id, member=self.member_id)
        self._pending_assignment = None
        self._revoke(list(self.assignment), "poll timeout")
        if self.coordinator is not None and self.member_id \
                and self.config.group_instance_id is None:  # static: the session ends it
            req = LeaveGroupRequest(correlation_id=self._cid(), group_id=self.config.group_id,
                                    member_id=self.member_id)
            self.consumer.tracker.send(self.coordinator, req, lambda _r: None)
        self.generation = UNKNOWN_GENERATION_ID
        self.member_id = UNKNOWN_MEMBER_ID
        self.last_assignment = []
        self.state = UNJOINED
        self._join_prepared = False
        self._left_for_poll_timeout = True
        return True

    def _confirm(self, sent_us: int) -> None:
        if self._confirmed_us is None or sent_us > self._confirmed_us:
            self._confirmed_us = sent_us

    # ------------------------------------------------------------------ FindCoordinator

    def _find_coordinator(self) -> None:
        self._rotation += 1
        host = self.consumer.tracker.least_loaded(self.consumer.metadata.hosts(),
                                                  self._rotation)
        if host is None:
            self._backoff_until_us = self.rt.now() + self.config.retry_backoff_us
            return
        self._finding = True
        req = FindCoordinatorRequest(correlation_id=self._cid(), key=self.config.group_id)
        self.consumer.tracker.send(host, req, self._on_find_coordinator)

    def _on_find_coordinator(self, resp: Message | None) -> None:
        self._finding = False
        if isinstance(resp, FindCoordinatorResponse) and resp.error_code is Errors.NONE \
                and resp.host:
            self.coordinator = resp.host
            self.rt.emit("group_coordinator_found", group=self.config.group_id,
                         coordinator=resp.host)
            if self.state in (JOINING, SYNCING):
                self.state = UNJOINED  # answers from the old coordinator are ignored
                self.rejoin_needed = True
        else:
            self._backoff_until_us = self.rt.now() + self.config.retry_backoff_us
        self._after()

    # ------------------------------------------------------------------ join

    def _prepare_join(self) -> None:
        if not self._join_prepared:
            self._join_prepared = True
            if self.config.enable_auto_commit and self.generation >= 0 and self.assignment:
                self.state = PREPARING
                if self.protocol != COOPERATIVE:
                    # Kafka's "pending revocation": nothing more is handed out from
                    # partitions about to go, so the commit covers all that was
                    self.consumer.pause(self.assignment)
                self.commit(on_done=lambda _o, _e: self._after_prepare_commit())
                return
            self._revoke_for_join()
        self._send_join()

    def _after_prepare_commit(self) -> None:
        if self.state != PREPARING:
            return
        self.state = UNJOINED
        self._revoke_for_join()
        self._send_join()

    def _revoke_for_join(self) -> None:
        if self.protocol != COOPERATIVE:
            self._revoke(list(self.assignment), "rebalance")

    def _send_join(self) -> None:
        if self.coordinator is None:
            self.state = UNJOINED
            return
        self.state = JOINING
        owned = tuple(self.assignment) if self.protocol == COOPERATIVE \
            else tuple(self.last_assignment)
        protocols = tuple(JoinGroupRequestProtocol(
            name=s, metadata=encode_subscription(self.topics, owned, self.generation))
            for s in self.config.strategies)
        req = JoinGroupRequest(
            correlation_id=self._cid(), group_id=self.config.group_id,
            session_timeout_ms=self.config.session_timeout_us // 1000,
            rebalance_timeout_ms=self.config.rebalance_timeout_us // 1000,
            member_id=self.member_id, group_instance_id=self.config.group_instance_id,
            protocols=protocols)
        sent = self.rt.now()
        self.stats.joins += 1
        self._send(req, lambda r: self._on_join(r, sent), max(
            self.config.request_timeout_us, self.config.rebalance_timeout_us + 5_000_000))

    def _on_join(self, resp: Message | None, sent_us: int) -> None:
        if self.state != JOINING:
            return
        if not isinstance(resp, JoinGroupResponse):
            self.state = UNJOINED
            self._coordinator_unknown()
            return self._after()
        err = resp.error_code
        if err is Errors.NONE:
            self._confirm(sent_us)
            self.member_id, self.generation, self.leader = (resp.member_id, resp.generation_id,
                                                            resp.leader)
            self.rejoin_needed = False
            self._join_prepared = False
            self.state = SYNCING
            assignments: dict[str, bytes] = {}
            if resp.leader == self.member_id:
                self._pending_sync = (resp.protocol_name, {
                    m.member_id: m.metadata for m in resp.members})
                self._members_iid = {m.member_id: m.group_instance_id for m in resp.members}
                self._maybe_sync()
            else:
                self._pending_sync = None
                self._send_sync(assignments)
            return self._after()
        self.state = UNJOINED
        if err is Errors.MEMBER_ID_REQUIRED:
            self.member_id = resp.member_id
        elif err is Errors.UNKNOWN_MEMBER_ID:
            self._reset_generation(forget_member=True)
            self._backoff_until_us = self.rt.now() + self.config.retry_backoff_us
        elif err is Errors.ILLEGAL_GENERATION:
            self._reset_generation(forget_member=False)
        elif err in _COORDINATOR_GONE:
            self._coordinator_unknown()
        elif err in (Errors.FENCED_INSTANCE_ID, Errors.INCONSISTENT_GROUP_PROTOCOL,
                     Errors.INVALID_SESSION_TIMEOUT, Errors.GROUP_MAX_SIZE_REACHED,
                     Errors.INVALID_GROUP_ID):
            self._fail(err)
        else:
            self._backoff_until_us = self.rt.now() + self.config.retry_backoff_us
        self._after()

    def _maybe_sync(self) -> None:
        """The leader assigns once metadata knows every subscribed topic's partitions."""
        assert self._pending_sync is not None
        protocol, metas = self._pending_sync
        subs: dict[str, Subscription] = {}
        for mid in sorted(metas):
            try:
                topics, owned, gen = decode_subscription(metas[mid])
            except ConsumerProtocolError:
                topics, owned, gen = (), (), -1
            subs[mid] = Subscription(topics, owned, gen, self._members_iid.get(mid))
        wanted = sorted({t for s in subs.values() for t in s.topics})
        md = self.consumer.metadata
        md.add_topics(wanted)
        missing = [t for t in wanted if t not in md.partition_counts
                   and t not in md.topic_errors]
        if missing:
            md.request_update()
            self.consumer._kick()
            return
        counts = {t: md.partition_counts[t] for t in wanted if t in md.partition_counts}
        assignor = ASSIGNORS.get(protocol)
        if assignor is None:
            return self._fail(Errors.INCONSISTENT_GROUP_PROTOCOL)
        out = assignor.assign(counts, subs)
        self._pending_sync = None
        self.rt.emit("group_assignment_computed", group=self.config.group_id,
                     generation=self.generation, protocol=protocol,
                     assignment={m: [f"{t}/{p}" for t, p in tps] for m, tps in sorted(out.items())})
        self._send_sync({m: encode_assignment(tps) for m, tps in sorted(out.items())})

    def _send_sync(self, assignments: dict[str, bytes]) -> None:
        req = SyncGroupRequest(
            correlation_id=self._cid(), group_id=self.config.group_id,
            generation_id=self.generation, member_id=self.member_id,
            group_instance_id=self.config.group_instance_id,
            assignments=tuple(SyncGroupRequestAssignment(member_id=m, assignment=a)
                              for m, a in sorted(assignments.items())))
        sent = self.rt.now()
        gen = self.generation
        self._send(req, lambda r: self._on_sync(r, sent, gen), max(
            self.config.request_timeout_us, self.config.rebalance_timeout_us + 5_000_000))

    def _on_sync(self, resp: Message | None, sent_us: int, generation: int) -> None:
        if self.state != SYNCING or generation != self.generation:
            return
        if not isinstance(resp, SyncGroupResponse):
            self.state = UNJOINED
            self.rejoin_needed = True
            self._coordinator_unknown()
            return self._after()
        err = resp.error_code
        if err is not Errors.NONE:
            self.state = UNJOINED
            self.rejoin_needed = True
            if err in (Errors.UNKNOWN_MEMBER_ID, Errors.ILLEGAL_GENERATION):
                self._reset_generation(forget_member=err is Errors.UNKNOWN_MEMBER_ID)
            elif err in _COORDINATOR_GONE:
                self._coordinator_unknown()
            elif err is Errors.FENCED_INSTANCE_ID:
                self._fail(err)
            return self._after()
        self._confirm(sent_us)
        try:
            new = decode_assignment(resp.assignment)
        except ConsumerProtocolError:
            new = []
        self.state = STABLE
        self.stats.rebalances += 1
        if self._pending_assignment is not None:
            self._apply_assignment()
        self._pending_assignment = (self.generation, sorted(new))
        if self._polling_now():
            self._apply_assignment()
        self._after()

    def _apply_assignment(self) -> None:
        """ConsumerCoordinator.onJoinComplete: take the assignment a SyncGroup brought
        (inside poll): revoke what is no longer ours (cooperative: then rejoin for
        KIP-429's second round), assign, tell the listener."""
        assert self._pending_assignment is not None
        generation, new = self._pending_assignment
        self._pending_assignment = None
        revoked = sorted(set(self.assignment) - set(new))
        if revoked:
            self._revoke(revoked, "rebalance")
            if self.protocol == COOPERATIVE:
                self.rejoin_needed = True  # KIP-429: the second round hands them out
        self.assignment = sorted(new)
        self.last_assignment = list(self.assignment)
        self.consumer.assign(self.assignment)
        self._next_auto_commit_us = self.rt.now() + self.config.auto_commit_interval_us
        self.rt.emit("group_assigned", group=self.config.group_id, member=self.member_id,
                     generation=generation,
                     partitions=[f"{t}/{p}" for t, p in self.assignment])
        if self.listener.on_assign is not None:
            self.listener.on_assign(generation, list(self.assignment))
        self.consumer._kick()

    def _revoke(self, tps: list[TopicPartition], reason: str, lapsed_ago_us: int = 0) -> None:
        if not tps:
            return
        keep = sorted(set(self.assignment) - set(tps))
        self.assignment = keep
        self.consumer.assign(keep)
        now = self.rt.now()
        for tp in tps:
            self.stats.revoked_at_us[tp] = now
        self.rt.emit("group_revoked", group=self.config.group_id, member=self.member_id,
                     reason=reason, partitions=[f"{t}/{p}" for t, p in sorted(tps)])
        if reason == "lost" and self.listener.on_lost is not None:
            self.listener.on_lost(sorted(tps), lapsed_ago_us)
        elif self.listener.on_revoke is not None:
            self.listener.on_revoke(sorted(tps), reason)

    def _lose_partitions(self, why: str, lapsed_ago_us: int = 0) -> None:
        self._pending_assignment = None  # fenced or expired: that assignment is void
        if self.assignment:
            self.stats.lost += 1
            self._revoke(list(self.assignment), "lost", lapsed_ago_us)
        self.last_assignment = []

    def _reset_generation(self, forget_member: bool) -> None:
        self._lose_partitions("fenced")
        self.generation = UNKNOWN_GENERATION_ID
        if forget_member:
            self.member_id = UNKNOWN_MEMBER_ID
        self.rejoin_needed = True
        self._join_prepared = False
        if self.state in (STABLE, SYNCING, JOINING):
            self.state = UNJOINED

    def _fail(self, err: Errors) -> None:
        self._pending_assignment = None
        self._revoke(list(self.assignment), "fenced")
        self.state = FAILED
        self.rt.emit("group_member_failed", group=self.config.group_id, member=self.member_id,
                     error=err.name)

    # ------------------------------------------------------------------ heartbeat

    def _send_heartbeat(self) -> None:
        self._hb_in_flight = True
        sent = self._hb_sent_us = self.rt.now()
        gen = self.generation
        req = HeartbeatRequest(correlation_id=self._cid(), group_id=self.config.group_id,
                               generation_id=gen, member_id=self.member_id)
        self._send(req, lambda r: self._on_heartbeat(r, sent, gen))

    def _on_heartbeat(self, resp: Message | None, sent_us: int, generation: int) -> None:
        self._hb_in_flight = False
        if not isinstance(resp, HeartbeatResponse):
            self._coordinator_unknown(disconnect=resp is None)
            return self._after()
        err = resp.error_code
        if err in (Errors.NONE, Errors.REBALANCE_IN_PROGRESS):
            self._confirm(sent_us)
            if err is Errors.REBALANCE_IN_PROGRESS and self.state == STABLE:
                self.rejoin_needed = True
        elif generation != self.generation or self.state in (JOINING, SYNCING, PREPARING):
            pass  # an answer about a generation we already left behind
        elif err in (Errors.UNKNOWN_MEMBER_ID, Errors.ILLEGAL_GENERATION):
            self._reset_generation(forget_member=err is Errors.UNKNOWN_MEMBER_ID)
        elif err is Errors.FENCED_INSTANCE_ID:
            self._fail(err)
        elif err in _COORDINATOR_GONE:
            self._coordinator_unknown()
        self._after()

    # ------------------------------------------------------------------ commits

    def _auto_commit(self) -> None:
        if self._auto_commit_in_flight:
            return
        offsets = {tp: pos.offset for tp, pos in self.consumer.positions().items()
                   if tp in set(self.assignment)}
        offsets = {tp: o for tp, o in offsets.items() if self._last_committed.get(tp) != o}
        if not offsets:
            return
        self._auto_commit_in_flight = True

        def done(_outcome: str, _err: Errors) -> None:
            self._auto_commit_in_flight = False

        self._send_commit(offsets, done)

    def _send_commit(self, offsets: dict[TopicPartition, int],
                     on_done: CommitCallback | None) -> int:
        if not offsets:
            if on_done is not None:
                on_done(OK, Errors.NONE)
            return 0
        self._commit_token += 1
        c = _Commit(self._commit_token, dict(sorted(offsets.items())), on_done)
        if self.listener.on_commit_invoke is not None:
            self.listener.on_commit_invoke(c.token, dict(c.offsets))
        if self.coordinator is None or self.generation < 0 or not self.member_id:
            self._commit_done(c, FAIL, Errors.COORDINATOR_NOT_AVAILABLE
                              if self.coordinator is None else Errors.ILLEGAL_GENERATION)
            return c.token
        by_topic: dict[str, list[OffsetCommitRequestPartition]] = {}
        for (t, p), o in c.offsets.items():
            by_topic.setdefault(t, []).append(OffsetCommitRequestPartition(
                partition_index=p, committed_offset=o))
        req = OffsetCommitRequest(
            correlation_id=self._cid(), group_id=self.config.group_id,
            generation_id=self.generation, member_id=self.member_id,
            topics=tuple(OffsetCommitRequestTopic(name=t, partitions=tuple(ps))
                         for t, ps in sorted(by_topic.items())))
        sent = self.rt.now()
        gen = self.generation
        self._send(req, lambda r: self._on_commit(r, c, sent, gen))
        return c.token

    def _on_commit(self, resp: Message | None, c: _Commit, sent_us: int, generation: int) -> None:
        if not isinstance(resp, OffsetCommitResponse):
            self._commit_done(c, INFO, Errors.REQUEST_TIMED_OUT)
            self._coordinator_unknown()
            return self._after()
        errs = sorted({p.error_code for t in resp.topics for p in t.partitions})
        err = next((e for e in errs if e is not Errors.NONE), Errors.NONE)
        if err is Errors.NONE:
            self._confirm(sent_us)
            for tp, o in c.offsets.items():
                self._last_committed[tp] = o
            self._commit_done(c, OK, err)
        elif err in _FENCING:
            self._commit_done(c, FAIL, err)
            if generation == self.generation:
                if err is Errors.REBALANCE_IN_PROGRESS:
                    self.rejoin_needed = True
                elif err is Errors.FENCED_INSTANCE_ID:
                    self._fail(err)
                elif self.state == STABLE:
                    self._reset_generation(forget_member=err is Errors.UNKNOWN_MEMBER_ID)
        else:
            # the record may have been appended (and may yet commit): unknown
            self._commit_done(c, INFO, err)
            if err in _COORDINATOR_GONE:
                self._coordinator_unknown()
        self._after()

    def _commit_done(self, c: _Commit, outcome: str, err: Errors) -> None:
        if c.done:
            return
        c.done = True
        if outcome == OK:
            self.stats.commits_ok += 1
        else:
            self.stats.commits_failed += 1
        self.rt.emit("group_commit", group=self.config.group_id, outcome=outcome,
                     error=err.name, offsets={f"{t}/{p}": o for (t, p), o in c.offsets.items()})
        if self.listener.on_commit_done is not None:
            self.listener.on_commit_done(c.token, dict(c.offsets), outcome, err)
        if c.on_done is not None:
            c.on_done(outcome, err)

    # ------------------------------------------------------------------ OffsetFetch

    def _serve_lookups(self, now: int, deadlines: list[int]) -> None:
        for lk in list(self._lookups):
            if lk.in_flight:
                continue
            if now < lk.not_before_us:
                deadlines.append(lk.not_before_us)
                continue
            lk.in_flight = True
            by_topic: dict[str, list[int]] = {}
            for t, p in lk.tps:
                by_topic.setdefault(t, []).append(p)
            req = OffsetFetchRequest(correlation_id=self._cid(), group_id=self.config.group_id,
                                     topics=tuple(OffsetFetchRequestTopic(
                                         name=t, partition_indexes=tuple(ps))
                                         for t, ps in sorted(by_topic.items())))
            self._send(req, lambda r, lk=lk: self._on_offset_fetch(r, lk))

    def _on_offset_fetch(self, resp: Message | None, lk: _OffsetLookup) -> None:
        lk.in_flight = False
        ok = isinstance(resp, OffsetFetchResponse) and resp.error_code is Errors.NONE and all(
            p.error_code is Errors.NONE for t in resp.topics for p in t.partitions)
        if not ok:
            lk.not_before_us = self.rt.now() + self.config.retry_backoff_us
            if resp is None or (isinstance(resp, OffsetFetchResponse)
                                and resp.error_code in _COORDINATOR_GONE):
                self._coordinator_unknown()
            return self._after()
        assert isinstance(resp, OffsetFetchResponse)
        found = {(t.name, p.partition_index): (p.committed_offset, -1)
                 for t in resp.topics for p in t.partitions if p.committed_offset >= 0}
        self._lookups.remove(lk)
        lk.reply(found)
        self._after()


class GroupConsumer(Consumer):
    """A Consumer with group management (subscribe) instead of manual assignment."""

    def __init__(self, rt: Runtime, config: ConsumerConfig | Mapping[str, Any] | None = None,
                 listener: GroupListener | None = None) -> None:
        super().__init__(rt, config)
        self.group = ConsumerCoordinator(self, GroupConfig.from_consumer(self.config), listener)
        self.offset_source = self.group.fetch_committed

    def start(self) -> None:
        super().start()
        self.group.run()

    def subscribe(self, topics: list[str] | tuple[str, ...]) -> None:
        self.group.subscribe(topics)

    def poll(self, on_result: PollCallback, timeout_us: int = 0) -> None:
        """As Consumer.poll, but the group's liveness is checked before records are
        handed out: after a pause longer than the session, the partitions are lost and
        their buffered records are dropped, so a zombie never consumes (Kafka's consumer
        has this window; we close it)."""
        self.group.poll_called()

        def deliver(result: PollResult) -> None:
            self.group.run()
            owned = set(self.group.assignment)
            kept = [r for r in result.records if (r.topic, r.partition) in owned]
            if len(kept) != len(result.records):
                result = PollResult(kept, result.errors)
            self.group.poll_returned()
            on_result(result)

        super().poll(deliver, timeout_us)

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None,
               on_done: CommitCallback | None = None) -> int:
        return self.group.commit(offsets, on_done)

    def close(self, on_done: Callable[[], None] | None = None) -> None:
        self.group.close(on_done)


def history_partitions(tps: list[TopicPartition]) -> list[str]:
    """Partitions as history values name them ("orders/3")."""
    return [f"{t}/{p}" for t, p in sorted(tps)]


__all__ = [
    "FAIL",
    "INFO",
    "OK",
    "ConsumerCoordinator",
    "GroupConfig",
    "GroupConsumer",
    "GroupListener",
    "GroupStats",
    "history_partitions",
]
