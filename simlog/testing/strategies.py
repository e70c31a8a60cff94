"""Hypothesis strategies for fault schedules and the scenarios around them.

    from hypothesis import given
    from simlog.testing import scenarios, schedules, check_property

    BASE = "my_cluster.yaml"          # a scenario file, YAML text or a dict: the template

    @given(scenarios(base=BASE, schedules=schedules(kinds=["partition", "crash", "pause"],
                                                     max_faults=4, undo=True)))
    def test_no_lost_writes(raw):
        check_property(raw)           # runs it; on a miss writes a replayable file, raises

Strategies draw *raw* scenarios: the plain dicts a YAML file holds, with units spelled as
a user would (`10s`, `16KiB`). `to_yaml` writes one out; every drawn scenario loads
(`simlog.scenario.load.loads`) without error, which tests/scenario/test_strategies.py and
tests/property/test_testing_api.py check as properties.

Schedules respect the contract: times in order and within the duration, selectors that
name existing nodes and partitions (brokers added by `add_broker`, partitions by
`add_partitions` count from then on), `heal` that repeats an earlier link fault or says
`all`, and `random` nemeses that end by the duration. They shrink well: fewer faults,
earlier times, shorter holds, simpler selectors.

`schedules(...)` called without a cluster shape is *unbound*: it is a strategy on its own
(for the default shape: 3 brokers, 3 controllers, no topics or clients) and
`scenarios(base=..., schedules=...)` rebinds it to the base scenario's shape and duration.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from simlog.scenario.schema import OPS, RANDOM_KINDS
from simlog.scenario.units import format_time_us, parse_time_us

FAULT_KINDS = tuple(sorted(OPS))
# Kinds the runner executes today (reassign and add_partitions load but do not run yet).
RUNNABLE_KINDS = tuple(k for k in FAULT_KINDS if k not in ("reassign", "add_partitions"))
# Kinds that never lose data by design with acks=all, min.insync.replicas=2, RF=3,
# unclean election off (Kafka's promise): no power loss, no disk corruption.
SAFE_KINDS = ("clock", "crash", "cut", "heal", "isolate", "link", "partition", "pause",
              "restart", "resume", "slow_disk")
_TICK_US = 100_000  # fault times on a 100 ms grid: readable files, enough variety
_NODE_SCOPES = ("all", "brokers", "controllers", "servers")
_CLIENT_SCOPES = ("all", "members", "producers")


class _World:
    """What exists at the current point of a schedule being drawn."""

    def __init__(self, brokers: int, controllers: int, topics: Mapping[str, int],
                 producers: Sequence[str], members: Sequence[str],
                 nodes: str | Sequence[str] = "all",
                 clients: str | Sequence[str] = "all") -> None:
        self.brokers = [f"b{i}" for i in range(1, brokers + 1)]
        self.controllers = [f"c{i}" for i in range(1, controllers + 1)]
        self.topics = dict(topics)
        self.producers = list(producers)
        self.members = list(members)
        self.nodes = nodes if isinstance(nodes, str) else list(nodes)
        if isinstance(self.nodes, str) and self.nodes not in _NODE_SCOPES:
            raise ValueError(f"unknown nodes scope {nodes!r} (expected one of "
                             f"{', '.join(_NODE_SCOPES)} or a list of node ids)")
        if isinstance(clients, str):
            if clients not in _CLIENT_SCOPES:
                raise ValueError(f"unknown clients scope {clients!r} (expected one of "
                                 f"{', '.join(_CLIENT_SCOPES)} or a list of client ids)")
            self.client_pool = {"all": self.clients, "members": list(self.members),
                                "producers": list(self.producers)}[clients]
        else:
            self.client_pool = [c for c in clients if c in self.clients]
        # clients down at the current point of the schedule: id -> (the action that took
        # it down, crash or leave; the tick its drawn restart / join fires, or None)
        self.down: dict[str, tuple[str, int | None]] = {}

    def client_actions(self, client: str, tick: int) -> list[str]:
        """The `client` actions that make sense on `client` at `tick`: crash / leave a
        running one, restart a crashed one, join one that left; none while a drawn
        restart / join is still to come."""
        state = self.down.get(client)
        if state is None or (state[1] is not None and state[1] <= tick):
            return ["crash", "leave"]
        if state[1] is not None:
            return []
        return ["restart"] if state[0] == "crash" else ["join"]

    def actionable_clients(self, tick: int) -> list[str]:
        return [c for c in self.client_pool if self.client_actions(c, tick)]

    @property
    def clients(self) -> list[str]:
        return self.producers + self.members

    @property
    def groups(self) -> list[str]:
        """Consumer groups, from their members' ids (`analytics-2` -> `analytics`)."""
        return sorted({m.rpartition("-")[0] for m in self.members})

    @property
    def disk_nodes(self) -> list[str]:
        return self.brokers + self.controllers

    @property
    def pool(self) -> list[str]:
        """Nodes a fault may name literally."""
        if not isinstance(self.nodes, str):
            return list(self.nodes)
        return {"all": self.brokers + self.controllers + self.clients,
                "brokers": list(self.brokers),
                "controllers": list(self.controllers),
                "servers": self.brokers + self.controllers}[self.nodes]

    @property
    def scope(self) -> str:
        """A set selector covering every node faults may touch (for undo ops)."""
        if isinstance(self.nodes, str) and self.nodes in ("brokers", "controllers"):
            return self.nodes
        return "all"


def _partition_refs(world: _World) -> list[str]:
    return [f"{t}/{p}" for t, n in sorted(world.topics.items()) for p in range(n)]


def _selector(draw: st.DrawFn, world: _World, *, nodes: list[str] | None = None) -> Any:
    """A selector; with `nodes`, only literal ids from `nodes` (e.g. nodes with disks)."""
    pool = nodes if nodes is not None else world.pool
    if nodes is not None:
        pool = [n for n in pool if n in world.pool] or pool
    forms = ["node", "list"]
    sets: list[str] = []
    picks: list[str] = []
    leader = False
    scope = world.nodes
    if nodes is None and isinstance(scope, str):
        sets = {"all": ["all", "brokers", "clients", "controllers"],
                "brokers": ["brokers"], "controllers": ["controllers"],
                "servers": ["brokers", "controllers"]}[scope]
        picks = [s for s in ("brokers", "controllers") if s in sets and getattr(world, s)]
        leader = bool(world.topics) and scope in ("all", "brokers", "servers")
        coordinator = bool(world.groups) and scope in ("all", "brokers", "servers")
        forms += ["set"] + (["controller"] if world.controllers and scope != "brokers"
                            else []) + (["pick"] if picks else []) + (["leader"] if leader
                                                                      else [])
        forms += ["coordinator"] if coordinator else []
    form = draw(st.sampled_from(forms))
    if form == "node":
        return draw(st.sampled_from(pool))
    if form == "list":
        return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    if form == "set":
        return draw(st.sampled_from(sets))
    if form == "controller":
        return "controller"
    if form == "leader":
        return f"leader({draw(st.sampled_from(_partition_refs(world)))})"
    if form == "coordinator":
        return f"coordinator({draw(st.sampled_from(world.groups))})"
    how = draw(st.sampled_from(["random", "minority", "majority"]))
    return f"{how}({draw(st.sampled_from(picks))})"


def _maybe_for(draw: st.DrawFn) -> dict[str, str]:
    if draw(st.booleans()):
        return {"for": format_time_us(draw(st.integers(1, 100)) * _TICK_US)}
    return {}


def _op(draw: st.DrawFn, kind: str, world: _World, at_us: int, duration_us: int,
        link_ops: list[tuple[str, Any]], power_loss: bool = True) -> Any:
    """The value of one fault op of `kind`, valid in `world` (which it may update)."""
    sel = lambda **kw: _selector(draw, world, **kw)  # noqa: E731
    if kind == "partition":
        return {"groups": [sel() for _ in range(draw(st.integers(2, 3)))]}
    if kind in ("isolate", "restart", "resume"):
        return sel()
    if kind == "cut":
        return {"from": sel(), "to": sel()}
    if kind == "heal":
        if link_ops and draw(st.booleans()):
            return draw(st.sampled_from(link_ops))[1]
        return "all"
    if kind == "link":
        value: dict[str, Any] = {"from": sel(), "to": sel()}
        if draw(st.booleans()):
            value["latency"] = format_time_us(draw(st.integers(1, 500)) * 1000)
        for prob in ("loss", "duplicate", "reorder"):
            if draw(st.booleans()):
                value[prob] = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.0]))
        return value | _maybe_for(draw)
    if kind == "crash":
        node = sel()
        if power_loss and draw(st.booleans()):
            return {"node": node, "lose_unsynced": True}
        return node
    if kind == "pause":
        node = sel()
        extra = _maybe_for(draw)
        return {"node": node, **extra} if extra else node
    if kind == "slow_disk":
        return {"node": sel(nodes=world.disk_nodes),
                "factor": draw(st.sampled_from([2, 10, 100]))} | _maybe_for(draw)
    if kind == "disk_full":
        return {"node": sel(nodes=world.disk_nodes)} | _maybe_for(draw)
    if kind == "corrupt":
        return {"node": sel(nodes=world.brokers),
                "partition": draw(st.sampled_from(_partition_refs(world))),
                "bytes": draw(st.integers(1, 64))}
    if kind == "clock":
        if draw(st.booleans()):
            return {"node": sel(), "offset": format_time_us(
                draw(st.integers(-600, 600)) * _TICK_US)}
        return {"node": sel(), "drift": draw(st.sampled_from([-0.1, -0.01, 0.001, 0.01]))}
    if kind == "add_broker":
        new = f"b{max(int(b[1:]) for b in world.brokers) + 1}"
        world.brokers.append(new)
        return new
    if kind == "reassign":
        ids = sorted(int(b[1:]) for b in world.brokers)
        replicas = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids),
                                 unique=True))
        return {"partition": draw(st.sampled_from(_partition_refs(world))),
                "replicas": replicas}
    if kind == "add_partitions":
        topic = draw(st.sampled_from(sorted(world.topics)))
        world.topics[topic] += draw(st.integers(1, 4))
        return {"topic": topic, "count": world.topics[topic]}
    if kind == "client":
        tick = at_us // _TICK_US
        client = draw(st.sampled_from(world.actionable_clients(tick)))
        return {draw(st.sampled_from(world.client_actions(client, tick))): client}
    if kind == "random":
        kinds = draw(st.lists(st.sampled_from(RANDOM_KINDS), min_size=1, max_size=3,
                              unique=True))
        interval = draw(st.integers(1, 100)) * _TICK_US
        until = draw(st.integers(at_us // _TICK_US, duration_us // _TICK_US)) * _TICK_US
        return {"kinds": kinds, "interval": format_time_us(interval),
                "until": format_time_us(until)}
    raise ValueError(f"unknown fault kind {kind!r}")


def _usable(kind: str, world: _World, link_ops: list, tick: int = 0) -> bool:
    if kind in ("corrupt", "reassign", "add_partitions"):
        return bool(world.topics)
    if kind == "client":
        return bool(world.actionable_clients(tick))
    if kind in ("slow_disk", "disk_full"):
        return bool(world.disk_nodes)
    if kind == "add_broker":
        return bool(world.brokers)
    return bool(world.pool)


def _literal(sel: Any) -> bool:
    """A selector naming nodes directly (resolves to the same nodes whenever it fires)."""
    if isinstance(sel, list):
        return True
    return isinstance(sel, str) and "(" not in sel and sel not in (
        "all", "brokers", "clients", "controllers", "controller")


def _undo(kind: str, value: Any, world: _World) -> Any | None:
    """The op that ends fault (kind, value), or None if it needs none or cannot have one.
    Dynamic selectors (`leader(...)`, `random(...)`) may resolve to other nodes later, so
    their crash / pause / clock is undone on the whole scope instead."""
    if kind in ("partition", "isolate", "cut"):
        return {"heal": value}
    if kind in ("crash", "pause"):
        if isinstance(value, dict):
            if "for" in value:
                return None
            value = value["node"]
        target = value if _literal(value) else world.scope
        return {"restart" if kind == "crash" else "resume": target}
    if kind == "clock":
        node = value["node"] if _literal(value["node"]) else world.scope
        return {"clock": {"node": node, "offset": "0s"} if "offset" in value
                else {"node": node, "drift": 0.0}}
    if kind == "client":
        action, client = next(iter(value.items()))
        if action in ("crash", "leave"):
            return {"client": {"restart" if action == "crash" else "join": client}}
    return None


def _clients_named(sel: Any, world: _World) -> list[str]:
    """Clients a crash / restart selector certainly names (literal ids, `clients`,
    `all`); dynamic selectors (`random(...)`, `leader(...)`) never pick clients."""
    if isinstance(sel, dict):
        sel = sel.get("node")
    if isinstance(sel, list):
        return [c for item in sel for c in _clients_named(item, world)]
    if sel in ("all", "clients"):
        return list(world.clients)
    return [sel] if sel in world.clients else []


def _track_clients(kind: str, value: Any, world: _World, tick: int,
                   back: int | None) -> None:
    """Keep the clients' up / down state in step with a drawn fault and its undo tick."""
    if kind == "client":
        action, client = next(iter(value.items()))
        if action in ("crash", "leave"):
            world.down[client] = (action, back)
        else:
            world.down.pop(client, None)
    elif kind == "crash":
        for client in _clients_named(value, world):
            if world.client_actions(client, tick)[:1] == ["crash"]:
                world.down[client] = ("crash", back)
    elif kind == "restart":
        for client in _clients_named(value, world):
            world.down.pop(client, None)


_TIMED = ("link", "slow_disk", "disk_full")  # undone by their own `for`


def _shape_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The cluster shape (schedules' keyword arguments) of a raw scenario."""
    cluster = raw.get("cluster") or {}
    work = raw.get("workload") or {}
    members = [f"{g['group']}-{i}" for g in work.get("consumers") or []
               for i in range(1, int(g.get("members", 1)) + 1)]
    return {"brokers": int(cluster.get("brokers", 3)),
            "controllers": int(cluster.get("controllers", 3)),
            "topics": {t["name"]: int(t.get("partitions", 1)) for t in raw.get("topics") or []},
            "producers": [p["id"] for p in work.get("producers") or []],
            "members": members,
            "duration_us": parse_time_us(raw["duration"])}


def _schedules_impl(draw: st.DrawFn, *, brokers: int, controllers: int,
                    topics: Mapping[str, int] | None, producers: Sequence[str],
                    members: Sequence[str], duration_us: int, kinds: Sequence[str] | None,
                    max_faults: int, min_faults: int, nodes: str | Sequence[str],
                    power_loss: bool, undo: bool, start_us: int,
                    max_hold_us: int | None,
                    clients: str | Sequence[str] = "all") -> list[dict[str, Any]]:
    world = _World(brokers, controllers, topics or {}, producers, members, nodes, clients)
    allowed = sorted(kinds) if kinds is not None else list(FAULT_KINDS)
    unknown = sorted(set(allowed) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown} (known: {', '.join(FAULT_KINDS)})")
    first = min(start_us, duration_us) // _TICK_US
    last = duration_us // _TICK_US
    ticks = sorted(draw(st.lists(st.integers(first, last), min_size=min_faults,
                                 max_size=max_faults)))
    hold_ticks = max(1, (max_hold_us if max_hold_us is not None else duration_us // 2)
                     // _TICK_US)
    events: list[tuple[int, int, dict[str, Any]]] = []
    link_ops: list[tuple[str, Any]] = []
    for tick in ticks:
        at_us = tick * _TICK_US
        usable = [k for k in allowed if _usable(k, world, link_ops, tick)]
        if not usable:
            continue  # e.g. every client of a client-only schedule awaits its restart
        kind = draw(st.sampled_from(usable))
        value = _op(draw, kind, world, at_us, duration_us, link_ops, power_loss)
        if undo and kind in _TIMED and isinstance(value, dict) and "for" not in value:
            value["for"] = format_time_us(draw(st.integers(1, hold_ticks)) * _TICK_US)
        if kind in ("partition", "isolate", "cut", "link"):
            link_ops.append((kind, value))
        events.append((tick, len(events), {"at": format_time_us(at_us), kind: value}))
        ender = _undo(kind, value, world) if undo else None
        back: int | None = None
        if ender is not None:
            hold = draw(st.one_of(st.none(), st.integers(1, hold_ticks)))
            if hold is not None and tick + hold <= last:
                back = tick + hold
                events.append((back, len(events),
                               {"at": format_time_us(back * _TICK_US), **ender}))
        _track_clients(kind, value, world, tick, back)
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


def _duration_us(duration: str | int | float | None, default: int) -> int:
    return default if duration is None else parse_time_us(duration)


class _Unbound:
    """Keyword arguments of a `schedules(...)` call that named no cluster shape."""

    def __init__(self, kw: dict[str, Any]) -> None:
        self.kw = kw

    def bind(self, raw: Mapping[str, Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
        shape = _shape_of(raw)
        if self.kw.get("duration") is not None:
            shape["duration_us"] = min(shape["duration_us"],
                                       parse_time_us(self.kw["duration"]))
        kw = {k: v for k, v in self.kw.items() if k != "duration"}
        return schedules(**shape, **kw)


_UNBOUND_ATTR = "_simlog_unbound"


def schedules(*, brokers: int | None = None, controllers: int | None = None,
              topics: Mapping[str, int] | None = None, producers: Sequence[str] = (),
              members: Sequence[str] = (), duration: str | int | None = None,
              duration_us: int | None = None, kinds: Sequence[str] | None = None,
              max_faults: int = 8, min_faults: int = 0, nodes: str | Sequence[str] = "all",
              power_loss: bool = True, undo: bool = False, start: str | int = 0,
              max_hold: str | int | None = None,
              template: Mapping[str, Any] | str | Path | None = None,
              clients: str | Sequence[str] = "all",
              ) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A valid `faults:` list: dicts `{at: ..., <op>: ...}` in time order.

    - `kinds`: fault op names to draw from (default: all of FAULT_KINDS; RUNNABLE_KINDS
      for runs, SAFE_KINDS for faults Kafka promises to survive).
    - `duration` (`"15s"`) or `duration_us`: faults fall in [start, duration].
    - `max_faults` / `min_faults`: how many faults are drawn (undo ops not counted).
    - `nodes`: which nodes faults touch: "all" (default), "brokers", "controllers",
      "servers" (brokers and controllers) or a list of node ids.
    - `power_loss`: whether a crash may be `lose_unsynced` (power loss).
    - `undo`: pair each lasting fault with the op that ends it (heal, restart, resume,
      clock back, or a `for:` on timed ones; a client's crash with its restart, its
      leave with its join) after a drawn hold of up to `max_hold` (default: half the
      duration), or leave it to the end of the run.
    - `clients`: which clients `client` ops name: "all" (default: producers and consumer
      members), "members", "producers" or a list of ids. Client ops are drawn in a valid
      sequence: crash or leave of a running client, restart of a crashed one, join of
      one that left (so a client's first op is never a join, which would make it a late
      joiner that starts offline).
    - the cluster shape: `brokers`, `controllers`, `topics` {name: partitions},
      `producers`, `members`; or `template` (a raw scenario, YAML text or file) to take
      shape and duration from. With neither, the strategy is *unbound*:
      `scenarios(base=..., schedules=it)` binds it to the base's shape.
    """
    kw = dict(kinds=kinds, max_faults=max_faults, min_faults=min_faults, nodes=nodes,
              power_loss=power_loss, undo=undo, start=start, max_hold=max_hold,
              clients=clients)
    if template is not None:
        return _Unbound(kw | {"duration": duration}).bind(as_raw(template))
    if kinds is not None:
        unknown = sorted(set(kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown} "
                             f"(known: {', '.join(FAULT_KINDS)})")
    if isinstance(clients, str) and clients not in _CLIENT_SCOPES:
        raise ValueError(f"unknown clients scope {clients!r} (expected one of "
                         f"{', '.join(_CLIENT_SCOPES)} or a list of client ids)")
    unbound = brokers is None and controllers is None and topics is None and not (
        producers or members)
    total_us = duration_us if duration_us is not None else _duration_us(duration, 60_000_000)
    strategy = st.composite(lambda draw: _schedules_impl(
        draw, brokers=3 if brokers is None else brokers,
        controllers=3 if controllers is None else controllers, topics=topics,
        producers=producers, members=members, duration_us=total_us, kinds=kinds,
        max_faults=max_faults, min_faults=min_faults, nodes=nodes, power_loss=power_loss,
        undo=undo, start_us=parse_time_us(start),
        max_hold_us=None if max_hold is None else parse_time_us(max_hold),
        clients=clients))()
    if unbound:
        setattr(strategy, _UNBOUND_ATTR, _Unbound(kw | {
            "duration": duration if duration_us is None else format_time_us(duration_us)}))
    return strategy


def as_raw(scenario: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """A raw scenario (plain dicts and lists) from a dict, YAML text or a file path."""
    if isinstance(scenario, Mapping):
        return _plain(copy.deepcopy(dict(scenario)))
    text: str
    if isinstance(scenario, Path) or (isinstance(scenario, str) and "\n" not in scenario
                                      and scenario.endswith((".yaml", ".yml"))):
        text = Path(scenario).read_text(encoding="utf-8")
    else:
        text = str(scenario)
    data = YAML(typ="safe", pure=True).load(text)
    if not isinstance(data, dict):
        raise ValueError("a scenario is a YAML mapping")
    return _plain(data)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_CONFIGS = {
    "cluster": st.fixed_dictionaries({}, optional={
        "min.insync.replicas": st.integers(1, 3),
        "unclean.leader.election.enable": st.booleans(),
        "replica.lag.time.max.ms": st.sampled_from([1000, 10_000, 30_000]),
        "log.flush.interval.messages": st.sampled_from([1, 100]),
        "simlog.follower.truncation": st.sampled_from(["leader-epoch", "high-watermark"])}),
    "producer": st.fixed_dictionaries({}, optional={
        "acks": st.sampled_from(["all", 1, 0, -1]),
        "linger.ms": st.integers(0, 50),
        "compression.type": st.sampled_from(["none", "gzip", "snappy", "lz4", "zstd"])}),
    "consumer": st.fixed_dictionaries({}, optional={
        "enable.auto.commit": st.booleans(),
        "auto.offset.reset": st.sampled_from(["earliest", "latest"]),
        "partition.assignment.strategy": st.sampled_from(
            ["range", "roundrobin", "cooperative-sticky", ["range", "cooperative-sticky"]])}),
}


@st.composite
def _random_scenarios(draw: st.DrawFn, *, max_brokers: int = 5,
                      kinds: Sequence[str] | None = None, max_faults: int = 8,
                      checks: Sequence[str] | None = None) -> dict[str, Any]:
    """A whole raw scenario: cluster, topics, workload, a fault schedule, checks."""
    brokers = draw(st.integers(1, max_brokers))
    controllers = draw(st.sampled_from([0, 1, 3]))
    duration_us = draw(st.integers(10, 600)) * 1_000_000
    topic_names = draw(st.lists(st.sampled_from(["orders", "audit", "events"]), min_size=1,
                                max_size=3, unique=True))
    topics = [{"name": t, "partitions": draw(st.integers(1, 6)),
               "replication_factor": draw(st.integers(1, brokers))} for t in topic_names]
    producers = []
    for i in range(1, draw(st.integers(0, 3)) + 1):
        p: dict[str, Any] = {"id": f"p{i}", "topic": draw(st.sampled_from(topic_names)),
                             "rate": draw(st.sampled_from(["max", "100/s", "5000/s"]))}
        keys = draw(st.sampled_from([None, "none", {"dist": "uniform", "n": 10},
                                     {"dist": "zipf", "n": 1000, "s": 1.2},
                                     {"dist": "hot", "share": 0.6}]))
        if keys is not None:
            p["keys"] = keys
        config = draw(_CONFIGS["producer"])
        if config:
            p["config"] = config
        producers.append(p)
    groups = []
    for name in draw(st.lists(st.sampled_from(["analytics", "billing"]), max_size=2,
                              unique=True)):
        g: dict[str, Any] = {"group": name, "members": draw(st.integers(1, 3)),
                             "topics": draw(st.lists(st.sampled_from(topic_names),
                                                     min_size=1, unique=True))}
        config = draw(_CONFIGS["consumer"])
        if config:
            g["config"] = config
        groups.append(g)
    members = [f"{g['group']}-{i}" for g in groups for i in range(1, g["members"] + 1)]
    faults = draw(schedules(
        brokers=brokers, controllers=controllers,
        topics={t["name"]: t["partitions"] for t in topics},
        producers=[p["id"] for p in producers], members=members, duration_us=duration_us,
        kinds=kinds, max_faults=max_faults))
    cluster: dict[str, Any] = {"brokers": brokers, "controllers": controllers}
    config = draw(_CONFIGS["cluster"])
    if config:
        cluster["config"] = config
    listed = list(checks) if checks is not None else draw(st.lists(st.sampled_from(
        ["lost_writes", "duplicates", "order", "replicas_converge", "poll_monotonic",
         "group_exclusive", "committed_offsets", "consumed_all", "available"]),
        min_size=1, unique=True))
    raw: dict[str, Any] = {
        "name": f"generated-{draw(st.integers(0, 10**6))}",
        "seed": draw(st.integers(0, 2**32 - 1)),
        "duration": format_time_us(duration_us),
        "cluster": cluster,
        "topics": topics,
        "workload": {"producers": producers, "consumers": groups},
        "faults": faults,
        "checks": listed,
    }
    return raw



_OneSchedule = (st.SearchStrategy[list[dict[str, Any]]]
                | Callable[[dict[str, Any]], st.SearchStrategy[list[dict[str, Any]]]])
ScheduleArg = _OneSchedule | Sequence[_OneSchedule] | None


def scenarios(base: Mapping[str, Any] | str | Path | None = None,
              schedules: ScheduleArg = None, *, seed: int | st.SearchStrategy[int] | None
              = None, duration: str | int | None = None, kinds: Sequence[str] | None = None,
              max_faults: int = 8, max_brokers: int = 5,
              checks: Sequence[str] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Raw scenarios (dicts) to run.

    With `base` (a raw scenario dict, YAML text, or a path to a scenario file): the base
    scenario as it is (cluster, topics, workload, checks, expect), with a drawn `seed`
    (or the given one) and a drawn `faults:` list that *replaces* the base's. The faults
    come from `schedules`: a `schedules(...)` strategy without a cluster shape (bound to
    the base's shape and duration here), any strategy of fault lists, a function
    base -> strategy, or a list of those (each drawn, then merged in time order: e.g.
    broker faults and member faults with their own `nodes`, kinds and counts); by
    default `schedules(kinds=kinds, max_faults=max_faults)`.
    `duration` shortens (or sets) the run.

    Without `base`: whole random scenarios (cluster shape, topics, workload, configs,
    faults of `kinds`, `checks`), meant for validation fuzzing rather than running.
    """
    if base is None:
        if schedules is not None:
            raise ValueError("schedules= needs base= (the scenario they run in)")
        return _random_scenarios(max_brokers=max_brokers, kinds=kinds,
                                 max_faults=max_faults, checks=checks)
    raw = as_raw(base)
    if duration is not None:
        raw["duration"] = duration
    if "duration" not in raw or "name" not in raw:
        raise ValueError("the base scenario needs `name` and `duration`")
    if checks is not None:
        raw["checks"] = list(checks)
    if schedules is None:
        faults = fault_schedules(template=raw, kinds=kinds, max_faults=max_faults)
    elif isinstance(schedules, list | tuple):
        if not schedules:
            raise ValueError("schedules= got an empty list")
        faults = st.tuples(*(_bind(part, raw) for part in schedules)).map(merge_schedules)
    else:
        faults = _bind(schedules, raw)
    if seed is None:
        seeds: st.SearchStrategy[int] = st.integers(0, 2**32 - 1)
    elif isinstance(seed, int):
        seeds = st.just(seed)
    else:
        seeds = seed

    def build(seed_and_faults: tuple[int, list[dict[str, Any]]]) -> dict[str, Any]:
        out = copy.deepcopy(raw)
        out["seed"], out["faults"] = seed_and_faults
        return out

    return st.tuples(seeds, faults).map(build)


fault_schedules = schedules


def _bind(schedules: Any, raw: dict[str, Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """One `schedules=` item as a strategy of fault lists for the base `raw`."""
    if hasattr(schedules, _UNBOUND_ATTR):
        return getattr(schedules, _UNBOUND_ATTR).bind(raw)
    if isinstance(schedules, st.SearchStrategy):
        return schedules
    if callable(schedules):
        return schedules(copy.deepcopy(raw))
    raise TypeError(f"schedules= expects a strategy, a function or a list of them, found "
                    f"{schedules!r}")


def merge_schedules(parts: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Several fault lists as one, in time order (ties keep the parts' order). Each part
    stays valid on its own terms; `heal: all` of one part heals the other parts' links
    too. Parts should not both add brokers or partitions."""
    merged = [dict(f) for part in parts for f in part]
    return sorted(merged, key=lambda f: parse_time_us(f["at"]))


def _flow(value: Any) -> Any:
    """Nested values as flow-style YAML (`{at: 10s, isolate: b1}` on one line)."""
    if isinstance(value, dict):
        m = CommentedMap((k, _flow(v)) for k, v in value.items())
        m.fa.set_flow_style()
        return m
    if isinstance(value, list):
        s = CommentedSeq(_flow(v) for v in value)
        s.fa.set_flow_style()
        return s
    return value


def to_yaml(raw: dict[str, Any], comment: str | None = None) -> str:
    """A raw scenario as a scenario file: block style at the top, one line per item."""
    doc = CommentedMap()
    for key, value in raw.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            doc[key] = CommentedSeq(_flow(v) for v in value)
        elif key == "workload" and isinstance(value, dict):
            doc[key] = CommentedMap(
                (k, CommentedSeq(_flow(v) for v in items) if isinstance(items, list)
                 else _flow(items)) for k, items in value.items())
        else:
            doc[key] = _flow(value)
    yaml = YAML()
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(doc, out)
    text = out.getvalue()
    if comment:
        text = "".join(f"# {line}\n" for line in comment.splitlines()) + text
    return text


def write_scenario(raw: dict[str, Any], directory: str | Path,
                   comment: str | None = None) -> Path:
    """Write `raw` as DIRECTORY/NAME.yaml (NAME from the scenario); returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(raw.get("name", "scenario")))
    path = directory / f"{safe}.yaml"
    path.write_text(to_yaml(raw, comment), encoding="utf-8")
    return path


@contextlib.contextmanager
def keep_on_failure(raw: dict[str, Any], directory: str | Path) -> Iterator[None]:
    """Inside a property test: show the scenario in hypothesis' report and, if the body
    fails, write it to `directory` as a replayable scenario file."""
    if currently_in_test_context():
        note(to_yaml(raw))
    try:
        yield
    except BaseException:
        path = write_scenario(raw, directory, comment="A failing example found by "
                                                      "hypothesis; replay with simlog run.")
        if currently_in_test_context():
            note(f"failing scenario written to {path}")
        raise
