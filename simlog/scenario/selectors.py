"""Selectors: which nodes a fault acts on (SCENARIOS.md, "Selectors").

Parsing is static and typed: `b2`, `[b1, b2]`, `brokers`, `controllers`, `clients`, `all`,
`leader(orders/0)`, `controller`, `coordinator(analytics)` (the broker coordinating a
consumer group: the leader of its `__consumer_offsets` partition), `random(brokers)`,
`minority(brokers)`, `majority(brokers)`. What a selector means depends on the cluster when its fault fires,
so `resolve(selector, view, rng)` reads a `ClusterView` (the runner implements it; tests
use a fake) and returns sorted node ids. Random choices draw from the `rng` passed in
(the nemesis stream), over sorted candidates, so a seed fixes the outcome.

`minority(S)` is a random subset of (n-1)//2 members of S, `majority(S)` one of n//2+1:
the largest set that cannot, and the smallest that can, form a quorum of S.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from simlog.runtime import Rng

SETS = ("all", "brokers", "clients", "controllers")
PICKERS = ("majority", "minority", "random")
_NODE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_CALL_RE = re.compile(r"^(?P<fn>[a-z_]+)\s*\(\s*(?P<arg>[^()]*?)\s*\)$")

EXPECTED = ("a node id (b1, c1, p1, analytics-2), a list, brokers, controllers, clients, all, "
            "controller, leader(topic/N), coordinator(group), random(brokers), "
            "minority(brokers) or majority(brokers)")


class SelectorError(ValueError):
    """A selector that does not parse; says what was found and what is expected."""


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    """`orders/3`."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}"


def parse_partition(value: object) -> TopicPartition:
    """`orders/3` -> TopicPartition("orders", 3); a TopicPartition passes."""
    if isinstance(value, TopicPartition):
        return value
    if isinstance(value, str):
        topic, sep, num = value.strip().rpartition("/")
        if sep and _TOPIC_RE.match(topic) and num.isdigit():
            return TopicPartition(topic, int(num))
    found = repr(value) if isinstance(value, str) else str(value)
    raise SelectorError(f"expected a partition like orders/0, found {found}")


@dataclass(frozen=True, slots=True)
class Node:
    id: str

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class NodeSet:
    """`brokers`, `controllers`, `clients` or `all`."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Leader:
    partition: TopicPartition

    def __str__(self) -> str:
        return f"leader({self.partition})"


@dataclass(frozen=True, slots=True)
class Coordinator:
    """`coordinator(analytics)`: the broker that coordinates the group now."""

    group: str

    def __str__(self) -> str:
        return f"coordinator({self.group})"


@dataclass(frozen=True, slots=True)
class ActiveController:
    def __str__(self) -> str:
        return "controller"


@dataclass(frozen=True, slots=True)
class Pick:
    """`random(S)` (one member), `minority(S)` or `majority(S)`."""

    how: str
    of: NodeSet

    def __str__(self) -> str:
        return f"{self.how}({self.of})"


@dataclass(frozen=True, slots=True)
class Several:
    """A YAML list of selectors; resolves to the union."""

    items: tuple[Selector, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(str(i) for i in self.items) + "]"


Selector = Node | NodeSet | Leader | Coordinator | ActiveController | Pick | Several


def parse(value: object) -> Selector:
    """A selector from its YAML value (a string or a list of strings); a Selector passes."""
    if isinstance(value, Node | NodeSet | Leader | Coordinator | ActiveController | Pick
                  | Several):
        return value
    if isinstance(value, list | tuple):
        if not value:
            raise SelectorError(f"expected {EXPECTED}, found an empty list")
        return Several(tuple(parse(v) for v in value))
    if not isinstance(value, str):
        raise SelectorError(f"expected {EXPECTED}, found {value}")
    text = value.strip()
    if text in SETS:
        return NodeSet(text)
    if text == "controller":
        return ActiveController()
    if m := _CALL_RE.match(text):
        fn, arg = m["fn"], m["arg"]
        if fn == "leader":
            return Leader(parse_partition(arg))
        if fn == "coordinator":
            if not _NODE_RE.match(arg):
                raise SelectorError(f"expected coordinator(<consumer group>), found {text!r}")
            return Coordinator(arg)
        if fn in PICKERS:
            if arg not in SETS:
                raise SelectorError(f"expected {fn}(brokers|controllers|clients|all), "
                                    f"found {text!r}")
            return Pick(fn, NodeSet(arg))
        raise SelectorError(f"unknown selector function {fn!r} (expected leader, "
                            f"coordinator, random, minority or majority), found {text!r}")
    if _NODE_RE.match(text):
        return Node(text)
    raise SelectorError(f"expected {EXPECTED}, found {text!r}")


def named_nodes(sel: Selector) -> list[str]:
    """Node ids a selector names literally (for static reference checks)."""
    if isinstance(sel, Node):
        return [sel.id]
    if isinstance(sel, Several):
        return [n for item in sel.items for n in named_nodes(item)]
    return []


def named_partitions(sel: Selector) -> list[TopicPartition]:
    """Partitions a selector names (`leader(orders/3)`), for static reference checks."""
    if isinstance(sel, Leader):
        return [sel.partition]
    if isinstance(sel, Several):
        return [p for item in sel.items for p in named_partitions(item)]
    return []


def named_groups(sel: Selector) -> list[str]:
    """Consumer groups a selector names (`coordinator(analytics)`), for reference checks."""
    if isinstance(sel, Coordinator):
        return [sel.group]
    if isinstance(sel, Several):
        return [g for item in sel.items for g in named_groups(item)]
    return []


class ClusterView(Protocol):
    """What resolving a selector needs to know about the cluster right now.

    Lists hold every configured node (crashed ones too: a fault may target them);
    `controllers()` returns the voters, which in combined mode are the brokers."""

    def brokers(self) -> Sequence[str]: ...

    def controllers(self) -> Sequence[str]: ...

    def clients(self) -> Sequence[str]: ...

    def leader_of(self, partition: TopicPartition) -> str | None:
        """The broker that currently leads `partition`, or None when it has no leader."""
        ...

    def active_controller(self) -> str | None:
        """The node that is the active controller now, or None during an election."""
        ...

    def coordinator_of(self, group: str) -> str | None:
        """The broker leading the group's `__consumer_offsets` partition now (its
        coordinator), or None when that partition (or the topic) has no leader."""
        ...


def _members(s: NodeSet, view: ClusterView) -> list[str]:
    if s.name == "brokers":
        found = view.brokers()
    elif s.name == "controllers":
        found = view.controllers()
    elif s.name == "clients":
        found = view.clients()
    else:
        found = [*view.brokers(), *view.controllers(), *view.clients()]
    return sorted(set(found))


def _sample(pool: list[str], k: int, rng: Rng) -> list[str]:
    """k members of sorted `pool`, by a partial Fisher-Yates over rng.randrange."""
    pool = list(pool)
    for i in range(k):
        j = rng.randrange(i, len(pool))
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def resolve(sel: Selector, view: ClusterView, rng: Rng) -> tuple[str, ...]:
    """The node ids `sel` means now: sorted, without repeats, possibly empty."""
    if isinstance(sel, Node):
        out = [sel.id]
    elif isinstance(sel, NodeSet):
        out = _members(sel, view)
    elif isinstance(sel, Leader):
        leader = view.leader_of(sel.partition)
        out = [] if leader is None else [leader]
    elif isinstance(sel, Coordinator):
        coordinator = view.coordinator_of(sel.group)
        out = [] if coordinator is None else [coordinator]
    elif isinstance(sel, ActiveController):
        active = view.active_controller()
        out = [] if active is None else [active]
    elif isinstance(sel, Pick):
        pool = _members(sel.of, view)
        n = len(pool)
        k = {"random": min(1, n), "minority": (n - 1) // 2, "majority": n // 2 + 1}[sel.how]
        out = _sample(pool, min(k, n), rng)
    else:
        out = [n for item in sel.items for n in resolve(item, view, rng)]
    return tuple(sorted(set(out)))
