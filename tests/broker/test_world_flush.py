"""flush.messages in the sim World: power loss of every broker at once (3 brokers,
RF=3, acks=all, min.insync.replicas=2).

With flush.messages=1 a write is acknowledged only once the leader and the in-sync
followers counted for the HW fsynced it (Kafka flushes inside Log.append), so nothing
acknowledged is lost; without a flush policy the page caches carry the writes and the
power loss takes the recent ones. The price shows in the ack latency.
"""

from __future__ import annotations

import random

import pytest

from .simcluster import MS, S, SimCluster
from .test_world_random_faults import check

CLIENT = {"request.timeout.ms": 5_000, "delivery.timeout.ms": 60_000}


def power_loss_run(topic_config: dict) -> tuple[SimCluster, list[str]]:
    c = SimCluster(settings={"min.insync.replicas": 2}, topic_config=topic_config,
                   producer_config=CLIENT)
    c.send_every(5 * MS, c.w.now_us + 4 * S)
    c.run_for(3 * S)
    for b in c.broker_ids:
        c.w.crash(b, lose_unsynced=True)
    c.run_for(1 * S)
    for b in c.broker_ids:
        c.w.restart(b)
    c.run_for(30 * S)
    leader = c.leader()
    assert leader is not None
    acked_before = [wr for wr in c.acked() if wr.done_us < c.w.now_us - 30 * S]
    assert len(acked_before) > 300
    return c, [wr.value for wr in c.lost(f"b{leader}") if wr in acked_before]


def median_latency_us(c: SimCluster) -> int:
    lat = sorted(wr.done_us - wr.sent_us for wr in c.acked())
    return lat[len(lat) // 2]


def test_flush_messages_1_keeps_every_acknowledged_write_through_power_loss() -> None:
    fsync, lost = power_loss_run({"flush.messages": 1})
    assert lost == []
    page_cache, lost_default = power_loss_run({})
    assert lost_default, "without fsync the power loss should take acknowledged writes"
    # every ack waited for fsyncs on the leader and a follower: dearer than page cache
    assert median_latency_us(fsync) > median_latency_us(page_cache) + 2 * MS


def power_loss_nemesis_run(seed: int) -> SimCluster:
    """flush.messages=1 under seeded power losses: one broker, or every broker at once."""
    c = SimCluster(seed=seed, settings={"min.insync.replicas": 2},
                   topic_config={"flush.messages": 1},
                   producer_config={"request.timeout.ms": 5_000, "delivery.timeout.ms": 30_000})
    rng = random.Random(seed)
    end = c.w.now_us + 40 * S
    c.send_every(4 * MS, end)  # fast enough that a power loss finds fsyncs in flight

    def tick() -> None:
        if c.w.now_us >= end:
            return
        up = [b for b in c.broker_ids if c.w.alive(b)]
        victims = up if rng.random() < 0.3 else [rng.choice(up)] if up else []
        for b in victims:
            c.w.crash(b, lose_unsynced=True)

        def back(victims: list[str] = victims) -> None:
            for b in victims:
                if not c.w.alive(b):
                    c.w.restart(b)

        c.w.call_later(rng.randint(1 * S, 5 * S), back)
        c.w.call_later(rng.randint(4 * S, 8 * S), tick)

    c.w.call_later(2 * S, tick)
    c.run_for(45 * S)
    for b in c.broker_ids:
        if not c.w.alive(b):
            c.w.restart(b)
    c.run_for(40 * S)
    return c


@pytest.mark.parametrize("seed", [1])
def test_flush_messages_1_random_power_losses_lose_nothing(seed: int) -> None:
    check(power_loss_nemesis_run(seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 12))
def test_flush_messages_1_random_power_losses_lose_nothing_many_seeds(seed: int) -> None:
    check(power_loss_nemesis_run(seed))
