"""`ReplicaLog` over the storage engine's PartitionLog and the v2 batch codec.

Maps the storage layer's value-errors (LogError) onto Kafka error names, turns reads
into bytes (this world sends record bytes inside messages; the real world may send the
slices with sendfile), parses batch headers for the producer-state logic, and drops the
part of a fetched batch list a follower already has. The broker halts on a disk error
as Kafka does (its `halt` callback), since a replica that cannot write must not serve.

flush.messages is applied here, not in the storage engine (which gets the config without
it), because replication must know which append forced a flush: Kafka's `Log.append`
fsyncs synchronously once `flush.messages` records are unflushed, so the append's
records are acknowledged and reported only once durable. Here fsync completes later, so
the adapter keeps every forced flush in flight with the log end before the append that
forced it, and `committable_end_offset` is the smallest such start (the log end when
none is in flight): the leader counts only that far toward the HW and acks=1, and a
follower fetches again (reporting its new log end) only when nothing is in flight.
Invariant: committable_end_offset <= log_end_offset; a completed flush also retires
every flush issued before it (fsyncs are ordered, and it covered their dirty segments).
"""

from __future__ import annotations

from collections.abc import Callable

from simlog.broker.replica_log import BatchInfo, LeaderAppendResult, LogAppendError
from simlog.records import RecordBatch, parse_batches
from simlog.runtime import DiskError
from simlog.storage.log import PartitionLog
from simlog.storage.types import LogError

_ERROR_NAMES = {
    LogError.CORRUPT: "CORRUPT_MESSAGE",
    LogError.TOO_LARGE: "MESSAGE_TOO_LARGE",
    LogError.DISK: "KAFKA_STORAGE_ERROR",
    LogError.OFFSET_OUT_OF_RANGE: "OFFSET_OUT_OF_RANGE",
    LogError.INVALID_OFFSET: "UNKNOWN_SERVER_ERROR",
}


def _info(b: RecordBatch) -> BatchInfo:
    h = b.header
    return BatchInfo(base_offset=h.base_offset, last_offset=h.last_offset,
                     partition_leader_epoch=h.partition_leader_epoch,
                     producer_id=h.producer_id, producer_epoch=h.producer_epoch,
                     base_sequence=h.base_sequence, record_count=h.records_count,
                     max_timestamp_ms=h.max_timestamp, size_bytes=h.size)


class StorageReplicaLog:
    def __init__(self, log: PartitionLog, now_us: Callable[[], int],
                 on_disk_error: Callable[[str], None], flush_messages: int | None = None) -> None:
        self.plog = log
        self._now_us = now_us
        self._on_disk_error = on_disk_error
        self.flush_messages = flush_messages
        self._unflushed = 0
        self._next_flush_id = 0
        self._forced: dict[int, int] = {}  # flush id -> log end before the forcing append
        self._on_flushed: Callable[[], None] = lambda: None

    # -- flush.messages -------------------------------------------------------------

    def set_flush_callback(self, fn: Callable[[], None]) -> None:
        """fn() runs when a forced flush completes (committable_end_offset moved)."""
        self._on_flushed = fn

    @property
    def committable_end_offset(self) -> int:
        leo = self.plog.log_end_offset
        return min(leo, *self._forced.values()) if self._forced else leo

    @property
    def flush_in_flight(self) -> bool:
        return bool(self._forced)

    @property
    def has_offset_gaps(self) -> bool:
        return self.plog.config.compact

    def _after_append(self, leo_before: int, records: int) -> None:
        fm = self.flush_messages
        if fm is None:
            return
        self._unflushed += records
        if self._unflushed < fm:
            return
        self._unflushed = 0
        fid = self._next_flush_id
        self._next_flush_id += 1
        self._forced[fid] = leo_before
        self.plog.flush(lambda res: self._flushed(fid, res))

    def _flushed(self, fid: int, res: int | DiskError) -> None:
        if isinstance(res, DiskError):
            self._on_disk_error(str(res))
            return
        self._forced = {f: o for f, o in self._forced.items() if f > fid}
        self._on_flushed()

    def maybe_flush(self, now_us: int) -> bool:
        """flush.ms (Kafka's periodic log.flush scheduler): never gates acks."""
        if self.plog.maybe_flush(now_us):
            self._unflushed = 0
            return True
        return False

    def _fail(self, err: LogError) -> LogAppendError:
        if err.kind == LogError.DISK:
            self._on_disk_error(str(err))
        return LogAppendError(_ERROR_NAMES.get(err.kind, "UNKNOWN_SERVER_ERROR"), str(err))

    @property
    def log_start_offset(self) -> int:
        return self.plog.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.plog.log_end_offset

    def inspect(self, records: bytes) -> list[BatchInfo]:
        batches, err = parse_batches(records, validate=True)
        if err is not None:
            raise LogAppendError("CORRUPT_MESSAGE", str(err))
        return [_info(b) for b in batches]

    def append_as_leader(self, records: bytes, leader_epoch: int) -> LeaderAppendResult:
        leo = self.plog.log_end_offset
        res = self.plog.append_as_leader(records, leader_epoch, self._now_us())
        if isinstance(res, LogError):
            raise self._fail(res)
        self._after_append(leo, res.num_records)
        return LeaderAppendResult(res.first_offset, res.last_offset)

    def append_as_follower(self, records: bytes) -> list[BatchInfo]:
        batches, err = parse_batches(records, validate=False)  # a partial tail is normal
        leo = self.plog.log_end_offset
        keep = [b for b in batches if b.last_offset >= leo]
        if not keep:
            return []
        whole = err is None and len(keep) == len(batches)
        data = records if whole else b"".join(b.data for b in keep)
        res = self.plog.append_as_follower(data, self._now_us())
        if isinstance(res, LogError):
            raise self._fail(res)
        self._after_append(leo, res.num_records)
        return [_info(b) for b in keep]

    def read(self, start_offset: int, max_bytes: int, max_offset: int) -> bytes:
        r = self.plog.read(start_offset, max_bytes, max_offset=max_offset)
        if isinstance(r, LogError):
            raise self._fail(r)
        if not r.slices:
            return b""
        data = self.plog.read_bytes(r)
        if isinstance(data, LogError):
            raise self._fail(data)
        return data

    def available_bytes(self, start_offset: int, max_bytes: int, max_offset: int) -> int:
        r = self.plog.read(start_offset, max_bytes, max_offset=max_offset)
        return 0 if isinstance(r, LogError) else r.size

    def batches(self, start_offset: int = 0) -> list[BatchInfo]:
        out = []
        for b in self.plog.batches(start_offset):
            if isinstance(b, LogError):
                break
            out.append(_info(b))
        return out

    def truncate_to(self, offset: int) -> None:
        err = self.plog.truncate_to(offset)
        if err is not None:
            raise self._fail(err)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        err = self.plog.truncate_fully_and_start_at(offset)
        if err is not None:
            raise self._fail(err)

    def latest_epoch(self) -> int | None:
        e = self.plog.epochs.latest_epoch
        return None if e < 0 else e

    def assign_epoch_start_offset(self, epoch: int, start_offset: int) -> None:
        self.plog.assign_epoch(epoch, start_offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int] | None:
        e, end = self.plog.end_offset_for_epoch(epoch)
        return None if end < 0 else (e, end)

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int, int] | None:
        r = self.plog.offset_for_timestamp(timestamp_ms)
        if r is None or isinstance(r, LogError):
            return None
        return r.offset, r.timestamp, self.plog.epochs.epoch_for_offset(r.offset)

    def read_high_watermark(self) -> int:
        return self.plog.high_watermark

    def set_high_watermark(self, hw: int) -> None:
        self.plog.update_high_watermark(hw)

    def write_high_watermark(self, hw: int) -> None:
        self.plog.update_high_watermark(hw)
        self.plog.checkpoint_high_watermark()

    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        return self.plog.maybe_increment_log_start_offset(offset)
