"""The conformance program in the simulation is a pure function of the seed.

The real world cannot promise this; the sim must: same seed and same operations give
the same trace hash (and the same logs), another seed gives another trace.
"""

from __future__ import annotations


def run(make_sim_cluster, seed: int) -> tuple[str, list[bytes]]:
    c = make_sim_cluster(seed=seed)
    c.start()
    for i in range(10):
        c.write(f"d{i}".encode())
    c.sleep(0.2)
    c.crash("n2", power_loss=True)
    c.pause("n3")
    c.write(b"lonely")
    c.sleep(0.5)
    c.resume("n3")
    c.restart("n2")
    c.sleep(0.5)
    return c.world.trace_hash, c.log("n2")


def test_same_seed_same_trace_other_seed_other_trace(make_sim_cluster) -> None:
    a, b = run(make_sim_cluster, 5), run(make_sim_cluster, 5)
    other = run(make_sim_cluster, 6)
    assert a == b
    assert a[1] == [f"d{i}".encode() for i in range(10)] + [b"lonely"]
    assert other[0] != a[0]
