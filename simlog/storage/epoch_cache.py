"""The leader-epoch cache: epoch -> start offset, as Kafka's LeaderEpochFileCache.

Each entry says "from start_offset on, batches were written by the leader of epoch e".
Followers use it through OffsetsForLeaderEpoch (`end_offset_for`) to find where their log
diverges from the leader's, and truncate there.

Invariants: epochs strictly increase, start offsets strictly increase along the list.
The cache is truncated with the log (`truncate_from_end` on log truncation,
`truncate_from_start` when the log start moves). Persistence (the
`leader-epoch-checkpoint` file) belongs to the log; this class is pure state.
"""

from __future__ import annotations

from dataclasses import dataclass

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


@dataclass(frozen=True, slots=True)
class EpochEntry:
    epoch: int
    start_offset: int


class LeaderEpochCache:
    """Ordered epoch entries; see the module docstring."""

    def __init__(self, entries: list[EpochEntry] | None = None):
        self._entries: list[EpochEntry] = []
        for e in entries or []:
            self.assign(e.epoch, e.start_offset)

    @property
    def entries(self) -> list[EpochEntry]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        return self._entries[-1].epoch if self._entries else UNDEFINED_EPOCH

    @property
    def earliest_epoch(self) -> int:
        return self._entries[0].epoch if self._entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that epoch starts at start_offset; True if the cache changed.

        As Kafka: an epoch already latest is ignored; otherwise entries with an epoch
        >= epoch or a start offset >= start_offset are dropped before appending, which
        keeps both columns strictly increasing.
        """
        if epoch < 0:
            return False
        if self._entries and self._entries[-1].epoch == epoch:
            return False
        if self._entries and self._entries[-1].epoch > epoch and self._entries[-1].start_offset < start_offset:
            # A stale epoch for later data (a write from an older leader after a newer
            # one started): Kafka warns and ignores it.
            return False
        self._entries = [
            e for e in self._entries if e.epoch < epoch and e.start_offset < start_offset
        ]
        self._entries.append(EpochEntry(epoch, start_offset))
        return True

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """OffsetsForLeaderEpoch: (largest epoch <= requested, the offset where it ends).

        The end of an epoch is the start offset of the next higher epoch, or the log
        end for the latest epoch. (-1, -1) if the requested epoch is undefined or above
        every epoch here; (requested, first start offset) if below every epoch.
        """
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self.latest_epoch:
            return requested_epoch, log_end_offset
        higher = next((e for e in self._entries if e.epoch > requested_epoch), None)
        if higher is None:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        floor = None
        for e in self._entries:
            if e.epoch <= requested_epoch:
                floor = e
        if floor is None:
            return requested_epoch, higher.start_offset
        return floor.epoch, higher.start_offset

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch whose range contains offset (UNDEFINED_EPOCH below the first)."""
        found = UNDEFINED_EPOCH
        for e in self._entries:
            if e.start_offset <= offset:
                found = e.epoch
        return found

    def truncate_from_end(self, end_offset: int) -> bool:
        """Drop entries starting at or after end_offset (the log was cut there)."""
        kept = [e for e in self._entries if e.start_offset < end_offset]
        changed = len(kept) != len(self._entries)
        self._entries = kept
        return changed

    def truncate_from_start(self, start_offset: int) -> bool:
        """The log now starts at start_offset: entries wholly before it go, and the
        last entry starting before it is moved up to start there."""
        before = [e for e in self._entries if e.start_offset < start_offset]
        if not before:
            return False
        after = [e for e in self._entries if e.start_offset >= start_offset]
        last = before[-1]
        if after and after[0].start_offset == start_offset:
            self._entries = after
        else:
            self._entries = [EpochEntry(last.epoch, start_offset), *after]
        return True

    def clear(self) -> bool:
        changed = bool(self._entries)
        self._entries = []
        return changed
