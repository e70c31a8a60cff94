"""Partition state on the leader: high watermark, ISR shrink/expand, acks, fencing."""

from __future__ import annotations

from simlog.broker.config import TopicSettings
from simlog.broker.partition import Partition, PendingIsrChange
from simlog.protocol.errors import Errors

from .fakes import FakeLog, batch_bytes

LAG_US = 30_000_000


def leader(isr=(1, 2, 3), min_isr: int = 2, log: FakeLog | None = None) -> tuple[Partition, list]:
    proposals: list[PendingIsrChange] = []
    p = Partition("t", 0, 1, log or FakeLog(), TopicSettings(min_insync_replicas=min_isr),
                  LAG_US, alter_isr=lambda _p, c: proposals.append(c))
    p.make_leader(1, 0, (1, 2, 3), frozenset(isr), now_us=0)
    return p, proposals


def produce(p: Partition, n: int = 1, acks: int = -1, **kw):
    return p.append_records_to_leader(batch_bytes(count=n, **kw), acks)


def fetch(p: Partition, replica: int, offset: int, now_us: int, last_epoch: int = -1):
    return p.read_as_leader(offset, 1 << 20, -1, last_epoch, replica, now_us)


def test_hw_is_min_leo_over_isr() -> None:
    p, _ = leader()
    assert produce(p, 3).last_offset == 2
    assert p.high_watermark == 0
    fetch(p, 2, 3, now_us=10)
    assert p.high_watermark == 0  # follower 3 has not fetched
    fetch(p, 3, 2, now_us=20)
    assert p.high_watermark == 2
    fetch(p, 3, 3, now_us=30)
    assert p.high_watermark == 3


def test_fenced_replica_out_of_isr_does_not_hold_back_hw() -> None:
    """Split brain: b3 was caught up, vanished (isolated), got fenced and dropped from the
    ISR by the controller; within replica.lag.time.max.ms of its last catch-up it must not
    keep the HW at its stale log end (Kafka counts only alive brokers' replicas)."""
    fenced: set[int] = set()
    p = Partition("t", 0, 1, FakeLog(), TopicSettings(min_insync_replicas=2), LAG_US,
                  alter_isr=lambda _p, c: None, eligible=lambda b: b not in fenced)
    p.make_leader(1, 0, (1, 2, 3), frozenset((1, 2, 3)), now_us=0)
    produce(p, 2)
    fetch(p, 2, 2, now_us=10)
    fetch(p, 3, 2, now_us=10)
    assert p.high_watermark == 2
    produce(p, 3)                      # offsets 2..4; b3 never fetches them
    fetch(p, 2, 5, now_us=20)
    assert p.high_watermark == 2       # b3 is in the ISR: it holds the HW
    fenced.add(3)
    p.make_leader(1, 1, (1, 2, 3), frozenset((1, 2)), now_us=30)  # controller shrank the ISR
    assert p.high_watermark == 5


def test_consumers_only_see_below_hw() -> None:
    p, _ = leader()
    produce(p, 1, payload="a")
    produce(p, 2, payload="b")
    fetch(p, 2, 3, now_us=10)
    fetch(p, 3, 1, now_us=10)
    assert p.high_watermark == 1
    out = p.read_as_leader(0, 1 << 20, -1, -1, -1, 20)
    assert out.error is Errors.NONE and out.high_watermark == 1
    assert b'"a"' in out.records and b'"b"' not in out.records
    assert p.read_as_leader(1, 1 << 20, -1, -1, -1, 20).records == b""
    assert b'"b"' in fetch(p, 2, 1, 30).records  # followers read up to the LEO


def test_acks_all_waits_for_hw_and_min_isr() -> None:
    p, _ = leader(isr=(1, 2), min_isr=2)
    out = produce(p, 2)
    assert p.check_enough_replicas_reach_offset(out.last_offset + 1) == (False, Errors.NONE)
    fetch(p, 2, 2, now_us=5)
    assert p.check_enough_replicas_reach_offset(2) == (True, Errors.NONE)


def test_not_enough_replicas_before_append() -> None:
    p, _ = leader(isr=(1,), min_isr=2)
    assert produce(p, acks=-1).error is Errors.NOT_ENOUGH_REPLICAS
    assert p.log_end_offset == 0
    assert produce(p, acks=1).error is Errors.NONE


def test_not_enough_replicas_after_append_when_isr_shrank() -> None:
    p, props = leader(isr=(1, 2), min_isr=2)
    out = produce(p)
    assert p.maybe_shrink_isr(LAG_US + 1)
    assert props[-1].isr == {1}
    p.on_alter_partition_result(Errors.NONE, 1, frozenset({1}), 1, LAG_US + 1)
    assert p.isr == {1} and p.high_watermark == 1
    assert p.check_enough_replicas_reach_offset(out.last_offset + 1) == (
        True, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND)


def test_isr_shrinks_only_after_lag_time() -> None:
    p, props = leader()
    produce(p)
    fetch(p, 2, 1, now_us=1_000)
    fetch(p, 3, 0, now_us=1_000)  # behind: last caught up when the epoch began (t=0)
    assert not p.maybe_shrink_isr(LAG_US)
    assert p.maybe_shrink_isr(LAG_US + 1)
    assert props == [PendingIsrChange(frozenset({1, 2}), frozenset({1, 2, 3}), "shrink")]


def test_caught_up_follower_stays_in_isr() -> None:
    p, props = leader()
    for t in range(0, 3 * LAG_US, 1_000_000):
        produce(p, acks=1)
        fetch(p, 2, p.log_end_offset, now_us=t)
        fetch(p, 3, p.log_end_offset, now_us=t)
    assert not p.maybe_shrink_isr(3 * LAG_US)
    assert props == []


def test_pending_shrink_keeps_hw_on_maximal_isr() -> None:
    """An isolated leader's proposal to drop followers must not let its HW advance."""
    p, _ = leader(min_isr=1)
    fetch(p, 2, 0, 0)
    fetch(p, 3, 0, 0)
    out = produce(p)
    assert p.maybe_shrink_isr(LAG_US + 1)
    p.maybe_increment_hw(LAG_US + 2)
    assert p.high_watermark == 0
    assert p.check_enough_replicas_reach_offset(out.last_offset + 1) == (False, Errors.NONE)


def test_rejected_alter_partition_clears_pending() -> None:
    p, props = leader()
    p.maybe_shrink_isr(LAG_US + 1)
    assert p.pending is not None
    p.on_alter_partition_result(Errors.INVALID_UPDATE_VERSION, now_us=LAG_US + 2)
    assert p.pending is None and p.isr == {1, 2, 3}
    assert p.maybe_shrink_isr(LAG_US + 3) and len(props) == 2


def test_follower_rejoins_isr_when_caught_up() -> None:
    p, props = leader(isr=(1, 2), min_isr=1)
    produce(p, 2, acks=1)
    fetch(p, 2, 2, 10)
    assert p.high_watermark == 2
    fetch(p, 3, 1, 20)
    assert props == []
    fetch(p, 3, 2, 30)
    assert props == [PendingIsrChange(frozenset({1, 2, 3}), frozenset({1, 2, 3}), "expand")]
    produce(p, 1, acks=1)
    fetch(p, 2, 3, 40)
    assert p.high_watermark == 2  # expansion in flight: 3 already counts for the HW
    p.on_alter_partition_result(Errors.NONE, 1, frozenset({1, 2, 3}), 1, 50)
    assert p.isr == {1, 2, 3} and p.partition_epoch == 1


def test_leader_epoch_fencing_on_fetch() -> None:
    p, _ = leader()
    assert p.read_as_leader(0, 100, 0, -1, 2, 0).error is Errors.FENCED_LEADER_EPOCH
    assert p.read_as_leader(0, 100, 2, -1, 2, 0).error is Errors.UNKNOWN_LEADER_EPOCH
    assert p.read_as_leader(0, 100, 1, -1, 2, 0).error is Errors.NONE


def test_diverging_epoch_tells_follower_where_to_truncate() -> None:
    log = FakeLog()
    log.append_as_leader(batch_bytes(2), 0)  # offsets 0-1 in epoch 0
    p, _ = leader(log=log)  # epoch 1 starts at 2
    produce(p, 1, acks=1)
    # the follower wrote offsets 0..4 in epoch 0 (an old leader's unreplicated tail)
    out = fetch(p, 2, 5, 0, last_epoch=0)
    assert out.diverging_epoch == (0, 2) and out.records == b""
    out = fetch(p, 2, 2, 0, last_epoch=0)
    assert out.diverging_epoch is None


def test_idempotent_retry_is_written_once() -> None:
    p, _ = leader(min_isr=1)
    first = produce(p, 2, acks=1, producer_id=9, producer_epoch=0, base_sequence=0)
    again = produce(p, 2, acks=1, producer_id=9, producer_epoch=0, base_sequence=0)
    assert again.duplicate and (again.first_offset, again.last_offset) == (0, 1)
    assert first.first_offset == 0 and p.log_end_offset == 2
    gap = produce(p, 1, acks=1, producer_id=9, producer_epoch=0, base_sequence=5)
    assert gap.error is Errors.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_follower_promoted_to_leader_deduplicates() -> None:
    p, _ = leader(min_isr=1)
    produce(p, 2, acks=1, producer_id=9, producer_epoch=0, base_sequence=0)
    replica = Partition("t", 0, 2, FakeLog(), TopicSettings(), LAG_US)
    replica.make_follower(1, 1, 0, (1, 2, 3), frozenset({1, 2, 3}))
    replica.append_as_follower(fetch(p, 2, 0, 0).records)
    replica.make_leader(2, 1, (1, 2, 3), frozenset({2, 3}), 0)
    retry = replica.append_records_to_leader(
        batch_bytes(count=2, producer_id=9, producer_epoch=0, base_sequence=0), 1)
    assert retry.duplicate and replica.log_end_offset == 2


def test_not_leader_refuses_produce_and_fetch() -> None:
    p = Partition("t", 0, 2, FakeLog(), TopicSettings(), LAG_US)
    p.make_follower(1, 1, 0, (1, 2), frozenset({1, 2}))
    assert produce(p).error is Errors.NOT_LEADER_OR_FOLLOWER
    assert fetch(p, 3, 0, 0).error is Errors.NOT_LEADER_OR_FOLLOWER


def test_stale_leader_epoch_is_ignored() -> None:
    p, _ = leader()
    assert not p.make_follower(2, 0, 0, (1, 2, 3), frozenset({2}))
    assert p.is_leader


def test_leader_counts_its_records_toward_hw_and_acks_1_only_once_flushed() -> None:
    log = FakeLog()
    p, _ = leader(isr=(1, 2), log=log)
    produce(p, 2)
    log.unflushed_from = 0  # the append forced a flush (flush.messages) still in flight
    fetch(p, 2, 2, now_us=10)
    assert p.high_watermark == 0
    assert p.check_flushed(2) == (False, Errors.NONE)
    log.complete_flush()
    fetch(p, 2, 2, now_us=20)
    # a fetch that moves no follower's log end leaves the HW alone (Kafka's rule); the
    # replica manager recomputes it when the flush completes
    assert p.high_watermark == 0
    assert p.maybe_increment_hw(20)
    assert p.high_watermark == 2 and p.check_flushed(2) == (True, Errors.NONE)
