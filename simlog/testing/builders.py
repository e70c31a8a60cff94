"""Small builders for hand-written histories and final states, for testing checks.

    h = Hist()
    h.send("p1", "p1-1", "orders/0", ok=0)          # invoke + ok at offset 0
    h.send("p1", "p1-2", "orders/0", outcome="info")
    state = final({"orders/0": logs(b1=["p1-1"], b2=["p1-1"])}, leader="b1")

Times advance by 1000 µs per op unless given; every op goes through HistoryRecorder, so a
builder history always satisfies the pairing rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from simlog.checks.history import HistoryRecorder, Op
from simlog.checks.state import FinalState, PartitionState, Record, Replica
from simlog.scenario.selectors import TopicPartition, parse_partition


class Hist:
    """A history written op by op; `.ops` is the result."""

    def __init__(self, step_us: int = 1000) -> None:
        self.rec = HistoryRecorder()
        self.now = 0
        self.step = step_us

    def _t(self, at: int | None) -> int:
        self.now = self.now + self.step if at is None else at
        return self.now

    def invoke_send(self, process: str, mid: str, tp: str, at: int | None = None) -> None:
        p = parse_partition(tp)
        self.rec.invoke(self._t(at), process, "send",
                        {"id": mid, "topic": p.topic, "partition": p.partition})

    def complete_send(self, process: str, mid: str, tp: str, outcome: str = "ok",
                      offset: int | None = None, at: int | None = None) -> None:
        p = parse_partition(tp)
        value: dict[str, Any] = {"id": mid, "topic": p.topic, "partition": p.partition}
        if offset is not None:
            value["offset"] = offset
        self.rec.complete(self._t(at), process, outcome, "send", value)  # type: ignore[arg-type]

    def send(self, process: str, mid: str, tp: str, ok: int | None = None,
             outcome: str | None = None, at: int | None = None) -> None:
        """Invoke and complete at once: `ok=OFFSET` acks, else `outcome` fail/info."""
        self.invoke_send(process, mid, tp, at)
        self.complete_send(process, mid, tp, "ok" if ok is not None else outcome or "info",
                           ok)

    def op(self, process: str, f: str, value: Any = None, outcome: str = "ok",
           at: int | None = None) -> None:
        self.rec.invoke(self._t(at), process, f, None)
        self.rec.complete(self._t(None if at is None else at), process, outcome, f, value)  # type: ignore[arg-type]

    def poll(self, process: str, *records: tuple[str, int, str]) -> None:
        """records: (partition, offset, id)."""
        recs = []
        for tp, offset, mid in records:
            p = parse_partition(tp)
            recs.append({"topic": p.topic, "partition": p.partition, "offset": offset,
                         "id": mid})
        self.op(process, "poll", {"records": recs})

    def assign(self, process: str, group: str, generation: int, *tps: str) -> None:
        self.op(process, "assign", {"group": group, "generation": generation,
                                    "partitions": list(tps)})

    def commit(self, process: str, group: str, **offsets: int) -> None:
        self.op(process, "commit", {"group": group, "offsets": {
            k.replace("__", "/"): v for k, v in offsets.items()}})

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.rec.history


def log(ids: Sequence[str | tuple[int, str | None, int] | None], epoch: int = 0,
        start: int = 0) -> tuple[Record, ...]:
    """Records at offsets start.. for ids; an item may be (offset, id, epoch)."""
    out = []
    for i, item in enumerate(ids):
        if isinstance(item, tuple):
            out.append(Record(*item))
        else:
            out.append(Record(start + i, item, epoch))
    return tuple(out)


def partition(tp: str, replicas: Mapping[str, Sequence[Any]], *, leader: str | None = "b1",
              hw: int | None = None, isr: Sequence[str] | None = None,
              epoch: int = 0, log_start: int = 0) -> PartitionState:
    reps = {node: Replica(node, log(ids, start=log_start), log_start)
            for node, ids in sorted(replicas.items())}
    in_sync = tuple(sorted(replicas) if isr is None else isr)
    state = PartitionState(parse_partition(tp), reps, leader, epoch, 0, in_sync)
    if hw is None:
        ref = state.reference_replica()
        hw = ref.end if ref else 0
    return PartitionState(parse_partition(tp), reps, leader, epoch, hw, in_sync)


def final(*parts: PartitionState, **kw: Any) -> FinalState:
    by_tp: dict[TopicPartition, PartitionState] = {p.partition: p for p in parts}
    return FinalState(partitions=by_tp, **kw)
