"""Rebalance and lag figures of consumer groups, from a run's history (pure functions).

`rebalance_stats(history)` replays the `assign` / `revoke` / `crash` / `leave` ops
(SCENARIOS.md's history format; any objects with `time_us`, `process`, `type`, `f`,
`value`) and gives, per group: how many generations handed out partitions (rebalances),
and for each partition the total time it had no owner after it first had one (the
cost a rebalance protocol imposes: eager revokes everything first, cooperative only
what moves). `end_us` closes intervals still open at the end of the run.

`group_lag(log_end_offsets, committed)` is Kafka's consumer lag: log end offset minus
the committed offset (the whole log end when nothing is committed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_ENDS = ("crash", "leave")


@dataclass
class GroupRebalanceStats:
    group: str
    generations: list[int] = field(default_factory=list)
    unowned_us: dict[str, int] = field(default_factory=dict)  # "topic/p" -> µs

    @property
    def rebalances(self) -> int:
        return len(self.generations)

    @property
    def total_unowned_us(self) -> int:
        return sum(self.unowned_us.values())

    def to_json(self) -> dict[str, Any]:
        return {"rebalances": self.rebalances, "total_unowned_ms": self.total_unowned_us // 1000,
                "unowned_ms": {p: us // 1000 for p, us in sorted(self.unowned_us.items())}}


def rebalance_stats(history: Iterable[Any], end_us: int | None = None
                    ) -> dict[str, GroupRebalanceStats]:
    owned: dict[str, tuple[str, set[str]]] = {}        # member -> (group, partitions)
    owners: dict[tuple[str, str], set[str]] = {}        # (group, partition) -> members
    unowned_since: dict[tuple[str, str], int] = {}
    stats: dict[str, GroupRebalanceStats] = {}
    last_us = 0

    def set_owned(member: str, group: str, parts: set[str], now: int) -> None:
        old_group, old = owned.get(member, (group, set()))
        for p in sorted(old - parts):
            key = (old_group, p)
            owners[key].discard(member)
            if not owners[key]:
                unowned_since[key] = now
        for p in sorted(parts - old):
            key = (group, p)
            owners.setdefault(key, set()).add(member)
            since = unowned_since.pop(key, None)
            if since is not None:
                st = stats[group]
                st.unowned_us[p] = st.unowned_us.get(p, 0) + now - since
            stats[group].unowned_us.setdefault(p, 0)
        owned[member] = (group, parts)

    for op in history:
        last_us = max(last_us, op.time_us)
        if op.type != "ok":
            continue
        v = op.value if isinstance(op.value, dict) else {}
        if op.f in _ENDS:
            if op.process in owned:
                g, _ = owned[op.process]
                set_owned(op.process, g, set(), op.time_us)
            continue
        if op.f not in ("assign", "revoke") or v.get("group") is None:
            continue
        group = str(v["group"])
        st = stats.setdefault(group, GroupRebalanceStats(group))
        parts = {str(p) for p in v.get("partitions") or []}
        current = owned.get(op.process, (group, set()))[1]
        if op.f == "revoke":
            set_owned(op.process, group, current - parts, op.time_us)
        else:
            gen = v.get("generation")
            if isinstance(gen, int) and gen not in st.generations:
                st.generations.append(gen)
            set_owned(op.process, group, parts, op.time_us)
    end = last_us if end_us is None else end_us
    for (group, p), since in sorted(unowned_since.items()):
        st = stats[group]
        st.unowned_us[p] = st.unowned_us.get(p, 0) + max(0, end - since)
    return stats


def group_lag(log_end_offsets: Mapping[str, int], committed: Mapping[str, int]
              ) -> dict[str, int]:
    """Per partition ("topic/p"): log end offset minus committed offset."""
    return {p: max(0, leo - committed.get(p, 0)) for p, leo in sorted(log_end_offsets.items())}


__all__ = ["GroupRebalanceStats", "group_lag", "rebalance_stats"]
