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

from collections.abc import Callable, Iterator

from simlog.records import RecordBatch
from simlog.runtime import Disk, DiskError
from simlog.storage.config import LogConfig
from simlog.storage.epoch_cache import LeaderEpochCache
from simlog.storage.types import (
    AppendInfo,
    CompactionResult,
    LogError,
    LogRead,
    TimestampOffset,
)

FlushCallback = Callable[[int | DiskError], None]
"""on_done of a flush: the offset now durable (every offset below it), or the error."""

LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2


class PartitionLog:
    """One partition's log. Build with `PartitionLog.open`, never directly."""

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
        finish or discard an interrupted compaction swap; load indexes of segments
        below the recovery point, rebuilding any that are missing or fail a sanity
        check; CRC-check every batch from the segment holding the recovery point on,
        cutting the log at the first bad or torn batch and deleting later segments;
        re-assign leader epochs from the recovered batches; clamp the high watermark
        to [log start, log end].
        """
        raise NotImplementedError

    # -- state -------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        """First offset that may still be read (moves with retention / DeleteRecords)."""
        raise NotImplementedError

    @property
    def log_end_offset(self) -> int:
        """Offset the next appended record gets (LEO)."""
        raise NotImplementedError

    @property
    def high_watermark(self) -> int:
        """As last set by `update_high_watermark` (or restored from its checkpoint)."""
        raise NotImplementedError

    @property
    def recovery_point(self) -> int:
        """Every offset below it is durable (fsynced)."""
        raise NotImplementedError

    @property
    def size_bytes(self) -> int:
        """Total bytes of all .log files."""
        raise NotImplementedError

    def segment_base_offsets(self) -> list[int]:
        """Base offsets of the segments, ascending; the last is the active segment."""
        raise NotImplementedError

    @property
    def epochs(self) -> LeaderEpochCache:
        """The leader-epoch cache (read it; change it through the log's methods)."""
        raise NotImplementedError

    # -- append --------------------------------------------------------------------

    def append_as_leader(self, data: bytes, leader_epoch: int, now_us: int) -> AppendInfo | LogError:
        """Append one or more concatenated producer batches as the leader.

        Each batch is validated (magic 2, lengths, CRC-32C, record count), then gets
        the next offsets (its baseOffset is overwritten) and partitionLeaderEpoch =
        leader_epoch; nothing else changes. The epoch cache learns leader_epoch ->
        first offset if it is new. Rolls first if the active segment is full or old.
        All-or-nothing: one bad batch rejects the whole call (CORRUPT, naming it).
        """
        raise NotImplementedError

    def append_as_follower(self, data: bytes, now_us: int) -> AppendInfo | LogError:
        """Append batches fetched from the leader, offsets and epochs as given.

        The first base offset must equal the log end (INVALID_OFFSET otherwise: the
        caller truncates first); offsets must increase. Each batch's
        partitionLeaderEpoch is assigned in the epoch cache.
        """
        raise NotImplementedError

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
        raise NotImplementedError

    def read_bytes(self, read: LogRead) -> bytes | LogError:
        """The bytes of a LogRead's slices, through the page cache (the sim's path;
        the real world sends the slices with sendfile instead)."""
        raise NotImplementedError

    def batches(self, start_offset: int | None = None) -> Iterator[RecordBatch | LogError]:
        """Every stored batch from the one holding start_offset (default: log start),
        in offset order. For tools, tests and the compactor; not a hot path."""
        raise NotImplementedError

    def offset_for_timestamp(self, timestamp_ms: int) -> TimestampOffset | LogError | None:
        """ListOffsets: the first record (by offset) with timestamp >= timestamp_ms,
        None if none. LATEST_TIMESTAMP (-1) gives (-1, log end), EARLIEST_TIMESTAMP
        (-2) gives (-1, log start)."""
        raise NotImplementedError

    # -- leader epochs ---------------------------------------------------------------

    def assign_epoch(self, epoch: int, start_offset: int) -> None:
        """Record a new leader epoch starting at start_offset (becoming leader), and
        checkpoint the cache."""
        raise NotImplementedError

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetsForLeaderEpoch: (largest epoch <= epoch, its end offset); (-1, -1)
        if unknown. See LeaderEpochCache.end_offset_for."""
        raise NotImplementedError

    # -- truncation, watermarks, start offset --------------------------------------

    def truncate_to(self, offset: int) -> LogError | None:
        """Cut the log so it ends at offset (a follower after divergence).

        Removes every batch whose last offset is >= offset; if offset lies inside a
        batch that whole batch goes, so the log end can land below offset. No-op if
        offset >= log end. Epoch cache, recovery point and high watermark are cut too.
        """
        raise NotImplementedError

    def truncate_fully_and_start_at(self, offset: int) -> LogError | None:
        """Delete everything; the log restarts empty at offset (start = end = offset)."""
        raise NotImplementedError

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log start, log end]; returns it."""
        raise NotImplementedError

    def checkpoint_high_watermark(self, on_done: Callable[[DiskError | None], None] | None = None) -> None:
        """Write the high watermark to replication-offset-checkpoint (tmp + fsync +
        rename). on_done runs when it is durable."""
        raise NotImplementedError

    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        """DeleteRecords: raise the log start (never past the high watermark); whole
        segments below it go at the next retention pass. True if it moved."""
        raise NotImplementedError

    # -- segments, retention, compaction, flush -------------------------------------

    def roll(self, now_us: int) -> LogError | None:
        """Start a new active segment at the log end (no-op if the active one is
        empty), and fsync the one it replaces."""
        raise NotImplementedError

    def apply_retention(self, now_us: int) -> int | LogError:
        """Delete whole non-active segments past retention.ms (by their largest
        timestamp) or beyond retention.bytes, oldest first, never past the high
        watermark, and any wholly below the log start; the log start moves to the
        first remaining segment. Returns the number deleted. No-op unless the policy
        includes delete (segments below the log start go regardless)."""
        raise NotImplementedError

    def compact(
        self,
        now_us: int,
        on_done: Callable[[CompactionResult | LogError], None] | None = None,
    ) -> CompactionResult | LogError | None:
        """One cleaning pass (cleanup.policy compact / compact,delete).

        The dirty range ends at the first uncleanable offset: min(active segment base,
        high watermark, recovery point). In it, per key only the record with the
        highest offset survives; keyless records stay; a tombstone survives until the
        delete horizon set when a cleaning first kept it (now + delete.retention.ms,
        KIP-534) has passed. Offsets are preserved; batches that lose nothing are
        copied byte for byte. Rewritten segments are written to .cleaned files and
        fsynced, then swapped in (when on_done runs). Returns None if there is nothing
        to clean (compaction off or no cleanable segment).
        """
        raise NotImplementedError

    def flush(self, on_done: FlushCallback | None = None) -> None:
        """fsync every segment file (and index) holding data below the current log end,
        then move the recovery point there and checkpoint it; on_done(offset)."""
        raise NotImplementedError

    def maybe_flush(self, now_us: int) -> bool:
        """Flush if flush.ms has passed since the last flush with unflushed data
        (the broker calls this from a periodic timer). True if a flush started."""
        raise NotImplementedError
