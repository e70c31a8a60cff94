"""Groups through random member and broker faults (a seeded nemesis): no double ownership,
no backward commit, no gap or rewind within an assignment, and every acknowledged write
consumed after the faults heal and the group settles."""

from __future__ import annotations

import random

import pytest

from .groupcluster import GroupCluster, S

MEMBERS = [f"g-{i}" for i in range(1, 5)]


def run_nemesis(seed: int, strategy: str, faults: int = 6, kinds=None) -> GroupCluster:
    rng = random.Random(seed)
    c = GroupCluster(seed=seed, member_config={"partition.assignment.strategy": strategy})
    duration = (faults * 6 + 10) * S
    c.produce_every(25_000, c.now + duration)
    for m in MEMBERS[:3]:
        c.add_member(m)
    c.run_for(8 * S)
    kinds = kinds or ["crash_member", "leave_join", "isolate_member", "crash_broker",
                      "isolate_broker"]
    down: set[str] = set()
    left: set[str] = set()
    for _ in range(faults):
        kind = rng.choice(kinds)
        if kind == "crash_member":
            m = rng.choice(MEMBERS[:3])
            if m in c.members and m not in down and m not in left:
                c.crash_member(m)
                down.add(m)
        elif kind == "leave_join":
            if "g-4" not in c.members:
                c.add_member("g-4")
            elif "g-4" in left:
                left.discard("g-4")
                c.w.crash("g-4")
                c.restart_member("g-4")
            else:
                c.leave_member("g-4")
                left.add("g-4")
        elif kind == "isolate_member":
            c.w.isolate([rng.choice(MEMBERS[:3])])
        elif kind == "crash_broker":
            b = rng.choice(c.brokers)
            if b not in down and not any(x.startswith("b") for x in down):
                c.w.crash(b)
                down.add(b)
        elif kind == "isolate_broker":
            c.w.isolate([rng.choice(c.brokers)])
        c.run_for(rng.randrange(2, 8) * S)
        if rng.random() < 0.5:
            c.w.heal()
            for n in sorted(down):
                if n.startswith("b"):
                    c.w.restart(n)
                else:
                    c.restart_member(n)
            down.clear()
    c.w.heal()
    for n in sorted(down):
        if n.startswith("b"):
            c.w.restart(n)
        else:
            c.restart_member(n)
    # settle: production has stopped; let the group catch up
    c.run_for(40 * S)
    return c


def test_cooperative_group_survives_a_seeded_nemesis():
    c = run_nemesis(seed=101, strategy="cooperative-sticky")
    results = c.assert_checks_pass()
    acked = sum(1 for r in c.results.values() if r.ok)
    assert acked > 500 and results["consumed_all"].stats["consumed"]["g"] >= acked
    assert results["committed_offsets"].stats["commits"] == 6  # every partition


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 208))
@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky", "sticky"])
def test_groups_survive_random_faults(seed: int, strategy: str):
    c = run_nemesis(seed=seed, strategy=strategy, faults=8)
    c.assert_checks_pass()


def test_same_seed_same_trace():
    hashes = []
    for _ in range(2):
        c = GroupCluster(seed=77)
        c.produce_every(50_000, c.now + 8 * S)
        for m in MEMBERS[:3]:
            c.add_member(m)
        c.run_for(6 * S)
        c.crash_member("g-1")
        c.run_for(14 * S)
        hashes.append(c.w.trace_hash)
    assert hashes[0] == hashes[1]
