"""The metadata log on disk: segments, the quorum-state file and snapshots.

Layout under `__cluster_metadata-0/`:
- `<base offset, 20 digits>.log`: segments of frames `len u32 | crc32 u32 | msgpack
  LogEntry`. A torn or corrupt tail (power loss, injected corruption) ends recovery at
  the last good frame and is cut off.
- `quorum-state`: epoch, voted_for, leader_id, replaced atomically (write a fresh temp
  file, fsync, rename; rename is durable on return).
- `snapshots/<end offset>-<epoch>.checkpoint`: the metadata image as records, covering
  every entry below `end offset`. Written the same atomic way.

Invariants (RaftLog): entries are contiguous from `start_offset` (the latest snapshot's
end offset) to `end_offset`; `flushed_end` <= `end_offset` and every entry below it is
durable; epochs never decrease along the log. All in memory too: the metadata log is
small, and a snapshot bounds it (segments wholly below the snapshot are deleted).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import msgspec

from simlog.controller.records import AnyRecord, LogEntry
from simlog.runtime import Disk, DiskError

DIR = "__cluster_metadata-0"
QUORUM_STATE_PATH = f"{DIR}/quorum-state"
SNAPSHOT_DIR = f"{DIR}/snapshots"

_HEADER_BYTES = 8
_encoder = msgspec.msgpack.Encoder()
_entry_decoder = msgspec.msgpack.Decoder(LogEntry)
_records_decoder = msgspec.msgpack.Decoder(list[AnyRecord])


def _frame(payload: bytes) -> bytes:
    return (len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big")
            + payload)


def _unframe(data: bytes, pos: int) -> tuple[bytes, int] | None:
    """The payload at pos and the next position, or None if torn/corrupt there."""
    if pos + _HEADER_BYTES > len(data):
        return None
    length = int.from_bytes(data[pos:pos + 4], "big")
    crc = int.from_bytes(data[pos + 4:pos + 8], "big")
    end = pos + _HEADER_BYTES + length
    if end > len(data):
        return None
    payload = data[pos + _HEADER_BYTES:end]
    if zlib.crc32(payload) != crc:
        return None
    return payload, end


ErrorHandler = Callable[[str, DiskError], None]


class RaftLog:
    """The replicated log of one replica. Appends go to the page cache at once;
    `flush()` makes them durable and calls `on_flushed()` when `flushed_end` grows."""

    def __init__(self, disk: Disk, on_flushed: Callable[[], None],
                 on_error: ErrorHandler) -> None:
        self.disk = disk
        self.on_flushed = on_flushed
        self.on_error = on_error
        self.entries: list[LogEntry] = []
        self._where: list[tuple[str, int]] = []  # (segment path, position) per entry
        self.start_offset = 0
        self.start_epoch = 0
        self.flushed_end = 0
        self.segments: list[tuple[int, str]] = []  # (base offset, path), ascending
        self._roll = False
        self._dirty: set[str] = set()
        self._generation = 0  # bumped by truncation: stale fsync completions are ignored
        self._inflight = 0  # flushes in progress
        self._epochs: list[tuple[int, int]] = []  # (epoch, first offset) in the log

    # -- queries -------------------------------------------------------------------

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.entries)

    @property
    def last_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else self.start_epoch

    def entry(self, offset: int) -> LogEntry:
        return self.entries[offset - self.start_offset]

    def epoch_at(self, offset: int) -> int:
        """Epoch of the entry at offset (start_epoch for start_offset - 1)."""
        if offset == self.start_offset - 1:
            return self.start_epoch
        return self.entry(offset).epoch

    def read(self, offset: int, max_entries: int) -> tuple[LogEntry, ...]:
        i = offset - self.start_offset
        return tuple(self.entries[i:i + max_entries])

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int] | None:
        """(e, end) for the largest epoch e <= epoch in the log, end being the offset
        after e's last entry (KIP-101's OffsetsForLeaderEpoch). None if epoch is older
        than every entry and not the snapshot's epoch (the caller needs the snapshot)."""
        found = None
        for i, (e, _first) in enumerate(self._epochs):
            if e > epoch:
                break
            found = i
        if found is None:
            if epoch >= self.start_epoch:
                return self.start_epoch, self.start_offset
            return None
        e = self._epochs[found][0]
        if found + 1 < len(self._epochs):
            return e, self._epochs[found + 1][1]
        return e, self.end_offset

    # -- writes --------------------------------------------------------------------

    def _segment_for_append(self) -> str:
        if not self.segments or self._roll:
            path = f"{DIR}/{self.end_offset:020d}.log"
            if self.segments and self.segments[-1][1] == path:
                return path
            self.segments.append((self.end_offset, path))
            self._roll = False
        return self.segments[-1][1]

    def append(self, entries: list[LogEntry] | tuple[LogEntry, ...]) -> bool:
        """Append contiguous entries at end_offset; False after a disk error (reported)."""
        for entry in entries:
            if entry.offset != self.end_offset:
                raise ValueError(f"append at {entry.offset}, end is {self.end_offset}")
            path = self._segment_for_append()
            pos = self.disk.append(path, _frame(_encoder.encode(entry)))
            if isinstance(pos, DiskError):
                self.on_error("append", pos)
                return False
            self.entries.append(entry)
            self._where.append((path, pos))
            self._dirty.add(path)
            if not self._epochs or self._epochs[-1][0] != entry.epoch:
                self._epochs.append((entry.epoch, entry.offset))
        return True

    def flush(self) -> None:
        """fsync every dirty segment; flushed_end moves to the current end when all are
        done (unless a truncation happened meanwhile; its own flush then covers it)."""
        if not self._dirty:
            if self.flushed_end < self.end_offset and not self._inflight:
                # nothing dirty yet not flushed: only after recovery (page cache
                # survived the crash): sync every segment that holds unflushed entries
                self._dirty = {p for _b, p in self.segments}
            else:
                return
        paths = sorted(self._dirty)
        self._dirty.clear()
        target = self.end_offset
        generation = self._generation
        pending = [len(paths)]
        self._inflight += 1

        def done(err: DiskError | None) -> None:
            pending[0] -= 1
            if err is not None and generation == self._generation \
                    and err.kind != DiskError.NOT_FOUND:
                self.on_error("fsync", err)
                return
            if pending[0] == 0:
                self._inflight -= 1
                if generation == self._generation:
                    # always report: a snapshot may have moved flushed_end past target
                    # meanwhile, and the caller may be waiting for this very flush
                    self.flushed_end = max(self.flushed_end, min(target, self.end_offset))
                    self.on_flushed()

        for path in paths:
            self.disk.fsync(path, done)

    def truncate_to(self, offset: int) -> None:
        """Remove every entry at or above offset (offset >= start_offset). Durable on
        return (truncate and delete are metadata calls)."""
        if offset >= self.end_offset:
            return
        if offset < self.start_offset:
            raise ValueError(f"truncate to {offset} below log start {self.start_offset}")
        path, pos = self._where[offset - self.start_offset]
        del self.entries[offset - self.start_offset:]
        del self._where[offset - self.start_offset:]
        keep = [(b, p) for b, p in self.segments if p == path or b < offset]
        for _b, p in self.segments:
            if (_b, p) not in keep:
                self.disk.delete(p)
                self._dirty.discard(p)
        self.segments = keep
        err = self.disk.truncate(path, pos)
        if err is not None:
            self.on_error("truncate", err)
        self._generation += 1
        self.flushed_end = min(self.flushed_end, offset)
        self._epochs = [(e, first) for e, first in self._epochs if first < offset]
        if self.entries:
            self._dirty.add(path)  # earlier pending syncs were invalidated

    def drop_prefix(self, end_offset: int, epoch: int) -> None:
        """A snapshot covering entries below end_offset is durable: forget them in memory
        and delete segments wholly below it; the next append starts a new segment."""
        if end_offset <= self.start_offset:
            return
        if end_offset > self.end_offset:
            self.reset(end_offset, epoch)
            return
        n = end_offset - self.start_offset
        del self.entries[:n]
        del self._where[:n]
        self.start_offset = end_offset
        self.start_epoch = epoch
        self.flushed_end = max(self.flushed_end, end_offset)
        self._epochs = self._rebuild_epochs()
        keep: list[tuple[int, str]] = []
        for i, (base, path) in enumerate(self.segments):
            nxt = self.segments[i + 1][0] if i + 1 < len(self.segments) else None
            if nxt is not None and nxt <= end_offset:
                self.disk.delete(path)
                self._dirty.discard(path)
            else:
                keep.append((base, path))
        self.segments = keep
        self._roll = True

    def reset(self, start_offset: int, epoch: int) -> None:
        """Drop the whole log: the replica loads a snapshot ending at start_offset."""
        for _b, path in self.segments:
            self.disk.delete(path)
        self.segments = []
        self.entries = []
        self._where = []
        self._dirty.clear()
        self._generation += 1
        self.start_offset = start_offset
        self.start_epoch = epoch
        self.flushed_end = start_offset
        self._epochs = []
        self._roll = True

    def _rebuild_epochs(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for entry in self.entries:
            if not out or out[-1][0] != entry.epoch:
                out.append((entry.epoch, entry.offset))
        return out

    # -- recovery ------------------------------------------------------------------

    def recover(self, start_offset: int, start_epoch: int) -> None:
        """Load segments from disk after a (re)start, skipping entries below the
        snapshot's start_offset and cutting a torn or corrupt tail. The page cache
        survives a process crash, so unsynced entries may be here: `flushed_end` is
        left at start_offset and the caller flushes before acknowledging anything."""
        self.start_offset = start_offset
        self.start_epoch = start_epoch
        self.flushed_end = start_offset
        paths = [p for p in self.disk.list(f"{DIR}/") if p.endswith(".log")
                 and "/" not in p[len(DIR) + 1:]]
        stop = False
        for path in paths:
            base = int(path[len(DIR) + 1:-4])
            if stop:
                self.disk.delete(path)
                continue
            size = self.disk.size(path)
            data = self.disk.read(path, 0, size) if not isinstance(size, DiskError) else b""
            if isinstance(data, DiskError):
                data = b""
            pos = 0
            while True:
                got = _unframe(data, pos)
                if got is None:
                    break
                payload, nxt = got
                try:
                    entry = _entry_decoder.decode(payload)
                except msgspec.DecodeError:
                    break
                if entry.offset >= start_offset:
                    if entry.offset != self.end_offset or entry.epoch < self.last_epoch:
                        break
                    self.entries.append(entry)
                    self._where.append((path, pos))
                pos = nxt
            if pos < len(data):
                self.disk.truncate(path, pos)
                stop = True
            self.segments.append((base, path))  # wholly-old ones go at the next snapshot
        self._epochs = self._rebuild_epochs()
        self._roll = True


class QuorumState(msgspec.Struct, frozen=True, kw_only=True):
    """What a voter must remember across restarts: the epoch, its vote in that epoch
    (never two votes in one epoch), and the leader it knew."""

    epoch: int = 0
    voted_for: str | None = None
    leader_id: str | None = None


class QuorumStateStore:
    """Atomic replacement of the quorum-state file; `write(state, then)` runs `then`
    once the state is durable. Writes complete in any order; a stale completion never
    overwrites a newer state."""

    def __init__(self, disk: Disk, on_error: ErrorHandler) -> None:
        self.disk = disk
        self.on_error = on_error
        self._seq = 0
        self._installed = 0

    def read(self) -> QuorumState:
        size = self.disk.size(QUORUM_STATE_PATH)
        if isinstance(size, DiskError):
            return QuorumState()
        data = self.disk.read(QUORUM_STATE_PATH, 0, size)
        if isinstance(data, DiskError):
            return QuorumState()
        got = _unframe(data, 0)
        if got is None:
            return QuorumState()
        try:
            return msgspec.json.decode(got[0], type=QuorumState)
        except msgspec.DecodeError:
            return QuorumState()

    def write(self, state: QuorumState, then: Callable[[], None] | None = None) -> None:
        self._seq += 1
        seq = self._seq
        tmp = f"{QUORUM_STATE_PATH}.tmp-{seq}"
        self.disk.delete(tmp)
        pos = self.disk.append(tmp, _frame(msgspec.json.encode(state)))
        if isinstance(pos, DiskError):
            self.on_error("quorum-state", pos)
            return

        def done(err: DiskError | None) -> None:
            if err is not None:
                self.on_error("quorum-state fsync", err)
                return
            if seq > self._installed:
                rerr = self.disk.rename(tmp, QUORUM_STATE_PATH)
                if rerr is not None:
                    self.on_error("quorum-state rename", rerr)
                    return
                self._installed = seq
            else:
                self.disk.delete(tmp)
            if then is not None:
                then()

        self.disk.fsync(tmp, done)

    def cleanup(self) -> None:
        """Delete temp files a crash left behind."""
        for path in self.disk.list(f"{QUORUM_STATE_PATH}.tmp-"):
            self.disk.delete(path)


class SnapshotStore:
    """Snapshots of the metadata image, named by (end offset, epoch)."""

    def __init__(self, disk: Disk, on_error: ErrorHandler) -> None:
        self.disk = disk
        self.on_error = on_error

    @staticmethod
    def path(end_offset: int, epoch: int) -> str:
        return f"{SNAPSHOT_DIR}/{end_offset:020d}-{epoch:010d}.checkpoint"

    def latest(self) -> tuple[int, int, list] | None:
        """(end offset, epoch, records) of the newest readable snapshot."""
        paths = [p for p in self.disk.list(f"{SNAPSHOT_DIR}/") if p.endswith(".checkpoint")]
        for path in reversed(paths):
            name = path[len(SNAPSHOT_DIR) + 1:-len(".checkpoint")]
            end_s, epoch_s = name.split("-")
            size = self.disk.size(path)
            if isinstance(size, DiskError):
                continue
            data = self.disk.read(path, 0, size)
            if isinstance(data, DiskError):
                continue
            got = _unframe(data, 0)
            if got is None:
                continue
            try:
                records = _records_decoder.decode(got[0])
            except msgspec.DecodeError:
                continue
            return int(end_s), int(epoch_s), records
        return None

    def write(self, end_offset: int, epoch: int, records: list,
              then: Callable[[], None]) -> None:
        """Write a snapshot atomically; `then` runs once it is durable, after older
        snapshots were deleted."""
        final = self.path(end_offset, epoch)
        tmp = final + ".tmp"
        self.disk.delete(tmp)
        pos = self.disk.append(tmp, _frame(_encoder.encode(records)))
        if isinstance(pos, DiskError):
            self.on_error("snapshot", pos)
            return

        def done(err: DiskError | None) -> None:
            if err is not None:
                if err.kind != DiskError.NOT_FOUND:
                    self.on_error("snapshot fsync", err)
                return
            if self.disk.rename(tmp, final) is not None:
                return
            for path in self.disk.list(f"{SNAPSHOT_DIR}/"):
                if path != final and path < final:
                    self.disk.delete(path)
            then()

        self.disk.fsync(tmp, done)

    def cleanup(self) -> None:
        for path in self.disk.list(f"{SNAPSHOT_DIR}/"):
            if path.endswith(".tmp"):
                self.disk.delete(path)
