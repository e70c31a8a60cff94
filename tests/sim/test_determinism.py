"""One seed, one trace: across interpreters (PYTHONHASHSEED), across repeated runs,
under random fault schedules; and random faults never break per-link FIFO."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from simlog.sim import LatencyDist, NetworkParams, World
from simlog.sim.example import counter_factory, scripted_run

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "from simlog.sim.example import scripted_run; print(scripted_run({seed}).trace_hash)"


def hashes_in_fresh_interpreters(seed: int, hashseeds: list[str]) -> list[str]:
    """Run the scripted story in one fresh interpreter per PYTHONHASHSEED, in parallel."""
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT.format(seed=seed)],
                              env=dict(os.environ, PYTHONHASHSEED=h), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for h in hashseeds]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    return outs


def test_same_seed_same_hash_across_interpreters_and_hash_seeds() -> None:
    a, b = hashes_in_fresh_interpreters(7, ["1", "4242"])
    assert a == b == scripted_run(7).trace_hash
    assert len(a) == 32


def test_different_seed_different_hash() -> None:
    assert scripted_run(7).trace_hash != scripted_run(8).trace_hash


def test_trace_hash_does_not_depend_on_how_the_run_is_sliced() -> None:
    whole = scripted_run(3)
    w = World(3)  # the same story as scripted_run, advanced in many small steps
    ids = ["n1", "n2", "n3"]
    for n in ids:
        w.add_node(n, counter_factory(ids, interval_us=50_000, fsync=True))
    w.set_clock("n3", drift=0.01)
    w.call_later(500_000, lambda: w.partition([["n1"], ["n2", "n3"]]))
    w.call_later(1_200_000, w.heal)
    w.call_later(1_500_000, lambda: w.crash("n2", lose_unsynced=True))
    w.call_later(2_000_000, lambda: w.restart("n2"))
    for _ in range(300):
        w.run_for(10_000)
        _ = w.trace_hash  # reading the digest mid-run must not change it
    assert w.trace_hash == whole.trace_hash


FAULTS = st.sampled_from(["partition", "isolate", "cut", "heal", "crash", "power", "restart",
                          "pause", "resume", "clock", "slow", "full", "degrade"])
NODES = ["n1", "n2", "n3"]


def run_with_faults(seed: int, schedule: list[tuple[int, str, int]]) -> World:
    w = World(seed, network=NetworkParams(latency=LatencyDist(300, 8_000)))
    for n in NODES:
        w.add_node(n, counter_factory(NODES, interval_us=7_000, fsync=True))
    for at_us, kind, i in schedule:
        node, other = NODES[i % 3], NODES[(i + 1) % 3]

        def fault(kind=kind, node=node, other=other, i=i) -> None:
            if kind == "partition":
                w.partition([[node], [other]])
            elif kind == "isolate":
                w.isolate([node])
            elif kind == "cut":
                w.cut([node], [other])
            elif kind == "heal":
                w.heal()
            elif kind in ("crash", "power"):
                if w.alive(node):
                    w.crash(node, lose_unsynced=kind == "power")
            elif kind == "restart":
                if not w.alive(node):
                    w.restart(node)
            elif kind == "pause":
                w.pause(node)
            elif kind == "resume":
                w.resume(node)
            elif kind == "clock":
                w.set_clock(node, offset_us=i * 1_000, drift=i / 1000)
            elif kind == "slow":
                w.slow_disk(node, 1 + i, for_us=50_000)
            elif kind == "full":
                w.disk_full(node, for_us=30_000)
            elif kind == "degrade":
                w.degrade_link(node, other, latency=LatencyDist(i * 100, i * 1_000),
                               for_us=40_000)
        w.call_later(at_us, fault)
    w.run(400_000)
    return w


SCHEDULES = st.lists(st.tuples(st.integers(0, 400_000), FAULTS, st.integers(0, 11)),
                     max_size=12)


@given(st.integers(0, 1_000), SCHEDULES)
@example(1, [(100_000, "crash", 0), (150_000, "isolate", 1), (200_000, "restart", 0),
             (250_000, "pause", 2), (300_000, "heal", 0), (350_000, "resume", 2)])
def test_random_fault_schedules_are_deterministic_and_keep_fifo(seed, schedule) -> None:
    a = run_with_faults(seed, schedule)
    b = run_with_faults(seed, schedule)
    assert a.trace_hash == b.trace_hash
    for n in NODES:
        node = a.node(n)
        if node is not None:
            # no reorder or duplication configured: never a heartbeat out of order
            assert node.out_of_order == {}


SET_SCRIPT = """
from simlog.runtime import NodeBase
from simlog.sim import World
class N(NodeBase):
    def start(self):
        self.rt.emit("members", ids={"b1", "b2", "b3", "c1", "c2"}, by={"z": 1, "a": 2})
w = World(1)
w.add_node("n", N)
w.run(10)
print(w.trace_hash)
"""


def test_emitted_sets_and_dicts_hash_the_same_under_any_hash_seed() -> None:
    procs = [subprocess.Popen([sys.executable, "-c", SET_SCRIPT], cwd=ROOT, text=True,
                              env=dict(os.environ, PYTHONHASHSEED=h), stdout=subprocess.PIPE)
             for h in ("0", "1", "77")]
    outs = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(outs) == 1 and all(procs[i].returncode == 0 for i in range(3))


@pytest.mark.slow
def test_many_seeds_replay_and_differ() -> None:
    hashes = [scripted_run(seed, duration_us=2_000_000).trace_hash for seed in range(30)]
    assert len(set(hashes)) == 30
    assert [scripted_run(seed, duration_us=2_000_000).trace_hash for seed in range(30)] == hashes
