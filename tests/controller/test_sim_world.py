"""The controller quorum on the real simulation World (simlog.sim): dedicated and
combined mode, broker failover, quorum partitions, determinism."""

from __future__ import annotations

from ctl_broker import broker_factory

from simlog.controller import ControllerConfig, controller_factory
from simlog.controller.records import NO_LEADER
from simlog.protocol.controller import CreatableTopic, CreateTopicsRequest
from simlog.sim import World

S = 1_000_000
CONTROLLERS = ["c1", "c2", "c3"]
BROKERS = {"b1": 1, "b2": 2, "b3": 3}


def emits(w: World, kind: str) -> list[dict]:
    out = []
    for e in w.events:
        if e["kind"] == "emit" and e["fields"][0] == kind:
            out.append({"time_us": e["time_us"], "node": e["node"], **dict(e["fields"][1])})
    return out


def world(seed=1, settings=None) -> tuple[World, ControllerConfig]:
    config = ControllerConfig.from_kafka(CONTROLLERS, settings or {})
    w = World(seed=seed, record_events=True)
    for c in CONTROLLERS:
        w.add_node(c, controller_factory(config))
    for n, b in BROKERS.items():
        w.add_node(n, broker_factory(b, config))
    return w, config


def active(w: World) -> list[str]:
    return [c for c in CONTROLLERS if w.node(c) is not None and w.node(c).is_active]


def run_until(w: World, pred, limit_us: int, step_us: int = 50_000) -> bool:
    end = w.now_us + limit_us
    while w.now_us < end:
        if pred():
            return True
        w.run_for(step_us)
    return pred()


def ready(w: World) -> bool:
    act = active(w)
    return len(act) == 1 and w.node(act[0]).image.eligible_broker_ids() == [1, 2, 3]


def create(w: World, name: str, partitions: int, rf: int) -> None:
    ctrl = active(w)[0]
    w.call_in("b1", lambda node: node.rt.send(ctrl, CreateTopicsRequest(topics=(
        CreatableTopic(name=name, num_partitions=partitions, replication_factor=rf),))))
    w.run_for(S)


def test_broker_crash_moves_leadership_within_session_timeout():
    w, config = world()
    assert run_until(w, lambda: ready(w), 20 * S)
    create(w, "orders", 3, 3)
    img = w.node("b2").metadata.image
    led = [p.partition for p in img.partitions_led_by(1)]
    assert led == [0]
    crashed_at = w.now_us
    w.crash("b1")
    assert run_until(w, lambda: w.node("b2").metadata.image.partition("orders", 0).leader
                     not in (1, NO_LEADER), 20 * S)
    moved_at = w.now_us
    assert moved_at - crashed_at <= config.broker_session_timeout_us + S
    p = w.node("b2").metadata.image.partition("orders", 0)
    assert 1 not in p.isr and p.leader_epoch == 1
    assert [e["broker"] for e in emits(w, "broker_fenced")] == [1]


def test_quorum_partition_never_two_active_controllers_per_epoch():
    w, _ = world(seed=2)
    assert run_until(w, lambda: ready(w), 20 * S)
    first = active(w)[0]
    others = [c for c in CONTROLLERS if c != first]
    # the active controller and one broker on the minority side
    w.partition([[first, "b1"], [*others, "b2", "b3"]])
    w.run_for(10 * S)
    assert not w.node(first).is_active
    assert len(active(w)) == 1 and active(w)[0] in others
    w.heal()
    w.run_for(10 * S)
    by_epoch: dict[int, set[str]] = {}
    for e in emits(w, "controller_active"):
        by_epoch.setdefault(e["epoch"], set()).add(e["node"])
    assert len(by_epoch) >= 2 and all(len(v) == 1 for v in by_epoch.values())
    assert len(active(w)) == 1
    assert w.node("b1").metadata.image == w.node(active(w)[0]).image


def test_isolated_controller_heals_without_an_election():
    w, _ = world(seed=3)
    assert run_until(w, lambda: ready(w), 20 * S)
    leader = active(w)[0]
    epoch = w.node(leader).metadata.raft.epoch
    follower = next(c for c in CONTROLLERS if c != leader)
    w.isolate([follower])
    w.run_for(20 * S)
    w.heal()
    w.run_for(5 * S)
    assert active(w) == [leader]
    assert {w.node(c).metadata.raft.epoch for c in CONTROLLERS} == {epoch}
    assert len(emits(w, "raft_leader_elected")) == 1


def test_combined_mode_on_the_world():
    config = ControllerConfig.from_kafka(list(BROKERS), {})
    w = World(seed=4, record_events=True)
    for n, b in BROKERS.items():
        w.add_node(n, broker_factory(b, config))

    def ready_combined():
        act = [n for n in BROKERS if w.node(n) is not None and w.node(n).controller.active]
        return len(act) == 1 and \
            w.node(act[0]).metadata.image.eligible_broker_ids() == [1, 2, 3]

    assert run_until(w, ready_combined, 20 * S)
    leader = next(n for n in BROKERS if w.node(n).controller.active)
    w.crash(leader)
    assert run_until(w, lambda: any(w.node(n) is not None and w.node(n).controller.active
                                    for n in BROKERS), 20 * S)
    w.restart(leader)
    assert run_until(w, ready_combined, 30 * S)


def test_same_seed_same_trace():
    hashes = []
    for _ in range(2):
        w, _ = world(seed=5)
        w.run_for(8 * S)
        w.crash("c1")
        w.run_for(8 * S)
        hashes.append(w.trace_hash)
    assert hashes[0] == hashes[1]
