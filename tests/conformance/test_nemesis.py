"""Random faults against the replicated log, in both worlds (slow suite).

A seeded nemesis crashes (sometimes with power loss), pauses, restarts and resumes
replicas and makes links lossy between bursts of writes; then everything heals, and a final power loss
of every replica must keep every acknowledged write on a majority, at its index.
"""

from __future__ import annotations

import random

import pytest

SETTLE_S = 10.0


def durable_on_majority(cluster, acked: dict[bytes, int], durable: bool = False) -> list[bytes]:
    """Acked values held (at their index) by fewer than a majority of logs (or of the
    logs' durable prefixes)."""
    read = cluster.durable_log if durable else cluster.log
    logs = {n: read(n) for n in cluster.replicas}
    short = []
    for value, index in sorted(acked.items(), key=lambda kv: kv[1]):
        holders = [n for n, log in logs.items() if len(log) > index and log[index] == value]
        if len(holders) < cluster.config.majority:
            short.append(value)
    return short


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_faults_never_lose_an_acknowledged_write(cluster, seed: int) -> None:
    rng = random.Random(seed)
    crashed: set[str] = set()
    paused: set[str] = set()
    lossy: set[tuple[str, str]] = set()
    n_written = 0
    for _ in range(12):
        broken = sorted(crashed | paused)
        if broken and (rng.random() < 0.5 or len(broken) == len(cluster.replicas)):
            node = rng.choice(broken)
            if node in crashed:
                cluster.restart(node)
                crashed.discard(node)
            else:
                cluster.resume(node)
                paused.discard(node)
        else:
            healthy = [n for n in cluster.replicas if n not in crashed | paused]
            node = rng.choice(healthy)
            fault = rng.choice(["crash", "power_loss", "pause", "lossy_link"])
            if fault == "lossy_link":
                dst = rng.choice([n for n in cluster.replicas if n != node])
                cluster.degrade_link(node, dst, loss=0.3, duplicate=0.1)
                lossy.add((node, dst))
            elif fault == "pause":
                cluster.pause(node)
                paused.add(node)
            else:
                cluster.crash(node, power_loss=fault == "power_loss")
                crashed.add(node)
        for _ in range(3):
            cluster.write(f"v{n_written:04d}".encode())
            n_written += 1
        cluster.sleep(rng.uniform(0.05, 0.3))
        # At every step, not only at the end: what was acked is already durable on a
        # majority (a power loss of everything right now would keep it).
        assert durable_on_majority(cluster, cluster.acked_values(), durable=True) == []
    for src, dst in sorted(lossy):
        cluster.degrade_link(src, dst)
    for node in sorted(paused):
        cluster.resume(node)
    for node in sorted(crashed):
        cluster.restart(node)
    # Every replica catches up to the leader's log once all are back.
    assert cluster.wait_until(
        lambda: len({tuple(cluster.log(n)) for n in cluster.replicas}) == 1, SETTLE_S)
    acked = cluster.acked_values()
    assert acked, "the nemesis left no acknowledged write to check"
    for node in cluster.replicas:
        cluster.crash(node, power_loss=True)
    assert durable_on_majority(cluster, acked) == []
    for node in cluster.replicas:
        cluster.restart(node)
    assert cluster.wait_until(
        lambda: (r := cluster.read(timeout_s=0.5)) is not None and r[0] > max(acked.values()),
        SETTLE_S)
    _, read = cluster.read()
    assert all(read[i] == v for v, i in acked.items())
