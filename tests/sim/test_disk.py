"""SimDisk: page cache vs durable image, fsync cost and ordering, writeback, power loss
with torn prefixes, metadata durability, full and slow disks, corruption, LRU costs."""

from __future__ import annotations

import random

import crc32c
from hypothesis import given
from hypothesis import strategies as st

from simlog.runtime import Disk, DiskError
from simlog.sim.disk import ManualDiskHost, SimDisk
from simlog.sim.params import KIB, MIB, DiskParams


def make(**kw) -> tuple[SimDisk, ManualDiskHost]:
    host = ManualDiskHost()
    return SimDisk(host, DiskParams(**kw), random.Random(7)), host


def test_implements_runtime_disk() -> None:
    disk, _ = make()
    assert isinstance(disk, Disk)


def test_written_bytes_readable_at_once_not_durable_until_fsync() -> None:
    disk, host = make()
    assert disk.append("a.log", b"hello") == 0
    assert disk.append("a.log", b" world") == 5
    assert disk.read("a.log", 0, 100) == b"hello world"
    assert disk.durable_bytes("a.log") == b""
    done: list[object] = []
    disk.fsync("a.log", done.append)
    assert done == []  # never re-entrant
    host.run_all()
    assert done == [None]
    assert disk.durable_bytes("a.log") == b"hello world"


def test_fsync_cost_is_latency_plus_bytes_over_bandwidth_serialised() -> None:
    disk, host = make(fsync_latency_us=1_000, write_bytes_per_s=1 * MIB)
    disk.append("a", bytes(512 * KIB))
    disk.append("b", bytes(0))
    times: list[int] = []
    disk.fsync("a", lambda e: times.append(host.time_us))
    disk.fsync("b", lambda e: times.append(host.time_us))  # queued behind "a"
    host.run_all()
    assert times == [1_000 + 500_000, 1_000 + 500_000 + 1_000]


def test_fsync_covers_only_writes_issued_before_it() -> None:
    disk, host = make(dirty_expire_us=None)
    disk.append("a", b"one")
    disk.fsync("a", lambda e: None)
    disk.append("a", b"two")  # after the fsync was issued
    host.run_all()
    assert disk.durable_bytes("a") == b"one"
    assert disk.dirty_bytes("a") == 3


def test_writeback_makes_old_dirty_data_durable() -> None:
    disk, host = make(dirty_expire_us=30_000_000)
    disk.append("a", b"old")
    host.advance(20_000_000)
    disk.append("a", b"new")
    host.advance(10_000_000)
    assert disk.durable_bytes("a") == b"old"
    host.advance(20_000_000)
    assert disk.durable_bytes("a") == b"oldnew"


def test_writeback_disabled_keeps_everything_dirty() -> None:
    disk, host = make(dirty_expire_us=None)
    disk.append("a", b"x" * 10)
    host.advance(3_600_000_000)
    assert disk.durable_bytes("a") == b""


def test_power_loss_drops_unsynced_keeps_synced() -> None:
    disk, host = make(torn_writes=False)
    disk.append("a", b"synced")
    disk.fsync("a", lambda e: None)
    host.run_all()
    disk.append("a", b"-lost")
    disk.append("b", b"lost too")
    assert disk.power_loss() == 0
    assert disk.read("a", 0, 100) == b"synced"
    assert disk.read("b", 0, 100) == b""  # created (metadata durable), contents lost
    assert disk.exists("b")


def test_power_loss_cancels_fsync_in_flight() -> None:
    disk, host = make(torn_writes=False)
    disk.append("a", b"data")
    done: list[object] = []
    disk.fsync("a", done.append)
    disk.power_loss()
    host.run_all()
    assert done == []
    assert disk.read("a", 0, 10) == b""


def test_issued_fsync_completes_durability_without_callback_running() -> None:
    # The node crashed (its callback is never run), but the kernel finishes the flush.
    disk, host = make(torn_writes=False)
    disk.append("a", b"data")
    disk.fsync("a", lambda e: None)
    host._heap.clear()  # the World drops the callback of a crashed node
    host.advance(1_000_000)
    disk.power_loss()
    assert disk.read("a", 0, 10) == b"data"


@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=8),
       st.integers(0, 2**32))
def test_torn_power_loss_keeps_a_prefix_of_writes_in_order(chunks, seed) -> None:
    host = ManualDiskHost()
    disk = SimDisk(host, DiskParams(torn_writes=True), random.Random(seed))
    disk.append("a", b"")
    disk.append("b", b"")
    for i, c in enumerate(chunks):
        disk.append("ab"[i % 2], c)
    kept = disk.power_loss()
    assert 0 <= kept <= sum(map(len, chunks))
    # writes reach the platter in order: the first `kept` bytes of the write stream
    expect = {"a": b"", "b": b""}
    left = kept
    for i, c in enumerate(chunks):
        expect["ab"[i % 2]] += c[:max(0, left)]
        left -= len(c)
    assert disk.read("a", 0, 1000) == expect["a"]
    assert disk.read("b", 0, 1000) == expect["b"]


def test_torn_power_loss_cuts_mid_write_for_some_seed() -> None:
    torn = 0
    for seed in range(20):
        host = ManualDiskHost()
        disk = SimDisk(host, DiskParams(torn_writes=True), random.Random(seed))
        disk.append("a", b"x" * 100)
        disk.append("a", b"y" * 100)
        kept = disk.power_loss()
        assert disk.read("a", 0, 1000) == (b"x" * 100 + b"y" * 100)[:kept]
        torn += kept not in (0, 100, 200)
    assert torn > 10


def test_metadata_ops_durable_on_return() -> None:
    disk, host = make(torn_writes=False)
    disk.append("tmp", b"checkpoint")
    disk.fsync("tmp", lambda e: None)
    host.run_all()
    assert disk.rename("tmp", "cp") is None
    disk.append("big", b"0123456789")
    disk.fsync("big", lambda e: None)
    host.run_all()
    assert disk.truncate("big", 4) is None
    disk.append("gone", b"z")
    assert disk.delete("gone") is None
    disk.power_loss()
    assert disk.list() == ["big", "cp"]
    assert disk.read("cp", 0, 100) == b"checkpoint"
    assert disk.read("big", 0, 100) == b"0123"


def test_truncate_clips_pending_writes() -> None:
    disk, host = make(torn_writes=True)
    disk.append("a", b"abcdef")
    disk.truncate("a", 2)
    disk.append("a", b"XY")
    disk.fsync("a", lambda e: None)
    host.run_all()
    assert disk.durable_bytes("a") == b"abXY"


def test_pwrite_extends_with_zeros_and_overwrites() -> None:
    disk, host = make()
    assert disk.pwrite("i", 4, b"ab") is None
    assert disk.read("i", 0, 10) == b"\0\0\0\0ab"
    disk.pwrite("i", 0, b"zz")
    disk.fsync("i", lambda e: None)
    host.run_all()
    assert disk.durable_bytes("i") == b"zz\0\0ab"


def test_errors_are_values() -> None:
    disk, host = make()
    assert isinstance(disk.read("nope", 0, 1), DiskError)
    assert disk.size("nope").kind == DiskError.NOT_FOUND
    assert disk.rename("nope", "x").kind == DiskError.NOT_FOUND
    got: list[object] = []
    disk.fsync("nope", got.append)
    host.run_all()
    assert got[0].kind == DiskError.NOT_FOUND


def test_full_disk_fails_writes_then_recovers() -> None:
    disk, _ = make()
    disk.append("a", b"x")
    disk.set_full(True)
    err = disk.append("a", b"y")
    assert isinstance(err, DiskError) and err.kind == DiskError.NO_SPACE
    assert disk.pwrite("a", 5, b"z").kind == DiskError.NO_SPACE
    assert disk.pwrite("a", 0, b"q") is None  # overwrite in place needs no space
    assert disk.read("a", 0, 10) == b"q"
    disk.set_full(False)
    assert disk.append("a", b"y") == 1


def test_capacity_limit() -> None:
    disk, _ = make(capacity_bytes=10)
    assert disk.append("a", b"x" * 8) == 0
    assert disk.append("a", b"x" * 3).kind == DiskError.NO_SPACE
    disk.truncate("a", 0)
    assert disk.append("a", b"x" * 10) == 0


def test_slow_disk_multiplies_fsync_time() -> None:
    def fsync_time(factor: float) -> int:
        disk, host = make(fsync_latency_us=2_000, write_bytes_per_s=100 * MIB)
        disk.set_slow(factor)
        disk.append("a", bytes(MIB))
        t: list[int] = []
        disk.fsync("a", lambda e: t.append(host.time_us))
        host.run_all()
        return t[0]
    assert fsync_time(10) == 10 * fsync_time(1)


def test_corruption_is_caught_by_checksum() -> None:
    disk, host = make()
    payload = b"record-payload" * 10
    disk.append("seg", crc32c.crc32c(payload).to_bytes(4, "big") + payload)
    disk.fsync("seg", lambda e: None)
    host.run_all()
    positions = disk.corrupt("seg", 3)
    assert len(positions) == 3
    data = disk.read("seg", 0, 1000)
    assert crc32c.crc32c(data[4:]) != int.from_bytes(data[:4], "big")
    disk.power_loss()  # the durable image is corrupt too
    data = disk.read("seg", 0, 1000)
    assert crc32c.crc32c(data[4:]) != int.from_bytes(data[:4], "big")


def test_page_cache_writes_cost_memory_bandwidth_exactly() -> None:
    disk, host = make(memory_bytes_per_s=1 * MIB)
    for _ in range(1024):
        disk.append("a", bytes(1024))  # 1 KiB each: under 1 µs, but it adds up
    assert host.busy_us == 1_000_000


def test_bounded_page_cache_read_misses_cost_read_bandwidth() -> None:
    disk, host = make(page_cache_bytes=128 * KIB, page_chunk_bytes=64 * KIB,
                      read_bytes_per_s=1 * MIB, memory_bytes_per_s=1024 * MIB)
    disk.append("a", bytes(256 * KIB))  # only the last 128 KiB stay cached
    host.busy_us = 0
    disk.read("a", 128 * KIB, 128 * KIB)  # hit
    hit_us = host.busy_us
    disk.read("a", 0, 128 * KIB)  # miss: 128 KiB at 1 MiB/s
    assert hit_us < 1_000
    assert host.busy_us - hit_us >= 125_000
    assert disk.stats["read_miss_bytes"] == 128 * KIB


def test_trace_records_disk_ops() -> None:
    disk, host = make()
    disk.append("a", b"abc")
    disk.fsync("a", lambda e: None)
    host.run_all()
    kinds = [t[1] for t in host.traced]
    assert kinds == ["disk.append", "disk.fsync", "disk.fsync_done"]


# ---------------------------------------------------------------- model-based


PATHS = ["a", "b", "c"]
OPS = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(PATHS), st.binary(max_size=12)),
    st.tuples(st.just("pwrite"), st.sampled_from(PATHS), st.integers(0, 30),
              st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.sampled_from(PATHS), st.integers(0, 30)),
    st.tuples(st.just("rename"), st.sampled_from(PATHS), st.sampled_from(PATHS)),
    st.tuples(st.just("delete"), st.sampled_from(PATHS)),
    st.tuples(st.just("sync"), st.sampled_from(PATHS)),
    st.tuples(st.just("power_loss")),
)


@given(st.lists(OPS, max_size=40))
def test_disk_matches_a_whole_file_reference_model(ops) -> None:
    """Page cache and durable image agree with a naive model that copies whole files:
    sync copies cache to durable; power loss copies durable back; metadata is durable."""
    disk, host = make(dirty_expire_us=None, torn_writes=False)
    cache: dict[str, bytes] = {}
    durable: dict[str, bytes] = {}
    for op in ops:
        kind, path = op[0], (op[1] if len(op) > 1 else None)
        if kind == "append":
            assert disk.append(path, op[2]) == len(cache.get(path, b""))
            cache[path] = cache.get(path, b"") + op[2]
            durable.setdefault(path, b"")
        elif kind == "pwrite":
            off, data = op[2], op[3]
            assert disk.pwrite(path, off, data) is None
            old = cache.get(path, b"")
            old = old + bytes(max(0, off - len(old)))
            cache[path] = old[:off] + data + old[off + len(data):]
            durable.setdefault(path, b"")
        elif kind == "truncate":
            err = disk.truncate(path, op[2])
            if path not in cache:
                assert err.kind == DiskError.NOT_FOUND
            else:
                cache[path] = cache[path][:op[2]]
                durable[path] = durable[path][:op[2]]
        elif kind == "rename":
            err = disk.rename(path, op[2])
            if path not in cache:
                assert err.kind == DiskError.NOT_FOUND
            elif path != op[2]:
                cache[op[2]] = cache.pop(path)
                durable[op[2]] = durable.pop(path)
        elif kind == "delete":
            err = disk.delete(path)
            if path not in cache:
                assert err.kind == DiskError.NOT_FOUND
            else:
                del cache[path], durable[path]
        elif kind == "sync":
            disk.fsync(path, lambda e: None)
            host.run_all()
            if path in cache:
                durable[path] = cache[path]
        elif kind == "power_loss":
            disk.power_loss()
            cache = dict(durable)
        assert disk.list() == sorted(cache)
        for p in cache:
            assert disk.read(p, 0, 1000) == cache[p]
            assert disk.durable_bytes(p) == durable[p]


ASYNC_OPS = st.one_of(
    OPS,
    st.tuples(st.just("fsync_issue"), st.sampled_from(PATHS)),
    st.tuples(st.just("run")),
)


@given(st.lists(ASYNC_OPS, max_size=50))
def test_disk_with_fsyncs_in_flight_matches_snapshot_model(ops) -> None:
    """An fsync makes durable exactly what the file held when it was issued (cut by
    later truncates), however writes, overwrites, renames and power losses
    interleave with its completion. Exercises shared and split durable images."""
    disk, host = make(dirty_expire_us=None, torn_writes=False)
    cache: dict[str, bytes] = {}
    durable: dict[str, bytes] = {}
    ident: dict[str, int] = {}  # path -> file identity (renames move it)
    inflight: list[list] = []  # [identity, snapshot] in issue order
    next_id = [0]

    def new_file(path: str) -> None:
        if path not in cache:
            next_id[0] += 1
            ident[path] = next_id[0]
            cache[path] = b""
            durable[path] = b""

    for op in ops:
        kind = op[0]
        if kind == "append":
            new_file(op[1])
            disk.append(op[1], op[2])
            cache[op[1]] += op[2]
        elif kind == "pwrite":
            new_file(op[1])
            disk.pwrite(op[1], op[2], op[3])
            old = cache[op[1]] + bytes(max(0, op[2] - len(cache[op[1]])))
            cache[op[1]] = old[:op[2]] + op[3] + old[op[2] + len(op[3]):]
        elif kind == "truncate":
            disk.truncate(op[1], op[2])
            if op[1] in cache:
                cache[op[1]] = cache[op[1]][:op[2]]
                durable[op[1]] = durable[op[1]][:op[2]]
                for item in inflight:
                    if item[0] == ident[op[1]]:
                        item[1] = item[1][:op[2]]
        elif kind == "rename":
            disk.rename(op[1], op[2])
            if op[1] in cache and op[1] != op[2]:
                for m in (cache, durable, ident):
                    m[op[2]] = m.pop(op[1])
        elif kind == "delete":
            disk.delete(op[1])
            if op[1] in cache:
                del cache[op[1]], durable[op[1]], ident[op[1]]
        elif kind in ("sync", "fsync_issue"):
            disk.fsync(op[1], lambda e: None)
            if op[1] in cache:
                inflight.append([ident[op[1]], cache[op[1]]])
            if kind == "sync":
                kind = "run"
        if kind == "run":
            host.run_all()
            by_ident = {i: p for p, i in ident.items()}
            for i, snap in inflight:
                if i in by_ident:
                    durable[by_ident[i]] = snap
            inflight.clear()
        elif kind == "power_loss":
            disk.power_loss()
            inflight.clear()
            cache = dict(durable)
        assert disk.list() == sorted(cache)
        for p in cache:
            assert disk.read(p, 0, 1000) == cache[p]
            assert disk.durable_bytes(p) == durable[p]


def test_append_only_log_holds_its_bytes_once() -> None:
    disk, host = make(dirty_expire_us=1_000)
    for _ in range(100):
        disk.append("log", b"x" * 100)
    disk.fsync("log", lambda e: None)
    host.run_all()
    f = disk._files["log"]
    assert f.durable is None and f.durable_len == 10_000  # shared with the page cache
    disk.pwrite("log", 0, b"y")  # overwrite durable bytes: the images diverge
    assert f.durable is not None and disk.durable_bytes("log")[:1] == b"x"
    host.advance(2_000)  # writeback: nothing pending, shared again
    assert disk.durable_bytes("log")[:1] == b"y" and f.durable is None
