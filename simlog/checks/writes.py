"""Checks of produced writes against the final logs: lost_writes, duplicates, order.

Outcomes of a send, as the history reports them: `ok` (acknowledged), `fail` (the system
said it certainly did not happen), `info` (unknown: timed out) or no completion (read as
info). The final log of a partition is its committed log (`FinalState`).

lost_writes: fails when
  - `lost`: an acknowledged send's id is in no final log (a write acknowledged at an offset
    below the log start offset, i.e. deleted by retention, is not counted);
  - `failed_present`: a send reported `fail` is in a final log. A definite failure that
    happened anyway breaks the same promise as a lost ack (what the producer was told is
    false), so it fails this check too, as its own witness kind.
  `info` sends may or may not be present: never a witness.
duplicates: fails when one message id is at two or more (partition, offset) places in the
  final logs, whatever its outcome was (so a retried `info` send that landed once is fine).
order: per producer and partition, over acknowledged sends present in the log (at their
  lowest offset): send a must sit below send b when
  - a's ok completed before b was invoked (real-time order: always required), or
  - the producer is idempotent (`FinalState.idempotent_producers`) and a was invoked
    before b (Kafka's per-partition ordering guarantee of idempotent producers).
  A witness names b (the later send found lower) and the a with the highest offset among
  those that had to come first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from simlog.checks.common import acked_offset, locations, msg_id, send_pairs, send_partition
from simlog.checks.history import Op, Pair
from simlog.checks.result import CheckResult, verdict
from simlog.checks.state import FinalState
from simlog.scenario.selectors import TopicPartition


def lost_writes(history: Sequence[Op], state: FinalState) -> CheckResult:
    where = locations(state)
    witnesses: list[dict[str, Any]] = []
    counts = {"acked": 0, "lost": 0, "failed_present": 0, "info_present": 0,
              "info_absent": 0, "deleted_by_retention": 0}
    for pair in send_pairs(history):
        mid, tp = msg_id(pair), send_partition(pair)
        found = where.get(mid or "", [])
        if pair.type == "ok":
            counts["acked"] += 1
            if found:
                continue
            offset = acked_offset(pair)
            ps = state.partitions.get(tp) if tp is not None else None
            ref = ps.reference_replica() if ps is not None else None
            if ref is not None and offset is not None and offset < ref.log_start_offset:
                counts["deleted_by_retention"] += 1
                continue
            counts["lost"] += 1
            witnesses.append({"kind": "lost", "id": mid, "process": pair.process,
                              "partition": str(tp) if tp else None, "offset": offset,
                              "acked_at_us": pair.completion.time_us})
        elif pair.type == "fail" and found:
            counts["failed_present"] += 1
            witnesses.append({"kind": "failed_present", "id": mid, "process": pair.process,
                              "partition": str(found[0][0]), "offset": found[0][1],
                              "failed_at_us": pair.completion.time_us})
        elif pair.type == "info":
            counts["info_present" if found else "info_absent"] += 1
    return verdict("lost_writes", witnesses, **counts)


def duplicates(history: Sequence[Op], state: FinalState) -> CheckResult:
    where = locations(state)
    dups = sorted((places, mid) for mid, places in where.items() if len(places) > 1)
    witnesses = [{"kind": "duplicate", "id": mid,
                  "locations": [{"partition": str(tp), "offset": off} for tp, off in places]}
                 for places, mid in dups]
    return verdict("duplicates", witnesses, duplicated_ids=len(dups))



def order(history: Sequence[Op], state: FinalState) -> CheckResult:
    first = {}
    for mid, places in locations(state).items():
        for tp, off in places:
            first.setdefault((mid, tp), off)
    groups: dict[tuple[str, TopicPartition], list[tuple[Pair, int]]] = defaultdict(list)
    for pair in send_pairs(history):
        mid, tp = msg_id(pair), send_partition(pair)
        if pair.type == "ok" and tp is not None and (mid, tp) in first:
            groups[(pair.process, tp)].append((pair, first[(mid, tp)]))
    witnesses: list[dict[str, Any]] = []
    for (process, tp), sends in sorted(groups.items()):
        strict = process in state.idempotent_producers
        witnesses.extend(_reorders(process, tp, sends, strict))
    witnesses.sort(key=lambda w: (w["second"]["invoked_at_us"], w["process"], w["partition"]))
    return verdict("order", witnesses)


def _reorders(process: str, tp: TopicPartition, sends: list[tuple[Pair, int]],
              strict: bool) -> list[dict[str, Any]]:
    by_invoke = sorted(sends, key=lambda s: s[0].invoke.index)
    by_done = sorted(sends, key=lambda s: s[0].completion.index)
    best: tuple[Pair, int] | None = None  # the predecessor with the highest offset
    out = []
    done = 0
    for pair, offset in by_invoke:
        if not strict:
            while done < len(by_done) and \
                    by_done[done][0].completion.index < pair.invoke.index:
                if best is None or by_done[done][1] > best[1]:
                    best = by_done[done]
                done += 1
        if best is not None and offset < best[1]:
            a, a_off = best
            out.append({
                "kind": "reordered", "process": process, "partition": str(tp),
                "rule": "idempotent send order" if strict else "acked before invoked",
                "first": {"id": msg_id(a), "offset": a_off, "invoked_at_us": a.invoke.time_us,
                          "acked_at_us": a.completion.time_us},
                "second": {"id": msg_id(pair), "offset": offset,
                           "invoked_at_us": pair.invoke.time_us},
            })
        if strict and (best is None or offset > best[1]):
            best = (pair, offset)
    return out
