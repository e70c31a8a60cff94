"""A plain in-memory model of a partition log, for the property suite.

The model keeps batches as lists of records with the offsets the log must give them.
It knows nothing of segments, indexes or files; where a log decision depends on
segment layout (which segments retention drops, which range compaction cleans) the
suite reads the layout from the log and checks the decision against the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Rec = tuple[int, bytes | None, bytes | None, int]  # offset, key, value, timestamp


@dataclass
class MBatch:
    base: int
    last: int
    epoch: int
    records: list[Rec]
    horizon: int | None = None  # KIP-534 delete horizon (ms), set by compaction


@dataclass
class Model:
    batches: list[MBatch] = field(default_factory=list)
    log_start: int = 0
    leo: int = 0
    flushed: int = 0  # every offset below it was acknowledged as durable
    epochs: list[tuple[int, int]] = field(default_factory=list)  # (epoch, start offset)

    def append(self, recs: list[tuple[bytes | None, bytes | None, int]], epoch: int) -> MBatch:
        base = self.leo
        b = MBatch(base, base + len(recs) - 1, epoch,
                   [(base + i, k, v, ts) for i, (k, v, ts) in enumerate(recs)])
        self.batches.append(b)
        self.leo = b.last + 1
        if not self.epochs or self.epochs[-1][0] < epoch:
            self.epochs.append((epoch, base))
        return b

    def visible(self, upto: int | None = None) -> list[Rec]:
        end = self.leo if upto is None else upto
        return [r for b in self.batches for r in b.records if self.log_start <= r[0] < end]

    def truncate_to(self, offset: int) -> None:
        """Mirror of PartitionLog.truncate_to for offset in [log start, leo)."""
        keep = [b for b in self.batches if b.last < offset]
        self.batches = keep
        # The log ends where its last remaining batch ends (segments are contiguous
        # and the log start is a segment base in this suite).
        self.leo = max(self.log_start, keep[-1].last + 1 if keep else self.log_start)
        self.flushed = min(self.flushed, self.leo)
        self.epochs = [e for e in self.epochs if e[1] < self.leo]

    def cut_to(self, leo: int) -> None:
        """After a power loss the log kept the prefix below leo (batch aligned)."""
        self.batches = [b for b in self.batches if b.last < leo]
        self.leo = leo
        self.epochs = [e for e in self.epochs if e[1] < leo]

    def truncate_fully(self, offset: int) -> None:
        self.batches = []
        self.log_start = self.leo = self.flushed = offset
        self.epochs = []

    def move_log_start(self, offset: int) -> None:
        if offset <= self.log_start:
            return
        self.log_start = offset
        before = [e for e in self.epochs if e[1] < offset]
        after = [e for e in self.epochs if e[1] >= offset]
        if before and not (after and after[0][1] == offset):
            after = [(before[-1][0], offset), *after]
        self.epochs = after

    def compact(self, cleaned_up_to: int, now_ms: int, delete_retention_ms: int) -> None:
        """The cleaning rules (see simlog.storage.cleaner) on records below cleaned_up_to."""
        latest: dict[bytes, int] = {}
        for b in self.batches:
            for off, k, _v, _ts in b.records:
                if off < cleaned_up_to and k is not None:
                    latest[k] = off
        for b in self.batches:
            if b.base >= cleaned_up_to:
                continue
            passed = b.horizon is not None and now_ms >= b.horizon
            kept: list[Rec] = []
            tomb = False
            for off, k, v, ts in b.records:
                if k is not None:
                    if latest[k] != off:
                        continue
                    if v is None:
                        if passed:
                            continue
                        tomb = True
                kept.append((off, k, v, ts))
            if tomb and b.horizon is None:
                b.horizon = now_ms + delete_retention_ms
            b.records = kept

    def first_at_or_after(self, timestamp: int) -> tuple[int, int] | None:
        for off, _k, _v, ts in self.visible():
            if ts >= timestamp:
                return ts, off
        return None
