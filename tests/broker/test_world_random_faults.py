"""Seeded random faults against a 3-broker RF=3 cluster (acks=all, min.insync.replicas=2,
unclean election off, idempotent producer): crashes and restarts, isolations,
one-way cuts and pauses, never power loss. After healing and settling, every
acknowledged write is in the log at its offset, the broker wrote no (producer id,
epoch, sequence) twice, acknowledged writes of the producer sit in send order, and all
replicas hold the same log.

The broker-side duplicate check is by sequence, not by value: the producer, after an
epoch bump (KIP-360), re-sends batches whose first attempt may have been written, with
new sequences; that client behaviour shows as repeated values (reported to the client
owner) which no broker can detect."""

from __future__ import annotations

import random

import pytest

from .simcluster import MS, S, SimCluster

FAULT_KINDS = ("crash", "isolate", "cut", "pause")


def nemesis(c: SimCluster, rng: random.Random, until_us: int) -> None:
    """Every ~4 s start one fault on a random broker and undo it 1-8 s later."""
    brokers = c.broker_ids

    def undo(kind: str, b: str) -> None:
        if kind == "crash":
            c.w.restart(b)
        elif kind == "pause":
            c.w.resume(b)
        elif kind == "isolate":
            c.w.heal_isolate([b])
        else:
            c.w.heal()

    def tick() -> None:
        if c.w.now_us >= until_us:
            return
        kind = rng.choice(FAULT_KINDS)
        b = rng.choice(brokers)
        if not c.w.alive(b):
            kind = "none"
        elif kind == "crash":
            c.w.crash(b)
        elif kind == "pause":
            c.w.pause(b)
        elif kind == "isolate":
            c.w.isolate([b])
        elif kind == "cut":
            other = rng.choice([x for x in (*brokers, "c1", "c2", "c3") if x != b])
            c.w.cut([b], [other])
        if kind != "none":
            c.w.call_later(rng.randint(1 * S, 8 * S), lambda: undo(kind, b))
        c.w.call_later(rng.randint(2 * S, 6 * S), tick)

    c.w.call_later(1 * S, tick)


def run(seed: int) -> SimCluster:
    c = SimCluster(seed=seed, settings={"min.insync.replicas": 2},
                   producer_config={"request.timeout.ms": 5_000,
                                    "delivery.timeout.ms": 30_000})
    rng = random.Random(seed)
    end = c.w.now_us + 60 * S
    c.send_every(20 * MS, end)
    nemesis(c, rng, end)
    c.run_for(70 * S)
    c.w.heal()
    for b in c.broker_ids:
        if not c.w.alive(b):
            c.w.restart(b)
        else:
            c.w.resume(b)
    c.run_for(60 * S)
    return c


def check(c: SimCluster) -> None:
    logs = {b: c.values(b) for b in c.broker_ids}
    leader = c.leader()
    assert leader is not None
    log = logs[f"b{leader}"]
    assert all(other == log for other in logs.values()), "replicas differ"
    assert c.lost(f"b{leader}") == [], "acknowledged writes lost"
    seqs = c.sequences(f"b{leader}")
    assert len(set(seqs)) == len(seqs), "the broker wrote a producer sequence twice"
    offsets = [wr.result.offset for wr in c.acked()]
    assert offsets == sorted(offsets), "acknowledged writes out of order"
    assert len(c.acked()) > len(c.writes) // 4, "the cluster hardly made progress"


@pytest.mark.parametrize("seed", [1, 2])
def test_random_faults_lose_nothing(seed: int) -> None:
    check(run(seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 23))
def test_random_faults_lose_nothing_many_seeds(seed: int) -> None:
    check(run(seed))


def test_same_seed_same_trace() -> None:
    def trace(seed: int) -> str:
        c = SimCluster(seed=seed, settings={"min.insync.replicas": 2})
        c.send_every(50 * MS, c.w.now_us + 4 * S)
        nemesis(c, random.Random(seed), c.w.now_us + 4 * S)
        c.run_for(5 * S)
        return c.w.trace_hash

    assert trace(7) == trace(7)
