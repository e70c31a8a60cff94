"""Property on the real simulation World: random partitions, crashes (with power loss),
pauses, clock skew and lossy, duplicating, reordering links never yield two active
controllers or two Raft leaders in one epoch, and after healing every node converges on
the same metadata image with every broker unfenced."""

from __future__ import annotations

import pytest
from ctl_broker import broker_factory
from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.controller import ControllerConfig, controller_factory
from simlog.controller.records import NO_LEADER
from simlog.protocol.controller import CreatableTopic, CreateTopicsRequest
from simlog.sim import World

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
    st.tuples(st.just("pause"), node_ids, st.integers(100, 8_000)),
    st.tuples(st.just("skew"), node_ids, st.integers(-5_000, 5_000),
              st.sampled_from([0.0, 0.01, -0.01])),
    st.tuples(st.just("lossy"), node_ids, node_ids, st.floats(0.0, 0.5),
              st.floats(0.0, 0.2), st.floats(0.0, 0.3)),
    st.tuples(st.just("create"), st.integers(1, 3)),
    st.tuples(st.just("run"), st.integers(100, 10_000)),
)


def emitted(w: World, kind: str) -> list[dict]:
    return [{"node": e["node"], **dict(e["fields"][1])} for e in w.events
            if e["kind"] == "emit" and e["fields"][0] == kind]


def run_schedule(schedule, seed: int) -> None:
    config = ControllerConfig.from_kafka(CONTROLLERS, {
        "simlog.metadata.snapshot.interval.records": 25,
        "leader.imbalance.check.interval.seconds": 15})
    w = World(seed=seed, record_events=True)
    for c in CONTROLLERS:
        w.add_node(c, controller_factory(config))
    for n, b in BROKERS.items():
        w.add_node(n, broker_factory(b, config))
    w.run_for(5 * S)
    topics = 0
    for op in schedule:
        kind = op[0]
        if kind == "partition":
            w.heal()
            group = sorted(op[1])
            rest = [n for n in NODES if n not in group]
            if rest:
                w.partition([group, rest])
        elif kind == "isolate":
            w.isolate([op[1]])
        elif kind == "heal":
            w.heal()
        elif kind == "crash":
            if w.alive(op[1]):
                w.crash(op[1], lose_unsynced=op[2])
        elif kind == "restart":
            if not w.alive(op[1]):
                w.restart(op[1])
        elif kind == "pause":
            if w.alive(op[1]):
                w.pause(op[1], for_us=op[2] * 1_000)
        elif kind == "skew":
            w.set_clock(op[1], offset_us=op[2] * 1_000, drift=op[3])
        elif kind == "lossy":
            if op[1] != op[2]:
                w.degrade_link(op[1], op[2], loss=op[3], duplicate=op[4], reorder=op[5],
                               for_us=10 * S)
        elif kind == "create":
            for c in CONTROLLERS:
                node = w.node(c)
                if node is not None and node.is_active:
                    topics += 1
                    name = f"t{topics}"
                    w.call_in(c, lambda n, name=name, k=op[1]: n.rt.send(
                        n.rt.node_id, CreateTopicsRequest(topics=(CreatableTopic(
                            name=name, num_partitions=k, replication_factor=2),))))
        elif kind == "run":
            w.run_for(op[1] * 1_000)
    for kind in ("controller_active", "raft_leader_elected"):
        by_epoch: dict[int, set[str]] = {}
        for e in emitted(w, kind):
            by_epoch.setdefault(e["epoch"], set()).add(e["node"])
        assert all(len(v) == 1 for v in by_epoch.values()), (kind, by_epoch)
    # settle: heal everything, restart the dead, let paused nodes resume
    w.heal()
    for a in NODES:
        for b in NODES:
            if a != b:
                w.restore_link(a, b)
    w.run_for(10 * S)
    for n in NODES:
        if not w.alive(n):
            w.restart(n)
    w.run_for(25 * S)
    act = [c for c in CONTROLLERS if w.node(c).is_active]
    assert len(act) == 1, act
    reference = w.node(act[0]).image
    for n in NODES:
        assert w.node(n).metadata.image == reference, n
    assert reference.eligible_broker_ids() == [1, 2, 3]
    for p in reference.partitions():
        assert p.leader == NO_LEADER or p.leader in p.isr


@settings(max_examples=6)
@given(schedule=st.lists(ops, min_size=3, max_size=12), seed=st.integers(0, 1_000))
def test_controller_quorum_on_the_world_under_faults(schedule, seed):
    run_schedule(schedule, seed)


@pytest.mark.slow
@settings(max_examples=100)
@given(schedule=st.lists(ops, min_size=5, max_size=30), seed=st.integers(0, 100_000))
def test_controller_quorum_on_the_world_under_faults_long(schedule, seed):
    run_schedule(schedule, seed)
