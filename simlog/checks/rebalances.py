"""rebalances: no consumer group goes through more than `max_rebalances` rebalances.

A rebalance is a group generation that handed out an assignment: the generations of the
group's `assign` ok ops (`{group, generation, partitions}`), the first one (the group
forming) included, so `max: 1` means "the group never rebalanced after it formed". A
static member (group.instance.id, KIP-345) restarting within session.timeout.ms gets its
assignment back in the same generation and adds none; a dynamic member's bounce adds
two (its join as a new member, then its old self's expiry).

Witness `too_many_rebalances`: the group, how many, and each generation after the
allowed ones with the time it first handed out an assignment and who got one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simlog.checks.history import Op
from simlog.checks.result import verdict
from simlog.checks.state import FinalState


def rebalances(history: Sequence[Op], state: FinalState, *, max_rebalances: int = 1):
    generations: dict[str, dict[int, dict[str, Any]]] = {}
    for op in history:
        if op.type != "ok" or op.f != "assign" or not isinstance(op.value, dict):
            continue
        group, gen = op.value.get("group"), op.value.get("generation")
        if group is None or not isinstance(gen, int):
            continue
        seen = generations.setdefault(str(group), {})
        entry = seen.setdefault(gen, {"generation": gen, "at_us": op.time_us, "members": []})
        if op.process not in entry["members"]:
            entry["members"].append(op.process)
    witnesses = []
    counts = {}
    for group in sorted(generations):
        gens = [generations[group][g] for g in sorted(generations[group])]
        counts[group] = len(gens)
        if len(gens) > max_rebalances:
            witnesses.append({"kind": "too_many_rebalances", "group": group,
                              "rebalances": len(gens), "max": max_rebalances,
                              "extra": gens[max_rebalances:max_rebalances + 5]})
    return verdict("rebalances", witnesses, rebalances=counts, max=max_rebalances)
