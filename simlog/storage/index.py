"""Sparse offset index and time index of one segment (Kafka's .index / .timeindex).

.index entries: (relative offset i32, position i32), 8 bytes, big-endian. An entry
(r, p) says the batch starting at byte p of the .log holds offset base + r as its last
offset; a lookup for offset t takes the largest entry with base + r <= t and scans the
log forward from p. Entries strictly increase in both columns.
.timeindex entries: (timestamp i64, relative offset i32), 12 bytes: the largest
timestamp seen so far in the segment and the offset where it first appeared. Both
columns strictly increase.

Indexes are advisory: a missing entry only makes a scan longer, so they are appended
without fsync ordering and rebuilt from the log whenever they look wrong.
"""

from __future__ import annotations

import bisect
import struct

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")


class OffsetIndex:
    """In-memory copy of a .index file."""

    __slots__ = ("positions", "rel_offsets")

    def __init__(self) -> None:
        self.rel_offsets: list[int] = []
        self.positions: list[int] = []

    def __len__(self) -> int:
        return len(self.rel_offsets)

    def add(self, rel_offset: int, position: int) -> bytes:
        """Record an entry; returns its on-disk encoding."""
        self.rel_offsets.append(rel_offset)
        self.positions.append(position)
        return OFFSET_ENTRY.pack(rel_offset, position)

    def lookup(self, rel_offset: int) -> int:
        """Position to start scanning from for rel_offset (0 if before every entry)."""
        i = bisect.bisect_right(self.rel_offsets, rel_offset)
        return self.positions[i - 1] if i else 0

    def cut_at_position(self, position: int) -> None:
        """Drop entries at or after position (the log was truncated there)."""
        i = bisect.bisect_left(self.positions, position)
        del self.rel_offsets[i:]
        del self.positions[i:]

    def encode(self) -> bytes:
        return b"".join(OFFSET_ENTRY.pack(r, p) for r, p in zip(self.rel_offsets, self.positions))

    @classmethod
    def decode(cls, data: bytes, log_size: int) -> OffsetIndex | None:
        """Parse a .index; None if it fails the sanity check (size, order, bounds)."""
        if len(data) % OFFSET_ENTRY.size:
            return None
        idx = cls()
        for r, p in OFFSET_ENTRY.iter_unpack(data):
            if idx.rel_offsets and (r <= idx.rel_offsets[-1] or p <= idx.positions[-1]):
                return None
            if r < 0 or p < 0 or p >= log_size:
                return None
            idx.add(r, p)
        return idx


class TimeIndex:
    """In-memory copy of a .timeindex file."""

    __slots__ = ("rel_offsets", "timestamps")

    def __init__(self) -> None:
        self.timestamps: list[int] = []
        self.rel_offsets: list[int] = []

    def __len__(self) -> int:
        return len(self.timestamps)

    def last(self) -> tuple[int, int] | None:
        return (self.timestamps[-1], self.rel_offsets[-1]) if self.timestamps else None

    def maybe_add(self, timestamp: int, rel_offset: int) -> bytes | None:
        """Add (timestamp, rel_offset) if it moves both columns forward; returns its
        encoding, or None when nothing was added."""
        if self.timestamps and (
            timestamp <= self.timestamps[-1] or rel_offset <= self.rel_offsets[-1]
        ):
            return None
        self.timestamps.append(timestamp)
        self.rel_offsets.append(rel_offset)
        return TIME_ENTRY.pack(timestamp, rel_offset)

    def lookup(self, timestamp: int) -> int:
        """Relative offset to start searching from for the first record with a
        timestamp >= timestamp: the entry with the largest timestamp <= it, else 0.
        (Every record before an entry's offset has a smaller timestamp than it.)"""
        i = bisect.bisect_right(self.timestamps, timestamp)
        return self.rel_offsets[i - 1] if i else 0

    def cut_at_rel_offset(self, rel_offset: int) -> None:
        """Drop entries at or after rel_offset."""
        i = bisect.bisect_left(self.rel_offsets, rel_offset)
        del self.timestamps[i:]
        del self.rel_offsets[i:]

    def encode(self) -> bytes:
        return b"".join(TIME_ENTRY.pack(t, r) for t, r in zip(self.timestamps, self.rel_offsets))

    @classmethod
    def decode(cls, data: bytes, max_rel_offset: int) -> TimeIndex | None:
        if len(data) % TIME_ENTRY.size:
            return None
        idx = cls()
        for t, r in TIME_ENTRY.iter_unpack(data):
            if r < 0 or r > max_rel_offset or idx.maybe_add(t, r) is None:
                return None
        return idx
