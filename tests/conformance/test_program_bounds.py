"""The replicated-log program's queues are bounded (sim only: a property of the code)."""

from __future__ import annotations

import pytest

from simlog.examples.replicated_log import RLConfig, make_factory

sim = pytest.importorskip("simlog.sim")


def test_leader_refuses_writes_beyond_max_waiting() -> None:
    w = sim.World(seed=3)
    factory = make_factory(RLConfig(max_waiting=2))
    for node in ("n1", "n2", "n3", "c1"):
        w.add_node(node, factory)
    w.run_for(50_000)
    w.pause("n2")
    w.pause("n3")  # no majority: nothing is answered, the leader holds every write
    for i in range(5):
        w.call_in("c1", lambda c, i=i: c.write(b"%d" % i))
    w.run_for(200_000)
    leader = w.node("n1")
    assert len(leader.waiting) == 2 and leader.entries == [b"0", b"1"]
    w.resume("n2")
    w.run_for(200_000)
    assert sorted(w.node("c1").acked.values()) == [0, 1]
    assert leader.waiting == []
