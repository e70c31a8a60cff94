"""PartitionLog: one partition's segmented log over a `runtime.Disk`.

Layout of a partition directory `dir` (Kafka's names and formats):
    dir/00000000000000000000.log        batches, stored exactly as appended
    dir/00000000000000000000.index      sparse offset index: (last offset - base) i32,
                                        position i32; an entry per index_interval_bytes
    dir/00000000000000000000.timeindex  (max timestamp so far i64, relative offset i32)
    dir/leader-epoch-checkpoint         "0\\n<n>\\n<epoch> <start offset>\\n..."
    dir/recovery-point-offset-checkpoint, dir/replication-offset-checkpoint (the high
    watermark), dir/log-start-offset-checkpoint: "0\\n1\\n<topic> <partition> <offset>\\n"
    (Kafka keeps these per log directory; we keep one per partition directory.)

Invariants:
- Offsets in the log increase strictly; segments are ordered by base offset and each
  holds offsets in [base, next segment's base). Compaction may leave gaps; reads skip
  them.
- Append patches only baseOffset and partitionLeaderEpoch of each batch (outside the
  CRC); records are never re-encoded. Only compaction writes new batches.
- Stored bytes below the recovery point are never rewritten by recovery. Batches at or
  above it are CRC-checked on open and the log is cut at the first bad one.
- Page-cache writes are visible at once; durability needs fsync, which completes later
  through a callback. Rolled segments are fsynced when they roll (as Kafka does);
  otherwise only flush.messages / flush.ms force an fsync (default: never).
- Timestamps of records are Kafka's (ms); the caller's clock (`now_us`) is µs.

Checkpoint files are written as tmp + fsync + rename (rename is durable on return),
so a crash leaves either the old or the new whole file, never a torn one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from simlog.records.batch import (
    BatchError,
    BatchHeader,
    RecordBatch,
    iter_batches,
    set_base_offset,
    set_partition_leader_epoch,
)
from simlog.runtime import Disk, DiskError, FileSlice
from simlog.storage.checkpoint import (
    CheckpointFile,
    format_epochs,
    format_offsets,
    parse_epochs,
    parse_offsets,
    read_file,
)
from simlog.storage.cleaner import filter_batch
from simlog.storage.config import LogConfig
from simlog.storage.epoch_cache import EpochEntry, LeaderEpochCache
from simlog.storage.segment import LogSegment, parse_segment_name, rel_fits
from simlog.storage.types import (
    AppendInfo,
    CompactionResult,
    LogError,
    LogRead,
    TimestampOffset,
)

FlushCallback = Callable[[int | DiskError], None]
"""on_done of a flush: the offset now durable (every offset below it), or the error."""

RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
HIGH_WATERMARK_FILE = "replication-offset-checkpoint"
LOG_START_FILE = "log-start-offset-checkpoint"
LEADER_EPOCH_FILE = "leader-epoch-checkpoint"

LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2


class PartitionLog:
    """One partition's log. Build with `PartitionLog.open`, never directly."""

    def __init__(self, disk: Disk, dir: str, config: LogConfig, topic: str, partition: int):
        self.disk = disk
        self.dir = dir
        self.config = config
        self.topic = topic
        self.partition = partition
        self._segments: list[LogSegment] = []
        self._log_start = 0
        self._hw = 0
        self._rp = 0
        self._epochs = LeaderEpochCache()
        self._ckpt_rp = CheckpointFile(disk, f"{dir}/{RECOVERY_POINT_FILE}")
        self._ckpt_hw = CheckpointFile(disk, f"{dir}/{HIGH_WATERMARK_FILE}")
        self._ckpt_start = CheckpointFile(disk, f"{dir}/{LOG_START_FILE}")
        self._ckpt_epochs = CheckpointFile(disk, f"{dir}/{LEADER_EPOCH_FILE}")
        self._generation = 0  # bumped by every truncation: stale fsync results are ignored
        self._truncated_to: list[int] = []  # log end after truncation number i+1
        self._unflushed_records = 0
        self._last_flush_us = 0
        self._last_now_us = 0
        self._flush_listener: FlushCallback | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        disk: Disk,
        dir: str,
        config: LogConfig,
        *,
        now_us: int,
        topic: str = "",
        partition: int = 0,
    ) -> PartitionLog | LogError:
        """Open (creating if empty) and recover the log in dir.

        Recovery: read the checkpoints (a missing or garbled one counts as absent);
        discard leftovers of an interrupted compaction or checkpoint write; load
        indexes of segments below the recovery point, rebuilding any that are missing
        or fail a sanity check; CRC-check every batch from the recovery point on,
        cutting the log at the first bad or torn batch (or a segment that ends short
        of the next one) and deleting later segments; re-assign leader epochs from
        the recovered batches; clamp the high watermark to [log start, log end].
        topic/partition only label the checkpoint files (default: parsed from dir,
        Kafka style "topic-partition").
        """
        if not topic:
            name = dir.rsplit("/", 1)[-1]
            t, dash, p = name.rpartition("-")
            topic, partition = (t, int(p)) if dash and p.isdigit() else (name, partition)
        log = cls(disk, dir, config, topic, partition)
        log._last_now_us = log._last_flush_us = now_us
        err = log._recover(now_us)
        if err is not None:
            return err
        return log

    def close(self) -> None:
        """Forget pending fsync completions (the node is going away)."""
        self._closed = True
        for c in (self._ckpt_rp, self._ckpt_hw, self._ckpt_start, self._ckpt_epochs):
            c.dead = True

    def set_flush_listener(self, listener: FlushCallback | None) -> None:
        """listener(offset | DiskError) runs when a flush the log started itself
        (flush.messages, flush.ms via maybe_flush) completes."""
        self._flush_listener = listener

    def _recover(self, now_us: int) -> LogError | None:
        disk, d = self.disk, self.dir
        prefix = d + "/"
        names = sorted(p[len(prefix) :] for p in disk.list(prefix) if "/" not in p[len(prefix) :])
        for name in names:
            if name.endswith((".cleaned", ".tmp")):
                disk.delete(prefix + name)
        parsed = [(parse_segment_name(n), n) for n in names]
        bases = sorted({ps[0] for ps, _n in parsed if ps is not None and ps[1] == ".log"})
        for ps, n in parsed:
            if ps is not None and ps[1] in (".index", ".timeindex") and ps[0] not in bases:
                disk.delete(prefix + n)
        rp = _read_offset(disk, self._ckpt_rp.path)
        start = _read_offset(disk, self._ckpt_start.path)
        hw = _read_offset(disk, self._ckpt_hw.path)
        edata = read_file(disk, self._ckpt_epochs.path)
        saved_epochs = parse_epochs(edata) if edata is not None else None
        interval = self.config.index_interval_bytes

        segments: list[LogSegment] = []
        recovered: list[tuple[int, int]] = []  # (epoch, base offset) of batches >= rp
        for i, base in enumerate(bases):
            seg = LogSegment(disk, d, base, now_us)
            nxt = bases[i + 1] if i + 1 < len(bases) else None
            below = nxt is not None and nxt <= rp
            if below and seg.load_trusted(nxt):
                segments.append(seg)
                continue
            res = seg.recover(_NEVER if below else rp, interval)
            if isinstance(res, DiskError):
                return LogError.disk(res)
            kept, error = res
            recovered.extend((h.partition_leader_epoch, h.base_offset) for h in kept)
            seg.dirty = not below
            segments.append(seg)
            if error is not None or (nxt is not None and seg.next_offset != nxt):
                for later in bases[i + 1 :]:
                    LogSegment(disk, d, later).delete()
                break
        if not segments:
            seg_or_err = LogSegment.create(disk, d, start, now_us)
            if isinstance(seg_or_err, DiskError):
                return LogError.disk(seg_or_err)
            segments.append(seg_or_err)
        self._segments = segments
        leo = segments[-1].next_offset
        self._log_start = min(max(start, segments[0].base_offset), leo)
        self._rp = min(rp, leo)
        self._hw = min(max(hw, self._log_start), leo)

        if saved_epochs is None:
            recovered = []
            for seg in segments:
                for item in seg.iter_batches():
                    if isinstance(item, BatchError):
                        break
                    recovered.append((item.partition_leader_epoch, item.base_offset))
        self._epochs = LeaderEpochCache(
            [EpochEntry(e, o) for e, o in (saved_epochs or [])]
        )
        for epoch, base in recovered:
            # As Kafka's LogSegment.recover: only epochs newer than the cache's latest.
            if epoch > self._epochs.latest_epoch:
                self._epochs.assign(epoch, base)
        self._epochs.truncate_from_start(self._log_start)
        self._epochs.truncate_from_end(leo)
        if saved_epochs != [(e.epoch, e.start_offset) for e in self._epochs.entries]:
            self._write_epochs(removed=True)
        return None

    # -- state -------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        """First offset that may still be read (moves with retention / DeleteRecords)."""
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        """Offset the next appended record gets (LEO)."""
        return self._segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        """As last set by `update_high_watermark` (or restored from its checkpoint)."""
        return self._hw

    @property
    def recovery_point(self) -> int:
        """Every offset below it is durable (fsynced)."""
        return self._rp

    @property
    def size_bytes(self) -> int:
        """Total bytes of all .log files."""
        return sum(s.size for s in self._segments)

    def segment_base_offsets(self) -> list[int]:
        """Base offsets of the segments, ascending; the last is the active segment."""
        return [s.base_offset for s in self._segments]

    def segment_info(self) -> list[tuple[int, int, int]]:
        """(base offset, size in bytes, largest timestamp in ms or -1) per segment."""
        return [(s.base_offset, s.size, s.max_timestamp) for s in self._segments]

    @property
    def epochs(self) -> LeaderEpochCache:
        """The leader-epoch cache (read it; change it through the log's methods)."""
        return self._epochs

    # -- append --------------------------------------------------------------------

    def append_as_leader(self, data: bytes, leader_epoch: int, now_us: int) -> AppendInfo | LogError:
        """Append one or more concatenated producer batches as the leader.

        Each batch is validated (magic 2, lengths, CRC-32C, record count), then gets
        the next offsets (its baseOffset is overwritten) and partitionLeaderEpoch =
        leader_epoch; nothing else changes. The epoch cache learns leader_epoch ->
        first offset if it is new. Rolls first if the active segment is full or old.
        All-or-nothing: one bad batch rejects the whole call (CORRUPT, naming it).
        """
        parsed = self._validate(data)
        if isinstance(parsed, LogError):
            return parsed
        buf = bytearray(data)
        headers: list[tuple[int, BatchHeader]] = []
        next_offset = self.log_end_offset
        for batch, rel in parsed:
            h = batch.header
            if h.records_count != h.last_offset_delta + 1:
                return LogError(
                    LogError.CORRUPT,
                    f"batch at position {rel}: {h.records_count} records but last offset "
                    f"delta {h.last_offset_delta}",
                    h.base_offset,
                )
            set_base_offset(buf, next_offset, rel)
            set_partition_leader_epoch(buf, leader_epoch, rel)
            headers.append((rel, BatchHeader(
                next_offset, h.batch_length, leader_epoch, h.magic, h.crc, h.attributes,
                h.last_offset_delta, h.base_timestamp, h.max_timestamp, h.producer_id,
                h.producer_epoch, h.base_sequence, h.records_count,
            )))
            next_offset += h.last_offset_delta + 1
        if leader_epoch >= 0 and leader_epoch > self._epochs.latest_epoch:
            self.assign_epoch(leader_epoch, self.log_end_offset)
        return self._append(bytes(buf), headers, now_us)

    def append_as_follower(self, data: bytes, now_us: int) -> AppendInfo | LogError:
        """Append batches fetched from the leader, offsets and epochs as given.

        The first base offset must be >= the log end (INVALID_OFFSET otherwise: the
        caller truncates first; above it leaves a gap, as compacted leaders may);
        offsets must increase. Each batch's partitionLeaderEpoch is assigned in the
        epoch cache.
        """
        parsed = self._validate(data)
        if isinstance(parsed, LogError):
            return parsed
        expected = self.log_end_offset
        headers: list[tuple[int, BatchHeader]] = []
        for batch, rel in parsed:
            if batch.base_offset < expected:
                return LogError(
                    LogError.INVALID_OFFSET,
                    f"batch base offset {batch.base_offset} below expected {expected}",
                    batch.base_offset,
                )
            expected = batch.next_offset
            headers.append((rel, batch.header))
        changed = False
        for _rel, h in headers:
            if h.partition_leader_epoch > self._epochs.latest_epoch:
                changed |= self._epochs.assign(h.partition_leader_epoch, h.base_offset)
        if changed:
            self._write_epochs()
        return self._append(data if isinstance(data, bytes) else bytes(data), headers, now_us)

    def _validate(self, data: bytes) -> list[tuple[RecordBatch, int]] | LogError:
        out: list[tuple[RecordBatch, int]] = []
        for item in iter_batches(data, validate=True):
            if isinstance(item, BatchError):
                return LogError(LogError.CORRUPT, str(item), item.offset)
            if item.size > self.config.max_message_bytes:
                return LogError(
                    LogError.TOO_LARGE,
                    f"batch of {item.size} bytes above max.message.bytes "
                    f"{self.config.max_message_bytes}",
                    item.base_offset,
                )
            out.append((item, item.position))
        if not out:
            return LogError(LogError.CORRUPT, "no record batch in the data", -1)
        return out

    def _append(
        self, data: bytes, headers: list[tuple[int, BatchHeader]], now_us: int
    ) -> AppendInfo | LogError:
        self._last_now_us = now_us
        seg = self._segments[-1]
        first = headers[0][1].base_offset
        last = headers[-1][1].last_offset
        if seg.size > 0 and (
            seg.size + len(data) > self.config.segment_bytes
            or self._segment_aged(seg, now_us)
            or not rel_fits(seg, last)
        ):
            # The new segment starts at the log end even if a follower's batch starts
            # later (a compacted leader's gap): segments stay contiguous.
            err = self._roll(now_us, self.log_end_offset)
            if err is not None:
                return err
            seg = self._segments[-1]
        elif seg.size == 0 and (seg.base_offset > first or not rel_fits(seg, last)):
            # An empty active segment that cannot hold these offsets: replace it.
            seg.delete()
            new = LogSegment.create(self.disk, self.dir, first, now_us)
            if isinstance(new, DiskError):
                return LogError.disk(new)
            self._segments[-1] = new
            seg = new
        err = seg.append(data, headers, self.config.index_interval_bytes)
        if err is not None:
            return LogError.disk(err)
        max_ts, max_ts_offset, records = -1, -1, 0
        for _rel, h in headers:
            records += h.records_count
            if h.max_timestamp > max_ts:
                max_ts, max_ts_offset = h.max_timestamp, h.last_offset
        self._unflushed_records += records
        fm = self.config.flush_messages
        if fm is not None and self._unflushed_records >= fm:
            self.flush(self._flush_listener)
        return AppendInfo(
            first_offset=first,
            last_offset=last,
            max_timestamp=max_ts,
            offset_of_max_timestamp=max_ts_offset,
            num_batches=len(headers),
            num_records=records,
            size_bytes=len(data),
            log_start_offset=self._log_start,
        )

    def _segment_aged(self, seg: LogSegment, now_us: int) -> bool:
        started_us = seg.rolling_timestamp * 1000 if seg.rolling_timestamp >= 0 else seg.created_us
        return now_us - started_us >= self.config.segment_us

    # -- read ----------------------------------------------------------------------

    def read(
        self,
        offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> LogRead | LogError:
        """Whole stored batches from the one holding offset, up to max_bytes.

        max_offset (exclusive; e.g. the high watermark for consumers) stops before the
        first batch whose base offset is >= it. With min_one_batch the first batch is
        returned even if larger than max_bytes (Kafka's KIP-74 rule). offset ==
        log end gives an empty read; outside [log start, log end] is
        OFFSET_OUT_OF_RANGE. Reads one segment at a time, as Kafka does.
        """
        leo = self.log_end_offset
        if offset < self._log_start or offset > leo:
            return LogError(
                LogError.OFFSET_OUT_OF_RANGE,
                f"offset {offset} outside [{self._log_start}, {leo}]",
                offset,
            )
        empty = LogRead((), 0, offset, offset, self._log_start, leo, self._hw)
        if offset == leo or (max_offset is not None and offset >= max_offset):
            return empty
        i = max(0, bisect.bisect_right(self.segment_base_offsets(), offset) - 1)
        for seg in self._segments[i:]:
            start_pos, first = seg.find(offset)
            if first is None:
                continue
            # Whole batches up to the furthest index entry that fits come without a
            # header scan (Kafka's fetch likewise trusts the index); then scan on.
            total, next_offset = 0, first
            scan_from = start_pos
            jump = seg.index_jump(start_pos, start_pos + max_bytes, max_offset)
            if jump is not None:
                total, scan_from, next_offset = jump - start_pos, jump, -1
            for _pos, base, size, last in seg.scan_headers(scan_from):
                if next_offset < 0:
                    next_offset = base  # the batches taken so far end at or below it
                if max_offset is not None and base >= max_offset:
                    break
                if total + size > max_bytes and not (total == 0 and min_one_batch):
                    break
                total += size
                next_offset = last + 1
            if next_offset < 0:
                next_offset = seg.next_offset
            if total == 0:
                return empty
            return LogRead(
                (FileSlice(seg.log_path, start_pos, total),),
                total,
                first,
                next_offset,
                self._log_start,
                leo,
                self._hw,
            )
        return empty

    def read_bytes(self, read: LogRead) -> bytes | LogError:
        """The bytes of a LogRead's slices, through the page cache (the sim's path;
        the real world sends the slices with sendfile instead)."""
        parts = []
        for s in read.slices:
            data = self.disk.read(s.path, s.position, s.length)
            if isinstance(data, DiskError):
                return LogError.disk(data)
            parts.append(data)
        return b"".join(parts)

    def batches(self, start_offset: int | None = None) -> Iterator[RecordBatch | LogError]:
        """Every stored batch from the one holding start_offset (default: log start),
        in offset order. For tools, tests and the compactor; not a hot path."""
        start = self._log_start if start_offset is None else start_offset
        for seg in list(self._segments):
            if seg.next_offset <= start and seg is not self._segments[-1]:
                continue
            pos, _b = seg.find(start)
            for item in seg.iter_batches(pos):
                if isinstance(item, BatchError):
                    yield LogError(LogError.CORRUPT, str(item), item.offset)
                    return
                yield item

    def offset_for_timestamp(self, timestamp_ms: int) -> TimestampOffset | LogError | None:
        """ListOffsets: the first record (by offset) with timestamp >= timestamp_ms,
        None if none. LATEST_TIMESTAMP (-1) gives (-1, log end), EARLIEST_TIMESTAMP
        (-2) gives (-1, log start)."""
        if timestamp_ms == LATEST_TIMESTAMP:
            return TimestampOffset(-1, self.log_end_offset)
        if timestamp_ms == EARLIEST_TIMESTAMP:
            return TimestampOffset(-1, self._log_start)
        for seg in self._segments:
            if seg.max_timestamp < timestamp_ms or seg.size == 0:
                continue
            start = max(seg.base_offset + seg.time_index.lookup(timestamp_ms), self._log_start)
            pos, _b = seg.find(start)
            for item in seg.iter_batches(pos):
                if isinstance(item, BatchError):
                    return LogError(LogError.CORRUPT, str(item), item.offset)
                if item.max_timestamp < timestamp_ms or item.last_offset < self._log_start:
                    continue
                recs = item.records()
                if isinstance(recs, BatchError):
                    return LogError(LogError.CORRUPT, str(recs), recs.offset)
                for r in recs:
                    if r.offset >= self._log_start and r.timestamp >= timestamp_ms:
                        return TimestampOffset(r.timestamp, r.offset)
        return None

    # -- leader epochs ---------------------------------------------------------------

    def assign_epoch(self, epoch: int, start_offset: int) -> None:
        """Record a new leader epoch starting at start_offset (becoming leader), and
        checkpoint the cache."""
        if self._epochs.assign(epoch, start_offset):
            self._write_epochs()

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetsForLeaderEpoch: (largest epoch <= epoch, its end offset); (-1, -1)
        if unknown. See LeaderEpochCache.end_offset_for."""
        return self._epochs.end_offset_for(epoch, self.log_end_offset)

    def _write_epochs(self, removed: bool = False) -> None:
        """Checkpoint the cache. When entries were removed (truncation), the old file
        is deleted first: recovery re-learns epochs from batches, but could not tell
        a stale entry for data that no longer exists."""
        data = format_epochs([(e.epoch, e.start_offset) for e in self._epochs.entries])
        if removed:
            self._ckpt_epochs.invalidate(data)
        else:
            self._ckpt_epochs.write(data)

    def _offsets(self, value: int) -> bytes:
        return format_offsets(self.topic, self.partition, value)

    # -- truncation, watermarks, start offset --------------------------------------

    def truncate_to(self, offset: int) -> LogError | None:
        """Cut the log so it ends at offset (a follower after divergence).

        Removes every batch whose last offset is >= offset; the log then ends where
        the last remaining batch ends. So if offset lies inside a batch (or in a gap
        left by compaction) the log end lands below offset. No-op if offset >= log
        end; below the log start it is truncate_fully_and_start_at.
        Epoch cache, recovery point and high watermark are cut too.
        """
        if offset >= self.log_end_offset:
            return None
        if offset < self._log_start:
            return self.truncate_fully_and_start_at(offset)
        self._generation += 1
        while len(self._segments) > 1 and self._segments[-1].base_offset > offset:
            err = self._segments.pop().delete()
            if err is not None:
                return LogError.disk(err)
        err = self._segments[-1].truncate_to(offset)
        if err is not None:
            return LogError.disk(err)
        leo = self.log_end_offset
        self._truncated_to.append(leo)
        if self._epochs.truncate_from_end(leo):
            self._write_epochs(removed=True)
        self._hw = min(self._hw, leo)
        if self._rp > leo:
            self._rp = leo
            # The old, higher recovery point must never be read back after a crash:
            # recovery would then trust bytes appended after this truncation.
            e = self._ckpt_rp.invalidate(self._offsets(leo))
            if e is not None:
                return LogError.disk(e)
        return None

    def truncate_fully_and_start_at(self, offset: int) -> LogError | None:
        """Delete everything; the log restarts empty at offset (start = end = offset)."""
        self._generation += 1
        for c, v in ((self._ckpt_rp, offset), (self._ckpt_start, offset), (self._ckpt_hw, offset)):
            e = c.invalidate(self._offsets(v))
            if e is not None:
                return LogError.disk(e)
        for seg in self._segments:
            err = seg.delete()
            if err is not None:
                return LogError.disk(err)
        new = LogSegment.create(self.disk, self.dir, offset, self._last_now_us)
        if isinstance(new, DiskError):
            return LogError.disk(new)
        self._segments = [new]
        self._truncated_to.append(-1)  # nothing earlier survives
        self._log_start = self._hw = self._rp = offset
        self._unflushed_records = 0
        if self._epochs.clear():
            self._write_epochs(removed=True)
        return None

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log start, log end]; returns it."""
        self._hw = min(max(offset, self._log_start), self.log_end_offset)
        return self._hw

    def checkpoint_high_watermark(
        self, on_done: Callable[[DiskError | None], None] | None = None
    ) -> None:
        """Write the high watermark to replication-offset-checkpoint (tmp + fsync +
        rename). on_done runs when it is durable."""
        self._ckpt_hw.write(self._offsets(self._hw), on_done)

    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        """DeleteRecords: raise the log start (never past the high watermark); whole
        segments below it go at the next retention pass. True if it moved."""
        offset = min(offset, self._hw)
        if offset <= self._log_start:
            return False
        self._set_log_start(offset)
        return True

    def _set_log_start(self, offset: int) -> None:
        self._log_start = offset
        if self._epochs.truncate_from_start(offset):
            self._write_epochs()
        self._ckpt_start.write(self._offsets(offset))

    # -- segments, retention, compaction, flush -------------------------------------

    def roll(self, now_us: int) -> LogError | None:
        """Start a new active segment at the log end (no-op if the active one is
        empty), and fsync the one it replaces."""
        if self._segments[-1].size == 0:
            return None
        return self._roll(now_us, self.log_end_offset)

    def _roll(self, now_us: int, base_offset: int) -> LogError | None:
        old = self._segments[-1]
        old.seal()
        new = LogSegment.create(self.disk, self.dir, base_offset, now_us)
        if isinstance(new, DiskError):
            return LogError.disk(new)
        self._segments.append(new)
        # Kafka flushes a segment when it rolls: only the active one stays at risk.
        self._fsync_segments([old], base_offset, None)
        return None

    def flush(self, on_done: FlushCallback | None = None) -> None:
        """fsync every segment file (and index) holding data below the current log end,
        then move the recovery point there and checkpoint it; on_done(offset) runs
        later (never inside this call), when the data is durable."""
        self._unflushed_records = 0
        dirty = [s for s in self._segments if s.dirty] or [self._segments[-1]]
        self._fsync_segments(dirty, self.log_end_offset, on_done)

    def _fsync_segments(
        self, segs: list[LogSegment], target: int, on_done: FlushCallback | None
    ) -> None:
        generation = self._generation
        left = [len(segs)]
        failed: list[DiskError] = []
        marks = [(s, s.size) for s in segs]

        def one(err: DiskError | None) -> None:
            if err is not None:
                failed.append(err)
            left[0] -= 1
            if left[0] or self._closed:
                return
            if failed:
                if on_done is not None:
                    on_done(failed[0])
                return
            durable = target
            if generation == self._generation:
                for s, size in marks:
                    if s.size == size:
                        s.dirty = False
                self._advance_recovery_point(target)
            else:
                # A truncation ran meanwhile: only what lies below every cut since the
                # flush began is both fsynced and still in the log.
                durable = max(0, min(target, *self._truncated_to[generation:]))
            if on_done is not None:
                on_done(durable)

        for s in segs:
            s.fsync(one)

    def _advance_recovery_point(self, target: int) -> None:
        """Everything below target is durable; the recovery point may move there,
        but never past a segment whose bytes are still unsynced."""
        for s in self._segments:
            if s.dirty and s.base_offset < target:
                target = s.base_offset
                break
        target = min(target, self.log_end_offset)
        if target <= self._rp:
            return
        self._rp = target

        def write(_err: DiskError | None) -> None:
            # Epochs of batches below the recovery point must be on disk first:
            # recovery only re-learns epochs from batches at or past it.
            if not self._closed:
                self._ckpt_rp.write(self._offsets(self._rp))

        self._ckpt_epochs.when_idle(write)

    def maybe_flush(self, now_us: int) -> bool:
        """Flush if flush.ms has passed since the last flush with unflushed data
        (the broker calls this from a periodic timer). True if a flush started."""
        self._last_now_us = now_us
        interval = self.config.flush_interval_us
        if interval is None or self._unflushed_records == 0:
            return False
        if now_us - self._last_flush_us < interval:
            return False
        self._last_flush_us = now_us
        self.flush(self._flush_listener)
        return True

    def apply_retention(self, now_us: int) -> int | LogError:
        """Delete whole non-active segments past retention.ms (by their largest
        timestamp) or beyond retention.bytes, oldest first, never past the high
        watermark, and any wholly below the log start; the log start moves to the
        first remaining segment. Returns the number deleted. Time and size limits
        apply only when the cleanup policy includes delete."""
        self._last_now_us = now_us
        cfg = self.config
        total = self.size_bytes
        deleted = 0
        while len(self._segments) > 1:
            seg, nxt = self._segments[0], self._segments[1].base_offset
            ok = nxt <= self._log_start
            if not ok and cfg.delete and nxt <= self._hw:
                if cfg.retention_us is not None and now_us - seg.max_timestamp * 1000 > cfg.retention_us:
                    ok = True
                if cfg.retention_bytes is not None and total - seg.size >= cfg.retention_bytes:
                    ok = True
            if not ok:
                break
            err = seg.delete()
            if err is not None:
                return LogError.disk(err)
            self._segments.pop(0)
            total -= seg.size
            deleted += 1
        if deleted and self._segments[0].base_offset > self._log_start:
            self._set_log_start(self._segments[0].base_offset)
        return deleted

    def compact(
        self,
        now_us: int,
        on_done: Callable[[CompactionResult | LogError], None] | None = None,
    ) -> CompactionResult | LogError | None:
        """One cleaning pass (cleanup.policy compact / compact,delete).

        The dirty range ends at the first uncleanable offset: min(active segment base,
        high watermark, recovery point, first segment holding a record younger than
        min.compaction.lag.ms), and covers whole segments below it. There,
        per key only the record with the highest offset survives; keyless records and
        control batches stay; a tombstone survives until the delete horizon set when
        a cleaning first kept it (now + delete.retention.ms, KIP-534) has passed.
        Offsets are preserved; batches that lose nothing are copied byte for byte.
        Rewritten segments go to .cleaned files, are fsynced, then renamed over the
        originals; on_done(result) runs after that, and only if segments_rewritten >
        0. Returns None if compaction is off or no segment is cleanable.
        """
        self._last_now_us = now_us
        if not self.config.compact:
            return None
        upto = min(self._segments[-1].base_offset, self._hw, self._rp)
        lag_us = self.config.min_compaction_lag_us
        cands = []
        for s, nxt in zip(self._segments, self._segments[1:]):
            # min.compaction.lag.ms: a segment with records younger than the lag, and
            # everything after it, stays dirty (Kafka's first uncleanable offset).
            if nxt.base_offset > upto or (lag_us and s.max_timestamp * 1000 > now_us - lag_us):
                break
            cands.append(s)
        if not cands:
            return None
        end = self._segments[len(cands)].base_offset
        latest: dict[bytes, int] = {}
        for seg in cands:
            for item in seg.iter_batches(validate=True):
                if isinstance(item, BatchError):
                    return LogError(LogError.CORRUPT, str(item), item.offset)
                if item.is_control:
                    continue
                recs = item.records()
                if isinstance(recs, BatchError):
                    return LogError(LogError.CORRUPT, str(recs), recs.offset)
                for r in recs:
                    if r.key is not None:
                        latest[r.key] = r.offset
        now_ms = now_us // 1000
        dr_ms = self.config.delete_retention_us // 1000
        removed = before = after = 0
        rewrites: list[tuple[LogSegment, str]] = []
        for seg in cands:
            batches = [b for b in seg.iter_batches() if isinstance(b, RecordBatch)]
            parts: list[bytes] = []
            changed = False
            for j, b in enumerate(batches):
                fb = filter_batch(b, latest, now_ms, dr_ms, keep_empty=j == len(batches) - 1)
                if isinstance(fb, BatchError):
                    return LogError(LogError.CORRUPT, str(fb), fb.offset)
                parts.append(fb.data)
                removed += fb.records_removed
                changed |= fb.changed
            data = b"".join(parts)
            before += seg.size
            after += len(data)
            if not changed:
                continue
            tmp = seg.log_path + ".cleaned"
            self.disk.delete(tmp)
            r = self.disk.append(tmp, data)
            if isinstance(r, DiskError):
                self.disk.delete(tmp)
                return LogError.disk(r)
            rewrites.append((seg, tmp))
        result = CompactionResult(end, removed, before, after, len(rewrites))
        if rewrites:
            self._swap_when_synced(rewrites, result, on_done)
        return result

    def _swap_when_synced(
        self,
        rewrites: list[tuple[LogSegment, str]],
        result: CompactionResult,
        on_done: Callable[[CompactionResult | LogError], None] | None,
    ) -> None:
        generation = self._generation
        left = [len(rewrites)]
        failed: list[DiskError] = []

        def one(err: DiskError | None) -> None:
            if err is not None:
                failed.append(err)
            left[0] -= 1
            if left[0] or self._closed:
                return
            outcome: CompactionResult | LogError = result
            if failed:
                outcome = LogError.disk(failed[0])
            for seg, tmp in rewrites:
                if failed or generation != self._generation or seg not in self._segments:
                    self.disk.delete(tmp)  # the log changed under the cleaner: drop it
                    continue
                e = self._swap_in(seg, tmp)
                if e is not None and not isinstance(outcome, LogError):
                    outcome = e
            if on_done is not None:
                on_done(outcome)

        for _seg, tmp in rewrites:
            self.disk.fsync(tmp, one)

    def _swap_in(self, old: LogSegment, tmp: str) -> LogError | None:
        err = self.disk.rename(tmp, old.log_path)
        if err is not None:
            return LogError.disk(err)
        new = LogSegment(self.disk, self.dir, old.base_offset, old.created_us)
        res = new.recover(_NEVER, self.config.index_interval_bytes)
        if isinstance(res, DiskError):
            return LogError.disk(res)
        new.next_offset = old.next_offset
        new.seal()
        self._segments[self._segments.index(old)] = new
        return None


_NEVER = 1 << 63


def _read_offset(disk: Disk, path: str) -> int:
    data = read_file(disk, path)
    value = parse_offsets(data) if data is not None else None
    return value if value is not None else 0
