"""One log segment: a .log file of whole batches plus its sparse indexes.

A segment holds offsets in [base_offset, next_offset). Its in-memory state (size,
next offset, index entries, largest timestamp) always describes the .log bytes in the
page cache; the index files are appended alongside and may lag (they are rebuilt from
the .log when they fail a sanity check). Only the owning PartitionLog calls it.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterator

from simlog.records.batch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchError,
    BatchHeader,
    RecordBatch,
    check_header,
    decode_header,
    peek_batch,
)
from simlog.runtime import Disk, DiskError
from simlog.storage.checkpoint import read_file
from simlog.storage.index import OffsetIndex, TimeIndex

READ_CHUNK = 64 * 1024
HEADER_SCAN_CHUNK = 4096
_PEEK = struct.Struct(">qiibIhi")  # the header up to lastOffsetDelta (27 bytes)
INDEX_BUFFER = 64
MAX_REL_OFFSET = (1 << 31) - 1


def segment_prefix(dir: str, base_offset: int) -> str:
    return f"{dir}/{base_offset:020d}"


def parse_segment_name(name: str) -> tuple[int, str] | None:
    """("00000000000000000042.log") -> (42, ".log"); None if not a segment file."""
    stem, dot, ext = name.partition(".")
    if not dot or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem), "." + ext


class LogSegment:
    """See the module docstring."""

    def __init__(self, disk: Disk, dir: str, base_offset: int, created_us: int = 0):
        self.disk = disk
        self.dir = dir
        self.base_offset = base_offset
        prefix = segment_prefix(dir, base_offset)
        self.log_path = prefix + ".log"
        self.index_path = prefix + ".index"
        self.time_path = prefix + ".timeindex"
        self.size = 0
        self.next_offset = base_offset
        self.index = OffsetIndex()
        self.time_index = TimeIndex()
        self.bytes_since_index = 0
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.rolling_timestamp = -1  # max timestamp of the first batch (ms), for segment.ms
        self.created_us = created_us
        self.dirty = False  # bytes appended since the last completed fsync
        # Index entries not yet written: buffered so an append costs one disk call.
        # They reach the files at seal, fsync, truncation and every INDEX_BUFFER
        # entries; entries lost in a crash only make the sparse index sparser, and the
        # active segment's indexes are rebuilt by recovery anyway.
        self._pending_index: list[bytes] = []
        self._pending_time: list[bytes] = []

    # -- creation / loading ----------------------------------------------------

    @classmethod
    def create(cls, disk: Disk, dir: str, base_offset: int, now_us: int) -> LogSegment | DiskError:
        """A new empty segment; its three files exist (empty) when this returns."""
        seg = cls(disk, dir, base_offset, now_us)
        for path in (seg.log_path, seg.index_path, seg.time_path):
            if disk.exists(path):
                err = disk.truncate(path, 0)
                if err is not None:
                    return err
            r = disk.append(path, b"")
            if isinstance(r, DiskError):
                return r
        return seg

    def load_trusted(self, next_offset: int) -> bool:
        """Load a segment wholly below the recovery point from its index files.

        next_offset is the next segment's base. Returns False (nothing loaded) when
        the .log is unreadable or an index fails the sanity check; the caller then
        rebuilds with `recover`."""
        size = self.disk.size(self.log_path)
        if isinstance(size, DiskError):
            return False
        idata = read_file(self.disk, self.index_path)
        tdata = read_file(self.disk, self.time_path)
        if idata is None or tdata is None:
            return False
        idx = OffsetIndex.decode(idata, size)
        tidx = TimeIndex.decode(tdata, max(0, next_offset - self.base_offset - 1))
        if idx is None or tidx is None or (size > 0 and len(tidx) == 0):
            return False
        if len(idx):
            head = self.disk.read(self.log_path, idx.positions[-1], HEADER_SIZE)
            if isinstance(head, DiskError) or len(head) < HEADER_SIZE:
                return False
            h = decode_header(head)
            if h.last_offset != self.base_offset + idx.rel_offsets[-1]:
                return False
        self.size = size
        self.next_offset = next_offset
        self.index = idx
        self.time_index = tidx
        last = tidx.last()
        if last is not None:
            self.max_timestamp = last[0]
            self.offset_of_max_timestamp = self.base_offset + last[1]
        self.bytes_since_index = 0
        if size:
            first = self.disk.read(self.log_path, 0, HEADER_SIZE)
            if not isinstance(first, DiskError) and len(first) == HEADER_SIZE:
                self.rolling_timestamp = decode_header(first).max_timestamp
        return True

    def recover(
        self, validate_from: int, interval: int
    ) -> tuple[list[BatchHeader], BatchError | None] | DiskError:
        """Rebuild state and indexes by scanning the .log from the start.

        Batches ending after validate_from (the recovery point) are CRC-checked; the
        file is cut at the first batch that is torn, corrupt, or whose offsets do not
        increase. Returns the headers of the kept batches at or past validate_from
        (the caller re-learns their leader epochs) and the error that cut the file.
        """
        size = self.disk.size(self.log_path)
        if isinstance(size, DiskError):
            return size
        self.size = size
        self._reset_state()
        kept: list[BatchHeader] = []
        error: BatchError | None = None
        for item in self.iter_batches(0, validate=False):
            if isinstance(item, BatchError):
                error = item
                break
            h = item.header
            if h.base_offset < self.next_offset or h.last_offset - self.base_offset > MAX_REL_OFFSET:
                error = BatchError(h.base_offset, item.position, "offset out of order")
                break
            if h.next_offset > validate_from:
                bad = item.validate()
                if bad is not None:
                    error = bad
                    break
                kept.append(h)
            self._note_batch(h, item.position, interval)
        if error is not None:
            cut = error.position
            err = self.disk.truncate(self.log_path, cut)
            if err is not None:
                return err
            self.size = cut
        err = self._rewrite_indexes()
        if err is not None:
            return err
        return kept, error

    def _reset_state(self) -> None:
        self._pending_index.clear()
        self._pending_time.clear()
        self.next_offset = self.base_offset
        self.index = OffsetIndex()
        self.time_index = TimeIndex()
        self.bytes_since_index = 0
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.rolling_timestamp = -1

    def _rewrite_indexes(self) -> DiskError | None:
        for path, data in (
            (self.index_path, self.index.encode()),
            (self.time_path, self.time_index.encode()),
        ):
            if self.disk.exists(path):
                err = self.disk.truncate(path, 0)
                if err is not None:
                    return err
            r = self.disk.append(path, data)
            if isinstance(r, DiskError):
                return r
        return None

    # -- append ----------------------------------------------------------------------

    def _note_batch(self, h: BatchHeader, position: int, interval: int) -> tuple[bytes, bytes]:
        """Update in-memory state for a batch stored at position; returns the index
        and time-index bytes to append (possibly empty)."""
        if self.rolling_timestamp < 0:
            self.rolling_timestamp = h.max_timestamp
        if h.max_timestamp > self.max_timestamp:
            self.max_timestamp = h.max_timestamp
            self.offset_of_max_timestamp = h.last_offset
        ientry = tentry = b""
        if self.bytes_since_index > interval:
            ientry = self.index.add(h.last_offset - self.base_offset, position)
            t = self.time_index.maybe_add(
                self.max_timestamp, self.offset_of_max_timestamp - self.base_offset
            )
            tentry = t or b""
            self.bytes_since_index = 0
        self.bytes_since_index += h.size
        self.next_offset = h.next_offset
        return ientry, tentry

    def append(self, data: bytes, batches: list[tuple[int, BatchHeader]], interval: int) -> DiskError | None:
        """Append data (whole batches; batches lists (offset in data, header)) at the
        end of the .log in one write, then the index entries it earns."""
        pos = self.disk.append(self.log_path, data)
        if isinstance(pos, DiskError):
            # A failed append must not leave a partial batch the state does not know.
            now = self.disk.size(self.log_path)
            if isinstance(now, int) and now > self.size:
                self.disk.truncate(self.log_path, self.size)
            return pos
        if pos != self.size:
            return DiskError(DiskError.IO_ERROR, self.log_path, f"appended at {pos}, expected {self.size}")
        ibytes = []
        tbytes = []
        for rel, h in batches:
            i, t = self._note_batch(h, pos + rel, interval)
            ibytes.append(i)
            tbytes.append(t)
        self.size += len(data)
        self.dirty = True
        self._pending_index.extend(b for b in ibytes if b)
        self._pending_time.extend(b for b in tbytes if b)
        if len(self._pending_index) + len(self._pending_time) >= INDEX_BUFFER:
            self.write_index_entries()
        return None

    def write_index_entries(self) -> None:
        """Write buffered index entries. Index writes are advisory: a failure only
        costs a longer scan later (or a rebuild at recovery)."""
        if self._pending_index:
            self.disk.append(self.index_path, b"".join(self._pending_index))
            self._pending_index.clear()
        if self._pending_time:
            self.disk.append(self.time_path, b"".join(self._pending_time))
            self._pending_time.clear()

    def seal(self) -> None:
        """The segment stops being active: record its largest timestamp in the time
        index (as Kafka does on roll) so it survives a restart without a scan."""
        if self.max_timestamp >= 0:
            t = self.time_index.maybe_add(
                self.max_timestamp, self.offset_of_max_timestamp - self.base_offset
            )
            if t:
                self._pending_time.append(t)
        self.write_index_entries()

    # -- reading -----------------------------------------------------------------------

    def iter_batches(
        self, position: int = 0, *, validate: bool = False, end: int | None = None
    ) -> Iterator[RecordBatch | BatchError]:
        """Batches from position to end (default: the segment size), read in chunks.
        Stops after yielding a BatchError for a bad or cut-short batch."""
        end = self.size if end is None else end
        buf = b""
        buf_pos = position
        pos = position
        while pos < end:
            rel = pos - buf_pos
            if len(buf) - rel < HEADER_SIZE:
                buf = self._read(pos, min(max(READ_CHUNK, HEADER_SIZE), end - pos))
                if isinstance(buf, DiskError):
                    yield BatchError(-1, pos, f"read failed: {buf}")
                    return
                buf_pos, rel = pos, 0
            if len(buf) - rel < HEADER_SIZE:
                peek = peek_batch(buf, rel)
                base = peek[0] if peek else -1
                yield BatchError(base, pos, f"only {len(buf) - rel} bytes left, header needs 61", True)
                return
            h = decode_header(buf, rel)
            err = check_header(h, end - pos, pos)
            if err is not None:
                yield err
                return
            if len(buf) - rel < h.size:
                buf = self._read(pos, min(max(READ_CHUNK, h.size), end - pos))
                if isinstance(buf, DiskError):
                    yield BatchError(h.base_offset, pos, f"read failed: {buf}")
                    return
                buf_pos, rel = pos, 0
                if len(buf) < h.size:
                    yield BatchError(h.base_offset, pos, "file shorter than its batches", True)
                    return
            batch = RecordBatch(bytes(buf[rel : rel + h.size]), pos, h)
            if validate:
                bad = batch.validate()
                if bad is not None:
                    yield bad
                    return
            yield batch
            pos += h.size

    def _read(self, pos: int, length: int) -> bytes | DiskError:
        return self.disk.read(self.log_path, pos, length)

    def scan_headers(
        self, position: int = 0, end: int | None = None
    ) -> Iterator[tuple[int, int, int, int]]:
        """(position, base offset, size, last offset) of each batch from position,
        reading only small chunks (headers, not whole large batches). Stops quietly at
        the first structurally bad or cut-short batch (recovery has dealt with those)."""
        end = self.size if end is None else end
        buf = b""
        buf_pos = pos = position
        while pos < end:
            rel = pos - buf_pos
            if len(buf) - rel < _PEEK.size:
                got = self._read(pos, min(HEADER_SCAN_CHUNK, end - pos))
                if isinstance(got, DiskError) or len(got) < _PEEK.size:
                    return
                buf, buf_pos, rel = got, pos, 0
            base, length, _epoch, magic, _crc, _attrs, delta = _PEEK.unpack_from(buf, rel)
            size = length + LOG_OVERHEAD
            if magic != 2 or size < HEADER_SIZE or pos + size > end:
                return
            yield pos, base, size, base + delta
            pos += size

    def find(self, offset: int) -> tuple[int, int | None]:
        """(position, base offset) of the first batch whose last offset is >= offset;
        (size, None) if there is none. Starts from the sparse index."""
        start = self.index.lookup(offset - self.base_offset) if offset >= self.base_offset else 0
        for pos, base, _size, last in self.scan_headers(start):
            if last >= offset:
                return pos, base
        return self.size, None

    def index_jump(self, start: int, limit: int, max_offset: int | None) -> int | None:
        """The furthest indexed batch position p with start < p <= limit whose batch
        ends below max_offset: the bytes [start, p) are whole batches, so a read can
        take them without scanning their headers."""
        positions = self.index.positions
        hi = bisect.bisect_right(positions, limit)
        if max_offset is not None:
            hi = min(hi, bisect.bisect_left(self.index.rel_offsets, max_offset - self.base_offset))
        if hi > 0 and positions[hi - 1] > start:
            return positions[hi - 1]
        return None

    # -- truncation ------------------------------------------------------------------

    def truncate_to(self, offset: int) -> DiskError | None:
        """Remove every batch whose last offset is >= offset (whole batches). The
        segment then ends where its last remaining batch ends (its base offset if
        none remains), which is also what a recovery scan would find."""
        position, batch_base = self.find(offset)
        if batch_base is None:
            return None
        self.write_index_entries()
        err = self.disk.truncate(self.log_path, position)
        if err is not None:
            return err
        self.index.cut_at_position(position)
        self.time_index.cut_at_rel_offset(batch_base - self.base_offset)
        self.size = position
        # Recompute the end and the largest timestamp: the kept time-index entry,
        # then a scan of the batches after the last kept offset-index entry.
        last = self.time_index.last()
        self.max_timestamp, self.offset_of_max_timestamp = (
            (last[0], self.base_offset + last[1]) if last else (-1, -1)
        )
        scan_from = self.index.positions[-1] if len(self.index) else 0
        if position == 0:
            self.rolling_timestamp = -1
        new_next = self.base_offset
        for item in self.iter_batches(scan_from):
            if isinstance(item, BatchError):
                break
            new_next = item.next_offset
            if item.max_timestamp > self.max_timestamp:
                self.max_timestamp = item.max_timestamp
                self.offset_of_max_timestamp = item.last_offset
        self.bytes_since_index = position - scan_from
        self.next_offset = new_next
        self.dirty = True
        for path, entries, size in (
            (self.index_path, len(self.index), 8),
            (self.time_path, len(self.time_index), 12),
        ):
            cur = self.disk.size(path)
            if isinstance(cur, int) and cur > entries * size:
                self.disk.truncate(path, entries * size)
        return None

    # -- durability, deletion -----------------------------------------------------------

    def fsync(self, on_done: Callable[[DiskError | None], None]) -> None:
        """fsync the .log and both indexes; on_done once, with the first error."""
        self.write_index_entries()
        paths = [p for p in (self.log_path, self.index_path, self.time_path) if self.disk.exists(p)]
        if not paths:
            self.disk.fsync(self.log_path, on_done)
            return
        state = {"left": len(paths), "err": None}

        def one(err: DiskError | None) -> None:
            if err is not None and state["err"] is None:
                state["err"] = err
            state["left"] -= 1
            if state["left"] == 0:
                on_done(state["err"])

        for p in paths:
            self.disk.fsync(p, one)

    def delete(self) -> DiskError | None:
        first: DiskError | None = None
        for path in (self.log_path, self.index_path, self.time_path):
            if self.disk.exists(path):
                err = self.disk.delete(path)
                if err is not None and first is None:
                    first = err
        return first

    def __repr__(self) -> str:
        return f"LogSegment({self.base_offset}, next={self.next_offset}, size={self.size})"


def rel_fits(segment: LogSegment, last_offset: int) -> bool:
    """True if last_offset can be stored in segment (relative offsets are int32)."""
    return last_offset - segment.base_offset <= MAX_REL_OFFSET

