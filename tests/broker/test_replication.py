"""Replication between brokers, in a small deterministic harness with a fake controller
(tests/broker/harness.py): acks, ISR changes, fencing, and KIP-101's two scenarios with
and without leader-epoch truncation."""

from __future__ import annotations

import pytest

from simlog.broker.replica_manager import PartitionState
from simlog.protocol.errors import Errors
from simlog.protocol.produce import ProducePartitionData, ProduceRequest, ProduceTopicData

from .fakes import batch_bytes
from .harness import LATENCY_US, Cluster

MS = 1_000
S = 1_000_000


@pytest.fixture(params=["fake", "storage"])
def storage(request) -> str:
    """Run a test over the in-memory FakeLog and over the real PartitionLog."""
    return "fake" if request.param == "fake" else "real"


def started(**kw) -> Cluster:
    c = Cluster(**kw)
    c.create()
    c.run_for(100 * MS)
    return c


def test_acks_all_write_is_on_every_isr_replica_when_acknowledged(storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 2})
    cid = c.produce("m0")
    c.run_for(1 * MS)
    assert c.result(cid) is None  # followers have not fetched it yet
    c.run_for(20 * MS)
    assert c.result(cid) == (Errors.NONE, 0)
    assert [c.payloads(b) for b in (1, 2, 3)] == [["m0"]] * 3
    c.run_for(1 * S)
    assert [c.partition(b).high_watermark for b in (1, 2, 3)] == [1, 1, 1]


def test_consumer_reads_only_committed_data(storage: str) -> None:
    c = started(storage=storage)
    c.isolate("b2")
    c.isolate("b3")
    c.produce("m0", acks=1)
    c.run_for(5 * MS)
    assert c.payloads(1) == ["m0"] and c.partition(1).high_watermark == 0
    f = c.fetch(0)
    c.run_for(5 * MS)
    assert c.fetched(f).responses[0].partitions[0].records == b""


def test_long_poll_fetch_returns_when_data_arrives(storage: str) -> None:
    c = started(storage=storage)
    f = c.fetch(0, max_wait_ms=500)
    c.run_for(100 * MS)
    assert c.fetched(f) is None
    c.produce("m0")
    c.run_for(20 * MS)
    resp = c.fetched(f)
    assert resp is not None and b"m0" in resp.responses[0].partitions[0].records


def test_long_poll_fetch_times_out_empty(storage: str) -> None:
    c = started(storage=storage)
    f = c.fetch(0, max_wait_ms=500)
    c.run_for(499 * MS)
    assert c.fetched(f) is None
    c.run_for(5 * MS)
    assert c.fetched(f).responses[0].partitions[0].records == b""


def test_lagging_follower_leaves_isr_after_lag_time_and_rejoins(storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 2})
    c.isolate("b3")
    cid = c.produce("m0")
    c.run_for(10 * S)
    assert c.result(cid) is None and c.state[("t", 0)].isr == (1, 2, 3)
    c.run_for(25 * S)  # lagging 29.9 s at the 30 s check: still in sync
    assert c.state[("t", 0)].isr == (1, 2, 3)
    c.run_for(11 * S)  # the 45 s check (every replica.lag.time.max.ms / 2) drops it
    assert c.state[("t", 0)].isr == (1, 2)
    # the produce timed out at 30 s (request.timeout) before the shrink unblocked it
    assert c.result(cid) == (Errors.REQUEST_TIMED_OUT, -1)
    assert c.event_kinds("isr_shrink")[0][2]["removed"] == [3]
    ok = c.produce("m1")
    c.run_for(50 * MS)
    assert c.result(ok) == (Errors.NONE, 1)
    c.heal()
    c.run_for(20 * S)  # b3's lost fetch is given up after replica.socket.timeout.ms
    assert c.state[("t", 0)].isr == (1, 2, 3)
    assert c.payloads(3) == ["m0", "m1"]


def test_not_enough_replicas_with_one_replica_left(storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 2})
    c.isolate("b2")
    c.isolate("b3")
    c.produce("m", acks=1)  # an idle partition never shrinks: followers are at the LEO
    c.run_for(50 * S)
    assert c.state[("t", 0)].isr == (1,)
    cid = c.produce("m0")
    c.run_for(10 * MS)
    assert c.result(cid) == (Errors.NOT_ENOUGH_REPLICAS, -1)
    assert c.payloads(1) == ["m"]
    ok = c.produce("m1", acks=1)
    c.run_for(10 * MS)
    assert c.result(ok) == (Errors.NONE, 1)


def test_not_enough_replicas_after_append_when_isr_shrinks_under_a_waiting_write(storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 2})
    c.run_for(14 * S)
    c.isolate("b2")
    c.isolate("b3")
    c.run_for(1 * S)
    cid = c.produce("m0", timeout_ms=60_000)  # appended: the ISR is still {1, 2, 3}
    c.run_for(40 * S)
    assert c.state[("t", 0)].isr == (1,)
    assert c.result(cid) == (Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1)


def test_isolated_old_leader_cannot_acknowledge_acks_all(storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 1})
    c.isolate("b1", keep=("client",))
    c.fence(1)  # the controller moves leadership to b2
    c.run_for(10 * MS)
    assert c.state[("t", 0)].leader == 2
    stale = [c.produce(f"old{i}", to=1) for i in range(3)]
    fresh = c.produce("new", to=2)
    c.run_for(60 * S)  # b1 proposes to drop b2, b3; the controller never hears it
    assert all(c.result(cid) in (None, (Errors.REQUEST_TIMED_OUT, -1)) for cid in stale)
    assert c.result(fresh) == (Errors.NONE, 0)
    assert c.partition(1).isr == {1, 2, 3}


def test_fetch_with_old_leader_epoch_is_fenced(storage: str) -> None:
    c = started(storage=storage)
    c.elect(2)
    c.run_for(10 * MS)
    f = c.fetch(0, to=2, current_leader_epoch=0)
    c.run_for(5 * MS)
    p = c.fetched(f).responses[0].partitions[0]
    assert p.error_code is Errors.FENCED_LEADER_EPOCH
    assert p.current_leader.leader_id == 2 and p.current_leader.leader_epoch == 1
    f = c.fetch(0, to=1, current_leader_epoch=1)
    c.run_for(5 * MS)
    assert c.fetched(f).responses[0].partitions[0].error_code is Errors.NOT_LEADER_OR_FOLLOWER


def test_leader_crash_new_isr_leader_keeps_acknowledged_writes(storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 2})
    acked = [c.produce(f"m{i}") for i in range(5)]
    c.run_for(100 * MS)
    assert all(c.result(cid)[0] is Errors.NONE for cid in acked)
    c.crash(1)
    c.fence(1)
    c.run_for(10 * MS)
    assert c.state[("t", 0)].leader == 2
    more = c.produce("m5")
    c.run_for(100 * MS)
    assert c.result(more) == (Errors.NONE, 5)
    c.restart(1)
    c.run_for(1 * S)
    assert c.payloads(1) == c.payloads(2) == [f"m{i}" for i in range(6)]


def test_idempotent_retry_after_leader_change_is_not_duplicated(storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 2})
    pid = {"producer_id": 42, "producer_epoch": 0}
    first = c.produce("a", base_sequence=0, **pid)
    c.run_for(100 * MS)
    assert c.result(first) == (Errors.NONE, 0)
    c.crash(1)
    c.fence(1)
    c.run_for(10 * MS)
    retry = c.produce("a", base_sequence=0, **pid)  # the response was "lost": retry
    nxt = c.produce("b", base_sequence=1, **pid)
    c.run_for(100 * MS)
    assert c.result(retry) == (Errors.NONE, 0)
    assert c.result(nxt) == (Errors.NONE, 1)
    assert c.payloads(2) == ["a", "b"]


# ---------------------------------------------------------------------------- KIP-101


def kip101_data_loss(truncation: str) -> Cluster:
    """KIP-101 scenario 1: the follower restarts before it learns the HW that covers m1,
    truncates to its stale HW, then the leader dies and the follower takes over."""
    c = Cluster(brokers=2, settings={"min.insync.replicas": 1},
                topic_config={"simlog.follower.truncation": truncation})
    c.create(replicas=(1, 2))
    c.run_for(100 * MS)
    m0 = c.produce("m0")
    c.run_for(6 * S)  # m0 committed; b2 knows HW 1 and has checkpointed it
    m1 = c.produce("m1")
    c.run_for(5 * MS)
    assert c.result(m1) == (Errors.NONE, 1)  # acknowledged: HW 2 on b1
    assert c.partition(2).high_watermark == 1  # b2 learns HW 2 on its next fetch
    c.crash(2)
    c.crash(1)
    c.restart(2)  # b2 comes back as a follower of the dead b1 ...
    c.run_for(1 * MS)
    c.fence(1)  # ... and, being in the ISR, is elected leader
    c.run_for(10 * MS)
    assert c.state[("t", 0)].leader == 2
    c.restart(1)
    c.run_for(2 * S)
    assert c.result(m0) == (Errors.NONE, 0)
    return c


def test_kip101_data_loss_with_high_watermark_truncation() -> None:
    c = kip101_data_loss("high-watermark")
    assert c.payloads(2) == ["m0"]  # the acknowledged m1 is gone
    assert c.payloads(1) == ["m0"]


def test_kip101_no_data_loss_with_leader_epoch_truncation() -> None:
    c = kip101_data_loss("leader-epoch")
    assert c.payloads(2) == ["m0", "m1"]
    assert c.payloads(1) == ["m0", "m1"]


def kip101_divergence(truncation: str) -> Cluster:
    """KIP-101 scenario 2: both replicas crash; b2 loses its unflushed m1 (power loss),
    comes back first and leads, takes m2 at offset 1; b1 comes back with m1 at offset 1
    below its checkpointed HW."""
    c = Cluster(brokers=2, settings={"min.insync.replicas": 1},
                topic_config={"simlog.follower.truncation": truncation})
    c.create(replicas=(1, 2))
    c.run_for(100 * MS)
    c.produce("m0")
    c.produce("m1")
    c.run_for(6 * S)  # both committed, HW 2 everywhere and checkpointed
    assert c.partition(1).log.hw_checkpoint == 2
    c.crash(1)
    c.crash(2)
    c.log(2).truncate_to(1)  # power loss: b2's page cache held m1 only
    c.log(2).hw_checkpoint = 1
    c.restart(2)
    c.fence(1)
    c.elect(2, unclean=True)  # b2 is the only broker alive
    c.run_for(10 * MS)
    m2 = c.produce("m2", acks=1)
    c.run_for(10 * MS)
    assert c.result(m2) == (Errors.NONE, 1)
    c.restart(1)
    c.run_for(2 * S)
    return c


def test_kip101_replicas_diverge_with_high_watermark_truncation() -> None:
    c = kip101_divergence("high-watermark")
    assert c.payloads(1) == ["m0", "m1"]
    assert c.payloads(2) == ["m0", "m2"]


def test_kip101_replicas_converge_with_leader_epoch_truncation() -> None:
    c = kip101_divergence("leader-epoch")
    assert c.payloads(1) == c.payloads(2) == ["m0", "m2"]
    assert any(f["reason"] == "diverging_epoch" for _t, n, f in c.event_kinds("truncate")
               if n == "b1")


def test_harness_is_deterministic(storage: str) -> None:
    def run() -> list:
        c = started(storage=storage, settings={"min.insync.replicas": 2})
        for i in range(5):
            c.produce(f"m{i}")
        c.isolate("b3")
        c.run_for(40 * S)
        return c.events

    assert run() == run()


def test_list_offsets_earliest_latest_and_leader_epoch(storage: str) -> None:
    from simlog.protocol.list_offsets import (
        ListOffsetsPartition,
        ListOffsetsRequest,
        ListOffsetsResponse,
        ListOffsetsTopic,
    )

    c = started(storage=storage)
    for i in range(3):
        c.produce(f"m{i}")
    c.run_for(100 * MS)
    c.isolate("b2")
    c.isolate("b3")
    c.produce("uncommitted", acks=1)
    c.run_for(10 * MS)

    def ask(ts: int, replica_id: int = -1, epoch: int = -1):
        cid = next(c._cid)
        c.deliver("client", "b1", ListOffsetsRequest(
            correlation_id=cid, replica_id=replica_id, topics=(ListOffsetsTopic(
                name="t", partitions=(ListOffsetsPartition(
                    partition_index=0, timestamp=ts, current_leader_epoch=epoch),)),)))
        c.run_for(5 * MS)
        r = c.client.responses[cid]
        assert isinstance(r, ListOffsetsResponse)
        return r.topics[0].partitions[0]

    assert (ask(-2).offset, ask(-2).leader_epoch) == (0, 0)
    assert ask(-1).offset == 3  # consumers: the high watermark
    assert ask(-1, replica_id=2).offset == 4  # a follower: the log end
    assert ask(-1, epoch=5).error_code is Errors.UNKNOWN_LEADER_EPOCH


def test_offsets_for_leader_epoch_answers_end_of_epoch(storage: str) -> None:
    from simlog.protocol.offsets_for_leader_epoch import (
        OffsetForLeaderPartition,
        OffsetForLeaderTopic,
        OffsetsForLeaderEpochRequest,
    )

    c = started(storage=storage)
    c.produce("m0")
    c.produce("m1")
    c.run_for(100 * MS)
    c.elect(2)
    c.run_for(10 * MS)
    c.produce("m2")
    c.run_for(100 * MS)

    def ask(epoch: int) -> tuple:
        cid = next(c._cid)
        c.deliver("client", "b2", OffsetsForLeaderEpochRequest(correlation_id=cid, topics=(
            OffsetForLeaderTopic(topic="t", partitions=(
                OffsetForLeaderPartition(partition=0, leader_epoch=epoch),)),)))
        c.run_for(5 * MS)
        p = c.client.responses[cid].topics[0].partitions[0]
        return p.error_code, p.leader_epoch, p.end_offset

    assert ask(0) == (Errors.NONE, 0, 2)
    assert ask(1) == (Errors.NONE, 1, 3)
    assert c.payloads(1) == c.payloads(3) == ["m0", "m1", "m2"]


def test_follower_with_an_epoch_the_leader_never_had_truncates_to_the_common_epoch(
        storage: str) -> None:
    c = started(storage=storage, settings={"min.insync.replicas": 1})
    c.produce("m0")
    c.run_for(100 * MS)
    c.isolate("b2", keep=("ctl",))
    c.isolate("b3", keep=("ctl",))
    c.elect(1)  # b1 leads again in epoch 1, cut off from its followers
    c.run_for(10 * MS)
    c.produce("m1", acks=1)  # written only on b1, in epoch 1
    c.run_for(10 * MS)
    c.crash(1)
    c.heal()
    c.elect(2)  # epoch 2: b2 never saw epoch 1
    c.run_for(10 * MS)
    c.produce("m2", acks=1)
    c.run_for(100 * MS)
    c.restart(1)
    c.run_for(1 * S)
    assert c.payloads(1) == c.payloads(2) == c.payloads(3) == ["m0", "m2"]
    (trunc,) = [f for _t, n, f in c.event_kinds("truncate") if n == "b1"]
    assert (trunc["from_offset"], trunc["to_offset"]) == (2, 1)


def test_acks_0_gets_no_answer_and_bad_acks_are_refused(storage: str) -> None:
    c = started(storage=storage)
    silent = c.produce("m0", acks=0)
    bad = c.produce("m1", acks=2)
    c.run_for(100 * MS)
    assert c.result(silent) is None and c.payloads(1) == ["m0"]
    assert c.result(bad) == (Errors.INVALID_REQUIRED_ACKS, -1)


def test_waiting_fetch_answers_at_once_when_leadership_moves(storage: str) -> None:
    c = started(storage=storage)
    f = c.fetch(0, to=1, max_wait_ms=10_000)
    c.run_for(10 * MS)
    assert c.fetched(f) is None
    c.elect(2)
    c.run_for(10 * MS)
    p = c.fetched(f).responses[0].partitions[0]
    assert p.error_code is Errors.NOT_LEADER_OR_FOLLOWER
    assert p.current_leader.leader_id == 2


def test_waiting_acks_all_produce_fails_when_leadership_moves(storage: str) -> None:
    c = started(storage=storage)
    c.isolate("b2", keep=("ctl",))
    c.isolate("b3", keep=("ctl",))
    cid = c.produce("m0")
    c.run_for(10 * MS)
    assert c.result(cid) is None
    c.elect(2)
    c.run_for(10 * MS)
    assert c.result(cid) == (Errors.NOT_LEADER_OR_FOLLOWER, -1)


def test_flush_messages_acks_1_answers_after_the_leader_fsync() -> None:
    """Kafka's Log.append fsyncs before answering when flush.messages is reached; the
    sim disk's fsyncs take 2 ms each (log, indexes), so the acks=1 answer waits."""
    c = started(storage="real", topic_config={"flush.messages": 1})
    cid = c.produce("m0", acks=1)
    c.run_for(1 * MS)  # delivered (0.5 ms) and appended, fsync still in flight
    assert c.result(cid) is None
    c.run_for(3 * MS)
    assert c.result(cid) is None
    c.run_for(30 * MS)
    assert c.result(cid) == (Errors.NONE, 0)
    plain = started(storage="real")
    cid = plain.produce("m0", acks=1)
    plain.run_for(1 * MS + LATENCY_US)
    assert plain.result(cid) == (Errors.NONE, 0)


def test_fetcher_held_by_a_flush_resumes_when_that_partition_becomes_leader() -> None:
    """b2's fetcher from b1 waits for b2's forced flush of t-0; meanwhile b2 becomes the
    leader of t-0. When that flush completes, the fetcher must go on with t-1."""
    c = started()
    c.set_state(PartitionState("t", 1, (1, 2, 3), (1, 2, 3), 1, 0, 0))
    c.produce("m0")
    c.run_for(100 * MS)
    assert c.payloads(2) == ["m0"]
    c.log(2).unflushed_from = 0  # b2's flush of m0 in flight: its fetcher holds
    c.run_for(1 * S)
    c.elect(2)
    c.run_for(100 * MS)
    c.log(2).complete_flush()
    c.deliver("client", "b1", ProduceRequest(
        correlation_id=7, acks=1, timeout_ms=1_000, topic_data=(ProduceTopicData(
            name="t", partition_data=(ProducePartitionData(
                index=1, records=batch_bytes(payload="x1")),)),)))
    c.run_for(1 * S)
    assert c.disks[(2, "t", 1)].payloads() == ["x1"]
