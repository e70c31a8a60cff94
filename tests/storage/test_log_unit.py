"""Partition log behaviours, one scenario each, on the simulated disk."""

from __future__ import annotations

import random

import pytest
from kafka.record import MemoryRecords

from simlog.records import Compression, Record, RecordBatch, build_batch, parse_batches
from simlog.runtime import DiskError
from simlog.sim.disk import ManualDiskHost, SimDisk
from simlog.sim.params import DiskParams
from simlog.storage.checkpoint import read_file
from simlog.storage.config import LogConfig
from simlog.storage.epoch_cache import LeaderEpochCache
from simlog.storage.index import OFFSET_ENTRY, TIME_ENTRY
from simlog.storage.log import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, PartitionLog
from simlog.storage.types import LogError

D = "orders-0"
SEG0 = f"{D}/00000000000000000000"


class Env:
    def __init__(self, **cfg):
        self.host = ManualDiskHost()
        self.disk = SimDisk(self.host, DiskParams(dirty_expire_us=None), random.Random(1))
        self.config = LogConfig(**cfg)
        self.log = self.open()

    def open(self) -> PartitionLog:
        log = PartitionLog.open(self.disk, D, self.config, now_us=0)
        assert isinstance(log, PartitionLog), log
        return log

    def reopen(self) -> PartitionLog:
        self.log.close()
        self.host.run_all()
        self.log = self.open()
        return self.log

    def append(self, *values: bytes | None, key: bytes | None = b"k", epoch: int = 0,
               ts: int = 1_000, codec: Compression = Compression.NONE, now_us: int = 0):
        data = build_batch([Record(key, v, (), ts + i) for i, v in enumerate(values)],
                           compression=codec)
        info = self.log.append_as_leader(data, epoch, now_us)
        assert not isinstance(info, LogError), info
        return info

    def file(self, path: str) -> bytes:
        data = read_file(self.disk, path)
        assert data is not None, path
        return data

    def records(self) -> list[tuple[int, bytes | None, bytes | None]]:
        out = []
        for b in self.log.batches():
            assert isinstance(b, RecordBatch), b
            out.extend((r.offset, r.key, r.value) for r in b.records())
        return out


def test_segment_files_and_sparse_indexes_in_kafka_format() -> None:
    env = Env(index_interval_bytes=200, segment_bytes=10_000)
    for i in range(12):
        env.append(b"x" * 50, ts=1_000 + 10 * i)
    env.log.flush()  # index entries are buffered until a flush, roll or truncation
    env.host.run_all()
    assert env.disk.list(f"{D}/0") == [SEG0 + ".index", SEG0 + ".log", SEG0 + ".timeindex"]
    log_bytes = env.file(SEG0 + ".log")
    batches, err = parse_batches(log_bytes)
    assert err is None and [b.base_offset for b in batches] == list(range(12))
    entries = list(OFFSET_ENTRY.iter_unpack(env.file(SEG0 + ".index")))
    # One entry each time more than index.interval.bytes were written since the last.
    positions = [b.position for b in batches]
    expect, since = [], 0
    for b in batches:
        if since > 200:
            expect.append((b.last_offset, b.position))
            since = 0
        since += b.size
    assert entries == expect and all(p in positions for _r, p in entries)
    times = list(TIME_ENTRY.iter_unpack(env.file(SEG0 + ".timeindex")))
    assert times == [(1_000 + 10 * r, r) for r, _p in expect]


def test_checkpoint_files_use_kafka_text_formats() -> None:
    env = Env(segment_bytes=300)
    env.append(b"a" * 100, epoch=0)
    env.append(b"b" * 100, epoch=0)
    env.append(b"c" * 100, epoch=3)  # rolls: the old segment is flushed
    env.log.update_high_watermark(3)
    env.log.checkpoint_high_watermark()
    env.host.run_all()
    assert env.file(f"{D}/leader-epoch-checkpoint") == b"0\n2\n0 0\n3 2\n"
    assert env.file(f"{D}/replication-offset-checkpoint") == b"0\n1\norders 0 3\n"
    assert env.file(f"{D}/recovery-point-offset-checkpoint") == b"0\n1\norders 0 2\n"
    assert env.log.recovery_point == 2


def test_append_patches_only_offset_and_epoch() -> None:
    env = Env()
    env.append(b"first")
    client = build_batch([Record(b"k", b"v" * 30, (("h", b"1"),), 5)],
                         compression=Compression.ZSTD, producer_id=9, producer_epoch=1,
                         base_sequence=4)
    info = env.log.append_as_leader(client, 7, 0)
    assert not isinstance(info, LogError) and info.first_offset == 1
    stored = env.file(SEG0 + ".log")[-len(client):]
    assert stored[:8] == (1).to_bytes(8, "big") and stored[12:16] == (7).to_bytes(4, "big")
    assert stored[8:12] == client[8:12] and stored[16:] == client[16:]
    assert MemoryRecords(stored).next_batch().validate_crc()


def test_append_is_all_or_nothing_and_names_the_bad_batch() -> None:
    env = Env(max_message_bytes=500)
    good = build_batch([Record(b"k", b"v", (), 1)])
    bad = bytearray(build_batch([Record(b"k", b"w", (), 2)], base_offset=1))
    bad[-1] ^= 1
    res = env.log.append_as_leader(good + bytes(bad), 0, 0)
    assert isinstance(res, LogError) and res.kind == LogError.CORRUPT
    assert res.offset == 1 and "CRC" in res.detail
    assert env.log.log_end_offset == 0 and env.file(SEG0 + ".log") == b""
    big = build_batch([Record(b"k", b"v" * 600, (), 1)])
    res = env.log.append_as_leader(big, 0, 0)
    assert isinstance(res, LogError) and res.kind == LogError.TOO_LARGE


def test_follower_append_keeps_offsets_and_learns_epochs() -> None:
    env = Env()
    b0 = build_batch([Record(b"a", b"1", (), 1), Record(b"b", b"2", (), 2)],
                     base_offset=0, partition_leader_epoch=2)
    b1 = build_batch([Record(b"c", b"3", (), 3)], base_offset=2, partition_leader_epoch=5)
    info = env.log.append_as_follower(b0 + b1, 0)
    assert not isinstance(info, LogError) and (info.first_offset, info.last_offset) == (0, 2)
    assert env.file(SEG0 + ".log") == b0 + b1  # stored exactly as fetched
    assert [(e.epoch, e.start_offset) for e in env.log.epochs.entries] == [(2, 0), (5, 2)]
    res = env.log.append_as_follower(b1, 0)
    assert isinstance(res, LogError) and res.kind == LogError.INVALID_OFFSET
    assert env.log.end_offset_for_epoch(2) == (2, 2)
    assert env.log.end_offset_for_epoch(5) == (5, 3)
    assert env.log.end_offset_for_epoch(9) == (-1, -1)


def test_epoch_cache_end_offsets_like_offsets_for_leader_epoch() -> None:
    c = LeaderEpochCache()
    for epoch, start in [(1, 0), (3, 10), (6, 25)]:
        assert c.assign(epoch, start)
    assert not c.assign(6, 30)  # already latest
    assert c.end_offset_for(1, 40) == (1, 10)
    assert c.end_offset_for(2, 40) == (1, 10)  # largest epoch <= 2 is 1, ends at 10
    assert c.end_offset_for(5, 40) == (3, 25)
    assert c.end_offset_for(6, 40) == (6, 40)
    assert c.end_offset_for(0, 40) == (0, 0)  # below every epoch
    assert c.end_offset_for(7, 40) == (-1, -1)
    c.truncate_from_end(12)
    assert [(e.epoch, e.start_offset) for e in c.entries] == [(1, 0), (3, 10)]
    c.truncate_from_start(11)
    assert [(e.epoch, e.start_offset) for e in c.entries] == [(3, 11)]
    assert c.assign(4, 11) and [(e.epoch, e.start_offset) for e in c.entries] == [(4, 11)]


def test_read_whole_batches_by_offset_and_bytes() -> None:
    env = Env()
    for i in range(6):
        env.append(bytes([65 + i]) * 100, bytes([97 + i]) * 100)  # 2 records per batch
    one = env.log.read(5, 10)  # min one batch even above max_bytes
    assert not isinstance(one, LogError) and (one.first_offset, one.next_offset) == (4, 6)
    assert one.slices[0].path == SEG0 + ".log" and one.slices[0].length == one.size
    data = env.log.read_bytes(one)
    assert isinstance(data, bytes) and RecordBatch(data).records()[1].offset == 5
    r = env.log.read(2, 3 * one.size)
    assert not isinstance(r, LogError) and (r.first_offset, r.next_offset) == (2, 8)
    r = env.log.read(2, 10 * one.size, max_offset=6)
    assert not isinstance(r, LogError) and r.next_offset == 6
    assert env.log.read(12, 100).size == 0  # the log end: empty
    bad = env.log.read(13, 100)
    assert isinstance(bad, LogError) and bad.kind == LogError.OFFSET_OUT_OF_RANGE


def test_timestamp_lookup() -> None:
    env = Env(index_interval_bytes=1)
    env.append(b"a", b"b", ts=100)  # 100, 101
    env.append(b"c", ts=90)
    env.append(b"d", b"e", ts=200)
    for target, want in [(0, (100, 0)), (101, (101, 1)), (102, (200, 3)), (201, (201, 4))]:
        got = env.log.offset_for_timestamp(target)
        assert got is not None and not isinstance(got, LogError)
        assert (got.timestamp, got.offset) == want
    assert env.log.offset_for_timestamp(202) is None
    assert env.log.offset_for_timestamp(LATEST_TIMESTAMP).offset == 5
    assert env.log.offset_for_timestamp(EARLIEST_TIMESTAMP).offset == 0


def test_rolls_by_size_and_age() -> None:
    env = Env(segment_bytes=400, segment_us=60_000_000)  # a batch here is 173 bytes
    env.append(b"x" * 100, ts=1_000)
    env.append(b"x" * 100, ts=1_000)
    env.append(b"x" * 100, ts=1_000)
    assert env.log.segment_base_offsets() == [0, 2]
    env.append(b"y", ts=1_000, now_us=1_000_000 + 59_000_000)
    assert env.log.segment_base_offsets() == [0, 2]
    env.append(b"y", ts=1_000, now_us=1_000_000 + 60_000_000)  # 60 s after the first batch
    assert env.log.segment_base_offsets() == [0, 2, 4]


def test_recovery_cuts_a_corrupt_tail_and_keeps_data_below_the_recovery_point() -> None:
    env = Env(segment_bytes=400)  # two 173-byte batches per segment
    for _ in range(3):
        env.append(b"a" * 100)
    env.append(b"b" * 20)
    env.append(b"c" * 20)
    env.host.run_all()
    assert env.log.recovery_point == 2 and env.log.segment_base_offsets() == [0, 2]
    tail = f"{D}/00000000000000000002.log"
    below = env.file(SEG0 + ".log")
    # Damage the last batch of the active segment (above the recovery point).
    data = env.file(tail)
    env.disk.pwrite(tail, len(data) - 5, bytes([data[-5] ^ 0xFF]))
    log = env.reopen()
    assert log.log_end_offset == 4
    assert [o for o, _k, _v in env.records()] == [0, 1, 2, 3]
    assert env.file(SEG0 + ".log") == below
    # Damage below the recovery point is not "repaired" by rewriting: the bytes stay.
    env.disk.pwrite(SEG0 + ".log", 70, b"\x00")
    damaged = env.file(SEG0 + ".log")
    env.reopen()
    assert env.file(SEG0 + ".log") == damaged


def test_missing_or_garbage_indexes_are_rebuilt() -> None:
    env = Env(segment_bytes=400, index_interval_bytes=100)
    for i in range(8):
        env.append(b"v" * 60, ts=5_000 + i)
    env.log.flush()
    env.host.run_all()
    idx = f"{D}/00000000000000000000.index"
    tidx = f"{D}/00000000000000000000.timeindex"
    good_idx, good_tidx = env.file(idx), env.file(tidx)
    assert good_idx and good_tidx
    env.disk.delete(idx)
    env.disk.truncate(tidx, 0)
    env.disk.append(tidx, b"\xff" * 12)
    log = env.reopen()
    assert env.file(idx) == good_idx and env.file(tidx) == good_tidx
    got = log.offset_for_timestamp(5_003)
    assert got is not None and not isinstance(got, LogError) and got.offset == 3


def test_flush_policy() -> None:
    env = Env()  # default: never fsync
    env.append(b"a")
    env.append(b"b")
    env.host.run_all()
    synced = {t[2] for t in env.host.traced if t[1] == "disk.fsync"}
    assert synced == {f"{D}/leader-epoch-checkpoint.tmp"}  # never the data
    assert env.disk.dirty_bytes(SEG0 + ".log") > 0
    env = Env(flush_messages=3)
    flushed: list = []
    env.log.set_flush_listener(flushed.append)
    env.append(b"a", b"b")
    env.host.run_all()
    assert flushed == []
    env.append(b"c")
    assert flushed == []  # completes later, as an event
    env.host.run_all()
    assert flushed == [3] and env.log.recovery_point == 3
    assert env.disk.dirty_bytes(SEG0 + ".log") == 0
    env = Env(flush_interval_us=1_000_000)
    env.log.set_flush_listener(flushed.append)
    env.append(b"a")
    assert not env.log.maybe_flush(999_999)
    assert env.log.maybe_flush(1_000_000)
    env.host.run_all()
    assert flushed[-1] == 1 and not env.log.maybe_flush(5_000_000)  # nothing new


def test_full_disk_is_an_error_value_and_the_log_stays_consistent() -> None:
    env = Env()
    env.append(b"a")
    env.disk.set_full(True)
    res = env.log.append_as_leader(build_batch([Record(b"k", b"b", (), 1)]), 0, 0)
    assert isinstance(res, LogError) and res.kind == LogError.DISK
    assert isinstance(res.disk_error, DiskError) and res.disk_error.kind == DiskError.NO_SPACE
    env.disk.set_full(False)
    env.append(b"c")
    assert env.records() == [(0, b"k", b"a"), (1, b"k", b"c")]


def test_retention_by_bytes_and_time_moves_log_start() -> None:
    env = Env(segment_bytes=150, retention_bytes=300, retention_us=None)
    for _ in range(6):
        env.append(b"x" * 80)  # one 151-byte batch per segment
    env.log.update_high_watermark(6)
    # Kafka's rule: drop the oldest while the rest still holds >= retention.bytes.
    assert env.log.apply_retention(0) == 4
    assert env.log.log_start_offset == 4 and env.log.segment_base_offsets() == [4, 5]
    env.host.run_all()
    assert env.file(f"{D}/log-start-offset-checkpoint") == b"0\n1\norders 0 4\n"
    env = Env(segment_bytes=150, retention_us=1_000_000)
    for i in range(4):
        env.append(b"x" * 80, ts=1_000 * i)
    env.log.update_high_watermark(2)  # never past the high watermark
    assert env.log.apply_retention(10_000_000) == 2
    assert env.log.log_start_offset == 2


def test_compaction_keeps_latest_per_key_and_tombstones_until_horizon() -> None:
    env = Env(segment_bytes=120, cleanup_policy="compact", delete_retention_us=5_000_000)
    env.append(b"1", key=b"a")
    env.append(b"2", key=b"b")
    env.append(b"3", key=b"a")
    env.append(None, key=b"b")  # tombstone
    env.append(b"5", key=b"c")
    env.append(b"6", key=b"d")  # active segment
    segs = env.log.segment_base_offsets()
    assert len(segs) >= 4
    env.log.flush()
    env.host.run_all()
    env.log.update_high_watermark(env.log.log_end_offset)
    unchanged = env.file(f"{D}/{segs[2]:020d}.log")
    done: list = []
    res = env.log.compact(1_000_000, done.append)
    assert res is not None and not isinstance(res, LogError)
    env.host.run_all()
    assert done == [res]
    assert [(o, k, v) for o, k, v in env.records()] == [
        (2, b"a", b"3"), (3, b"b", None), (4, b"c", b"5"), (5, b"d", b"6")]
    assert env.file(f"{D}/{segs[2]:020d}.log") == unchanged  # nothing lost: same bytes
    env.log.compact(3_000_000)  # horizon (1 s + 5 s) not reached: tombstone stays
    env.host.run_all()
    assert (3, b"b", None) in env.records()
    env.log.compact(6_000_000)
    env.host.run_all()
    assert [o for o, _k, _v in env.records()] == [2, 4, 5]
    # The compacted segments are still valid Kafka batches to kafka-python.
    whole = b"".join(env.file(f"{D}/{s:020d}.log") for s in env.log.segment_base_offsets())
    mr = MemoryRecords(whole)
    seen = []
    while mr.has_next():
        b = mr.next_batch()
        assert b.validate_crc()
        seen.extend(r.offset for r in b)
    assert seen == [2, 4, 5]
    log = env.reopen()
    assert log.log_end_offset == 6 and [o for o, _k, _v in env.records()] == [2, 4, 5]


def test_truncation_and_full_truncation() -> None:
    env = Env(segment_bytes=200)
    for i in range(6):
        env.append(b"x" * 60, epoch=i // 2)
    assert env.log.truncate_to(3) is None
    assert env.log.log_end_offset == 3 and [o for o, _k, _v in env.records()] == [0, 1, 2]
    assert [(e.epoch, e.start_offset) for e in env.log.epochs.entries] == [(0, 0), (1, 2)]
    assert env.log.truncate_fully_and_start_at(50) is None
    assert (env.log.log_start_offset, env.log.log_end_offset) == (50, 50)
    assert env.log.segment_base_offsets() == [50] and env.log.epochs.entries == []
    env.append(b"y", epoch=9)
    log = env.reopen()
    assert (log.log_start_offset, log.log_end_offset) == (50, 51)


@pytest.mark.parametrize("policy", ["compact", "compact,delete", "delete"])
def test_config_from_kafka_names(policy: str) -> None:
    cfg = LogConfig.from_kafka({"segment.bytes": "1024", "segment.ms": 60000, "retention.ms": -1,
                                "retention.bytes": "4096", "cleanup.policy": policy,
                                "flush.messages": "9223372036854775807", "flush.ms": "100",
                                "index.interval.bytes": 512, "delete.retention.ms": 10})
    assert (cfg.segment_bytes, cfg.segment_us, cfg.retention_us) == (1024, 60_000_000, None)
    assert (cfg.retention_bytes, cfg.flush_messages, cfg.flush_interval_us) == (4096, None, 100_000)
    assert cfg.index_interval_bytes == 512 and cfg.delete_retention_us == 10_000
    assert cfg.compact == ("compact" in policy) and cfg.delete == ("delete" in policy)


def test_power_loss_after_truncating_below_the_recovery_point() -> None:
    """A truncation below the recovery point must never let recovery trust bytes that
    were appended after it (and lost): the old recovery point is deleted at once."""
    env = Env(segment_bytes=400)
    env.disk = SimDisk(env.host, DiskParams(dirty_expire_us=None, torn_writes=False))
    env.log = env.open()
    for _ in range(5):
        env.append(b"a" * 100)  # two per segment: [0,1] [2,3] [4]
    env.host.run_all()
    assert env.log.recovery_point == 4
    assert env.log.truncate_to(1) is None
    for _ in range(4):
        env.append(b"b" * 100)  # unsynced: [0 old, 1 new] [2,3] [4]
    env.log.close()
    env.disk.power_loss()
    env.host.run_all()
    log = env.open()
    env.log = log
    assert log.log_end_offset == 1
    assert [(o, v) for o, _k, v in env.records()] == [(0, b"a" * 100)]


def test_min_compaction_lag_keeps_young_segments_dirty() -> None:
    env = Env(segment_bytes=120, cleanup_policy="compact", min_compaction_lag_us=10_000_000)
    env.append(b"1", key=b"a", ts=1_000)
    env.append(b"2", key=b"a", ts=1_000)
    env.append(b"3", key=b"a", ts=9_000)  # young at now = 12 s
    env.append(b"4", key=b"a", ts=9_000)
    env.log.flush()
    env.host.run_all()
    env.log.update_high_watermark(env.log.log_end_offset)
    res = env.log.compact(12_000_000)
    assert res is not None and not isinstance(res, LogError)
    assert res.cleaned_up_to == 2  # the segments from offset 2 on are too young
    env.host.run_all()
    assert [o for o, _k, _v in env.records()] == [1, 2, 3]
