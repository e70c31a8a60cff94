"""The consumer against fake brokers: offset reset, seek, poll limits, leader changes
and KIP-320 truncation detection."""

from __future__ import annotations

from typing import Any

from simlog.client.config import ConsumerConfig
from simlog.client.consumer import Consumer, PollResult
from simlog.protocol.fetch import FetchRequest
from simlog.protocol.offsets_for_leader_epoch import OffsetsForLeaderEpochRequest
from simlog.records import Record, build_batch
from tests.client.harness import World

MS = 1000
S = 1_000_000
TP = ("orders", 0)


def append(world: World, ids: list[str], tp: tuple[str, int] = TP) -> None:
    records = [Record(None, i.encode(), (("id", i.encode()),), 1) for i in ids]
    world.cluster.parts[tp].append(build_batch(records))


def make(world: World, **kafka: Any) -> Consumer:
    settings = {"bootstrap.servers": "b1,b2,b3", **kafka}
    return world.add_client("c1", lambda rt: Consumer(rt, ConsumerConfig.from_kafka(settings)))


def poll(world: World, c: Consumer, wait_us: int = 200 * MS) -> PollResult:
    got: list[PollResult] = []
    c.poll(got.append, timeout_us=wait_us)
    world.run_for(wait_us + 1)
    assert len(got) == 1
    return got[0]


def ids(result: PollResult) -> list[str]:
    return [r.header("id").decode() for r in result.records]  # type: ignore[union-attr]


def test_latest_reset_skips_existing_records_and_reads_new_ones() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    append(w, ["a", "b", "c"])
    c = make(w)
    c.assign([TP])
    assert poll(w, c).records == []
    assert c.position(TP) == 3
    append(w, ["d", "e"])
    assert ids(poll(w, c, 1 * S)) == ["d", "e"]
    assert c.position(TP) == 5


def test_earliest_reset_reads_from_the_log_start() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    append(w, ["a", "b"])
    append(w, ["c"])
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    r = poll(w, c)
    assert ids(r) == ["a", "b", "c"] and [x.offset for x in r.records] == [0, 1, 2]


def test_reset_none_reports_an_error_instead_of_guessing() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    append(w, ["a"])
    c = make(w, **{"auto.offset.reset": "none"})
    c.assign([TP])
    r = poll(w, c)
    assert r.records == [] and r.errors and r.errors[0][0] == TP
    assert c.position(TP) is None


def test_seek_then_poll_respects_max_poll_records_and_advances_position() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    append(w, [f"r{i}" for i in range(10)])
    c = make(w, **{"max.poll.records": 4})
    c.assign([TP])
    c.seek(TP, 3)
    assert ids(poll(w, c)) == ["r3", "r4", "r5", "r6"]
    assert c.position(TP) == 7
    assert ids(poll(w, c)) == ["r7", "r8", "r9"]
    assert c.position(TP) == 10


def test_records_in_a_batch_before_the_position_are_skipped() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    append(w, ["a", "b", "c", "d"])  # one batch
    c = make(w)
    c.assign([TP])
    c.seek(TP, 2)
    assert ids(poll(w, c)) == ["c", "d"]


def test_fetches_follow_the_leader_after_not_leader() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    append(w, ["a"])
    assert ids(poll(w, c)) == ["a"]
    w.cluster.move_leader(TP, 2)
    append(w, ["b"])
    assert ids(poll(w, c, 2 * S)) == ["b"]
    fetched_from = [dst for _, src, dst, m in w.net.log if src == "c1" and isinstance(m, FetchRequest)]
    assert fetched_from[0] == "b1" and fetched_from[-1] == "b2"
    last = [m for _, src, _, m in w.net.log if src == "c1" and isinstance(m, FetchRequest)][-1]
    assert last.topics[0].partitions[0].current_leader_epoch == 1  # type: ignore[attr-defined]


def test_leader_epoch_change_with_truncated_log_is_detected_and_position_moves_back() -> None:
    """KIP-320: the consumer read offsets 0..9 in epoch 0; the new leader's log ends
    epoch 0 at 6 (an unclean election lost 6..9) and continues in epoch 1."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    for i in range(10):
        append(w, [f"old{i}"])
    assert len(poll(w, c).records) == 10
    assert c.position(TP) == 10
    part = w.cluster.parts[TP]
    part.truncate_to(6)
    w.cluster.move_leader(TP, 2)
    append(w, ["new6", "new7", "new8", "new9", "new10", "new11"])
    r = poll(w, c, 2 * S)
    assert c.truncations and c.truncations[0].position == 10
    assert c.truncations[0].end_offset == 6 and c.truncations[0].offset_epoch == 0
    assert ids(r) == ["new6", "new7", "new8", "new9", "new10", "new11"]
    assert w.net.sent(OffsetsForLeaderEpochRequest, "c1")


def test_leader_epoch_change_without_truncation_keeps_the_position() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    append(w, ["a", "b"])
    assert ids(poll(w, c)) == ["a", "b"]
    w.cluster.move_leader(TP, 3)
    append(w, ["c"])
    assert ids(poll(w, c, 2 * S)) == ["c"]
    assert c.truncations == []
    assert w.net.sent(OffsetsForLeaderEpochRequest, "c1")  # it did validate


def test_truncation_under_reset_none_is_an_error() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "none"})
    c.assign([TP])
    c.seek(TP, 0)
    for i in ("a", "b", "c"):
        append(w, [i])
    assert ids(poll(w, c)) == ["a", "b", "c"]
    w.cluster.parts[TP].truncate_to(1)
    w.cluster.move_leader(TP, 2)
    r = poll(w, c, 2 * S)
    assert r.records == [] and any("truncation" in msg for _, msg in r.errors)


def test_out_of_range_position_is_reset_by_policy() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    append(w, ["a", "b"])
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    c.seek(TP, 50)
    assert ids(poll(w, c, 1 * S)) == ["a", "b"]


def test_poll_waits_for_records_then_returns_early() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w)
    c.assign([TP])
    w.run_for(50 * MS)
    got: list[PollResult] = []
    c.poll(got.append, timeout_us=5 * S)
    w.run_for(100 * MS)
    assert got == []
    append(w, ["x"])
    w.run_for(1 * S)
    assert len(got) == 1 and ids(got[0]) == ["x"]


def test_diverging_epoch_in_a_fetch_answer_is_judged_like_a_validation() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    for i in range(10):
        append(w, [f"r{i}"])
    assert len(poll(w, c).records) == 10
    pos = c.subscriptions.assignment[TP].position
    assert pos is not None and (pos.offset, pos.offset_epoch) == (10, 0)
    c.offsets.on_diverging(TP, pos, 0, 12)  # nothing we read is gone
    assert c.truncations == [] and c.position(TP) == 10
    pos = c.subscriptions.assignment[TP].position
    c.offsets.on_diverging(TP, pos, 0, 6)  # the leader ends epoch 0 at 6
    assert c.position(TP) == 6 and c.truncations[0].end_offset == 6
    stale = pos
    c.offsets.on_diverging(TP, stale, 0, 2)  # an answer for an old position: ignored
    assert c.position(TP) == 6 and len(c.truncations) == 1


def test_fetches_carry_the_epoch_of_the_last_fetched_record() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    append(w, ["a"])
    assert ids(poll(w, c)) == ["a"]
    w.cluster.move_leader(TP, 1)  # same leader, epoch 1
    append(w, ["b"])
    assert ids(poll(w, c, 2 * S)) == ["b"]
    w.run_for(100 * MS)
    last = [m for _, src, _, m in w.net.log if src == "c1" and isinstance(m, FetchRequest)][-1]
    part = last.topics[0].partitions[0]  # type: ignore[attr-defined]
    assert (part.fetch_offset, part.last_fetched_epoch, part.current_leader_epoch) == (2, 1, 1)


def test_current_leader_hint_in_a_fetch_error_redirects_the_consumer() -> None:
    """Metadata stays stale (it still names b1), so only the CurrentLeader hint in
    b1's NOT_LEADER_OR_FOLLOWER answer can lead the consumer to b2 (KIP-951)."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    append(w, ["a"])
    assert ids(poll(w, c)) == ["a"]
    w.cluster.frozen_leaders = {TP: 1}
    w.cluster.move_leader(TP, 2)
    append(w, ["b"])
    assert ids(poll(w, c, 2 * S)) == ["b"]


def test_compressed_batches_are_read_and_a_partial_last_batch_is_fetched_again() -> None:
    import random

    from simlog.records import Compression
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    noise = random.Random(3)
    for n, codec in enumerate((Compression.GZIP, Compression.LZ4, Compression.ZSTD)):
        records = [Record(None, noise.randbytes(300), (("id", f"r{n}-{i}".encode()),), 1)
                   for i in range(5)]
        w.cluster.parts[TP].append(build_batch(records, compression=codec))
    sizes = [len(b) for b in w.cluster.parts[TP].batches]
    limit = sizes[0] + sizes[1] // 2  # the first fetch ends in the middle of batch 2
    c = make(w, **{"auto.offset.reset": "earliest", "max.partition.fetch.bytes": limit})
    c.assign([TP])
    first = ids(poll(w, c))
    assert first == [f"r0-{i}" for i in range(5)]  # the partial batch was dropped
    got = list(first)
    for _ in range(4):
        got += ids(poll(w, c))
    assert got == [f"r{n}-{i}" for n in range(3) for i in range(5)]
    assert c.meter.charged_us > 0  # decompression and CRC checks cost CPU


def test_a_corrupt_batch_is_reported_not_returned() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    append(w, ["good"])
    append(w, ["bad"])
    part = w.cluster.parts[TP]
    broken = bytearray(part.batches[1])
    broken[-1] ^= 0xFF  # inside the CRC-covered records
    part.batches[1] = bytes(broken)
    c = make(w, **{"auto.offset.reset": "earliest"})
    c.assign([TP])
    r1 = poll(w, c)
    r2 = poll(w, c)
    assert ids(r1) + ids(r2) == ["good"]
    assert any("corrupt" in msg for _, msg in r1.errors + r2.errors)
    assert c.position(TP) == 1  # never past the corrupt batch


def test_offset_source_hook_supplies_committed_positions_before_the_reset_policy() -> None:
    """The group client's hook: committed offsets first, auto.offset.reset for the rest."""
    w = World()
    w.cluster.create_topic("orders", 2, leader=1)
    for i in range(5):
        append(w, [f"a{i}"], ("orders", 0))
        append(w, [f"b{i}"], ("orders", 1))
    c = make(w, **{"auto.offset.reset": "earliest", "max.poll.records": 100})
    asked: list[list[tuple[str, int]]] = []

    def committed(tps, reply) -> None:  # type: ignore[no-untyped-def]
        asked.append(list(tps))
        reply({("orders", 0): (3, 0)})  # orders/1 has no committed offset

    c.offset_source = committed
    c.assign([("orders", 0), ("orders", 1)])
    got = ids(poll(w, c)) + ids(poll(w, c))
    assert asked == [[("orders", 0), ("orders", 1)]]
    assert sorted(got) == ["a3", "a4", "b0", "b1", "b2", "b3", "b4"]
    assert w.net.sent(OffsetsForLeaderEpochRequest, "c1")  # committed epoch was validated
    assert c.positions()[("orders", 0)].offset == 5


def test_poll_runs_the_fetch_loop_only_when_it_frees_a_buffer() -> None:
    """Per-poll cost is O(1): a poll with nothing buffered, or one that leaves records
    buffered, does not run the consumer's loop; one that empties a buffer does (and
    the next fetch goes out at once)."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    c = make(w, **{"auto.offset.reset": "earliest", "max.poll.records": 2})
    c.assign([TP])
    w.run_for(50 * MS)
    runs = [0]
    inner = c.fetcher.run

    def counting() -> int | None:
        runs[0] += 1
        return inner()

    c.fetcher.run = counting  # type: ignore[method-assign]
    got: list[PollResult] = []
    for _ in range(20):  # nothing to read: each poll just waits
        c.poll(got.append, timeout_us=0)
    assert runs[0] == 0 and all(g.records == [] for g in got)
    append(w, ["a", "b", "c"])
    w.run_for(1 * S)  # the long fetch returns the three records
    runs[0] = 0
    got.clear()
    c.poll(got.append)
    assert ids(got[0]) == ["a", "b"] and runs[0] == 0  # one record still buffered
    fetches = len(w.net.sent(FetchRequest, "c1"))
    c.poll(got.append)
    assert ids(got[1]) == ["c"] and runs[0] >= 1  # buffer emptied: fetch again
    assert len(w.net.sent(FetchRequest, "c1")) == fetches + 1
