"""replicas_converge: in-sync replicas agree on the committed log, now and always.

Fails when, after settling,
  - `diverged`: an ISR member's records below the high watermark differ from the leader's
    (the reference replica of `FinalState`): a different id or leader epoch at an offset,
    or an offset one side has and the other lacks, in the range both still retain;
  - `missing_replica`: an ISR member has no log at all;
or when, at any time during the run,
  - `committed_truncated`: a replica truncated its log below the high watermark of that
    moment (committed records removed: KIP-101's divergence).
One witness per (partition, replica), at the first differing offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simlog.checks.history import Op
from simlog.checks.result import CheckResult, verdict
from simlog.checks.state import FinalState, PartitionState, Record, Replica


def _rec(r: Record | None) -> dict[str, Any] | None:
    return None if r is None else {"id": r.id, "leader_epoch": r.leader_epoch}


def _first_difference(ref: Replica, other: Replica, hw: int) -> int | None:
    low = max(ref.log_start_offset, other.log_start_offset)
    a = {r.offset: r for r in ref.records if low <= r.offset < hw}
    b = {r.offset: r for r in other.records if low <= r.offset < hw}
    for offset in sorted(set(a) | set(b)):
        if a.get(offset) != b.get(offset):
            return offset
    if other.end < hw and not b and a:
        return min(a)
    return None


def _partition_witnesses(ps: PartitionState) -> list[dict[str, Any]]:
    ref = ps.reference_replica()
    out = []
    if ref is None:
        return out
    for node in sorted(ps.isr):
        if node == ref.node:
            continue
        other = ps.replicas.get(node)
        if other is None:
            out.append({"kind": "missing_replica", "partition": str(ps.partition),
                        "node": node})
            continue
        offset = _first_difference(ref, other, ps.high_watermark)
        if offset is None:
            continue
        expected = next((r for r in ref.records if r.offset == offset), None)
        found = next((r for r in other.records if r.offset == offset), None)
        out.append({"kind": "diverged", "partition": str(ps.partition), "node": node,
                    "reference": ref.node, "offset": offset,
                    "high_watermark": ps.high_watermark,
                    "expected": _rec(expected), "found": _rec(found)})
    return out


def replicas_converge(history: Sequence[Op], state: FinalState) -> CheckResult:
    witnesses: list[dict[str, Any]] = []
    for ps in state.sorted_partitions():
        witnesses.extend(_partition_witnesses(ps))
    for t in sorted(state.truncations, key=lambda t: (t.time_us, t.partition, t.node)):
        if t.to_offset < t.high_watermark:
            witnesses.append({"kind": "committed_truncated", "partition": str(t.partition),
                              "node": t.node, "time_us": t.time_us,
                              "to_offset": t.to_offset, "high_watermark": t.high_watermark})
    return verdict("replicas_converge", witnesses, partitions=len(state.partitions))
