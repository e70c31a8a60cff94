"""Replication in the sim World with the real KRaft controller and producer: the issue's
done-when scenarios for partition replication (3 brokers, RF=3, acks=all).

Each test runs a workload (one write every 20 ms through the idempotent producer),
injects a fault, heals, lets the cluster settle and judges the history (each write's
ok / fail / info) against the final logs of every replica.
"""

from __future__ import annotations

from simlog.protocol.errors import Errors

from .simcluster import MS, S, SimCluster

FAST_CLIENT = {"request.timeout.ms": 5_000, "delivery.timeout.ms": 60_000}


def converged(c: SimCluster) -> list[str]:
    """Every live replica holds the same log; returns it."""
    logs = {b: c.values(b) for b in c.broker_ids}
    first = logs[c.broker_ids[0]]
    assert all(log == first for log in logs.values()), logs
    return first


def test_leader_crash_elects_isr_leader_and_acks_all_writes_continue() -> None:
    c = SimCluster(settings={"min.insync.replicas": 2}, producer_config=FAST_CLIENT)
    c.send_every(20 * MS, c.w.now_us + 20 * S)
    c.run_for(3 * S)
    old = c.leader()
    crashed_at = c.w.now_us
    c.w.crash(f"b{old}")
    c.run_for(12 * S)
    new = c.leader()
    assert new is not None and new != old and old not in c.isr()
    elected = [e for e in c.events("become_leader") if e["node"] == f"b{new}"]
    assert elected and elected[-1]["time_us"] - crashed_at < 9 * S + 1 * S  # session timeout
    c.run_for(8 * S)
    after = [wr for wr in c.acked() if wr.sent_us > crashed_at]
    assert after, "no acks=all write succeeded after the new leader took over"
    c.w.restart(f"b{old}")
    c.run_for(40 * S)
    assert all(wr.result is not None and wr.result.ok for wr in c.writes)
    log = converged(c)
    assert c.lost(f"b{new}") == [] and len(log) == len(c.writes)


def test_one_replica_left_refuses_acks_all_and_loses_nothing() -> None:
    c = SimCluster(settings={"min.insync.replicas": 2},
                   producer_config={"request.timeout.ms": 5_000, "delivery.timeout.ms": 10_000})
    c.send_every(20 * MS, c.w.now_us + 40 * S)
    c.run_for(2 * S)
    leader = c.leader()
    followers = [b for b in c.broker_ids if b != f"b{leader}"]
    for b in followers:
        c.w.crash(b)
    c.run_for(45 * S)
    assert c.isr() == (leader,)
    shrunk_at = max(e["time_us"] for e in c.events("isr_shrink"))
    refused = [wr for wr in c.writes
               if wr.result is not None and wr.result.status == "fail"
               and wr.result.error is Errors.NOT_ENOUGH_REPLICAS]
    assert refused, "no write was refused with NOT_ENOUGH_REPLICAS"
    assert [wr for wr in c.acked() if wr.done_us > shrunk_at] == []
    for b in followers:
        c.w.restart(b)
    c.run_for(30 * S)
    converged(c)
    assert c.lost(f"b{leader}") == []


JEPSEN_CLIENT = {"request.timeout.ms": 5_000, "delivery.timeout.ms": 20_000,
                 "enable.idempotence": False, "max.in.flight.requests.per.connection": 1}


def isr_shrinks_to_leader_then_leader_dies(min_isr: int, unclean: bool) -> tuple[SimCluster, int]:
    """Jepsen 2013: the leader loses its followers (they still reach the controllers),
    shrinks the ISR to itself, keeps writing, then dies; returns (cluster, old leader)."""
    c = SimCluster(settings={"min.insync.replicas": min_isr,
                             "unclean.leader.election.enable": unclean},
                   producer_config=JEPSEN_CLIENT)
    c.send_every(50 * MS, c.w.now_us + 80 * S)
    c.run_for(2 * S)
    leader = c.leader()
    others = [b for b in c.broker_ids if b != f"b{leader}"]
    c.w.cut([f"b{leader}"], others)
    c.w.cut(others, [f"b{leader}"])
    c.run_for(50 * S)
    assert c.isr() == (leader,)
    c.w.crash(f"b{leader}")
    c.run_for(15 * S)
    return c, leader


def test_min_insync_1_isr_of_leader_alone_loses_acknowledged_writes_on_leader_loss() -> None:
    c, old = isr_shrinks_to_leader_then_leader_dies(min_isr=1, unclean=True)
    new = c.leader()
    assert new is not None and new != old
    assert c.events("unclean_leader_election")
    c.w.heal()
    c.w.restart(f"b{old}")
    c.run_for(40 * S)
    converged(c)
    assert len(c.lost(f"b{new}")) > 0  # acknowledged by the lone leader, now gone


def test_min_insync_2_same_faults_lose_nothing() -> None:
    c, old = isr_shrinks_to_leader_then_leader_dies(min_isr=2, unclean=True)
    refused = [wr for wr in c.writes if wr.result is not None and not wr.result.ok]
    assert refused
    c.w.heal()
    c.w.restart(f"b{old}")
    c.run_for(40 * S)
    converged(c)
    assert c.lost(f"b{c.leader()}") == []


def test_unclean_election_off_keeps_partition_offline_until_isr_member_returns() -> None:
    c, old = isr_shrinks_to_leader_then_leader_dies(min_isr=1, unclean=False)
    assert c.leader() is None  # the only ISR member is gone: offline
    c.w.heal()
    c.run_for(10 * S)
    assert c.leader() is None
    c.w.restart(f"b{old}")
    c.run_for(40 * S)
    assert c.leader() == old
    converged(c)
    assert c.lost(f"b{old}") == []


def test_isolated_old_leader_cannot_acknowledge_acks_all_writes() -> None:
    c = SimCluster(settings={"min.insync.replicas": 1}, producer_config=JEPSEN_CLIENT)
    c.run_for(1 * S)
    old = c.leader()
    rest = [n for n in ("c1", "c2", "c3", *c.broker_ids) if n != f"b{old}"]
    c.w.partition([[f"b{old}", "p1"], rest])  # the producer only reaches the old leader
    cut_at = c.w.now_us
    c.send_every(20 * MS, c.w.now_us + 30 * S)
    c.run_for(30 * S)
    assert c.leader() not in (None, old)  # the majority side moved on
    assert len(c.values(f"b{old}")) > 0  # the old leader did append the writes ...
    assert [wr for wr in c.acked() if wr.sent_us >= cut_at] == []  # ... but acked none
    c.w.heal()
    c.run_for(30 * S)
    later = c.send(5)
    c.run_for(10 * S)
    assert all(wr.result is not None and wr.result.ok for wr in later)
    converged(c)
    assert c.lost(f"b{c.leader()}") == []


def power_loss_divergence(truncation: str) -> SimCluster:
    """KIP-101 scenario 2 in KRaft form. b_L leads, b_F follows; both hold w0, w1 and
    the HW 2 is checkpointed. b_L crashes; b_F leads alone, then loses power and with it
    every unflushed byte (Kafka does not fsync by default). b_F returns first, still the
    only ISR member, leads with an empty log and takes w2 at offset 0. b_L returns as a
    follower holding w0, w1 under its checkpointed HW."""
    c = SimCluster(brokers=2, settings={"min.insync.replicas": 1},
                   topic_config={"simlog.follower.truncation": truncation},
                   producer_config=JEPSEN_CLIENT)
    lead = c.leader()
    fol = f"b{3 - lead}"
    c.send(1)
    c.run_for(100 * MS)
    c.send(1)
    c.run_for(7 * S)  # both acknowledged; HW 2 checkpointed (every 5 s)
    assert [wr.result.offset for wr in c.acked()] == [0, 1]
    c.w.crash(f"b{lead}")
    c.run_for(15 * S)
    assert c.leader() == 3 - lead
    c.w.crash(fol, lose_unsynced=True)
    c.run_for(15 * S)
    c.w.restart(fol)
    c.run_for(10 * S)
    assert c.leader() == 3 - lead and c.values(fol) == []
    (w2,) = c.send(1)
    c.run_for(15 * S)
    assert w2.result is not None and (w2.result.ok, w2.result.offset) == (True, 0)
    c.w.restart(f"b{lead}")
    c.run_for(20 * S)
    return c


def test_kip101_power_loss_replicas_diverge_with_high_watermark_truncation() -> None:
    c = power_loss_divergence("high-watermark")
    logs = {b: c.values(b) for b in c.broker_ids}
    assert sorted(map(tuple, logs.values())) == [("w0",), ("w2",)]  # offset 0 differs


def test_kip101_power_loss_replicas_converge_with_leader_epoch_truncation() -> None:
    c = power_loss_divergence("leader-epoch")
    assert converged(c) == ["w2"]


def test_combined_mode_brokers_are_the_quorum_and_survive_a_leader_crash() -> None:
    from simlog.broker.node import broker_factory
    from simlog.protocol.controller import CreatableTopic, CreateTopicsRequest
    from simlog.sim import World

    from .simcluster import Admin

    voters = ("b1", "b2", "b3")
    w = World(seed=5, record_events=True)
    for i in (1, 2, 3):
        w.add_node(f"b{i}", broker_factory(i, {"min.insync.replicas": 2}, voters))
    w.add_node("admin", Admin)
    w.run_for(3 * S)
    w.call_in("admin", lambda n: [n.rt.send(v, CreateTopicsRequest(correlation_id=1, topics=(
        CreatableTopic(name="t", num_partitions=1, replication_factor=3),))) for v in voters])
    w.run_for(3 * S)
    leaders = [e["node"] for e in w.events
               if e["kind"] == "emit" and e["fields"][0] == "become_leader"]
    assert len(leaders) == 1
    w.crash(leaders[0])  # a broker and, maybe, the active controller
    w.run_for(15 * S)
    leaders = [e["node"] for e in w.events
               if e["kind"] == "emit" and e["fields"][0] == "become_leader"]
    assert len(leaders) == 2 and leaders[1] != leaders[0]


def test_retention_deletes_old_segments_on_every_replica() -> None:
    c = SimCluster(settings={"log.retention.check.interval.ms": 1_000},
                   topic_config={"segment.bytes": 2_048, "retention.bytes": 4_096})
    c.send_every(10 * MS, c.w.now_us + 2 * S)
    c.run_for(4 * S)
    starts = {b: c.broker(b).rm.partition(("t", 0)).log.log_start_offset for b in c.broker_ids}
    assert all(s > 0 for s in starts.values()), starts
    assert len(c.acked()) == len(c.writes)
    # every replica kept the same suffix of the log
    tails = {b: c.values(b)[-50:] for b in c.broker_ids}
    assert len({tuple(t) for t in tails.values()}) == 1


def stale_hw_truncation_then_double_failure(truncation: str) -> tuple[SimCluster, list, str]:
    """KIP-101's first scenario in KRaft form (acks=all, min.insync.replicas=2, clean
    elections only). w1 is acknowledged once both followers fetched it, but they learn
    the HW that covers it only on their next fetch. The leader dies before that; the
    controller elects follower X, and the other follower Y, now X's follower, cannot
    reach X. Before Y refetches, X dies too, and Y, the last ISR member, leads."""
    c = SimCluster(settings={"min.insync.replicas": 2},
                   topic_config={"simlog.follower.truncation": truncation},
                   producer_config=JEPSEN_CLIENT)
    lead = f"b{c.leader()}"
    b, y = [x for x in c.broker_ids if x != lead]
    c.send(1)
    c.run_for(1 * S)
    c.w.cut([b], [y])
    c.w.cut([y], [b])
    (w1,) = c.send(1)
    c.run_for(20 * MS)
    assert w1.result is not None and w1.result.ok  # acknowledged by all three
    assert c.high_watermark(b) == c.high_watermark(y) == 1  # followers' HW trails
    c.w.crash(lead)
    c.run_for(12 * S)
    x = f"b{c.leader()}"
    y = b if x == y else y
    c.w.crash(x)
    c.run_for(15 * S)
    assert f"b{c.leader()}" == y  # a clean election: y is the last ISR member
    c.w.heal()
    c.w.restart(lead)
    c.w.restart(x)
    c.run_for(30 * S)
    return c, [w1], y


def test_kip101_stale_hw_truncation_loses_acknowledged_write_with_high_watermark_mode() -> None:
    c, (w1,), y = stale_hw_truncation_then_double_failure("high-watermark")
    cut = [e for e in c.events("truncate") if e["node"] == y]
    assert dict(cut[0]["fields"][1])["reason"] == "high_watermark"
    log = converged(c)
    assert w1.value not in log and len(c.lost(c.broker_ids[0])) == 1


def test_kip101_stale_hw_truncation_keeps_acknowledged_write_with_leader_epoch_mode() -> None:
    c, (w1,), _y = stale_hw_truncation_then_double_failure("leader-epoch")
    assert w1.result.offset == 1
    log = converged(c)
    assert log == ["w0", "w1"] and c.lost(c.broker_ids[0]) == []
