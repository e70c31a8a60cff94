"""GroupCoordinator alone: a hand-stepped runtime and an in-memory CoordinatorHost whose
appends commit when the test says so. Requests go in as a client would send them; the
answers are asserted one by one."""

from __future__ import annotations

import random
from collections.abc import Callable

from simlog.coordinator import GroupCoordinator, GroupCoordinatorConfig, partition_for
from simlog.coordinator.records import java_string_hash
from simlog.protocol.errors import Errors
from simlog.protocol.group import (
    FindCoordinatorRequest,
    HeartbeatRequest,
    JoinGroupRequest,
    JoinGroupRequestProtocol,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
    OffsetFetchRequest,
    OffsetFetchRequestTopic,
    SyncGroupRequest,
    SyncGroupRequestAssignment,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

S = 1_000_000


class Timer:
    def __init__(self, due: int, fn: Callable[[], None]) -> None:
        self.due, self.fn, self.active = due, fn, True

    def cancel(self) -> None:
        self.active = False


class Rt:
    node_id = "b1"

    def __init__(self) -> None:
        self.t = 0
        self.timers: list[Timer] = []
        self.sent: list[tuple[str, object]] = []
        self.random = random.Random(7)

    def now(self) -> int:
        return self.t

    def set_timer(self, delay: int, fn: Callable[[], None]) -> Timer:
        tm = Timer(self.t + delay, fn)
        self.timers.append(tm)
        return tm

    def send(self, dst: str, msg: object) -> None:
        self.sent.append((dst, msg))

    def disconnect(self, peer: str) -> None:
        pass

    def emit(self, kind: str, **fields: object) -> None:
        pass

    def charge_cpu(self, cost: int) -> None:
        pass

    def advance(self, us: int) -> None:
        end = self.t + us
        while True:
            due = sorted((tm for tm in self.timers if tm.active and tm.due <= end),
                         key=lambda tm: tm.due)
            if not due:
                break
            tm = due[0]
            tm.active = False
            self.t = tm.due
            tm.fn()
        self.t = end


class Host:
    """Leads every partition at `epoch`; appends are held until `commit_all()`."""

    def __init__(self) -> None:
        self.epoch: int | None = 0
        self.log: dict[int, list[bytes]] = {}
        self.pending: list[tuple[int, bytes, Callable[[Errors], None]]] = []
        self.auto = True

    def offsets_partition_count(self) -> int | None:
        return 3

    def partition_leader(self, partition: int) -> tuple[int, str] | None:
        return (1, "b1")

    def leader_epoch(self, partition: int) -> int | None:
        return self.epoch

    def append(self, partition: int, records: bytes, timeout_us: int, on_done) -> None:
        self.log.setdefault(partition, []).append(records)
        if self.auto:
            on_done(Errors.NONE)
        else:
            self.pending.append((partition, records, on_done))

    def commit_all(self, err: Errors = Errors.NONE) -> None:
        pending, self.pending = self.pending, []
        for _p, _r, cb in pending:
            cb(err)

    def read(self, partition: int) -> list[bytes]:
        return list(self.log.get(partition, []))

    def create_offsets_topic(self, partitions, replication_factor, configs) -> None:
        pass


class Setup:
    def __init__(self, **config) -> None:
        self.rt = Rt()
        self.host = Host()
        cfg = GroupCoordinatorConfig.from_kafka({"group.initial.rebalance.delay.ms": 0, **config})
        self.gc = GroupCoordinator(self.rt, cfg, self.host)
        self.cid = 0

    def req(self, src: str, cls, **kw):
        self.cid += 1
        assert self.gc.on_message(src, cls(correlation_id=self.cid, **kw))
        return self.cid

    def answer(self, src: str, cid: int):
        found = [m for d, m in self.rt.sent if d == src and m.correlation_id == cid]
        return found[-1] if found else None

    def join(self, src: str, member: str = "", instance: str | None = None, topics=("t",),
             owned=(), group: str = "g"):
        return self.req(src, JoinGroupRequest, group_id=group, session_timeout_ms=10_000,
                        rebalance_timeout_ms=20_000, member_id=member,
                        group_instance_id=instance, protocols=(JoinGroupRequestProtocol(
                            name="range", metadata=encode_subscription(topics, owned)),))

    def join_dynamic(self, src: str) -> str:
        r = self.answer(src, self.join(src))
        assert r.error_code is Errors.MEMBER_ID_REQUIRED and r.member_id.startswith(src)
        return r.member_id

    def sync(self, src: str, member: str, gen: int, assignments=None, instance=None):
        return self.req(src, SyncGroupRequest, group_id="g", generation_id=gen,
                        member_id=member, group_instance_id=instance,
                        assignments=tuple(SyncGroupRequestAssignment(
                            member_id=m, assignment=encode_assignment(a))
                            for m, a in sorted((assignments or {}).items())))

    def commit(self, src: str, member: str, gen: int, offset: int, p: int = 0):
        return self.req(src, OffsetCommitRequest, group_id="g", generation_id=gen,
                        member_id=member, topics=(OffsetCommitRequestTopic(
                            name="t", partitions=(OffsetCommitRequestPartition(
                                partition_index=p, committed_offset=offset),)),))

    def fetch(self, src: str, p: int = 0):
        return self.req(src, OffsetFetchRequest, group_id="g", topics=(
            OffsetFetchRequestTopic(name="t", partition_indexes=(p,)),))

    def stable_pair(self):
        """Two dynamic members in generation 1, Stable; returns (m1, m2)."""
        m1 = self.join_dynamic("c1")
        m2 = self.join_dynamic("c2")
        j1, j2 = self.join("c1", m1), self.join("c2", m2)
        r1, r2 = self.answer("c1", j1), self.answer("c2", j2)
        assert r1.error_code is Errors.NONE and r2.error_code is Errors.NONE
        assert r1.generation_id == r2.generation_id == 1
        leader = r1.leader
        assert leader in (m1, m2)
        assert len((r1 if leader == m1 else r2).members) == 2
        s1 = self.sync("c1", m1, 1, {m1: [("t", 0)], m2: [("t", 1)]} if leader == m1 else None)
        s2 = self.sync("c2", m2, 1, {m1: [("t", 0)], m2: [("t", 1)]} if leader == m2 else None)
        assert decode_assignment(self.answer("c1", s1).assignment) == [("t", 0)]
        assert decode_assignment(self.answer("c2", s2).assignment) == [("t", 1)]
        assert self.gc.describe("g")["state"] == "Stable"
        return m1, m2


def test_java_hash_and_partition_for_match_kafka():
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(1 << 31)  # Integer.MIN_VALUE
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) = 0
    assert partition_for("hello", 50) == 99162322 % 50


def test_consumer_protocol_round_trips():
    sub = encode_subscription(["b", "a"], [("a", 1), ("a", 0)], 7)
    assert decode_subscription(sub) == (("a", "b"), (("a", 0), ("a", 1)), 7)
    assert decode_assignment(encode_assignment([("x", 2), ("x", 1)])) == [("x", 1), ("x", 2)]


def test_find_coordinator_names_the_leader_of_the_groups_partition():
    s = Setup()
    cid = s.req("c1", FindCoordinatorRequest, key="g")
    r = s.answer("c1", cid)
    assert r.error_code is Errors.NONE and (r.node_id, r.host) == (1, "b1")


def test_join_sync_heartbeat_and_fencing_errors():
    s = Setup()
    m1, m2 = s.stable_pair()
    hb = s.answer("c1", s.req("c1", HeartbeatRequest, group_id="g", generation_id=1,
                              member_id=m1))
    assert hb.error_code is Errors.NONE
    bad_gen = s.req("c1", HeartbeatRequest, group_id="g", generation_id=0, member_id=m1)
    assert s.answer("c1", bad_gen).error_code is Errors.ILLEGAL_GENERATION
    unknown = s.req("c9", HeartbeatRequest, group_id="g", generation_id=1, member_id="nobody")
    assert s.answer("c9", unknown).error_code is Errors.UNKNOWN_MEMBER_ID
    # a third member: the group prepares a rebalance; heartbeats say so
    s.join_dynamic("c3")
    m3 = s.rt.sent[-1][1].member_id
    s.join("c3", m3)
    hb = s.req("c1", HeartbeatRequest, group_id="g", generation_id=1, member_id=m1)
    assert s.answer("c1", hb).error_code is Errors.REBALANCE_IN_PROGRESS
    # commits of the current generation are still taken while preparing (onJoinPrepare)
    assert s.answer("c1", s.commit("c1", m1, 1, 5)).topics[0].partitions[0].error_code \
        is Errors.NONE
    j1, j2 = s.join("c1", m1), s.join("c2", m2)
    assert s.answer("c1", j1).generation_id == 2 and s.answer("c2", j2).generation_id == 2
    # CompletingRebalance: commits are refused until the assignment is in
    r = s.answer("c1", s.commit("c1", m1, 2, 6))
    assert r.topics[0].partitions[0].error_code is Errors.REBALANCE_IN_PROGRESS
    # a stale generation's sync is refused
    assert s.answer("c2", s.sync("c2", m2, 1)).error_code is Errors.ILLEGAL_GENERATION


def test_session_expiry_removes_a_silent_member_and_rebalances():
    s = Setup()
    m1, m2 = s.stable_pair()
    for _ in range(4):  # m1 heartbeats, m2 is silent
        s.rt.advance(3 * S)
        s.req("c1", HeartbeatRequest, group_id="g", generation_id=1, member_id=m1)
    desc = s.gc.describe("g")
    assert desc["members"] == [m1] and desc["state"] == "PreparingRebalance"
    r = s.answer("c1", s.join("c1", m1))
    assert r.error_code is Errors.NONE and r.generation_id == 2 and r.leader == m1
    # between join and sync every commit waits for the assignment (Kafka's order)
    assert s.answer("c2", s.commit("c2", m2, 1, 9)).topics[0].partitions[0].error_code \
        is Errors.REBALANCE_IN_PROGRESS
    s.sync("c1", m1, 2, {m1: [("t", 0), ("t", 1)]})
    # once Stable, the expired member's commit is a zombie's: fenced
    assert s.answer("c2", s.commit("c2", m2, 1, 9)).topics[0].partitions[0].error_code \
        is Errors.UNKNOWN_MEMBER_ID


def test_leave_group_rebalances_at_once():
    s = Setup()
    m1, m2 = s.stable_pair()
    assert s.answer("c2", s.req("c2", LeaveGroupRequest, group_id="g",
                                member_id=m2)).error_code is Errors.NONE
    assert s.gc.describe("g")["members"] == [m1]
    assert s.answer("c1", s.join("c1", m1)).generation_id == 2


def test_static_member_rejoin_keeps_generation_and_fences_the_old_id():
    s = Setup()
    r = s.answer("c1", s.join("c1", instance="i1"))
    assert r.error_code is Errors.NONE  # static members get an id at once
    old = r.member_id
    s.answer("c1", s.sync("c1", old, 1, {old: [("t", 0), ("t", 1)]}, instance="i1"))
    assert s.gc.describe("g")["state"] == "Stable"
    # restart: a new process with the same instance id and no member id
    r2 = s.answer("c1b", s.join("c1b", instance="i1"))
    assert r2.error_code is Errors.NONE and r2.generation_id == 1 and r2.member_id != old
    sync = s.answer("c1b", s.sync("c1b", r2.member_id, 1, instance="i1"))
    assert decode_assignment(sync.assignment) == [("t", 0), ("t", 1)]
    assert s.gc.describe("g")["rebalances"] == 1  # only the first join
    hb = s.req("c1", HeartbeatRequest, group_id="g", generation_id=1, member_id=old)
    assert s.answer("c1", hb).error_code is Errors.FENCED_INSTANCE_ID
    assert s.answer("c1", s.commit("c1", old, 1, 3)).topics[0].partitions[0].error_code \
        is Errors.FENCED_INSTANCE_ID


def test_offset_fetch_waits_for_a_commit_in_flight_and_standalone_commits():
    s = Setup()
    m1, _m2 = s.stable_pair()
    s.host.auto = False
    c = s.commit("c1", m1, 1, 42)
    assert s.answer("c1", c) is None  # not acknowledged before the HW passes it
    f = s.fetch("c2")
    assert s.answer("c2", f) is None  # a new owner must not start below it
    s.host.commit_all()
    assert s.answer("c1", c).topics[0].partitions[0].error_code is Errors.NONE
    got = s.answer("c2", f)
    assert got.topics[0].partitions[0].committed_offset == 42
    # a failed append is not acknowledged and not visible
    c2 = s.commit("c1", m1, 1, 50)
    s.host.commit_all(Errors.NOT_LEADER_OR_FOLLOWER)
    assert s.answer("c1", c2).topics[0].partitions[0].error_code is Errors.NOT_COORDINATOR
    assert s.answer("c2", s.fetch("c2")).topics[0].partitions[0].committed_offset == 42
    # a group without members takes generation -1 commits (no group management)
    s.host.auto = True
    s.cid += 1
    s.gc.on_message("x", OffsetCommitRequest(
        correlation_id=s.cid, group_id="solo", topics=(OffsetCommitRequestTopic(
            name="t", partitions=(OffsetCommitRequestPartition(
                partition_index=0, committed_offset=7),)),)))
    assert s.answer("x", s.cid).topics[0].partitions[0].error_code is Errors.NONE


def test_a_new_leader_loads_groups_and_offsets_and_the_old_one_stops_answering():
    s = Setup()
    m1, m2 = s.stable_pair()
    s.commit("c1", m1, 1, 11)
    records = dict(s.host.log)
    # this broker loses the partition
    s.host.epoch = None
    hb = s.req("c1", HeartbeatRequest, group_id="g", generation_id=1, member_id=m1)
    assert s.answer("c1", hb).error_code is Errors.NOT_COORDINATOR
    assert s.gc.describe("g") is None
    # another broker (a fresh coordinator over the same log) becomes leader at epoch 1
    s2 = Setup()
    s2.host.log = records
    s2.host.epoch = 1
    hb = s2.req("c1", HeartbeatRequest, group_id="g", generation_id=1, member_id=m1)
    assert s2.answer("c1", hb).error_code is Errors.NONE
    desc = s2.gc.describe("g")
    assert desc["generation"] == 1 and desc["members"] == sorted([m1, m2])
    assert desc["offsets"] == {"t/0": 11}
    sync = s2.answer("c2", s2.sync("c2", m2, 1))
    assert decode_assignment(sync.assignment) == [("t", 1)]


def test_member_id_required_pending_member_expires():
    s = Setup()
    s.join_dynamic("c1")
    s.rt.advance(11 * S)
    assert s.gc.describe("g")["members"] == []
    assert partition_for("g", 3) in (0, 1, 2)


def test_offset_fetch_waiting_on_a_commit_answers_not_coordinator_when_unloaded():
    s = Setup()
    m1, _m2 = s.stable_pair()
    s.host.auto = False
    s.commit("c1", m1, 1, 42)
    f = s.fetch("c2")
    assert s.answer("c2", f) is None
    s.host.epoch = 5  # leadership moved away and back: the old state is dropped
    s.req("c1", HeartbeatRequest, group_id="g", generation_id=1, member_id=m1)
    assert s.answer("c2", f).error_code is Errors.NOT_COORDINATOR
