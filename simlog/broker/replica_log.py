"""What replication needs from a partition's log: the `ReplicaLog` protocol.

The broker codes against this small interface, not against `simlog.storage` directly:
unit tests drive partitions over an in-memory fake, and `storage_adapter.py` maps it onto
the storage engine's PartitionLog. Offsets are Kafka's; "end offset" is one past the last
record. Record data stays bytes (or a FileSlice) from producer to disk to fetch.

Invariants a log keeps: log_start_offset <= log_end_offset; the leader-epoch cache maps
each epoch to the first offset written in it, with epochs and offsets increasing; after
`truncate_to(o)` no record at or above o remains and epochs starting at or above o are
gone from the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from simlog.runtime import FileSlice


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """The header fields of one v2 record batch that replication reads."""

    base_offset: int
    last_offset: int
    partition_leader_epoch: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    max_timestamp_ms: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class LeaderAppendResult:
    """Offsets assigned to a leader append (first..last inclusive)."""

    first_offset: int
    last_offset: int
    log_append_time_ms: int = -1


class LogAppendError(Exception):
    """A batch was refused (corrupt, too large) or the disk failed; `error` names the
    Kafka error code to answer with (CORRUPT_MESSAGE, KAFKA_STORAGE_ERROR, ...)."""

    def __init__(self, error: str, detail: str = "") -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error


class ReplicaLog(Protocol):
    @property
    def log_start_offset(self) -> int: ...

    @property
    def log_end_offset(self) -> int: ...

    @property
    def committable_end_offset(self) -> int:
        """<= log_end_offset: the end of what this replica may count as written (HW,
        acks=1, the offset a follower reports): the log end, less any append whose
        forced flush (flush.messages) has not completed."""
        ...

    @property
    def has_offset_gaps(self) -> bool:
        """True when some offset below the log end may be in no batch (compaction)."""
        ...

    @property
    def flush_in_flight(self) -> bool:
        """committable_end_offset < log_end_offset may hold (a forced flush runs)."""
        ...

    def set_flush_callback(self, fn: Callable[[], None]) -> None:
        """fn() runs when a forced flush completes (committable_end_offset moved)."""
        ...

    def inspect(self, records: bytes) -> list[BatchInfo]:
        """Validate produced bytes (CRC, structure) and list their batches; offsets are
        the producer's (relative). Raises LogAppendError(CORRUPT_MESSAGE...)."""
        ...

    def append_as_leader(self, records: bytes, leader_epoch: int) -> LeaderAppendResult:
        """Assign offsets from log_end_offset, stamp leader_epoch, append."""
        ...

    def append_as_follower(self, records: bytes) -> list[BatchInfo]:
        """Append batches as the leader wrote them (offsets and epochs kept)."""
        ...

    def read(self, start_offset: int, max_bytes: int, max_offset: int) -> bytes | FileSlice:
        """Whole batches from start_offset below max_offset, at most max_bytes except
        that the first batch is always returned whole (Kafka's minOneMessage)."""
        ...

    def available_bytes(self, start_offset: int, max_bytes: int, max_offset: int) -> int:
        """Size of what `read` would return, without copying it (delayed fetch)."""
        ...

    def batches(self, start_offset: int = 0) -> list[BatchInfo]:
        """Headers of every batch from start_offset (rebuilds producer state)."""
        ...

    def truncate_to(self, offset: int) -> None: ...

    def truncate_fully_and_start_at(self, offset: int) -> None: ...

    def latest_epoch(self) -> int | None: ...

    def assign_epoch_start_offset(self, epoch: int, start_offset: int) -> None:
        """Record that epoch starts at start_offset (a new leader does this at once, so
        followers asking for the end of an older epoch get this leader's log end)."""
        ...

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int] | None:
        """(largest epoch <= epoch, its end offset), Kafka's LeaderEpochFileCache rule:
        the end offset of epoch e is the start offset of the first epoch above e, or
        log_end_offset for the latest. None when no epoch <= the requested one exists."""
        ...

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int, int] | None:
        """(offset, timestamp_ms, leader_epoch) of the first record at or after it."""
        ...

    def read_high_watermark(self) -> int:
        """The checkpointed high watermark (0 when none)."""
        ...

    def set_high_watermark(self, hw: int) -> None:
        """Tell the log the current HW (in memory; retention and compaction never pass
        it)."""
        ...

    def write_high_watermark(self, hw: int) -> None:
        """Checkpoint the HW (replication-offset-checkpoint)."""
        ...

    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        """Raise the log start (a follower following its leader's), never past the HW."""
        ...
