"""The group coordinator: Kafka's classic GroupCoordinator as a component a broker embeds.

    coordinator = GroupCoordinator(rt, GroupCoordinatorConfig.from_kafka(settings), host)
    if coordinator.on_message(src, msg):   # True: it was a group request, answered here
        return

It answers FindCoordinator (any broker), and, for the groups whose `__consumer_offsets`
partition this broker leads, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit
and OffsetFetch. It does no I/O of its own: the broker is a `CoordinatorHost` that says
what it leads, appends records (the callback runs when the high watermark passes them,
acks=all) and reads a partition back.

Group states (GroupMetadata.scala):

    Empty --join--> PreparingRebalance --all joined / rebalance timeout--> CompletingRebalance
    CompletingRebalance --leader's SyncGroup persisted--> Stable
    Stable / CompletingRebalance --join of a new member, leader or changed member,
        leave, session expiry--> PreparingRebalance
    PreparingRebalance --nobody left--> Empty;   any --partition unloaded--> Dead

Invariants and choices (Kafka's unless said):
- Ownership is the leader epoch of the group's offsets partition. Every request and
  every timer checks it, and a 1 s sweep too; when this broker stops leading the
  partition its groups are dropped (NOT_COORDINATOR), and when it leads it at a new
  epoch the partition is replayed from the log (the whole log, to its end, as Kafka's
  loader does).
- A generation becomes Stable only after its metadata (with every assignment) is
  committed to `__consumer_offsets`; so a coordinator that takes over restores a
  generation no older than any member has been told to consume with.
- A commit is acknowledged only when its record is committed (HW). OffsetFetch for a
  partition with a commit still in flight waits for it, so a new owner never starts
  below an offset its predecessor is about to be told was committed.
- Commits are fenced: a member id the group does not know (UNKNOWN_MEMBER_ID), a
  stale generation (ILLEGAL_GENERATION), a replaced static member (FENCED_INSTANCE_ID),
  or the group between join and sync (REBALANCE_IN_PROGRESS). Commits with generation
  -1 and no member id are a standalone consumer's, accepted only while the group has
  no members.
- Dynamic members join twice (KIP-394): the first JoinGroup without a member id gets
  MEMBER_ID_REQUIRED and the id to come back with. Static members (group.instance.id,
  KIP-345) get an id at once; a known instance rejoining replaces its old member id
  (which is fenced) and, in a Stable group, keeps its assignment without a rebalance.
- A member awaiting a JoinGroup or SyncGroup answer is kept alive; any other member
  expires session.timeout.ms after its last heartbeat (or join, sync, commit).
- Member ids are `<client node>-<16 hex digits from rt.random>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from simlog.coordinator.records import (
    OFFSETS_TOPIC,
    GroupValue,
    MemberValue,
    OffsetValue,
    batch,
    group_record,
    offset_record,
    partition_for,
    replay,
)
from simlog.protocol.errors import Errors
from simlog.protocol.group import (
    COORDINATOR_KEY_GROUP,
    UNKNOWN_MEMBER_ID,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    JoinGroupResponseMember,
    LeaveGroupRequest,
    LeaveGroupResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
    OffsetFetchRequest,
    OffsetFetchResponse,
    OffsetFetchResponsePartition,
    OffsetFetchResponseTopic,
    SyncGroupRequest,
    SyncGroupResponse,
)
from simlog.runtime import Message, Runtime, Timer, ms_to_us

TopicPartition = tuple[str, int]

EMPTY = "Empty"
PREPARING_REBALANCE = "PreparingRebalance"
COMPLETING_REBALANCE = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"
RECONCILE_INTERVAL_US = 1_000_000


class CoordinatorHost(Protocol):
    """What the coordinator needs from the broker that embeds it. Time, timers,
    randomness and sending come from the node's Runtime."""

    def offsets_partition_count(self) -> int | None:
        """Partitions of `__consumer_offsets` in this broker's metadata (None: no topic)."""
        ...

    def partition_leader(self, partition: int) -> tuple[int, str] | None:
        """(broker id, node id) of the leader of `__consumer_offsets`-partition, as this
        broker's metadata says; None when it has no leader."""
        ...

    def leader_epoch(self, partition: int) -> int | None:
        """This broker's leader epoch of `__consumer_offsets`-partition if it is the
        leader now (its replica acts as leader), else None."""
        ...

    def append(self, partition: int, records: bytes, timeout_us: int,
               on_done: Callable[[Errors], None]) -> None:
        """Append records as leader with acks=all; on_done(error) once, later: NONE when
        the high watermark passed them, else the produce error (NOT_LEADER_OR_FOLLOWER,
        NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT after timeout_us, ...)."""
        ...

    def read(self, partition: int) -> list[bytes]:
        """Every batch of the partition's local log, start to end, as byte chunks."""
        ...

    def create_offsets_topic(self, partitions: int, replication_factor: int,
                             configs: Mapping[str, str]) -> None:
        """Ask the controller to create `__consumer_offsets` (fire and forget)."""
        ...


@dataclass(frozen=True, slots=True)
class GroupCoordinatorConfig:
    """Broker settings of the group coordinator (Kafka's names and defaults)."""

    offsets_topic_num_partitions: int = 50
    offsets_topic_replication_factor: int = 3
    offsets_topic_segment_bytes: int = 104_857_600
    offsets_commit_timeout_us: int = 5_000_000
    group_initial_rebalance_delay_us: int = 3_000_000
    group_min_session_timeout_us: int = 6_000_000
    group_max_session_timeout_us: int = 1_800_000_000
    group_max_size: int = 2_147_483_647

    @classmethod
    def from_kafka(cls, settings: Mapping[str, Any] | None) -> GroupCoordinatorConfig:
        s = settings or {}
        d = cls()

        def ms(key: str, default_us: int) -> int:
            return ms_to_us(int(s[key])) if key in s else default_us

        return cls(
            offsets_topic_num_partitions=int(s.get("offsets.topic.num.partitions",
                                                   d.offsets_topic_num_partitions)),
            offsets_topic_replication_factor=int(s.get(
                "offsets.topic.replication.factor", d.offsets_topic_replication_factor)),
            offsets_topic_segment_bytes=int(s.get("offsets.topic.segment.bytes",
                                                  d.offsets_topic_segment_bytes)),
            offsets_commit_timeout_us=ms("offsets.commit.timeout.ms",
                                         d.offsets_commit_timeout_us),
            group_initial_rebalance_delay_us=ms("group.initial.rebalance.delay.ms",
                                                d.group_initial_rebalance_delay_us),
            group_min_session_timeout_us=ms("group.min.session.timeout.ms",
                                            d.group_min_session_timeout_us),
            group_max_session_timeout_us=ms("group.max.session.timeout.ms",
                                            d.group_max_session_timeout_us),
            group_max_size=int(s.get("group.max.size", d.group_max_size)),
        )


Reply = tuple[str, int]  # (client node, correlation id) of a request awaiting its answer


@dataclass(slots=True)
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    session_timeout_us: int
    rebalance_timeout_us: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    awaiting_join: Reply | None = None
    awaiting_sync: Reply | None = None
    timer: Timer | None = None
    join_order: int = 0

    def protocol_names(self) -> list[str]:
        return [n for n, _ in self.protocols]

    def metadata(self, protocol: str) -> bytes:
        return next((m for n, m in self.protocols if n == protocol), b"")


@dataclass(slots=True)
class Group:
    group_id: str
    partition: int
    state: str = EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    fenced: dict[str, str] = field(default_factory=dict)  # replaced member id -> instance
    pending_members: dict[str, Timer] = field(default_factory=dict)  # MEMBER_ID_REQUIRED
    offsets: dict[TopicPartition, tuple[OffsetValue, int]] = field(default_factory=dict)
    pending_commits: dict[TopicPartition, int] = field(default_factory=dict)
    offset_waiters: list[Callable[[], bool]] = field(default_factory=list)
    join_timer: Timer | None = None
    initial_delay_until_us: int | None = None
    initial_delay_cap_us: int = 0
    join_counter: int = 0
    rebalances: int = 0

    def protocol_candidates(self) -> set[str]:
        out: set[str] | None = None
        for m in self.members.values():
            names = set(m.protocol_names())
            out = names if out is None else out & names
        return out or set()

    def select_protocol(self) -> str | None:
        from simlog.coordinator.assignors import select_protocol
        return select_protocol({mid: m.protocol_names()
                                for mid, m in sorted(self.members.items())})


class GroupCoordinator:
    def __init__(self, rt: Runtime, config: GroupCoordinatorConfig,
                 host: CoordinatorHost) -> None:
        self.rt = rt
        self.config = config
        self.host = host
        self.groups: dict[str, Group] = {}
        self.loaded: dict[int, int] = {}  # offsets partition -> leader epoch loaded at
        self._create_requested = False
        self._reconcile_timer: Timer | None = None

    # ------------------------------------------------------------------ dispatch

    def on_message(self, src: str, msg: Message) -> bool:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            return False
        handler(self, src, msg)
        return True

    def num_partitions(self) -> int:
        return self.host.offsets_partition_count() or self.config.offsets_topic_num_partitions

    def partition_of(self, group_id: str) -> int:
        return partition_for(group_id, self.num_partitions())

    # ------------------------------------------------------------------ ownership

    def _owner_error(self, group_id: str) -> Errors:
        """NONE if this broker coordinates group_id now (loading its partition if it
        just became leader), else NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE."""
        if self.host.offsets_partition_count() is None:
            self._maybe_create_topic()
            return Errors.COORDINATOR_NOT_AVAILABLE
        p = self.partition_of(group_id)
        return Errors.NONE if self._ensure_loaded(p) else Errors.NOT_COORDINATOR

    def _ensure_loaded(self, p: int) -> bool:
        epoch = self.host.leader_epoch(p)
        loaded = self.loaded.get(p)
        if epoch is not None and loaded == epoch:
            return True
        if loaded is not None:
            self._unload(p)
        if epoch is None:
            return False
        self._load(p, epoch)
        return True

    def _owns(self, group: Group) -> bool:
        return (self.groups.get(group.group_id) is group
                and self.host.leader_epoch(group.partition) == self.loaded.get(group.partition))

    def _unload(self, p: int) -> None:
        del self.loaded[p]
        for gid in sorted(self.groups):
            g = self.groups[gid]
            if g.partition != p:
                continue
            self._cancel_timers(g)
            for m in _sorted_members(g):
                if m.awaiting_join is not None:
                    self._send_join_error(m.awaiting_join, m.member_id, Errors.NOT_COORDINATOR)
                if m.awaiting_sync is not None:
                    self._send_sync(m.awaiting_sync, Errors.NOT_COORDINATOR)
                m.awaiting_join = m.awaiting_sync = None
            g.state = DEAD
            del self.groups[gid]
            self._wake_offset_waiters(g)  # they answer NOT_COORDINATOR now
        self.rt.emit("coordinator_unloaded", partition=p)

    def _load(self, p: int, epoch: int) -> None:
        chunks = self.host.read(p)
        self.rt.charge_cpu(sum(len(c) for c in chunks) // 1000)
        loaded = replay(chunks)
        self.loaded[p] = epoch
        if self._reconcile_timer is None or not self._reconcile_timer.active:
            self._reconcile_timer = self.rt.set_timer(RECONCILE_INTERVAL_US, self._reconcile)
        now = self.rt.now()
        for gid in sorted(loaded):
            lg = loaded[gid]
            g = Group(gid, p)
            g.offsets = dict(lg.offsets)
            v = lg.value
            if v is not None:
                g.generation, g.protocol, g.leader = v.generation, v.protocol, v.leader
                g.protocol_type = v.protocol_type or None
                for mv in v.members:
                    m = Member(mv.member_id, mv.group_instance_id, mv.client_id,
                               ms_to_us(mv.session_timeout_ms),
                               ms_to_us(mv.rebalance_timeout_ms), v.protocol_type,
                               tuple(mv.protocols), mv.assignment)
                    g.members[m.member_id] = m
                    if m.instance_id is not None:
                        g.static_members[m.instance_id] = m.member_id
                g.state = STABLE if g.members else EMPTY
            if v is None and not g.offsets:
                continue
            self.groups[gid] = g
            for m in _sorted_members(g):
                self._heartbeat(g, m)
        self.rt.emit("coordinator_loaded", partition=p, leader_epoch=epoch,
                     groups=sorted(gid for gid, g in self.groups.items() if g.partition == p),
                     time_us=now)

    def _reconcile(self) -> None:
        """Drop the groups of partitions this broker no longer leads (at the epoch it
        loaded), so their waiting requests get NOT_COORDINATOR and their memory goes,
        without waiting for a request to notice."""
        self._reconcile_timer = None
        for p in sorted(self.loaded):
            if self.host.leader_epoch(p) != self.loaded[p]:
                self._unload(p)
        if self.loaded:
            self._reconcile_timer = self.rt.set_timer(RECONCILE_INTERVAL_US, self._reconcile)

    def _maybe_create_topic(self) -> None:
        if self._create_requested:
            return
        self._create_requested = True
        self.host.create_offsets_topic(
            self.config.offsets_topic_num_partitions,
            self.config.offsets_topic_replication_factor,
            {"cleanup.policy": "compact", "compression.type": "producer",
             "segment.bytes": str(self.config.offsets_topic_segment_bytes)})
        # ask again later if it did not work
        self.rt.set_timer(5_000_000, self._reset_create)

    def _reset_create(self) -> None:
        self._create_requested = False

    # ------------------------------------------------------------------ FindCoordinator

    def on_find_coordinator(self, src: str, req: FindCoordinatorRequest) -> None:
        def answer(err: Errors, node: int = -1, host: str = "") -> None:
            self.rt.send(src, FindCoordinatorResponse(
                correlation_id=req.correlation_id, error_code=err, node_id=node, host=host,
                port=9092 if node >= 0 else -1))

        if req.key_type != COORDINATOR_KEY_GROUP:
            return answer(Errors.COORDINATOR_NOT_AVAILABLE)  # transactions: not modelled
        if self.host.offsets_partition_count() is None:
            self._maybe_create_topic()
            return answer(Errors.COORDINATOR_NOT_AVAILABLE)
        leader = self.host.partition_leader(self.partition_of(req.key))
        if leader is None:
            return answer(Errors.COORDINATOR_NOT_AVAILABLE)
        answer(Errors.NONE, leader[0], leader[1])

    # ------------------------------------------------------------------ JoinGroup

    def on_join_group(self, src: str, req: JoinGroupRequest) -> None:
        reply = (src, req.correlation_id)
        err = self._owner_error(req.group_id)
        if err is not Errors.NONE:
            return self._send_join_error(reply, req.member_id, err)
        session_us = ms_to_us(req.session_timeout_ms)
        if not (self.config.group_min_session_timeout_us <= session_us
                <= self.config.group_max_session_timeout_us):
            return self._send_join_error(reply, req.member_id, Errors.INVALID_SESSION_TIMEOUT)
        if not req.group_id:
            return self._send_join_error(reply, req.member_id, Errors.INVALID_GROUP_ID)
        g = self.groups.get(req.group_id)
        if g is None:
            if req.member_id != UNKNOWN_MEMBER_ID:
                return self._send_join_error(reply, req.member_id, Errors.UNKNOWN_MEMBER_ID)
            g = Group(req.group_id, self.partition_of(req.group_id))
            self.groups[req.group_id] = g
        protocols = tuple((p.name, p.metadata) for p in req.protocols)
        if not protocols or (g.members and (
                req.protocol_type != g.protocol_type
                or not (set(n for n, _ in protocols) & g.protocol_candidates()))):
            return self._send_join_error(reply, req.member_id,
                                         Errors.INCONSISTENT_GROUP_PROTOCOL)
        if req.member_id == UNKNOWN_MEMBER_ID:
            self._join_unknown(g, src, req, reply, protocols)
        else:
            self._join_known(g, src, req, reply, protocols)

    def _new_member_id(self, src: str) -> str:
        return f"{src}-{self.rt.random.getrandbits(64):016x}"

    def _join_unknown(self, g: Group, src: str, req: JoinGroupRequest, reply: Reply,
                      protocols: tuple[tuple[str, bytes], ...]) -> None:
        new_id = self._new_member_id(src)
        iid = req.group_instance_id
        if iid is not None and iid in g.static_members:
            return self._replace_static(g, iid, new_id, src, req, reply, protocols)
        if iid is None:
            # KIP-394: come back with this id; it expires if it does not
            if len(g.members) + len(g.pending_members) >= self.config.group_max_size:
                return self._send_join_error(reply, "", Errors.GROUP_MAX_SIZE_REACHED)
            g.pending_members[new_id] = self.rt.set_timer(
                ms_to_us(req.session_timeout_ms),
                lambda: self._expire_pending(g, new_id))
            return self._send_join_error(reply, new_id, Errors.MEMBER_ID_REQUIRED)
        self._add_member_and_rebalance(g, new_id, src, req, reply, protocols)

    def _join_known(self, g: Group, src: str, req: JoinGroupRequest, reply: Reply,
                    protocols: tuple[tuple[str, bytes], ...]) -> None:
        mid, iid = req.member_id, req.group_instance_id
        if mid in g.pending_members:
            g.pending_members.pop(mid).cancel()
            return self._add_member_and_rebalance(g, mid, src, req, reply, protocols)
        if mid in g.fenced or (iid is not None and g.static_members.get(iid, mid) != mid):
            return self._send_join_error(reply, mid, Errors.FENCED_INSTANCE_ID)
        m = g.members.get(mid)
        if m is None or g.state in (EMPTY, DEAD):
            return self._send_join_error(reply, mid, Errors.UNKNOWN_MEMBER_ID)
        changed = m.protocols != protocols
        if g.state == PREPARING_REBALANCE:
            self._update_member(g, m, req, protocols, reply)
            self._maybe_complete_join(g)
        elif g.state == COMPLETING_REBALANCE:
            if not changed:
                self._send_join_ok(g, m, reply)  # it missed our answer: the same again
            else:
                self._update_member(g, m, req, protocols, reply)
                self._prepare_rebalance(g, f"member {mid} changed its metadata")
        else:  # STABLE
            if mid == g.leader or changed:
                self._update_member(g, m, req, protocols, reply)
                self._prepare_rebalance(g, f"member {mid} rejoined"
                                        + (" with new metadata" if changed else " (leader)"))
            else:
                self._send_join_ok(g, m, reply)

    def _update_member(self, g: Group, m: Member, req: JoinGroupRequest,
                       protocols: tuple[tuple[str, bytes], ...], reply: Reply) -> None:
        m.protocols = protocols
        m.session_timeout_us = ms_to_us(req.session_timeout_ms)
        m.rebalance_timeout_us = ms_to_us(req.rebalance_timeout_ms)
        if m.awaiting_join is not None and m.awaiting_join != reply:
            pass  # the client retried: only the latest request is answered
        m.awaiting_join = reply
        g.join_counter += 1
        m.join_order = g.join_counter
        self._heartbeat(g, m)

    def _add_member_and_rebalance(self, g: Group, mid: str, src: str, req: JoinGroupRequest,
                                  reply: Reply, protocols: tuple[tuple[str, bytes], ...]) -> None:
        m = Member(mid, req.group_instance_id, src, ms_to_us(req.session_timeout_ms),
                   ms_to_us(req.rebalance_timeout_ms), req.protocol_type, protocols)
        if not g.members:
            g.protocol_type = req.protocol_type
        g.members[mid] = m
        if m.instance_id is not None:
            g.static_members[m.instance_id] = mid
        self._update_member(g, m, req, protocols, reply)
        self.rt.emit("group_member_added", group=g.group_id, member=mid, client=src,
                     instance=m.instance_id)
        if g.state == PREPARING_REBALANCE:
            if g.initial_delay_until_us is not None:
                self._extend_initial_delay(g)
            self._maybe_complete_join(g)
        else:
            self._prepare_rebalance(g, f"member {mid} joined")

    def _replace_static(self, g: Group, iid: str, new_id: str, src: str,
                        req: JoinGroupRequest, reply: Reply,
                        protocols: tuple[tuple[str, bytes], ...]) -> None:
        old_id = g.static_members[iid]
        old = g.members.pop(old_id)
        if old.timer is not None:
            old.timer.cancel()
        if old.awaiting_join is not None:
            self._send_join_error(old.awaiting_join, old_id, Errors.FENCED_INSTANCE_ID)
        if old.awaiting_sync is not None:
            self._send_sync(old.awaiting_sync, Errors.FENCED_INSTANCE_ID)
        g.fenced[old_id] = iid
        m = Member(new_id, iid, src, ms_to_us(req.session_timeout_ms),
                   ms_to_us(req.rebalance_timeout_ms), req.protocol_type, protocols,
                   assignment=old.assignment, join_order=old.join_order)
        g.members[new_id] = m
        g.static_members[iid] = new_id
        if g.leader == old_id:
            g.leader = new_id
        self.rt.emit("group_static_member_replaced", group=g.group_id, instance=iid,
                     old_member=old_id, new_member=new_id)
        if g.state == STABLE and g.protocol in set(m.protocol_names()) \
                and g.select_protocol() == g.protocol:
            # KIP-345: no rebalance; persist the new member id, then answer with the
            # current generation (the member then syncs and gets its old assignment).
            self._heartbeat(g, m)
            gen = g.generation

            def stored(err: Errors) -> None:
                if not self._owns(g) or g.members.get(new_id) is not m:
                    return
                if err is not Errors.NONE or g.generation != gen:
                    self._send_join_error(reply, new_id, Errors.COORDINATOR_NOT_AVAILABLE
                                          if err is not Errors.NONE else
                                          Errors.REBALANCE_IN_PROGRESS)
                    return
                self._send_join_ok(g, m, reply)

            self._store_group(g, stored)
            return
        self._update_member(g, m, req, protocols, reply)
        if g.state == PREPARING_REBALANCE:
            self._maybe_complete_join(g)
        else:
            self._prepare_rebalance(g, f"static member {iid} rejoined with new metadata")

    def _expire_pending(self, g: Group, mid: str) -> None:
        if g.pending_members.pop(mid, None) is not None and self._owns(g):
            self._maybe_complete_join(g)

    # ------------------------------------------------------------------ rebalance

    def _prepare_rebalance(self, g: Group, reason: str) -> None:
        if g.state == COMPLETING_REBALANCE:
            for m in _sorted_members(g):
                m.assignment = b""
                if m.awaiting_sync is not None:
                    self._send_sync(m.awaiting_sync, Errors.REBALANCE_IN_PROGRESS)
                    m.awaiting_sync = None
        was_empty = g.state == EMPTY
        self._set_state(g, PREPARING_REBALANCE)
        g.rebalances += 1
        self.rt.emit("group_rebalance", group=g.group_id, generation=g.generation,
                     reason=reason)
        if g.join_timer is not None:
            g.join_timer.cancel()
        if was_empty and self.config.group_initial_rebalance_delay_us > 0:
            cap = max((m.rebalance_timeout_us for m in g.members.values()), default=0)
            g.initial_delay_until_us = self.rt.now() + self.config.group_initial_rebalance_delay_us
            g.initial_delay_cap_us = self.rt.now() + cap
            g.join_timer = self.rt.set_timer(self.config.group_initial_rebalance_delay_us,
                                             lambda: self._on_initial_delay(g))
        else:
            g.initial_delay_until_us = None
            timeout = max((m.rebalance_timeout_us for m in g.members.values()), default=0)
            g.join_timer = self.rt.set_timer(timeout, lambda: self._on_join_timeout(g))
            self._maybe_complete_join(g)

    def _extend_initial_delay(self, g: Group) -> None:
        """Kafka's InitialDelayedJoin: each new member pushes completion back by the
        delay, up to the rebalance timeout from the first join."""
        now = self.rt.now()
        until = min(now + self.config.group_initial_rebalance_delay_us, g.initial_delay_cap_us)
        if until <= (g.initial_delay_until_us or 0):
            return
        g.initial_delay_until_us = until
        if g.join_timer is not None:
            g.join_timer.cancel()
        g.join_timer = self.rt.set_timer(until - now, lambda: self._on_initial_delay(g))

    def _on_initial_delay(self, g: Group) -> None:
        if not self._owns(g) or g.state != PREPARING_REBALANCE:
            return
        g.initial_delay_until_us = None
        timeout = max((m.rebalance_timeout_us for m in g.members.values()), default=0)
        g.join_timer = self.rt.set_timer(timeout, lambda: self._on_join_timeout(g))
        self._maybe_complete_join(g)

    def _on_join_timeout(self, g: Group) -> None:
        if not self._owns(g) or g.state != PREPARING_REBALANCE:
            return
        for m in _sorted_members(g):
            if m.awaiting_join is None:
                self._remove_member(g, m, "rebalance timeout", rebalance=False)
        for mid in sorted(g.pending_members):
            g.pending_members.pop(mid).cancel()
        self._maybe_complete_join(g, force=True)

    def _maybe_complete_join(self, g: Group, force: bool = False) -> None:
        if g.state != PREPARING_REBALANCE:
            return
        if g.initial_delay_until_us is not None and not force:
            return
        all_joined = all(m.awaiting_join is not None for m in g.members.values())
        if not force and (not all_joined or g.pending_members):
            return
        if g.join_timer is not None:
            g.join_timer.cancel()
            g.join_timer = None
        g.initial_delay_until_us = None
        for m in _sorted_members(g):
            if m.awaiting_join is None:
                self._remove_member(g, m, "did not rejoin", rebalance=False)
        g.generation += 1
        if not g.members:
            g.protocol = g.leader = None
            self._set_state(g, EMPTY)
            self._store_group(g, lambda err: None)
            return
        g.protocol = g.select_protocol()
        if g.leader not in g.members:
            g.leader = min(g.members.values(), key=lambda m: (m.join_order, m.member_id)).member_id
        self._set_state(g, COMPLETING_REBALANCE)
        for m in _sorted_members(g):
            reply, m.awaiting_join = m.awaiting_join, None
            self._heartbeat(g, m)
            if reply is not None:
                self._send_join_ok(g, m, reply)

    def _send_join_ok(self, g: Group, m: Member, reply: Reply) -> None:
        members: tuple[JoinGroupResponseMember, ...] = ()
        if m.member_id == g.leader and g.protocol is not None:
            members = tuple(JoinGroupResponseMember(member_id=o.member_id,
                                                    group_instance_id=o.instance_id,
                                                    metadata=o.metadata(g.protocol))
                            for o in _sorted_members(g))
        self.rt.send(reply[0], JoinGroupResponse(
            correlation_id=reply[1], generation_id=g.generation,
            protocol_name=g.protocol or "", leader=g.leader or "", member_id=m.member_id,
            members=members))

    def _send_join_error(self, reply: Reply, member_id: str, err: Errors) -> None:
        self.rt.send(reply[0], JoinGroupResponse(correlation_id=reply[1], error_code=err,
                                                 member_id=member_id))

    def _send_sync(self, reply: Reply, err: Errors, assignment: bytes = b"") -> None:
        self.rt.send(reply[0], SyncGroupResponse(correlation_id=reply[1], error_code=err,
                                                 assignment=assignment))

    def _set_state(self, g: Group, state: str) -> None:
        if g.state != state:
            g.state = state
            self.rt.emit("group_state", group=g.group_id, state=state,
                         generation=g.generation, members=sorted(g.members))

    # ------------------------------------------------------------------ members

    def _heartbeat(self, g: Group, m: Member) -> None:
        """Reset m's session: it expires session.timeout.ms from now."""
        if m.timer is not None:
            m.timer.cancel()
        m.timer = self.rt.set_timer(m.session_timeout_us, lambda: self._on_session_expiry(g, m))

    def _on_session_expiry(self, g: Group, m: Member) -> None:
        m.timer = None
        if not self._owns(g) or g.members.get(m.member_id) is not m:
            return
        if m.awaiting_join is not None or m.awaiting_sync is not None:
            self._heartbeat(g, m)  # waiting on us: alive
            return
        self.rt.emit("group_member_expired", group=g.group_id, member=m.member_id,
                     generation=g.generation)
        self._remove_member(g, m, "session timeout")

    def _remove_member(self, g: Group, m: Member, reason: str, rebalance: bool = True) -> None:
        g.members.pop(m.member_id, None)
        if m.timer is not None:
            m.timer.cancel()
            m.timer = None
        if m.instance_id is not None and g.static_members.get(m.instance_id) == m.member_id:
            del g.static_members[m.instance_id]
        if m.awaiting_sync is not None:
            self._send_sync(m.awaiting_sync, Errors.UNKNOWN_MEMBER_ID)
        if m.awaiting_join is not None:
            self._send_join_error(m.awaiting_join, m.member_id, Errors.UNKNOWN_MEMBER_ID)
        m.awaiting_join = m.awaiting_sync = None
        self.rt.emit("group_member_removed", group=g.group_id, member=m.member_id,
                     reason=reason)
        if not rebalance:
            return
        if g.state in (STABLE, COMPLETING_REBALANCE):
            self._prepare_rebalance(g, f"member {m.member_id} removed: {reason}")
        elif g.state == PREPARING_REBALANCE:
            self._maybe_complete_join(g)

    def _member_error(self, g: Group | None, member_id: str, generation: int) -> Errors:
        if g is None:
            return Errors.UNKNOWN_MEMBER_ID
        if member_id in g.fenced:
            return Errors.FENCED_INSTANCE_ID
        if member_id not in g.members:
            return Errors.UNKNOWN_MEMBER_ID
        if generation != g.generation:
            return Errors.ILLEGAL_GENERATION
        return Errors.NONE

    # ------------------------------------------------------------------ SyncGroup

    def on_sync_group(self, src: str, req: SyncGroupRequest) -> None:
        reply = (src, req.correlation_id)
        err = self._owner_error(req.group_id)
        g = self.groups.get(req.group_id)
        if err is Errors.NONE:
            err = self._member_error(g, req.member_id, req.generation_id)
        if err is Errors.NONE and req.group_instance_id is not None and g is not None \
                and g.static_members.get(req.group_instance_id) != req.member_id:
            err = Errors.FENCED_INSTANCE_ID
        if err is not Errors.NONE:
            return self._send_sync(reply, err)
        assert g is not None
        m = g.members[req.member_id]
        if g.state == PREPARING_REBALANCE:
            return self._send_sync(reply, Errors.REBALANCE_IN_PROGRESS)
        if g.state == STABLE:
            self._heartbeat(g, m)
            return self._send_sync(reply, Errors.NONE, m.assignment)
        # CompletingRebalance
        m.awaiting_sync = reply
        self._heartbeat(g, m)
        if req.member_id != g.leader:
            return
        given = {a.member_id: a.assignment for a in req.assignments}
        gen = g.generation
        for mm in _sorted_members(g):
            mm.assignment = given.get(mm.member_id, b"")

        def stored(err: Errors) -> None:
            if not self._owns(g) or g.generation != gen or g.state != COMPLETING_REBALANCE:
                return
            if err is not Errors.NONE:
                for mm in _sorted_members(g):
                    mm.assignment = b""
                    if mm.awaiting_sync is not None:
                        self._send_sync(mm.awaiting_sync, _store_error(err))
                        mm.awaiting_sync = None
                self._prepare_rebalance(g, f"storing generation {gen} failed: {err.name}")
                return
            self._set_state(g, STABLE)
            for mm in _sorted_members(g):
                if mm.awaiting_sync is not None:
                    self._send_sync(mm.awaiting_sync, Errors.NONE, mm.assignment)
                    mm.awaiting_sync = None
                    self._heartbeat(g, mm)

        self._store_group(g, stored)

    def _store_group(self, g: Group, on_done: Callable[[Errors], None]) -> None:
        now_ms = self.rt.now() // 1000
        value = GroupValue(
            protocol_type=g.protocol_type or "", generation=g.generation, protocol=g.protocol,
            leader=g.leader, current_state_timestamp_ms=now_ms,
            members=tuple(MemberValue(member_id=m.member_id, group_instance_id=m.instance_id,
                                      client_id=m.client_id,
                                      session_timeout_ms=m.session_timeout_us // 1000,
                                      rebalance_timeout_ms=m.rebalance_timeout_us // 1000,
                                      protocols=m.protocols, assignment=m.assignment)
                          for m in _sorted_members(g)))
        data = batch([group_record(g.group_id, value, now_ms)])
        self.host.append(g.partition, data, self.config.offsets_commit_timeout_us, on_done)

    # ------------------------------------------------------------------ Heartbeat, Leave

    def on_heartbeat(self, src: str, req: HeartbeatRequest) -> None:
        def answer(err: Errors) -> None:
            self.rt.send(src, HeartbeatResponse(correlation_id=req.correlation_id,
                                                error_code=err))

        err = self._owner_error(req.group_id)
        if err is not Errors.NONE:
            return answer(err)
        g = self.groups.get(req.group_id)
        if g is None or g.state == EMPTY:
            return answer(Errors.UNKNOWN_MEMBER_ID)
        err = self._member_error(g, req.member_id, req.generation_id)
        if err is not Errors.NONE:
            return answer(err)
        self._heartbeat(g, g.members[req.member_id])
        answer(Errors.REBALANCE_IN_PROGRESS if g.state == PREPARING_REBALANCE else Errors.NONE)

    def on_leave_group(self, src: str, req: LeaveGroupRequest) -> None:
        def answer(err: Errors) -> None:
            self.rt.send(src, LeaveGroupResponse(correlation_id=req.correlation_id,
                                                 error_code=err))

        err = self._owner_error(req.group_id)
        if err is not Errors.NONE:
            return answer(err)
        g = self.groups.get(req.group_id)
        if g is not None and req.member_id in g.pending_members:
            g.pending_members.pop(req.member_id).cancel()
            self._maybe_complete_join(g)
            return answer(Errors.NONE)
        if g is None or req.member_id not in g.members:
            return answer(Errors.UNKNOWN_MEMBER_ID)
        self._remove_member(g, g.members[req.member_id], "left the group")
        answer(Errors.NONE)

    # ------------------------------------------------------------------ offsets

    def on_offset_commit(self, src: str, req: OffsetCommitRequest) -> None:
        tps = [(t.name, p.partition_index, p) for t in req.topics for p in t.partitions]

        def answer(errors: dict[TopicPartition, Errors]) -> None:
            by_topic: dict[str, list[OffsetCommitResponsePartition]] = {}
            for topic, idx, _ in tps:
                by_topic.setdefault(topic, []).append(OffsetCommitResponsePartition(
                    partition_index=idx, error_code=errors[(topic, idx)]))
            self.rt.send(src, OffsetCommitResponse(
                correlation_id=req.correlation_id,
                topics=tuple(OffsetCommitResponseTopic(name=t, partitions=tuple(ps))
                             for t, ps in by_topic.items())))

        def fail(err: Errors) -> None:
            answer({(t, i): err for t, i, _ in tps})

        err = self._owner_error(req.group_id)
        if err is not Errors.NONE:
            return fail(err)
        g = self.groups.get(req.group_id)
        if g is None:
            if req.generation_id >= 0:
                return fail(Errors.ILLEGAL_GENERATION)
            g = Group(req.group_id, self.partition_of(req.group_id))
            self.groups[req.group_id] = g
        elif req.generation_id < 0 and not req.member_id and g.state == EMPTY:
            pass  # a standalone consumer's commit (no group management)
        elif req.member_id in g.fenced:
            return fail(Errors.FENCED_INSTANCE_ID)
        elif g.state == COMPLETING_REBALANCE:
            return fail(Errors.REBALANCE_IN_PROGRESS)
        elif req.member_id not in g.members:
            return fail(Errors.UNKNOWN_MEMBER_ID)
        elif req.generation_id != g.generation:
            return fail(Errors.ILLEGAL_GENERATION)
        else:
            self._heartbeat(g, g.members[req.member_id])
        if not tps:
            return fail(Errors.NONE)
        now_ms = self.rt.now() // 1000
        values = {(t, i): OffsetValue(offset=p.committed_offset, metadata=p.committed_metadata,
                                      commit_timestamp_ms=now_ms) for t, i, p in tps}
        data = batch([offset_record(g.group_id, t, i, values[(t, i)], now_ms)
                      for (t, i) in sorted(values)])
        for tp in values:
            g.pending_commits[tp] = g.pending_commits.get(tp, 0) + 1
        epoch = self.loaded.get(g.partition)

        def stored(err: Errors) -> None:
            for tp in values:
                left = g.pending_commits.get(tp, 1) - 1
                if left:
                    g.pending_commits[tp] = left
                else:
                    g.pending_commits.pop(tp, None)
            if err is Errors.NONE and self.loaded.get(g.partition) == epoch \
                    and self.groups.get(g.group_id) is g:
                # appends of one partition commit in order, so the last success wins
                for tp, v in values.items():
                    g.offsets[tp] = (v, -1)
            self._wake_offset_waiters(g)
            answer({tp: _store_error(err) for tp in values})

        self.host.append(g.partition, data, self.config.offsets_commit_timeout_us, stored)

    def _wake_offset_waiters(self, g: Group) -> None:
        waiters, g.offset_waiters = g.offset_waiters, []
        for w in waiters:
            if not w():
                g.offset_waiters.append(w)

    def on_offset_fetch(self, src: str, req: OffsetFetchRequest) -> None:
        err = self._owner_error(req.group_id)
        if err is not Errors.NONE:
            self.rt.send(src, OffsetFetchResponse(correlation_id=req.correlation_id,
                                                  error_code=err))
            return
        g = self.groups.get(req.group_id)

        def try_answer() -> bool:
            if g is not None and not self._owns(g):
                self.rt.send(src, OffsetFetchResponse(correlation_id=req.correlation_id,
                                                      error_code=Errors.NOT_COORDINATOR))
                return True
            offsets = g.offsets if g is not None else {}
            if req.topics is None:
                wanted = sorted(offsets)
            else:
                wanted = [(t.name, i) for t in req.topics for i in t.partition_indexes]
            if g is not None and any(tp in g.pending_commits for tp in wanted):
                return False  # a commit of these partitions is in flight: wait for it
            by_topic: dict[str, list[OffsetFetchResponsePartition]] = {}
            for tp in wanted:
                found = offsets.get(tp)
                by_topic.setdefault(tp[0], []).append(OffsetFetchResponsePartition(
                    partition_index=tp[1],
                    committed_offset=found[0].offset if found else -1,
                    metadata=found[0].metadata if found else ""))
            self.rt.send(src, OffsetFetchResponse(
                correlation_id=req.correlation_id,
                topics=tuple(OffsetFetchResponseTopic(name=t, partitions=tuple(ps))
                             for t, ps in by_topic.items())))
            return True

        if not try_answer():
            assert g is not None
            g.offset_waiters.append(try_answer)

    # ------------------------------------------------------------------ helpers

    def _cancel_timers(self, g: Group) -> None:
        for m in g.members.values():
            if m.timer is not None:
                m.timer.cancel()
                m.timer = None
        for t in g.pending_members.values():
            t.cancel()
        if g.join_timer is not None:
            g.join_timer.cancel()
            g.join_timer = None

    def describe(self, group_id: str) -> dict[str, Any] | None:
        """The group as this coordinator holds it (tests, metrics)."""
        g = self.groups.get(group_id)
        if g is None:
            return None
        return {"state": g.state, "generation": g.generation, "protocol": g.protocol,
                "leader": g.leader, "members": sorted(g.members),
                "rebalances": g.rebalances,
                "offsets": {f"{t}/{p}": v[0].offset for (t, p), v in sorted(g.offsets.items())}}


def _sorted_members(g: Group) -> list[Member]:
    return [g.members[k] for k in sorted(g.members)]


def _store_error(err: Errors) -> Errors:
    """GroupMetadataManager's mapping of a failed append to what the client sees."""
    if err in (Errors.UNKNOWN_TOPIC_OR_PARTITION, Errors.NOT_ENOUGH_REPLICAS,
               Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
        return Errors.COORDINATOR_NOT_AVAILABLE
    if err in (Errors.NOT_LEADER_OR_FOLLOWER, Errors.KAFKA_STORAGE_ERROR):
        return Errors.NOT_COORDINATOR
    if err in (Errors.MESSAGE_TOO_LARGE, Errors.RECORD_LIST_TOO_LARGE, Errors.INVALID_FETCH_SIZE):
        return Errors.INVALID_COMMIT_OFFSET_SIZE
    return err


_HANDLERS: dict[type, Callable[[GroupCoordinator, str, Any], None]] = {
    FindCoordinatorRequest: GroupCoordinator.on_find_coordinator,
    JoinGroupRequest: GroupCoordinator.on_join_group,
    SyncGroupRequest: GroupCoordinator.on_sync_group,
    HeartbeatRequest: GroupCoordinator.on_heartbeat,
    LeaveGroupRequest: GroupCoordinator.on_leave_group,
    OffsetCommitRequest: GroupCoordinator.on_offset_commit,
    OffsetFetchRequest: GroupCoordinator.on_offset_fetch,
}

__all__ = [
    "COMPLETING_REBALANCE",
    "DEAD",
    "EMPTY",
    "OFFSETS_TOPIC",
    "PREPARING_REBALANCE",
    "STABLE",
    "CoordinatorHost",
    "GroupCoordinator",
    "GroupCoordinatorConfig",
]
