"""available: no partition goes without a leader, or without a successful write, for
longer than `max_unavailable_us`.

  - `no_leader`: an interval of the leader timeline (`FinalState.leader_changes`) with no
    leader, ending at the next change or at `FinalState.end_us`;
  - `no_write_succeeded`: a send to a partition was invoked at t, and no send to that
    partition completed ok until t + more than max_unavailable (or before the run ended).
    Partitions nobody writes to are never unavailable for writes. For each such gap the
    witness starts at the earliest invoke that waited for the same next ok.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from simlog.checks.common import send_pairs, send_partition
from simlog.checks.history import Op
from simlog.checks.result import CheckResult, verdict
from simlog.checks.state import FinalState
from simlog.scenario.selectors import TopicPartition


def _leaderless(state: FinalState, limit_us: int) -> list[dict[str, Any]]:
    timeline: dict[TopicPartition, list] = defaultdict(list)
    for change in sorted(state.leader_changes, key=lambda c: (c.time_us, c.partition)):
        timeline[change.partition].append(change)
    out = []
    for tp in sorted(timeline):
        changes = timeline[tp]
        for i, change in enumerate(changes):
            if change.leader is not None:
                continue
            end = changes[i + 1].time_us if i + 1 < len(changes) else state.end_us
            if end - change.time_us > limit_us:
                out.append({"kind": "no_leader", "partition": str(tp),
                            "from_us": change.time_us, "to_us": end,
                            "duration_us": end - change.time_us})
    return out


def _write_gaps(history: Sequence[Op], state: FinalState, limit_us: int) -> list[dict]:
    invokes: dict[TopicPartition, list[int]] = defaultdict(list)
    oks: dict[TopicPartition, list[int]] = defaultdict(list)
    for pair in send_pairs(history):
        tp = send_partition(pair)
        if tp is None:
            continue
        invokes[tp].append(pair.invoke.time_us)
        if pair.type == "ok":
            oks[tp].append(pair.completion.time_us)
    out = []
    for tp in sorted(invokes):
        done = sorted(oks[tp])
        gaps: dict[int | None, int] = {}  # next ok time -> earliest invoke waiting for it
        for t in sorted(invokes[tp]):
            i = bisect_left(done, t)
            nxt = done[i] if i < len(done) else None
            if (state.end_us if nxt is None else nxt) - t > limit_us:
                gaps.setdefault(nxt, t)
        for nxt, start in gaps.items():
            end = state.end_us if nxt is None else nxt
            out.append({"kind": "no_write_succeeded", "partition": str(tp),
                        "from_us": start, "to_us": nxt, "duration_us": end - start})
    return out


def available(history: Sequence[Op], state: FinalState, *,
              max_unavailable_us: int = 30_000_000) -> CheckResult:
    witnesses = _leaderless(state, max_unavailable_us) + _write_gaps(
        history, state, max_unavailable_us)
    witnesses.sort(key=lambda w: (w["from_us"], w["partition"], w["kind"]))
    return verdict("available", witnesses, max_unavailable_us=max_unavailable_us)
