"""Consumer-side checks: poll_monotonic, group_exclusive, committed_offsets, consumed_all.

History ops they read (SCENARIOS.md): `assign` ok `{group, generation, partitions}` (a
member's whole new assignment; `partitions: []` when it revoked everything), `revoke` ok
`{group, partitions}` (optional: partitions given up before the next assign), `poll` ok
`{records: [{topic, partition, offset, id}]}`, `commit` ok `{group, offsets: {"t/p": n}}`,
and a member's own `crash` / `leave` op, which ends everything it owned.

poll_monotonic: within one assignment (from an `assign` ok of the process to its next),
  the offsets a consumer sees of a partition go up by one: `backwards` when an offset is
  <= the previous one, `skip` when it jumps over offsets the final log holds (gaps the
  log itself has, from compaction or truncation, are not skips).
group_exclusive: `shared` when a member gains a partition that another member of its
  group still owns, in history order (assign ops without a group, i.e. manual
  assignment, are not group ownership). A member that lost its partitions because its
  session ran out while it could not run (paused, frozen) records that only when it
  runs again, as a `revoke` with `lapsed_us`, the time its session lapsed; its ownership
  counts as ended then, unless it polled records of those partitions after it.
committed_offsets: `backwards` when a group's acknowledged commit for a partition is lower
  than an earlier acknowledged one; `final_below_acked` / `final_missing` when the final
  committed offset (`FinalState.committed_offsets`, if the runner filled it) is lower
  than the highest acknowledged commit, or gone.
consumed_all: `unconsumed` for each acknowledged send in a final log of a topic a group
  subscribes to (`FinalState.groups`; if the runner left it empty, the topics of the
  partitions each group's assign ops hand out) that no member of the group polled. Lost acked
  writes are lost_writes' witnesses, not this check's.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from simlog.checks.common import locations, msg_id, parse_tp, send_pairs, send_partition
from simlog.checks.history import Op
from simlog.checks.result import CheckResult, verdict
from simlog.checks.state import FinalState
from simlog.scenario.selectors import TopicPartition

_ENDS_MEMBERSHIP = ("crash", "leave")


def _oks(history: Sequence[Op], *fs: str) -> list[Op]:
    return [op for op in history if op.type == "ok" and op.f in fs]


def _records(op: Op) -> list[dict[str, Any]]:
    v = op.value
    recs = v.get("records") if isinstance(v, dict) else None
    return recs if isinstance(recs, list) else []


def _partitions(value: Any) -> list[TopicPartition]:
    parts = value.get("partitions") if isinstance(value, dict) else None
    return sorted(parse_tp(p) for p in parts or [])


def poll_monotonic(history: Sequence[Op], state: FinalState) -> CheckResult:
    held = {ps.partition: sorted(r.offset for r in ps.final_log())
            for ps in state.sorted_partitions()}
    last: dict[tuple[str, TopicPartition], int] = {}
    witnesses: list[dict[str, Any]] = []
    polled = 0
    for op in history:
        if op.type != "ok":
            continue
        if op.f == "assign":
            for key in [k for k in last if k[0] == op.process]:
                del last[key]
            continue
        if op.f != "poll":
            continue
        for rec in _records(op):
            polled += 1
            tp = TopicPartition(str(rec["topic"]), int(rec["partition"]))
            offset, key = int(rec["offset"]), (op.process, tp)
            prev = last.get(key)
            last[key] = offset
            if prev is None:
                continue
            base = {"process": op.process, "partition": str(tp), "from_offset": prev,
                    "to_offset": offset, "id": rec.get("id"), "time_us": op.time_us}
            if offset <= prev:
                witnesses.append({"kind": "backwards", **base})
            elif offset > prev + 1:
                offsets = held.get(tp, [])
                i = bisect_right(offsets, prev)
                skipped = [o for o in offsets[i:i + 5] if o < offset]
                if skipped:
                    witnesses.append({"kind": "skip", **base, "skipped": skipped})
    return verdict("poll_monotonic", witnesses, records_polled=polled)


def _lapses(history: Sequence[Op]) -> dict[str, list[tuple[int, int, set[TopicPartition]]]]:
    """Per member: (history index, lapsed_us, partitions) of its revokes that say when
    its session had lapsed, in history order."""
    out: dict[str, list[tuple[int, int, set[TopicPartition]]]] = defaultdict(list)
    for op in history:
        if op.type == "ok" and op.f == "revoke" and isinstance(op.value, dict) \
                and isinstance(op.value.get("lapsed_us"), int):
            out[op.process].append((op.index, op.value["lapsed_us"],
                                    set(_partitions(op.value))))
    return out


def _polled_between(history: Sequence[Op], member: str, tp: TopicPartition,
                    start_us: int, end_index: int) -> bool:
    """Whether the member polled a record of tp at or after start_us, before end_index."""
    for op in history:
        if op.index >= end_index:
            break
        if op.process == member and op.f == "poll" and op.type == "ok" \
                and op.time_us >= start_us \
                and any(TopicPartition(str(r["topic"]), int(r["partition"])) == tp
                        for r in _records(op)):
            return True
    return False


def _lapsed(lapses: dict[str, list[tuple[int, int, set[TopicPartition]]]],
            history: Sequence[Op], member: str, tp: TopicPartition, op: Op) -> bool:
    """Whether member's ownership of tp had already ended at op by a lapsed session it
    recorded later, without polling tp in between."""
    for index, lapsed_us, parts in lapses.get(member, ()):
        if index > op.index and tp in parts:
            return lapsed_us <= op.time_us and not _polled_between(
                history, member, tp, lapsed_us, index)
    return False


def group_exclusive(history: Sequence[Op], state: FinalState) -> CheckResult:
    owned: dict[str, tuple[str, set[TopicPartition]]] = {}  # member -> (group, partitions)
    witnesses: list[dict[str, Any]] = []
    lapses = _lapses(history)
    for op in history:
        if op.f in _ENDS_MEMBERSHIP and op.type != "invoke":
            owned.pop(op.process, None)
            continue
        if op.type != "ok" or op.f not in ("assign", "revoke"):
            continue
        if not isinstance(op.value, dict) or op.value.get("group") is None:
            continue  # a manual assignment: no group to be exclusive in
        group = str(op.value["group"])
        current = owned.get(op.process, (group, set()))[1]
        parts = set(_partitions(op.value))
        if op.f == "revoke":
            owned[op.process] = (group, current - parts)
            continue
        for tp in sorted(parts - current):
            others = sorted(m for m, (g, ps) in owned.items()
                            if g == group and m != op.process and tp in ps
                            and not _lapsed(lapses, history, m, tp, op))
            if others:
                witnesses.append({"kind": "shared", "group": group, "partition": str(tp),
                                  "members": sorted([others[0], op.process]),
                                  "generation": op.value.get("generation"),
                                  "time_us": op.time_us, "index": op.index})
        owned[op.process] = (group, parts)
    return verdict("group_exclusive", witnesses)


def committed_offsets(history: Sequence[Op], state: FinalState) -> CheckResult:
    highest: dict[tuple[str, TopicPartition], int] = {}
    previous: dict[tuple[str, TopicPartition], int] = {}
    witnesses: list[dict[str, Any]] = []
    for op in _oks(history, "commit"):
        v = op.value if isinstance(op.value, dict) else {}
        group = str(v.get("group"))
        for tp_text, offset in sorted((v.get("offsets") or {}).items()):
            key = (group, parse_tp(tp_text))
            if key in previous and offset < previous[key]:
                witnesses.append({"kind": "backwards", "group": group,
                                  "partition": str(key[1]), "from_offset": previous[key],
                                  "to_offset": offset, "process": op.process,
                                  "time_us": op.time_us})
            previous[key] = offset
            highest[key] = max(offset, highest.get(key, offset))
    if state.committed_offsets:
        for key in sorted(highest):
            final = state.committed_offsets.get(key)
            if final is None or final < highest[key]:
                witnesses.append({"kind": "final_missing" if final is None
                                  else "final_below_acked", "group": key[0],
                                  "partition": str(key[1]), "final": final,
                                  "acked_max": highest[key]})
    return verdict("committed_offsets", witnesses, commits=len(previous))


_MEMBER_RE = re.compile(r"^(?P<group>.+)-[0-9]+$")


def _member_groups(history: Sequence[Op], groups: set[str]) -> dict[str, str]:
    """Consumer process -> group: from its assign ops, else its name (`group-N`)."""
    out: dict[str, str] = {}
    for op in _oks(history, "assign"):
        if isinstance(op.value, dict) and "group" in op.value:
            out[op.process] = str(op.value["group"])
    for op in _oks(history, "poll"):
        m = _MEMBER_RE.match(op.process)
        if op.process not in out and m and m["group"] in groups:
            out[op.process] = m["group"]
    return out


def _subscriptions(history: Sequence[Op], state: FinalState) -> dict[str, set[str]]:
    """Group -> topics: the runner's `FinalState.groups`, else what assign ops show."""
    if state.groups:
        return {g: set(ts) for g, ts in state.groups.items()}
    out: dict[str, set[str]] = defaultdict(set)
    for op in _oks(history, "assign"):
        if isinstance(op.value, dict) and op.value.get("group") is not None:
            out[str(op.value["group"])].update(tp.topic for tp in _partitions(op.value))
    return dict(out)


def consumed_all(history: Sequence[Op], state: FinalState) -> CheckResult:
    subscriptions = _subscriptions(history, state)
    member_group = _member_groups(history, set(subscriptions))
    consumed: dict[str, set[str]] = defaultdict(set)
    for op in _oks(history, "poll"):
        group = member_group.get(op.process)
        if group is not None:
            consumed[group].update(str(r.get("id")) for r in _records(op))
    where = locations(state)
    expected: list[tuple[TopicPartition, int, str]] = []
    for pair in send_pairs(history):
        mid, tp = msg_id(pair), send_partition(pair)
        if pair.type == "ok" and mid in where and tp is not None:
            places = [off for p, off in where[mid] if p == tp] or [where[mid][0][1]]
            expected.append((tp, places[0], mid))
    witnesses = []
    for group in sorted(subscriptions):
        for tp, offset, mid in sorted(expected):
            if tp.topic in subscriptions[group] and mid not in consumed[group]:
                witnesses.append({"kind": "unconsumed", "group": group, "id": mid,
                                  "partition": str(tp), "offset": offset})
    return verdict("consumed_all", witnesses,
                   consumed={g: len(consumed[g]) for g in sorted(subscriptions)})
