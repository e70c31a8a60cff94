"""Values the partition log returns: append results, read results, errors.

Errors are values (as `DiskError` is): every PartitionLog call that can fail returns
`LogError` instead of raising, so a broker handler decides what a failure means
(answer the client with an error code, or halt as Kafka does on a disk failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from simlog.runtime import DiskError, FileSlice


@dataclass(frozen=True, slots=True)
class LogError:
    """A failed log call.

    kind: OFFSET_OUT_OF_RANGE (read outside [log start, log end]), CORRUPT (a batch
    failed validation: detail names offset and reason), INVALID_OFFSET (a follower
    append whose offsets do not follow the log end), TOO_LARGE (batch above
    max_message_bytes), DISK (the disk failed; `disk_error` says how).
    """

    kind: str
    detail: str = ""
    offset: int = -1
    disk_error: DiskError | None = None

    OFFSET_OUT_OF_RANGE: ClassVar[str] = "offset_out_of_range"
    CORRUPT: ClassVar[str] = "corrupt"
    INVALID_OFFSET: ClassVar[str] = "invalid_offset"
    TOO_LARGE: ClassVar[str] = "too_large"
    DISK: ClassVar[str] = "disk"

    @classmethod
    def disk(cls, err: DiskError) -> LogError:
        return cls(cls.DISK, str(err), -1, err)

    def __str__(self) -> str:
        at = f" at offset {self.offset}" if self.offset >= 0 else ""
        return f"{self.kind}{at}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AppendInfo:
    """What an append did. Offsets are inclusive; max_timestamp is in ms (Kafka's
    record timestamps), -1 when the batches carried none."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    num_batches: int
    num_records: int
    size_bytes: int
    log_start_offset: int


@dataclass(frozen=True, slots=True)
class LogRead:
    """The answer to `PartitionLog.read`: whole stored batches as file slices.

    slices are consecutive ranges of one segment file (currently always zero or one
    slice); the bytes are exactly what append stored. first_offset is the base offset
    of the first batch returned (it can be below the requested offset: the batch
    containing it is returned whole, and the client skips what it did not ask for);
    next_offset is where the next fetch should start: past the last batch returned
    (possibly further, across a gap left by compaction; the requested offset when
    nothing is returned). The log's start, end and high watermark at read time ride
    along for the fetch response.
    """

    slices: tuple[FileSlice, ...]
    size: int
    first_offset: int
    next_offset: int
    log_start_offset: int
    log_end_offset: int
    high_watermark: int


@dataclass(frozen=True, slots=True)
class TimestampOffset:
    """Answer to a timestamp lookup: the first record with timestamp >= the target."""

    timestamp: int
    offset: int


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """One compaction pass. cleaned_up_to: the end of the cleaned range, a segment
    boundary; every record below it was considered (never beyond the active segment,
    the high watermark or the recovery point). Records removed, bytes before and
    after, segments rewritten. The rewritten segments are swapped in when their fsync
    completes (the `on_done` of `PartitionLog.compact`)."""

    cleaned_up_to: int
    records_removed: int
    bytes_before: int
    bytes_after: int
    segments_rewritten: int
