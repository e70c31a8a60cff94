"""In-memory stand-ins for the log and the runtime, for unit tests of broker logic.

FakeLog keeps batches as (BatchInfo, payload) pairs; "record bytes" are a tiny JSON
encoding of producer fields, record count and payload (see `batch_bytes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from simlog.broker.replica_log import BatchInfo, LeaderAppendResult, LogAppendError


def batch_bytes(count: int = 1, producer_id: int = -1, producer_epoch: int = -1,
                base_sequence: int = -1, payload: str = "x", base_offset: int = 0,
                epoch: int = -1) -> bytes:
    return json.dumps([{"c": count, "pid": producer_id, "pe": producer_epoch,
                        "seq": base_sequence, "p": payload, "o": base_offset,
                        "e": epoch}]).encode()


def _decode(records: bytes) -> list[dict]:
    try:
        return json.loads(records.decode())
    except ValueError as e:
        raise LogAppendError("CORRUPT_MESSAGE", str(e)) from e


def _info(d: dict) -> BatchInfo:
    return BatchInfo(base_offset=d["o"], last_offset=d["o"] + d["c"] - 1,
                     partition_leader_epoch=d["e"], producer_id=d["pid"],
                     producer_epoch=d["pe"], base_sequence=d["seq"], record_count=d["c"],
                     max_timestamp_ms=0, size_bytes=len(json.dumps(d)))


@dataclass
class FakeLog:
    entries: list[dict] = field(default_factory=list)
    epochs: list[tuple[int, int]] = field(default_factory=list)  # (epoch, start offset)
    start: int = 0
    hw_checkpoint: int = 0

    @property
    def log_start_offset(self) -> int:
        return self.start

    @property
    def log_end_offset(self) -> int:
        return self.entries[-1]["o"] + self.entries[-1]["c"] if self.entries else self.start

    # a forced flush in flight (flush.messages): records from here on are not durable
    unflushed_from: int | None = None
    on_flushed: object = None

    has_offset_gaps: bool = False

    @property
    def flush_in_flight(self) -> bool:
        return self.unflushed_from is not None

    @property
    def committable_end_offset(self) -> int:
        leo = self.log_end_offset
        return leo if self.unflushed_from is None else min(leo, self.unflushed_from)

    def set_flush_callback(self, fn) -> None:
        self.on_flushed = fn

    def complete_flush(self) -> None:
        self.unflushed_from = None
        if callable(self.on_flushed):
            self.on_flushed()

    def inspect(self, records: bytes) -> list[BatchInfo]:
        return [_info(d) for d in _decode(records)]

    def _assign(self, epoch: int, offset: int) -> None:
        if not self.epochs or epoch > self.epochs[-1][0]:
            self.epochs.append((epoch, offset))

    def assign_epoch_start_offset(self, epoch: int, start_offset: int) -> None:
        self._assign(epoch, start_offset)

    def append_as_leader(self, records: bytes, leader_epoch: int) -> LeaderAppendResult:
        first = self.log_end_offset
        for d in _decode(records):
            d = dict(d, o=self.log_end_offset, e=leader_epoch)
            self._assign(leader_epoch, d["o"])
            self.entries.append(d)
        return LeaderAppendResult(first, self.log_end_offset - 1)

    def append_as_follower(self, records: bytes) -> list[BatchInfo]:
        out = []
        for d in _decode(records):
            assert d["o"] == self.log_end_offset, (d, self.log_end_offset)
            self._assign(d["e"], d["o"])
            self.entries.append(d)
            out.append(_info(d))
        return out

    def read(self, start_offset: int, max_bytes: int, max_offset: int) -> bytes:
        out: list[dict] = []
        size = 0
        for d in self.entries:
            if d["o"] + d["c"] <= start_offset or d["o"] >= max_offset:
                continue
            n = len(json.dumps(d))
            if out and size + n > max_bytes:
                break
            out.append(d)
            size += n
        return json.dumps(out).encode() if out else b""

    def available_bytes(self, start_offset: int, max_bytes: int, max_offset: int) -> int:
        return len(self.read(start_offset, max_bytes, max_offset))

    def batches(self, start_offset: int = 0) -> list[BatchInfo]:
        return [_info(d) for d in self.entries if d["o"] + d["c"] > start_offset]

    def truncate_to(self, offset: int) -> None:
        self.entries = [d for d in self.entries if d["o"] + d["c"] <= offset]
        self.epochs = [(e, o) for e, o in self.epochs if o < offset]

    def truncate_fully_and_start_at(self, offset: int) -> None:
        self.entries = []
        self.epochs = []
        self.start = offset

    def latest_epoch(self) -> int | None:
        return self.epochs[-1][0] if self.epochs else None

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int] | None:
        """Kafka's LeaderEpochFileCache.endOffsetFor."""
        if epoch < 0 or not self.epochs:
            return None
        if epoch == self.epochs[-1][0]:
            return (epoch, self.log_end_offset)
        higher = [o for e, o in self.epochs if e > epoch]
        if not higher:
            return None
        floor = [e for e, _o in self.epochs if e <= epoch]
        return (floor[-1] if floor else epoch, higher[0])

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int, int] | None:
        return None

    def read_high_watermark(self) -> int:
        return self.hw_checkpoint

    def write_high_watermark(self, hw: int) -> None:
        self.hw_checkpoint = hw

    def set_high_watermark(self, hw: int) -> None:
        self.hw = hw

    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        offset = min(offset, getattr(self, "hw", 0))
        if offset <= self.start:
            return False
        self.start = offset
        self.entries = [d for d in self.entries if d["o"] + d["c"] > offset]
        return True

    def payloads(self) -> list[str]:
        return [d["p"] for d in self.entries]

    def clone(self) -> FakeLog:
        return replace(self, entries=[dict(d) for d in self.entries], epochs=list(self.epochs))


class FakeTimer:
    def __init__(self, rt: FakeRuntime, due_us: int, fn) -> None:
        self.rt, self.due_us, self.fn, self._active = rt, due_us, fn, True

    def cancel(self) -> None:
        self._active = False

    @property
    def active(self) -> bool:
        return self._active


class FakeRuntime:
    """A hand-stepped runtime: `advance(us)` fires due timers in (time, order)."""

    def __init__(self, node_id: str = "b1") -> None:
        self.node_id = node_id
        self.now_us = 0
        self.timers: list[FakeTimer] = []
        self.sent: list[tuple[str, object]] = []
        self.events: list[tuple[str, dict]] = []
        self.cpu_us = 0

    def now(self) -> int:
        return self.now_us

    def set_timer(self, delay_us: int, callback) -> FakeTimer:
        t = FakeTimer(self, self.now_us + delay_us, callback)
        self.timers.append(t)
        return t

    def send(self, dst: str, msg: object) -> None:
        self.sent.append((dst, msg))

    def charge_cpu(self, cost_us: int) -> None:
        self.cpu_us += cost_us

    def emit(self, kind: str, **fields) -> None:
        self.events.append((kind, fields))

    def halt(self, reason: str) -> None:
        raise SystemExit(reason)

    def disconnect(self, peer: str) -> None:
        pass

    def advance(self, delay_us: int) -> None:
        end = self.now_us + delay_us
        while True:
            due = [t for t in self.timers if t.active and t.due_us <= end]
            if not due:
                break
            t = min(due, key=lambda t: t.due_us)
            self.now_us = max(self.now_us, t.due_us)
            t._active = False
            self.timers.remove(t)
            t.fn()
        self.now_us = end
