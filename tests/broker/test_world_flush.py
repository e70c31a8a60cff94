"""flush.messages in the sim World: power loss of every broker at once (3 brokers,
RF=3, acks=all, min.insync.replicas=2).

With flush.messages=1 a write is acknowledged only once the leader and the in-sync
followers counted for the HW fsynced it (Kafka flushes inside Log.append), so nothing
acknowledged is lost; without a flush policy the page caches carry the writes and the
power loss takes the recent ones. The price shows in the ack latency.
"""

from __future__ import annotations

from .simcluster import MS, S, SimCluster

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
