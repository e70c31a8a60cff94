"""Partition assignors: range, roundrobin, sticky, cooperative-sticky (client side).

Pure, deterministic functions, as Kafka's `ConsumerPartitionAssignor`s: the group
leader runs one over every member's subscription and hands the result to the
coordinator in its SyncGroup. Members are ordered by group.instance.id when they have
one, else by member id (Kafka's `MemberInfo` order), partitions by (topic, index).

- range (RangeAssignor): per topic, the sorted subscribers get consecutive ranges;
  the first `n % m` get one extra partition.
- roundrobin (RoundRobinAssignor): every partition of every subscribed topic, sorted,
  dealt in turn to the sorted members, skipping members not subscribed to its topic.
- sticky (StickyAssignor): balanced (member counts differ by at most one among
  members able to take a partition) and, within that, keeps each member's previously
  owned partitions; a partition claimed by two members goes to the claim with the
  higher generation (then the smaller member key).
- cooperative-sticky (CooperativeStickyAssignor, KIP-429): the sticky assignment, less
  every partition that would move from one *current* member to another: it is revoked
  in this round (its owner drops it) and assigned in the follow-up rebalance that the
  revoking member triggers by rejoining.

Which assignor a group uses is the coordinator's choice (`select_protocol`, Kafka's
GroupMetadata.selectProtocol): among the strategies every member supports, each member
votes for the first in its own `partition.assignment.strategy` list and the most votes
win; the elected leader then runs that assignor. With identical member configs this is
the first strategy of the leader's list that all members support.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]

RANGE = "range"
ROUNDROBIN = "roundrobin"
STICKY = "sticky"
COOPERATIVE_STICKY = "cooperative-sticky"
EAGER = "eager"
COOPERATIVE = "cooperative"

# Kafka's class names map to the short protocol names members advertise.
_CLASS_NAMES = {
    "org.apache.kafka.clients.consumer.RangeAssignor": RANGE,
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": ROUNDROBIN,
    "org.apache.kafka.clients.consumer.StickyAssignor": STICKY,
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": COOPERATIVE_STICKY,
}


@dataclass(frozen=True, slots=True)
class Subscription:
    """One member's JoinGroup metadata, decoded: its topics, what it owns now and the
    generation it owned them in (-1 when unknown), and its group.instance.id."""

    topics: tuple[str, ...]
    owned: tuple[TopicPartition, ...] = ()
    generation: int = -1
    instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class Assignor:
    name: str
    rebalance_protocol: str  # EAGER or COOPERATIVE (Kafka's supportedProtocols, highest)
    assign_fn: object = field(repr=False)

    def assign(self, partitions_per_topic: Mapping[str, int],
               subscriptions: Mapping[str, Subscription]) -> dict[str, list[TopicPartition]]:
        return self.assign_fn(partitions_per_topic, subscriptions)  # type: ignore[operator]


def parse_strategies(value: object) -> list[str]:
    """partition.assignment.strategy: a list or comma-separated string of short names
    or Kafka class names. Kafka 3.x's default is [range, cooperative-sticky]."""
    if value is None:
        return [RANGE, COOPERATIVE_STICKY]
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore
    out = []
    for item in items:
        name = str(item).strip()
        name = _CLASS_NAMES.get(name, name).lower()
        if not name:
            continue
        if name not in ASSIGNORS:
            raise ValueError(f"partition.assignment.strategy: unknown assignor {name!r}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("partition.assignment.strategy: empty")
    return out


def select_protocol(member_protocols: Mapping[str, Sequence[str]]) -> str | None:
    """Kafka's GroupMetadata.selectProtocol: candidates are the protocols every member
    supports; each member votes for its first candidate in its own preference order;
    the most votes win (ties: the candidate earliest in the sorted first member's
    list, which is deterministic). None when no protocol is common."""
    members = sorted(member_protocols)
    if not members:
        return None
    common = set(member_protocols[members[0]])
    for m in members[1:]:
        common &= set(member_protocols[m])
    if not common:
        return None
    votes: dict[str, int] = {}
    for m in members:
        first = next(p for p in member_protocols[m] if p in common)
        votes[first] = votes.get(first, 0) + 1
    order = [p for p in member_protocols[members[0]] if p in common]
    return max(order, key=lambda p: (votes.get(p, 0), -order.index(p)))


def _member_order(subscriptions: Mapping[str, Subscription]) -> list[str]:
    return sorted(subscriptions, key=lambda m: (subscriptions[m].instance_id is None,
                                                subscriptions[m].instance_id or "", m))


def _all_partitions(partitions_per_topic: Mapping[str, int],
                    subscriptions: Mapping[str, Subscription]) -> list[TopicPartition]:
    topics = sorted({t for s in subscriptions.values() for t in s.topics
                     if t in partitions_per_topic})
    return [(t, p) for t in topics for p in range(partitions_per_topic[t])]


def range_assign(partitions_per_topic: Mapping[str, int],
                 subscriptions: Mapping[str, Subscription]) -> dict[str, list[TopicPartition]]:
    out: dict[str, list[TopicPartition]] = {m: [] for m in subscriptions}
    order = _member_order(subscriptions)
    for topic in sorted(partitions_per_topic):
        members = [m for m in order if topic in subscriptions[m].topics]
        if not members:
            continue
        n = partitions_per_topic[topic]
        per, extra = divmod(n, len(members))
        start = 0
        for i, m in enumerate(members):
            count = per + (1 if i < extra else 0)
            out[m].extend((topic, p) for p in range(start, start + count))
            start += count
    return {m: sorted(v) for m, v in out.items()}


def roundrobin_assign(partitions_per_topic: Mapping[str, int],
                      subscriptions: Mapping[str, Subscription],
                      ) -> dict[str, list[TopicPartition]]:
    out: dict[str, list[TopicPartition]] = {m: [] for m in subscriptions}
    order = _member_order(subscriptions)
    if not order:
        return out
    i = 0
    for tp in _all_partitions(partitions_per_topic, subscriptions):
        for _ in range(len(order)):
            m = order[i % len(order)]
            i += 1
            if tp[0] in subscriptions[m].topics:
                out[m].append(tp)
                break
    return {m: sorted(v) for m, v in out.items()}


def sticky_assign(partitions_per_topic: Mapping[str, int],
                  subscriptions: Mapping[str, Subscription]) -> dict[str, list[TopicPartition]]:
    order = _member_order(subscriptions)
    rank = {m: i for i, m in enumerate(order)}
    all_tps = _all_partitions(partitions_per_topic, subscriptions)
    valid = set(all_tps)
    # 1. previous owners keep what they still may own; the highest generation wins a
    #    partition claimed twice (a member that missed a rebalance claims stale ones).
    claims: dict[TopicPartition, tuple[int, int, str]] = {}
    for m in order:
        s = subscriptions[m]
        for tp in s.owned:
            if tp not in valid or tp[0] not in s.topics:
                continue
            key = (-s.generation, rank[m], m)
            if tp not in claims or key < claims[tp]:
                claims[tp] = key
    owner: dict[TopicPartition, str] = {tp: c[2] for tp, c in claims.items()}
    counts = {m: 0 for m in order}
    for m in owner.values():
        counts[m] += 1

    def eligible(tp: TopicPartition) -> list[str]:
        return [m for m in order if tp[0] in subscriptions[m].topics]

    # 2. members over the balanced quota give up their excess (uniform case) before
    #    unowned partitions are dealt, so a newcomer gets them instead.
    if order and all(subscriptions[m].topics == subscriptions[order[0]].topics for m in order):
        total, n = len(all_tps), len(order)
        base, extra = divmod(total, n)
        # members owning the most keep the `extra` ceil slots (fewest moves)
        by_load = sorted(order, key=lambda m: (-counts[m], rank[m]))
        quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(by_load)}
        for m in order:
            mine = sorted(tp for tp, o in owner.items() if o == m)
            for tp in mine[quota[m]:]:
                del owner[tp]
                counts[m] -= 1
    # 3. unowned partitions go to the least loaded eligible member.
    for tp in all_tps:
        if tp in owner:
            continue
        cands = eligible(tp)
        if not cands:
            continue
        m = min(cands, key=lambda c: (counts[c], rank[c]))
        owner[tp] = m
        counts[m] += 1
    # 4. balance: move from the most to the least loaded eligible member while that
    #    narrows the gap by more than one.
    moved = True
    while moved:
        moved = False
        for src in sorted(order, key=lambda m: (-counts[m], rank[m])):
            for tp in sorted((tp for tp, o in owner.items() if o == src), reverse=True):
                cands = [c for c in eligible(tp) if counts[c] < counts[src] - 1]
                if cands:
                    dst = min(cands, key=lambda c: (counts[c], rank[c]))
                    owner[tp] = dst
                    counts[src] -= 1
                    counts[dst] += 1
                    moved = True
                    break
            if moved:
                break
    out: dict[str, list[TopicPartition]] = {m: [] for m in order}
    for tp in sorted(owner):
        out[owner[tp]].append(tp)
    return out


def cooperative_sticky_assign(partitions_per_topic: Mapping[str, int],
                              subscriptions: Mapping[str, Subscription],
                              ) -> dict[str, list[TopicPartition]]:
    """Sticky, then KIP-429's adjustment: a partition owned by another current member
    is withheld this round (its owner revokes it; the next rebalance assigns it)."""
    out = sticky_assign(partitions_per_topic, subscriptions)
    owned_by: dict[TopicPartition, str] = {}
    for m in _member_order(subscriptions):
        for tp in subscriptions[m].owned:
            owned_by.setdefault(tp, m)
    return {m: [tp for tp in tps if owned_by.get(tp, m) == m] for m, tps in out.items()}


ASSIGNORS: dict[str, Assignor] = {
    RANGE: Assignor(RANGE, EAGER, range_assign),
    ROUNDROBIN: Assignor(ROUNDROBIN, EAGER, roundrobin_assign),
    STICKY: Assignor(STICKY, EAGER, sticky_assign),
    COOPERATIVE_STICKY: Assignor(COOPERATIVE_STICKY, COOPERATIVE, cooperative_sticky_assign),
}


def rebalance_protocol(strategies: Sequence[str]) -> str:
    """Kafka's ConsumerCoordinator: COOPERATIVE only if every configured assignor
    supports it, else EAGER."""
    if all(ASSIGNORS[s].rebalance_protocol == COOPERATIVE for s in strategies):
        return COOPERATIVE
    return EAGER


__all__ = [
    "ASSIGNORS",
    "COOPERATIVE",
    "COOPERATIVE_STICKY",
    "EAGER",
    "RANGE",
    "ROUNDROBIN",
    "STICKY",
    "Assignor",
    "Subscription",
    "TopicPartition",
    "cooperative_sticky_assign",
    "parse_strategies",
    "range_assign",
    "rebalance_protocol",
    "roundrobin_assign",
    "select_protocol",
    "sticky_assign",
]
