"""Hypothesis strategies for fault schedules and the scenarios around them.

    from simlog.testing.strategies import scenarios, schedules, to_yaml, keep_on_failure

    @given(scenarios(kinds=["partition", "crash"]))
    def test_no_lost_writes(raw):
        with keep_on_failure(raw, "failing-scenarios"):
            result = run(loads(to_yaml(raw)))   # the runner, once it exists
            assert result.checks["lost_writes"].passed

Strategies draw *raw* scenarios: the plain dicts a YAML file holds, with units spelled as
a user would (`10s`, `16KiB`). `to_yaml` writes one out; every drawn scenario loads
(`simlog.scenario.load.loads`) without error, which tests/scenario/test_strategies.py
checks as a property. `keep_on_failure` writes the failing example as a scenario file,
replayable with `simlog run FILE`.

Schedules respect the contract: times in order and within the duration, selectors that
name existing nodes and partitions (brokers added by `add_broker`, partitions by
`add_partitions` count from then on), `heal` that repeats an earlier link fault or says
`all`, and `random` nemeses that end by the duration.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from simlog.scenario.schema import OPS, RANDOM_KINDS
from simlog.scenario.units import format_time_us

FAULT_KINDS = tuple(sorted(OPS))
_TICK_US = 100_000  # fault times on a 100 ms grid: readable files, enough variety


class _World:
    """What exists at the current point of a schedule being drawn."""

    def __init__(self, brokers: int, controllers: int, topics: dict[str, int],
                 producers: Sequence[str], members: Sequence[str]) -> None:
        self.brokers = [f"b{i}" for i in range(1, brokers + 1)]
        self.controllers = [f"c{i}" for i in range(1, controllers + 1)]
        self.topics = dict(topics)
        self.producers = list(producers)
        self.members = list(members)

    @property
    def clients(self) -> list[str]:
        return self.producers + self.members

    @property
    def disk_nodes(self) -> list[str]:
        return self.brokers + self.controllers


def _partition_refs(world: _World) -> list[str]:
    return [f"{t}/{p}" for t, n in sorted(world.topics.items()) for p in range(n)]


def _selector(draw: st.DrawFn, world: _World, *, nodes: list[str] | None = None) -> Any:
    """A selector; with `nodes`, only literal ids from `nodes` (e.g. nodes with disks)."""
    pool = nodes if nodes is not None else world.brokers + world.controllers + world.clients
    forms = ["node", "list"]
    if nodes is None:
        forms += ["set", "controller", "pick"] + (["leader"] if world.topics else [])
    form = draw(st.sampled_from(forms))
    if form == "node":
        return draw(st.sampled_from(pool))
    if form == "list":
        return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    if form == "set":
        return draw(st.sampled_from(["all", "brokers", "clients", "controllers"]))
    if form == "controller":
        return "controller"
    if form == "leader":
        return f"leader({draw(st.sampled_from(_partition_refs(world)))})"
    how = draw(st.sampled_from(["random", "minority", "majority"]))
    return f"{how}({draw(st.sampled_from(['brokers', 'controllers']))})"


def _maybe_for(draw: st.DrawFn) -> dict[str, str]:
    if draw(st.booleans()):
        return {"for": format_time_us(draw(st.integers(1, 100)) * _TICK_US)}
    return {}


def _op(draw: st.DrawFn, kind: str, world: _World, at_us: int, duration_us: int,
        link_ops: list[tuple[str, Any]]) -> Any:
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
        return {"node": node, "lose_unsynced": True} if draw(st.booleans()) else node
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
        action = draw(st.sampled_from(["crash", "restart", "leave", "join"]))
        return {action: draw(st.sampled_from(world.clients))}
    if kind == "random":
        kinds = draw(st.lists(st.sampled_from(RANDOM_KINDS), min_size=1, max_size=3,
                              unique=True))
        interval = draw(st.integers(1, 100)) * _TICK_US
        until = draw(st.integers(at_us // _TICK_US, duration_us // _TICK_US)) * _TICK_US
        return {"kinds": kinds, "interval": format_time_us(interval),
                "until": format_time_us(until)}
    raise ValueError(f"unknown fault kind {kind!r}")


def _usable(kind: str, world: _World, link_ops: list) -> bool:
    if kind in ("corrupt", "reassign", "add_partitions"):
        return bool(world.topics)
    if kind == "client":
        return bool(world.clients)
    return True


@st.composite
def schedules(draw: st.DrawFn, *, brokers: int = 3, controllers: int = 3,
              topics: dict[str, int] | None = None, producers: Sequence[str] = (),
              members: Sequence[str] = (), duration_us: int = 60_000_000,
              kinds: Sequence[str] | None = None, max_faults: int = 8) -> list[dict[str, Any]]:
    """A valid `faults:` list for a cluster of that shape: dicts `{at: ..., <op>: ...}`."""
    world = _World(brokers, controllers, topics or {}, producers, members)
    allowed = sorted(kinds) if kinds is not None else list(FAULT_KINDS)
    unknown = sorted(set(allowed) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown} (known: {', '.join(FAULT_KINDS)})")
    ticks = sorted(draw(st.lists(st.integers(0, duration_us // _TICK_US), max_size=max_faults)))
    faults: list[dict[str, Any]] = []
    link_ops: list[tuple[str, Any]] = []
    for tick in ticks:
        at_us = tick * _TICK_US
        usable = [k for k in allowed if _usable(k, world, link_ops)]
        if not usable:
            break
        kind = draw(st.sampled_from(usable))
        value = _op(draw, kind, world, at_us, duration_us, link_ops)
        if kind in ("partition", "isolate", "cut", "link"):
            link_ops.append((kind, value))
        faults.append({"at": format_time_us(at_us), kind: value})
    return faults


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
def scenarios(draw: st.DrawFn, *, max_brokers: int = 5, kinds: Sequence[str] | None = None,
              max_faults: int = 8, checks: Sequence[str] | None = None) -> dict[str, Any]:
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
