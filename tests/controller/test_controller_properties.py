"""Property: random partitions, crashes and restarts of controllers and brokers never
yield two active controllers (or two Raft leaders) in one epoch, and every replica's
metadata image satisfies the partition invariants (leader in ISR or none, epochs that
only grow) along the committed log."""

from __future__ import annotations

import pytest
from ctl_broker import broker_factory
from ctl_harness import Cluster
from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.controller.config import ControllerConfig
from simlog.controller.node import controller_factory
from simlog.controller.records import NO_LEADER
from simlog.protocol.controller import CreatableTopic, CreateTopicsRequest

CONTROLLERS = ["c1", "c2", "c3"]
BROKERS = {"b1": 1, "b2": 2, "b3": 3}
NODES = CONTROLLERS + list(BROKERS)
S = 1_000_000

node_ids = st.sampled_from(NODES)
ops = st.one_of(
    st.tuples(st.just("partition"), st.sets(node_ids, min_size=1, max_size=5)),
    st.tuples(st.just("isolate"), node_ids),
    st.tuples(st.just("heal")),
    st.tuples(st.just("crash"), node_ids, st.booleans()),
    st.tuples(st.just("restart"), node_ids),
    st.tuples(st.just("create"), st.integers(1, 3)),
    st.tuples(st.just("run"), st.integers(100, 12_000)),
)


def check_images(c: Cluster) -> None:
    for n in sorted(c.nodes):
        img = c.node(n).metadata.image
        for p in img.partitions():
            assert p.leader == NO_LEADER or p.leader in p.isr, (n, p)
            assert set(p.isr) <= set(p.replicas), (n, p)
            assert p.isr, (n, p)


def run_schedule(schedule, seed: int, unclean: bool) -> None:
    config = ControllerConfig.from_kafka(CONTROLLERS, {
        "unclean.leader.election.enable": str(unclean).lower(),
        "simlog.metadata.snapshot.interval.records": 20,
        "leader.imbalance.check.interval.seconds": 20})
    c = Cluster(seed=seed, jitter_us=20_000)
    for cid in CONTROLLERS:
        c.add(cid, controller_factory(config))
    for node_id, bid in BROKERS.items():
        c.add(node_id, broker_factory(bid, config))
    c.run_for(5 * S)
    topics = 0
    for op in schedule:
        kind = op[0]
        if kind == "partition":
            c.heal()
            group = sorted(op[1])
            c.partition([group, [v for v in NODES if v not in group]])
        elif kind == "isolate":
            c.isolate(op[1])
        elif kind == "heal":
            c.heal()
        elif kind == "crash":
            c.crash(op[1], lose_unsynced=op[2])
        elif kind == "restart":
            c.restart(op[1])
        elif kind == "create":
            for n in CONTROLLERS:
                node = c.node(n)
                if node is not None and node.is_active:
                    topics += 1
                    node.rt.send(n, CreateTopicsRequest(topics=(CreatableTopic(
                        name=f"t{topics}", num_partitions=op[1], replication_factor=2),)))
        elif kind == "run":
            c.run_for(op[1] * 1_000)
        check_images(c)
    active: dict[int, set[str]] = {}
    for e in c.events_of("controller_active"):
        active.setdefault(e["epoch"], set()).add(e["node"])
    assert all(len(v) == 1 for v in active.values()), active
    elected: dict[int, set[str]] = {}
    for e in c.events_of("raft_leader_elected"):
        elected.setdefault(e["epoch"], set()).add(e["node"])
    assert all(len(v) == 1 for v in elected.values()), elected
    # partition epochs only grow along the log; leader epoch grows iff the leader changes
    last: dict[tuple[str, int], dict] = {}
    for e in sorted(c.events_of("partition_change"), key=lambda e: e["offset"]):
        key = (e["topic"], e["partition"])
        prev = last.get(key)
        if prev is not None and prev["offset"] != e["offset"]:
            assert e["partition_epoch"] > prev["partition_epoch"], (prev, e)
            assert e["leader_epoch"] >= prev["leader_epoch"], (prev, e)
            if e["leader"] != prev["leader"]:
                assert e["leader_epoch"] > prev["leader_epoch"], (prev, e)
        last[key] = e
    # heal, restart, settle: one active controller, every broker converges on its image
    c.heal()
    for n in NODES:
        c.restart(n)
    assert c.run_until_true(lambda: sum(1 for n in CONTROLLERS if c.node(n).is_active) == 1,
                            30 * S)
    c.run_for(15 * S)
    leader = next(n for n in CONTROLLERS if c.node(n).is_active)
    reference = c.node(leader).metadata.image
    for n in NODES:
        assert c.node(n).metadata.image == reference, n
    assert reference.eligible_broker_ids() == [1, 2, 3]
    check_images(c)


@settings(max_examples=12)
@given(schedule=st.lists(ops, min_size=3, max_size=15), seed=st.integers(0, 1_000),
       unclean=st.booleans())
def test_controller_quorum_safety_under_faults(schedule, seed, unclean):
    run_schedule(schedule, seed, unclean)


@pytest.mark.slow
@settings(max_examples=200)
@given(schedule=st.lists(ops, min_size=5, max_size=40), seed=st.integers(0, 100_000),
       unclean=st.booleans())
def test_controller_quorum_safety_under_faults_long(schedule, seed, unclean):
    run_schedule(schedule, seed, unclean)
