"""Cross-reference checks and assembly: a validated `ScenarioSpec` -> a `Scenario`.

What the schema alone cannot know is checked here, in file order, with the file's line:
node ids in selectors exist (brokers b1..bN, controllers c1..cM, producer ids, consumer
members `group-1..group-N`, and brokers added by earlier `add_broker` faults); topics and
partitions referenced exist (taking earlier `add_partitions` into account); faults are in
time order and within `duration`; `heal` repeats an earlier link fault's value (or says
`all`); checks are known, with valid parameters; `expect` names listed checks; Kafka
`config:` keys are Kafka's, with values of the right type and range.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from simlog.checks.registry import CHECKS, DEFAULT_CHECKS
from simlog.scenario import kafka_config as kc
from simlog.scenario.errors import Path, ScenarioError, did_you_mean, show
from simlog.scenario.model import (
    CheckSpec,
    Cluster,
    ConsumerGroup,
    Fault,
    Producer,
    Scenario,
    Topic,
    frozen_map,
)
from simlog.scenario.schema import (
    LINK_OPS,
    OPS,
    Heal,
    ScenarioSpec,
    Spec,
)
from simlog.scenario.selectors import (
    SETS,
    ActiveController,
    Coordinator,
    Leader,
    Node,
    NodeSet,
    Pick,
    Selector,
    Several,
    TopicPartition,
    named_groups,
    named_nodes,
    named_partitions,
)
from simlog.scenario.source import Source
from simlog.scenario.units import format_time_us


class _Fail(Exception):
    def __init__(self, path: Path, message: str, *, key: bool = False) -> None:
        self.path, self.message, self.key = path, message, key


def _span(ids: list[str], prefix: str) -> str:
    """`b1..b3` for a contiguous run, else a comma list."""
    if not ids:
        return ""
    nums = [int(i[len(prefix):]) for i in ids]
    if nums == list(range(1, len(nums) + 1)) and len(nums) > 1:
        return f"{prefix}1..{prefix}{len(nums)}"
    return ", ".join(ids)


class _World:
    """The nodes and topics that exist at a point of the fault schedule."""

    def __init__(self, spec: ScenarioSpec) -> None:
        self.brokers = [f"b{i}" for i in range(1, spec.cluster.brokers + 1)]
        self.controllers = [f"c{i}" for i in range(1, spec.cluster.controllers + 1)]
        self.producers = [p.id for p in spec.workload.producers]
        self.groups = {g.group: g.member_ids for g in spec.workload.consumers}
        self.partitions = {t.name: t.partitions for t in spec.topics}

    @property
    def clients(self) -> list[str]:
        return self.producers + [m for ms in self.groups.values() for m in ms]

    def nodes(self) -> set[str]:
        return set(self.brokers) | set(self.controllers) | set(self.clients)

    def describe(self) -> str:
        extra = [x for x in [_span(sorted(self.brokers, key=lambda b: int(b[1:])), "b"),
                             _span(self.controllers, "c")] if x]
        text = f"cluster has {', '.join(extra)}"
        clients = list(self.producers) + [
            _span_members(g, ms) for g, ms in sorted(self.groups.items())]
        if clients:
            text += f"; clients {', '.join(clients)}"
        return text


def _span_members(group: str, members: tuple[str, ...]) -> str:
    return members[0] if len(members) == 1 else f"{members[0]}..{members[-1]}"


def build(spec: ScenarioSpec, source: Source) -> Scenario:
    """Check references in file order and assemble the Scenario (or raise ScenarioError)."""
    try:
        return _build(spec, source)
    except _Fail as fail:
        line = source.line_of(fail.path, key=fail.key)
        raise ScenarioError(source.file, line, fail.path, fail.message) from None


def _config(level: str, raw: dict[str, Any], path: Path,
            broker: kc.KafkaConfig | None = None) -> kc.KafkaConfig:
    try:
        return kc.merged(level, raw, broker=broker)
    except kc.ConfigError as err:
        unknown = err.key not in kc.KEYS[level]
        raise _Fail((*path, err.key), str(err), key=unknown) from None


def _build(spec: ScenarioSpec, source: Source) -> Scenario:
    world = _World(spec)
    broker_cfg = _config(kc.BROKER, spec.cluster.config, ("cluster", "config"))
    cluster = Cluster(tuple(world.brokers), tuple(world.controllers), broker_cfg,
                      spec.cluster.protocol)

    topics = []
    for i, t in enumerate(spec.topics):
        if [x.name for x in spec.topics[:i]].count(t.name):
            raise _Fail(("topics", i, "name"), f"topic '{t.name}' is defined twice")
        if t.replication_factor > spec.cluster.brokers:
            raise _Fail(("topics", i, "replication_factor"),
                        f"expected at most {spec.cluster.brokers} (the cluster has "
                        f"{spec.cluster.brokers} brokers), found {t.replication_factor}")
        cfg = _config(kc.TOPIC, t.config, ("topics", i, "config"), broker_cfg)
        topics.append(Topic(t.name, t.partitions, t.replication_factor, cfg))

    producers = _producers(spec, world)
    consumers = _consumers(spec, world)
    for i, link in enumerate(spec.network.links):
        for path, sel in _selectors(link, ("network", "links", i)):
            _check_selector(sel, world, path)
    faults = _faults(spec, source, world)
    checks, expect = _checks(spec, source)
    return Scenario(
        name=spec.name, description=spec.description, seed=spec.seed,
        duration_us=spec.duration, cluster=cluster, network=spec.network, disk=spec.disk,
        topics=tuple(topics), producers=tuple(producers), consumers=tuple(consumers),
        faults=tuple(faults), checks=tuple(checks), expect=frozen_map(expect),
        source=source.file)


def _topic_ref(name: str, world: _World, path: Path) -> None:
    if name not in world.partitions:
        known = ", ".join(sorted(world.partitions)) or "none defined"
        hint = did_you_mean(name, world.partitions)
        raise _Fail(path, f"unknown topic '{name}'{hint or f' (topics: {known})'}")


def _producer_config(raw: dict[str, Any], path: Path) -> kc.KafkaConfig:
    cfg = _config(kc.PRODUCER, raw, path)
    conflict = None
    if cfg["acks"] != "all":
        conflict = f"acks={cfg['acks']}"
    elif cfg["max.in.flight.requests.per.connection"] > 5:
        conflict = "max.in.flight.requests.per.connection > 5"
    elif cfg["retries"] == 0:
        conflict = "retries=0"
    if conflict and "enable.idempotence" in cfg.explicit and cfg["enable.idempotence"]:
        raise _Fail((*path, "enable.idempotence"),
                    f"enable.idempotence: true needs acks=all, retries > 0 and "
                    f"max.in.flight.requests.per.connection <= 5, found {conflict}")
    if conflict and "enable.idempotence" not in cfg.explicit:
        # As Kafka >= 3.2: idempotence left at its default is turned off, not an error.
        values = dict(cfg)
        values["enable.idempotence"] = False
        cfg = kc.KafkaConfig(kc.PRODUCER, values, cfg.explicit)
    return cfg


def _producers(spec: ScenarioSpec, world: _World) -> list[Producer]:
    out = []
    nodes = set(world.brokers) | set(world.controllers)
    members = {m for ms in world.groups.values() for m in ms}
    for i, p in enumerate(spec.workload.producers):
        path = ("workload", "producers", i)
        if p.id in nodes or p.id in members or world.producers[:i].count(p.id):
            raise _Fail((*path, "id"), f"id '{p.id}' is already taken (ids must differ from "
                                       "node ids, consumer members and other producers)")
        _topic_ref(p.topic, world, (*path, "topic"))
        _window(p.start, p.stop, spec.duration, path)
        cfg = _producer_config(p.config, (*path, "config"))
        out.append(Producer(p.id, p.topic, p.rate, p.start, p.stop, p.keys, p.value_size, cfg))
    return out


def _window(start: int, stop: int | None, duration: int, path: Path) -> None:
    if start >= duration:
        raise _Fail((*path, "start"), f"expected a start before the end of the run "
                                      f"({format_time_us(duration)}), found "
                                      f"{format_time_us(start)}")
    if stop is not None and stop > duration:
        raise _Fail((*path, "stop"), f"expected stop <= duration {format_time_us(duration)}, "
                                     f"found {format_time_us(stop)}")


def _consumers(spec: ScenarioSpec, world: _World) -> list[ConsumerGroup]:
    out = []
    nodes = set(world.brokers) | set(world.controllers)
    for i, g in enumerate(spec.workload.consumers):
        path = ("workload", "consumers", i)
        if [x.group for x in spec.workload.consumers[:i]].count(g.group):
            raise _Fail((*path, "group"), f"group '{g.group}' is defined twice")
        clash = sorted(set(g.member_ids) & nodes)
        if clash:
            raise _Fail((*path, "group"), f"member id '{clash[0]}' is a node id; choose "
                                          "another group name")
        for j, topic in enumerate(g.topics):
            _topic_ref(topic, world, (*path, "topics", j))
        _window(g.start, g.stop, spec.duration, path)
        if "group.instance.id" in g.config and len(g.member_ids) > 1:
            raise _Fail((*path, "config", "group.instance.id"),
                        "group.instance.id must differ between members (one id, "
                        f"{len(g.member_ids)} members would fence each other); use "
                        "`static: true` to give each member its own (its member id)")
        cfg = _config(kc.CONSUMER, g.config, (*path, "config"))
        out.append(ConsumerGroup(g.group, g.member_ids, tuple(g.topics), g.start, g.stop, cfg,
                                 processing_per_record_us=g.processing.per_record,
                                 processing_per_poll_us=g.processing.per_poll,
                                 processing_jitter=g.processing.jitter,
                                 static=g.static))
    return out


def _is_selector(value: Any) -> bool:
    return isinstance(value, Node | NodeSet | Leader | Coordinator | ActiveController | Pick
                      | Several)


def _selectors(op: BaseModel, base: Path) -> Iterator[tuple[Path, Selector]]:
    """Every selector inside an op model, with the path where the file spells it."""
    for name, field in type(op).model_fields.items():
        value = getattr(op, name)
        key = field.alias or name
        if isinstance(value, list):
            for j, item in enumerate(value):
                if _is_selector(item):
                    yield (*base, key, j), item
        elif _is_selector(value):
            yield (*base, key), value


def _faults(spec: ScenarioSpec, source: Source, world: _World) -> list[Fault]:
    out: list[Fault] = []
    previous_at = 0
    for i, f in enumerate(spec.faults):
        base: Path = ("faults", i)
        if f.at < previous_at:
            raise _Fail((*base, "at"), f"faults must be in time order: "
                                       f"found {format_time_us(f.at)} after "
                                       f"{format_time_us(previous_at)} (faults[{i - 1}])")
        if f.at > spec.duration:
            raise _Fail((*base, "at"), f"expected at <= duration "
                                       f"{format_time_us(spec.duration)}, found "
                                       f"{format_time_us(f.at)}")
        previous_at = f.at
        kind = f.op_name
        raw_value = source.data["faults"][i][kind]
        op_path: Path = (*base, kind)
        if kind == "heal":
            op: Any = _heal(raw_value, out, op_path)
        else:
            op = getattr(f, kind)
            # a shorthand (`isolate: b7`) has no `node:` key: point at the op itself
            shorthand = not isinstance(raw_value, dict)
            for path, sel in _selectors(op, op_path):
                _check_selector(sel, world, op_path if shorthand else path)
            _check_op(kind, op, world, spec, op_path)
            if kind == "random" and op.until < f.at:
                raise _Fail((*op_path, "until"), f"expected until >= at {format_time_us(f.at)},"
                                                 f" found {format_time_us(op.until)}")
        out.append(Fault(i, f.at, kind, op, source.line_of(base)))
    return out


def _check_selector(sel: Selector, world: _World, path: Path) -> None:
    nodes = world.nodes()
    for node in named_nodes(sel):
        if node not in nodes:
            hint = did_you_mean(node, [*nodes, *SETS, "controller"])
            raise _Fail(path, f"unknown node '{node}' ({world.describe()}){hint}")
    for tp in named_partitions(sel):
        _check_partition(tp, world, path)
    for group in named_groups(sel):
        if group not in world.groups:
            hint = did_you_mean(group, sorted(world.groups))
            known = ", ".join(sorted(world.groups)) or "none"
            raise _Fail(path, f"unknown consumer group '{group}' in {sel} (groups: "
                              f"{known}){hint}")


def _check_partition(tp: TopicPartition, world: _World, path: Path) -> None:
    _topic_ref(tp.topic, world, path)
    count = world.partitions[tp.topic]
    if tp.partition >= count:
        raise _Fail(path, f"unknown partition '{tp}' ({tp.topic} has partitions "
                          f"0..{count - 1})")


def _check_op(kind: str, op: Any, world: _World, spec: ScenarioSpec, path: Path) -> None:
    if kind in ("slow_disk", "disk_full", "corrupt"):
        for node in named_nodes(op.node):
            if node not in world.brokers and node not in world.controllers:
                raise _Fail((*path, "node"), f"'{node}' has no disk (expected a broker or "
                                             "controller)")
    if kind == "corrupt":
        _check_partition(op.partition, world, (*path, "partition"))
    elif kind == "add_broker":
        if op.node in world.brokers:
            raise _Fail(path, f"broker '{op.node}' already exists ({world.describe()})")
        world.brokers.append(op.node)
    elif kind == "reassign":
        _check_partition(op.partition, world, (*path, "partition"))
        ids = {int(b[1:]) for b in world.brokers}
        for j, rid in enumerate(op.replicas):
            if rid not in ids:
                raise _Fail((*path, "replicas", j), f"unknown broker id {rid} "
                                                    f"({world.describe()})")
            if op.replicas[:j].count(rid):
                raise _Fail((*path, "replicas", j), f"broker id {rid} is listed twice")
    elif kind == "add_partitions":
        _topic_ref(op.topic, world, (*path, "topic"))
        current = world.partitions[op.topic]
        if op.count <= current:
            raise _Fail((*path, "count"), f"expected a new partition count > {current} "
                                          f"({op.topic} has {current}), found {op.count}")
        world.partitions[op.topic] = op.count
    elif kind == "client":
        action, client = op.action
        known = set(world.clients)
        joinable = action == "join" and any(
            client.startswith(f"{g}-") and client[len(g) + 1:].isdigit()
            for g in world.groups)
        if client not in known and not joinable:
            hint = did_you_mean(client, known)
            raise _Fail((*path, action), f"unknown client '{client}' ({world.describe()})"
                                         f"{hint}")
        if client not in known:  # a new member joins its group: later faults may name it
            group = next(g for g in sorted(world.groups) if client.startswith(f"{g}-"))
            world.groups[group] = (*world.groups[group], client)
    elif kind == "random" and op.until > spec.duration:
        raise _Fail((*path, "until"), f"expected until <= duration "
                                      f"{format_time_us(spec.duration)}, found "
                                      f"{format_time_us(op.until)}")


def _heal(raw: Any, earlier: list[Fault], path: Path) -> Heal:
    """`heal: all`, or the value of an earlier partition / isolate / cut / link fault."""
    if raw == "all":
        return Heal(undoes=None)
    for fault in reversed(earlier):
        if fault.kind not in LINK_OPS:
            continue
        model: type[Spec] = OPS[fault.kind]
        value = raw if isinstance(raw, dict) or fault.kind != "isolate" else {"node": raw}
        try:
            candidate = model.model_validate(value)
        except ValidationError:
            continue
        if candidate == fault.op:
            return Heal(undoes=fault.index)
    raise _Fail(path, f"expected all or the value of an earlier "
                      f"{', '.join(LINK_OPS[:-1])} or {LINK_OPS[-1]} fault, found "
                      f"{show(raw) if not isinstance(raw, dict | list) else 'a value no earlier fault has'}")


def _checks(spec: ScenarioSpec, source: Source) -> tuple[list[CheckSpec], dict[str, str]]:
    raw_list = list(DEFAULT_CHECKS) if spec.checks is None else spec.checks
    out: list[CheckSpec] = []
    for i, item in enumerate(raw_list):
        path: Path = ("checks", i)
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            ((name, params),) = item.items()
            path = (*path, name)
            if params is None:
                params = {}
        else:
            raise _Fail(path, f"expected a check name or {{name: {{parameters}}}}, "
                              f"found {show(item)}")
        if name not in CHECKS:
            hint = did_you_mean(str(name), CHECKS)
            raise _Fail(path, f"unknown check '{name}'"
                              f"{hint or ' (known: ' + ', '.join(sorted(CHECKS)) + ')'}",
                        key=isinstance(item, dict))
        if any(c.name == name for c in out):
            raise _Fail(path, f"check '{name}' is listed twice")
        definition = CHECKS[name]
        if not isinstance(params, dict):
            raise _Fail(path, f"expected the parameters of {name} as a mapping, found "
                              f"{show(params)}")
        try:
            validated = definition.params.model_validate(params)
        except ValidationError as exc:
            from simlog.scenario.load import first_error
            raise first_error(exc, source, definition.params, path) from None
        out.append(CheckSpec(name, validated))
    names = [c.name for c in out]
    expect = {}
    for name, value in spec.expect.items():
        if name not in names:
            listed = ", ".join(names) or "none"
            raise _Fail(("expect", name), f"'{name}' is not in checks (checks: {listed})",
                        key=True)
        expect[name] = value
    return out, {n: expect.get(n, "pass") for n in names}

