"""Property: under random partitions, crashes (with and without power loss) and
restarts, the quorum keeps Raft's safety: at most one leader per epoch, and a committed
entry is never lost or changed (every replica's committed sequence agrees, and after
healing every replica ends with every entry ever committed)."""

from __future__ import annotations

import pytest
from ctl_harness import Cluster
from ctl_raftnode import RaftNode, leaders
from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.controller.config import QuorumConfig

VOTERS = ["c1", "c2", "c3", "c4", "c5"]
S = 1_000_000

node_ids = st.sampled_from(VOTERS)
ops = st.one_of(
    st.tuples(st.just("partition"), st.sets(node_ids, min_size=1, max_size=4)),
    st.tuples(st.just("isolate"), node_ids),
    st.tuples(st.just("heal")),
    st.tuples(st.just("crash"), node_ids, st.booleans()),
    st.tuples(st.just("restart"), node_ids),
    st.tuples(st.just("crash_leader"), st.booleans()),
    st.tuples(st.just("isolate_leader")),
    st.tuples(st.just("propose"), st.integers(1, 4)),
    st.tuples(st.just("run"), st.integers(50, 4_000)),
)


class Checker:
    """Global view of commits: offset -> (epoch, record) as first seen committed."""

    def __init__(self) -> None:
        self.committed: dict[int, tuple[int, object]] = {}

    def see(self, node: str, entries) -> None:
        for e in entries:
            seen = self.committed.setdefault(e.offset, (e.epoch, e.record))
            assert seen == (e.epoch, e.record), f"{node}: offset {e.offset} changed"


def run_schedule(schedule, seed: int, snapshot_interval: int, jitter_us: int = 0) -> None:
    checker = Checker()
    config = QuorumConfig(voters=tuple(VOTERS), snapshot_interval_records=snapshot_interval)

    def factory(rt):
        node = RaftNode(rt, config)
        inner = node.listener.handle_commit

        def handle_commit(entries):
            checker.see(rt.node_id, entries)
            inner(entries)

        node.listener.handle_commit = handle_commit
        return node

    c = Cluster(seed=seed, jitter_us=jitter_us)
    for v in VOTERS:
        c.add(v, factory)
    counter = 0
    for op in schedule:
        kind = op[0]
        if kind == "partition":
            c.heal()
            group = sorted(op[1])
            c.partition([group, [v for v in VOTERS if v not in group]])
        elif kind == "isolate":
            c.isolate(op[1])
        elif kind == "heal":
            c.heal()
        elif kind == "crash":
            c.crash(op[1], lose_unsynced=op[2])
        elif kind == "restart":
            c.restart(op[1])
        elif kind == "crash_leader":
            for leader in leaders(c):
                c.crash(leader, lose_unsynced=op[1])
        elif kind == "isolate_leader":
            for leader in leaders(c):
                c.isolate(leader)
        elif kind == "propose":
            for leader in leaders(c):
                for _ in range(op[1]):
                    counter += 1
                    c.node(leader).propose(f"t{counter}")
        elif kind == "run":
            # keep a trickle of proposals going, so faults land mid-replication
            for _ in range(op[1] // 50):
                c.run_for(50_000)
                for leader in leaders(c):
                    counter += 1
                    c.node(leader).propose(f"t{counter}")
        # snapshots are taken by the state machine; emulate it on every node
        if snapshot_interval:
            for node in list(c.nodes.values()):
                r = node.raft
                if r.high_watermark - r.log.start_offset >= snapshot_interval:
                    r.create_snapshot(r.high_watermark, [])
    # one leader per epoch, across the whole run
    by_epoch: dict[int, set[str]] = {}
    for e in c.events_of("raft_leader_elected"):
        by_epoch.setdefault(e["epoch"], set()).add(e["node"])
    assert all(len(v) == 1 for v in by_epoch.values()), by_epoch
    # heal, restart everyone, settle: all committed entries are still there
    c.heal()
    for v in VOTERS:
        c.restart(v)
    assert c.run_until_true(lambda: len(leaders(c)) == 1, 30 * S)
    leader = c.node(leaders(c)[0])
    leader.noop()
    c.run_for(5 * S)
    top = max(checker.committed, default=-1)
    for v in VOTERS:
        r = c.node(v).raft
        assert r.high_watermark > top, (v, r.high_watermark, top)
        for offset in range(r.log.start_offset, min(r.log.end_offset, top + 1)):
            e = r.log.entry(offset)
            assert (e.epoch, e.record) == checker.committed[offset], (v, offset)


@settings()
@given(schedule=st.lists(ops, min_size=5, max_size=30), seed=st.integers(0, 1_000))
def test_raft_safety_under_faults(schedule, seed):
    run_schedule(schedule, seed, snapshot_interval=0, jitter_us=30_000)


@settings(max_examples=15)
@given(schedule=st.lists(ops, min_size=5, max_size=30), seed=st.integers(0, 1_000))
def test_raft_safety_with_snapshots(schedule, seed):
    run_schedule(schedule, seed, snapshot_interval=5)


@pytest.mark.slow
@settings(max_examples=300)
@given(schedule=st.lists(ops, min_size=10, max_size=80), seed=st.integers(0, 100_000))
def test_raft_safety_under_faults_long(schedule, seed):
    run_schedule(schedule, seed, snapshot_interval=7)
