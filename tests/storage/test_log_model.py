"""Property suite: the partition log against a plain in-memory model.

Hypothesis draws a config and a script of operations: appends (every codec, keys,
tombstones, headers), rolls, reads, timestamp lookups, truncations, high-watermark
moves, flushes, compactions, retention, process crashes, power losses (torn writes on
the simulated disk, cut-to-fsynced-length on real files) and reopen/recovery. After
every operation the log must show exactly the model's records; after a power loss it
must show a prefix of them that keeps everything acknowledged as flushed, and nothing
else. The same suite runs on SimDisk and on RealDisk in a temporary folder.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.records import BatchError, Compression, Record, RecordBatch, build_batch, parse_batches
from simlog.storage.config import LogConfig
from simlog.storage.log import PartitionLog
from simlog.storage.types import CompactionResult, LogError
from tests.storage.disks import WORLDS
from tests.storage.model import Model

KEYS = [None, b"a", b"b", b"c", b"d"]
DIR = "orders-0"

configs = st.builds(
    LogConfig,
    segment_bytes=st.integers(250, 2500),
    segment_us=st.sampled_from([50_000, 10**9]),
    index_interval_bytes=st.integers(1, 600),
    retention_us=st.sampled_from([None, 200_000, 2_000_000]),
    retention_bytes=st.sampled_from([None, 600, 3000]),
    cleanup_policy=st.sampled_from(["delete", "compact", "compact,delete"]),
    delete_retention_us=st.sampled_from([0, 100_000]),
    flush_messages=st.sampled_from([None, None, 3]),
)

record_specs = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.none() | st.binary(max_size=12).map(lambda b: b * 3),
        st.integers(-30, 30),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
)

# (weight, strategy) per operation; drawn by weight from one integer, so the mix does
# not depend on how hypothesis spreads draws over one_of branches.
OPS = [
    (24, st.tuples(st.just("append"), record_specs, st.sampled_from(list(Compression)),
                   st.integers(0, 3))),
    (16, st.tuples(st.just("append"), record_specs, st.just(Compression.NONE), st.just(0))),
    (8, st.tuples(st.just("hw"), st.floats(0.3, 1))),
    (5, st.tuples(st.just("flush"))),
    (5, st.tuples(st.just("settle"))),
    (4, st.tuples(st.just("roll"))),
    (6, st.tuples(st.just("read"), st.floats(0, 1), st.integers(1, 1500), st.booleans())),
    (4, st.tuples(st.just("time"), st.integers(-100, 4000))),
    (3, st.tuples(st.just("truncate"), st.floats(0, 1))),
    (1, st.tuples(st.just("truncate_fully"), st.integers(0, 5))),
    (6, st.tuples(st.just("compact"), st.booleans())),
    (5, st.tuples(st.just("retention"))),
    (5, st.tuples(st.just("tick"), st.integers(1_000, 400_000))),
    (2, st.tuples(st.just("crash"))),
    (3, st.tuples(st.just("power_loss"))),
]
_TABLE = [strategy for weight, strategy in OPS for _ in range(weight)]
ops = st.lists(
    st.integers(0, len(_TABLE) - 1).flatmap(lambda i: _TABLE[i]), min_size=25, max_size=70
)


class Run:
    """One example: a world (disk), the log under test, the model, the clock."""

    def __init__(self, world_kind: str, config: LogConfig, seed: int):
        self.world = WORLDS[world_kind](seed)
        self.config = config
        self.model = Model()
        self.now_us = 1_000_000_000  # record timestamps are near now_us // 1000
        self.epoch = 0
        self.log = self._open()

    def _open(self) -> PartitionLog:
        log = PartitionLog.open(self.world.disk, DIR, self.config, now_us=self.now_us)
        assert not isinstance(log, LogError), log
        return log

    def on_flushed(self, result: int | object) -> None:
        if isinstance(result, int):
            self.model.flushed = max(self.model.flushed, min(result, self.model.leo))

    # -- checks ---------------------------------------------------------------

    def stored(self) -> list[RecordBatch]:
        out = []
        for item in self.log.batches(self.log.log_start_offset):
            assert not isinstance(item, LogError), item
            assert item.validate() is None
            out.append(item)
        return out

    def log_records(self) -> list[tuple]:
        out = []
        for b in self.stored():
            recs = b.records()
            assert not isinstance(recs, BatchError), recs
            out.extend((r.offset, r.key, r.value, r.timestamp) for r in recs
                       if r.offset >= self.log.log_start_offset)
        return out

    def check(self) -> None:
        m, log = self.model, self.log
        assert log.log_start_offset == m.log_start
        assert log.log_end_offset == m.leo
        assert m.log_start <= log.high_watermark <= m.leo
        assert self.log_records() == m.visible()
        stored = self.stored()
        offsets = [b.base_offset for b in stored]
        assert offsets == sorted(offsets) and all(
            a.next_offset <= b.base_offset for a, b in itertools.pairwise(stored)
        )
        if not self.config.compact:
            assert [(e.epoch, e.start_offset) for e in log.epochs.entries] == m.epochs

    # -- operations -----------------------------------------------------------

    def do(self, op: tuple) -> None:
        getattr(self, "op_" + op[0])(*op[1:])

    def op_append(self, specs: list, codec: Compression, epoch_bump: int) -> None:
        self.epoch += 1 if epoch_bump == 3 else 0
        now_ms = self.now_us // 1000
        recs = [
            Record(k, v, (("h", b"1"),) if hdr else (), now_ms + jitter)
            for k, v, jitter, hdr in specs
        ]
        data = build_batch(recs, compression=codec, producer_id=1, producer_epoch=0,
                           base_sequence=self.model.leo % 1000)
        info = self.log.append_as_leader(data, self.epoch, self.now_us)
        assert not isinstance(info, LogError), info
        b = self.model.append([(r.key, r.value, r.timestamp) for r in recs], self.epoch)
        assert (info.first_offset, info.last_offset) == (b.base, b.last)
        # Stored bytes = client bytes except baseOffset and partitionLeaderEpoch.
        read = self.log.read(b.base, 1 << 20)
        stored = self.log.read_bytes(read)
        assert stored[: len(data)][21:] == data[21:] and stored[16] == 2

    def op_roll(self) -> None:
        before = self.log.segment_base_offsets()
        assert self.log.roll(self.now_us) is None
        after = self.log.segment_base_offsets()
        assert after[-1] == self.model.leo and after[:-1] == before[: len(after) - 1]

    def _pick(self, frac: float) -> int:
        lo, hi = self.model.log_start, self.model.leo
        return lo + int(frac * (hi - lo))

    def op_read(self, frac: float, max_bytes: int, to_hw: bool) -> None:
        offset = self._pick(frac)
        max_offset = self.log.high_watermark if to_hw else None
        res = self.log.read(offset, max_bytes, max_offset=max_offset)
        assert not isinstance(res, LogError), res
        data = self.log.read_bytes(res)
        batches, err = parse_batches(data)
        assert err is None and sum(b.size for b in batches) == res.size == len(data)
        end = self.model.leo if max_offset is None else min(max_offset, self.model.leo)
        want = [r for r in self.model.visible() if offset <= r[0] < end]
        if not batches:
            assert offset >= end or not want
            return
        assert len(batches) == 1 or res.size <= max_bytes
        assert batches[0].base_offset == res.first_offset
        assert batches[-1].next_offset <= res.next_offset <= self.model.leo
        assert batches[0].last_offset >= offset
        if max_offset is not None:
            assert batches[-1].base_offset < max_offset
        got = [(r.offset, r.key, r.value, r.timestamp) for b in batches for r in b.records()
               if r.offset >= offset]
        # Whole batches: the last one may reach past max_offset (it starts below it).
        assert got == [r for r in self.model.visible() if offset <= r[0] < res.next_offset]

    def op_time(self, delta_ms: int) -> None:
        target = self.now_us // 1000 - 2000 + delta_ms
        got = self.log.offset_for_timestamp(target)
        assert not isinstance(got, LogError), got
        want = self.model.first_at_or_after(target)
        assert (None if got is None else (got.timestamp, got.offset)) == want

    def op_truncate(self, frac: float) -> None:
        offset = self._pick(frac)
        if offset >= self.model.leo:
            return
        assert self.log.truncate_to(offset) is None
        self.model.truncate_to(offset)

    def op_truncate_fully(self, gap: int) -> None:
        offset = self.model.leo + gap
        assert self.log.truncate_fully_and_start_at(offset) is None
        self.model.truncate_fully(offset)

    def op_hw(self, frac: float) -> None:
        self.log.update_high_watermark(self._pick(frac))
        self.log.checkpoint_high_watermark()

    def op_flush(self) -> None:
        self.log.flush(self.on_flushed)

    def op_settle(self) -> None:
        self.world.settle()

    def op_tick(self, us: int) -> None:
        self.now_us += us
        self.log.maybe_flush(self.now_us)

    def op_compact(self, catch_up: bool) -> None:
        if catch_up:  # as on a healthy leader: replicated, rolled segments flushed
            self.log.update_high_watermark(self.model.leo)
            self.world.settle()
        done: list = []
        res = self.log.compact(self.now_us, done.append)
        if not self.config.compact:
            assert res is None
            return
        if res is None:
            return
        assert isinstance(res, CompactionResult), res
        assert res.cleaned_up_to in self.log.segment_base_offsets()
        assert res.cleaned_up_to <= min(self.log.high_watermark, self.log.recovery_point)
        self.world.settle()
        if res.segments_rewritten:
            assert done == [res]
        self.model.compact(res.cleaned_up_to, self.now_us // 1000,
                           self.config.delete_retention_us // 1000)
        # Batches that lost every record vanish, except a segment's last batch.
        bases = {b.base_offset for b in self.stored()}
        self.model.batches = [b for b in self.model.batches
                              if b.records or b.base in bases or b.last < self.model.log_start]

    def op_retention(self) -> None:
        cfg, log = self.config, self.log
        segs = log.segment_info()
        hw, total, expect = log.high_watermark, log.size_bytes, 0
        for (_base, size, max_ts), (nxt, _s, _t) in itertools.pairwise(segs):
            ok = nxt <= log.log_start_offset or (cfg.delete and nxt <= hw and (
                (cfg.retention_us is not None and self.now_us - max_ts * 1000 > cfg.retention_us)
                or (cfg.retention_bytes is not None and total - size >= cfg.retention_bytes)))
            if not ok:
                break
            total -= size
            expect += 1
        assert log.apply_retention(self.now_us) == expect
        assert log.segment_base_offsets() == [s[0] for s in segs[expect:]]
        if expect:
            self.model.move_log_start(segs[expect][0])

    def _reopen(self) -> None:
        self.log = self._open()

    def op_crash(self) -> None:
        self.log.close()
        self.world.crash()
        self._reopen()
        assert self.log.recovery_point <= self.model.leo

    def op_power_loss(self) -> None:
        self.log.close()
        self.world.power_loss()
        self._reopen()
        leo = self.log.log_end_offset
        m = self.model
        assert m.flushed <= leo <= m.leo, (m.flushed, leo, m.leo)
        assert self.log_records() == m.visible(leo)
        m.cut_to(leo)
        m.flushed = leo  # what survived a power loss is durable


def run_script(world_kind: str, config: LogConfig, script: list, seed: int) -> None:
    run = Run(world_kind, config, seed)
    try:
        run.check()
        for i, op in enumerate(script):
            try:
                run.do(op)
                run.check()
            except AssertionError as exc:
                exc.add_note(f"at operation {i}: {op!r}; segments {run.log.segment_info()}")
                raise
        # The end: a clean restart shows the same log.
        run.op_crash()
        run.check()
    finally:
        run.log.close()
        run.world.close()


# The default run keeps the suite quick (real files pay for real fsyncs); the slow
# variants search much longer: `pytest -m slow tests/storage`.
@settings(max_examples=25)
@given(config=configs, script=ops, seed=st.integers(0, 2**16))
def test_log_matches_model_on_simulated_disk(config: LogConfig, script: list, seed: int) -> None:
    run_script("sim", config, script, seed)


@settings(max_examples=10)
@given(config=configs, script=ops, seed=st.integers(0, 2**16))
def test_log_matches_model_on_real_files(config: LogConfig, script: list, seed: int) -> None:
    run_script("real", config, script, seed)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("world_kind", "examples"), [("sim", 1000), ("real", 150)])
def test_log_matches_model_long(world_kind: str, examples: int) -> None:
    @settings(max_examples=examples, derandomize=False)
    @given(config=configs, script=ops, seed=st.integers(0, 2**16))
    def run(config: LogConfig, script: list, seed: int) -> None:
        run_script(world_kind, config, script, seed)

    run()
