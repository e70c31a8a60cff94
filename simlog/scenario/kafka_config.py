"""Kafka's configuration keys, their types, ranges and defaults: the one table.

Scenario files name Kafka settings as Kafka does (`min.insync.replicas`, `linger.ms`) under
`cluster.config` (broker), `topics[].config` (topic), and a producer's or consumer
group's `config`. This module validates such a mapping against Kafka's keys for that
level (unknown keys get a did-you-mean), converts each value to one canonical type, and
merges the scenario's values over Kafka's defaults. The replicated core reads its
defaults from here, so there is exactly one place where Kafka's defaults live.

As in Kafka, a topic-level key has a broker-level twin that is its default
(`retention.ms` <- `log.retention.ms`, `min.insync.replicas` <- `min.insync.replicas`).
Defaults follow Apache Kafka 4.0 (linger.ms 5, acks all, idempotence on).

Canonical value types: int for int/long, bool, float for double, str for enums and free
strings (None when Kafka's default is null), tuple[str, ...] for lists. `acks` is one of
"all", "1", "0" (`-1` and `all` are the same setting in Kafka).

This module is pure data and functions (no I/O) so the core may import it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from simlog.scenario.errors import did_you_mean, show

BROKER, TOPIC, PRODUCER, CONSUMER = "broker", "topic", "producer", "consumer"
LEVELS = (BROKER, TOPIC, PRODUCER, CONSUMER)
LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1

ASSIGNORS = {
    "range": "org.apache.kafka.clients.consumer.RangeAssignor",
    "roundrobin": "org.apache.kafka.clients.consumer.RoundRobinAssignor",
    "sticky": "org.apache.kafka.clients.consumer.StickyAssignor",
    "cooperative-sticky": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
}


class ConfigError(ValueError):
    """A bad config entry; `key` is the offending key (the loader adds file and line)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One Kafka setting at one level.

    kind: int | bool | double | enum | list | string. `choices` for enum/list; `min`/`max`
    bound int and double. `broker_name` (topic level only) is the broker key that supplies
    the default when a topic does not override it.
    """

    name: str
    level: str
    kind: str
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    broker_name: str | None = None
    doc: str = ""

    def expected(self) -> str:
        if self.kind == "int":
            if self.min is not None and self.max is not None:
                text = f"an integer in [{_num(self.min)}, {_num(self.max)}]"
            elif self.min is not None:
                text = f"an integer >= {_num(self.min)}"
            else:
                text = "an integer"
            return text + (" (milliseconds) or a duration like 10s"
                           if self.name.endswith(".ms") else "")
        if self.kind == "double":
            lo = "-inf" if self.min is None else _num(self.min)
            hi = "inf" if self.max is None else _num(self.max)
            return f"a number in [{lo}, {hi}]"
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("enum", "list"):
            one = "one of" if self.kind == "enum" else "a list of"
            return f"{one} {', '.join(self.choices)}"
        return "a string"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


_TABLE: list[ConfigKey] = []


def _add(level: str, name: str, kind: str, default: Any, **kw: Any) -> None:
    _TABLE.append(ConfigKey(name=name, level=level, kind=kind, default=default, **kw))


def _both(topic_name: str, broker_name: str, kind: str, default: Any, **kw: Any) -> None:
    """A topic key and its broker twin, with one default."""
    _add(BROKER, broker_name, kind, default, **kw)
    _add(TOPIC, topic_name, kind, default, broker_name=broker_name, **kw)


# Topic keys and their broker twins.
_both("min.insync.replicas", "min.insync.replicas", "int", 1, min=1)
_both("unclean.leader.election.enable", "unclean.leader.election.enable", "bool", False)
_both("retention.ms", "log.retention.ms", "int", 604_800_000, min=-1)
_both("retention.bytes", "log.retention.bytes", "int", -1, min=-1)
_both("segment.bytes", "log.segment.bytes", "int", 1_073_741_824, min=14, max=INT_MAX)
_both("segment.ms", "log.roll.ms", "int", 604_800_000, min=1)
_both("segment.index.bytes", "log.index.size.max.bytes", "int", 10_485_760, min=4)
_both("index.interval.bytes", "log.index.interval.bytes", "int", 4096, min=0)
_both("cleanup.policy", "log.cleanup.policy", "list", ("delete",), choices=("delete", "compact"))
_both("flush.messages", "log.flush.interval.messages", "int", LONG_MAX, min=1)
_both("flush.ms", "log.flush.interval.ms", "int", LONG_MAX, min=0)
_both("max.message.bytes", "message.max.bytes", "int", 1_048_588, min=0)
_both("message.timestamp.type", "log.message.timestamp.type", "enum", "CreateTime",
      choices=("CreateTime", "LogAppendTime"))
_both("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "double", 0.5,
      min=0.0, max=1.0)
_both("delete.retention.ms", "log.cleaner.delete.retention.ms", "int", 86_400_000, min=0)
_both("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "int", 0, min=0)
_both("file.delete.delay.ms", "log.segment.delete.delay.ms", "int", 60_000, min=0)
_both("preallocate", "log.preallocate", "bool", False)
_both("compression.type", "compression.type", "enum", "producer",
      choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"))
_both("simlog.follower.truncation", "simlog.follower.truncation", "enum", "leader-epoch",
      choices=("leader-epoch", "high-watermark"),
      doc="research switch: how a follower truncates on leader change (KIP-101/279 or pre-0.11)")

# Broker-only keys.
for _name, _kind, _default, _kw in [
    ("default.replication.factor", "int", 1, {"min": 1}),
    ("num.partitions", "int", 1, {"min": 1}),
    ("replica.lag.time.max.ms", "int", 30_000, {"min": 0}),
    ("replica.fetch.max.bytes", "int", 1_048_576, {"min": 0}),
    ("replica.fetch.min.bytes", "int", 1, {"min": 0}),
    ("replica.fetch.wait.max.ms", "int", 500, {"min": 0}),
    ("replica.fetch.backoff.ms", "int", 1000, {"min": 0}),
    ("replica.socket.timeout.ms", "int", 30_000, {}),
    ("replica.high.watermark.checkpoint.interval.ms", "int", 5000, {"min": 1}),
    ("num.replica.fetchers", "int", 1, {"min": 1}),
    ("num.network.threads", "int", 3, {"min": 1}),
    ("num.io.threads", "int", 8, {"min": 1}),
    ("socket.request.max.bytes", "int", 104_857_600, {"min": 1}),
    ("auto.create.topics.enable", "bool", True, {}),
    ("auto.leader.rebalance.enable", "bool", True, {}),
    ("leader.imbalance.check.interval.seconds", "int", 300, {"min": 1}),
    ("leader.imbalance.per.broker.percentage", "int", 10, {"min": 0, "max": 100}),
    ("controlled.shutdown.enable", "bool", True, {}),
    ("delete.topic.enable", "bool", True, {}),
    ("log.flush.scheduler.interval.ms", "int", LONG_MAX, {"min": 0}),
    ("log.flush.offset.checkpoint.interval.ms", "int", 60_000, {"min": 0}),
    ("log.retention.check.interval.ms", "int", 300_000, {"min": 1}),
    ("log.cleaner.enable", "bool", True, {}),
    ("log.cleaner.backoff.ms", "int", 15_000, {"min": 0}),
    ("offsets.topic.replication.factor", "int", 3, {"min": 1}),
    ("offsets.topic.num.partitions", "int", 50, {"min": 1}),
    ("offsets.retention.minutes", "int", 10_080, {"min": 1}),
    ("offsets.commit.timeout.ms", "int", 5000, {"min": 1}),
    ("group.initial.rebalance.delay.ms", "int", 3000, {"min": 0}),
    ("group.min.session.timeout.ms", "int", 6000, {"min": 0}),
    ("group.max.session.timeout.ms", "int", 1_800_000, {"min": 0}),
    ("group.max.size", "int", INT_MAX, {"min": 1}),
    ("transaction.state.log.replication.factor", "int", 3, {"min": 1}),
    ("transaction.state.log.min.isr", "int", 2, {"min": 1}),
    ("broker.session.timeout.ms", "int", 9000, {"min": 1}),
    ("broker.heartbeat.interval.ms", "int", 2000, {"min": 1}),
    ("controller.quorum.election.timeout.ms", "int", 1000, {"min": 1}),
    ("controller.quorum.election.backoff.max.ms", "int", 1000, {"min": 1}),
    ("controller.quorum.fetch.timeout.ms", "int", 2000, {"min": 1}),
    ("controller.quorum.request.timeout.ms", "int", 2000, {"min": 1}),
    ("controller.quorum.retry.backoff.ms", "int", 20, {"min": 0}),
    ("controller.socket.timeout.ms", "int", 30_000, {"min": 1}),
    # simulation-only knobs (cost model, quorum internals), in Kafka's naming style
    ("simlog.cpu.request.us", "int", 20, {"min": 0}),
    ("simlog.cpu.per.kib.us", "int", 1, {"min": 0}),
    ("simlog.quorum.fetch.max.records", "int", 1000, {"min": 1}),
    ("simlog.metadata.snapshot.interval.records", "int", 1000, {"min": 1}),
    ("simlog.cluster.id", "string", "simlog", {}),
]:
    _add(BROKER, _name, _kind, _default, **_kw)

# Settings producers and consumers share.
for _level in (PRODUCER, CONSUMER):
    for _name, _kind, _default, _kw in [
        ("client.id", "string", "", {}),
        ("request.timeout.ms", "int", 30_000, {"min": 0}),
        ("retry.backoff.ms", "int", 100, {"min": 0}),
        ("retry.backoff.max.ms", "int", 1000, {"min": 0}),
        ("reconnect.backoff.ms", "int", 50, {"min": 0}),
        ("reconnect.backoff.max.ms", "int", 1000, {"min": 0}),
        ("metadata.max.age.ms", "int", 300_000, {"min": 0}),
        ("connections.max.idle.ms", "int", 540_000, {}),
    ]:
        _add(_level, _name, _kind, _default, **_kw)

for _name, _kind, _default, _kw in [
    ("acks", "enum", "all", {"choices": ("all", "-1", "0", "1")}),
    ("linger.ms", "int", 5, {"min": 0}),
    ("batch.size", "int", 16_384, {"min": 0}),
    ("buffer.memory", "int", 33_554_432, {"min": 0}),
    ("compression.type", "enum", "none", {"choices": ("none", "gzip", "snappy", "lz4", "zstd")}),
    ("compression.gzip.level", "int", -1, {"min": -1, "max": 9}),
    ("compression.lz4.level", "int", 9, {"min": 1, "max": 17}),
    ("compression.zstd.level", "int", 3, {"min": -131072, "max": 22}),
    ("enable.idempotence", "bool", True, {}),
    ("max.in.flight.requests.per.connection", "int", 5, {"min": 1}),
    ("retries", "int", INT_MAX, {"min": 0, "max": INT_MAX}),
    ("delivery.timeout.ms", "int", 120_000, {"min": 0}),
    ("max.block.ms", "int", 60_000, {"min": 0}),
    ("max.request.size", "int", 1_048_576, {"min": 0}),
    ("partitioner.ignore.keys", "bool", False, {}),
    ("partitioner.adaptive.partitioning.enable", "bool", True, {}),
    ("partitioner.availability.timeout.ms", "int", 0, {"min": 0}),
    ("transactional.id", "string", None, {}),
    ("transaction.timeout.ms", "int", 60_000, {"min": 1}),
]:
    _add(PRODUCER, _name, _kind, _default, **_kw)

for _name, _kind, _default, _kw in [
    ("enable.auto.commit", "bool", True, {}),
    ("auto.commit.interval.ms", "int", 5000, {"min": 0}),
    ("auto.offset.reset", "enum", "latest", {"choices": ("latest", "earliest", "none")}),
    ("session.timeout.ms", "int", 45_000, {"min": 1}),
    ("heartbeat.interval.ms", "int", 3000, {"min": 1}),
    ("max.poll.interval.ms", "int", 300_000, {"min": 1}),
    ("max.poll.records", "int", 500, {"min": 1}),
    ("fetch.min.bytes", "int", 1, {"min": 0}),
    ("fetch.max.bytes", "int", 52_428_800, {"min": 0}),
    ("fetch.max.wait.ms", "int", 500, {"min": 0}),
    ("max.partition.fetch.bytes", "int", 1_048_576, {"min": 0}),
    ("partition.assignment.strategy", "list", ("range", "cooperative-sticky"),
     {"choices": tuple(ASSIGNORS)}),
    ("isolation.level", "enum", "read_uncommitted",
     {"choices": ("read_uncommitted", "read_committed")}),
    ("group.protocol", "enum", "classic", {"choices": ("classic", "consumer")}),
    ("group.instance.id", "string", None, {}),
    ("check.crcs", "bool", True, {}),
    ("client.rack", "string", "", {}),
    ("allow.auto.create.topics", "bool", True, {}),
    ("default.api.timeout.ms", "int", 60_000, {"min": 0}),
]:
    _add(CONSUMER, _name, _kind, _default, **_kw)

KEYS: Mapping[str, Mapping[str, ConfigKey]] = {
    level: {k.name: k for k in sorted(_TABLE, key=lambda k: k.name) if k.level == level}
    for level in LEVELS
}

# Keys the simulation sets itself; naming them in a scenario is a mistake worth explaining.
MANAGED: Mapping[str, str] = {
    "group.id": "it is the consumer entry's `group:`",
    "bootstrap.servers": "the simulation connects clients to the cluster itself",
    "broker.id": "brokers b1..bN have ids 1..N",
    "node.id": "brokers b1..bN have ids 1..N",
    "process.roles": "set by `cluster.controllers` (0 = combined mode)",
    "key.serializer": "the workload produces bytes",
    "value.serializer": "the workload produces bytes",
    "key.deserializer": "the workload consumes bytes",
    "value.deserializer": "the workload consumes bytes",
}


def default(level: str, name: str) -> Any:
    """Kafka's default for `name` at `level` (KeyError if Kafka has no such key there)."""
    return KEYS[level][name].default


def _bad(key: ConfigKey, value: object) -> ConfigError:
    return ConfigError(key.name, f"expected {key.expected()}, found {show(value)}")


def _duration_ms(key: ConfigKey, text: str) -> int:
    """`replica.lag.time.max.ms: 10s` -> 10000: a `.ms` key may take a duration."""
    from simlog.scenario.units import parse_time_us  # local: keeps this module's imports pure

    try:
        us = parse_time_us(text, signed=True)
    except ValueError:
        raise _bad(key, text) from None
    if us % 1000:
        raise ConfigError(key.name, f"expected a whole number of milliseconds, found {text!r}")
    return us // 1000


def coerce(key: ConfigKey, value: object) -> Any:
    """One value, checked against `key` and converted to its canonical type."""
    if key.kind == "int":
        if isinstance(value, str) and key.name.endswith(".ms"):
            value = _duration_ms(key, value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(key, value)
        if (key.min is not None and value < key.min) or (key.max is not None and value > key.max):
            raise _bad(key, value)
        return value
    if key.kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(key, value)
        if (key.min is not None and value < key.min) or (key.max is not None and value > key.max):
            raise _bad(key, value)
        return float(value)
    if key.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad(key, value)
    if key.kind == "enum":
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or text not in key.choices:
            raise _bad(key, value)
        return "all" if key.name == "acks" and text == "-1" else text
    if key.kind == "list":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items:
            raise _bad(key, value)
        out = []
        for item in items:
            name = item.strip() if isinstance(item, str) else item
            if key.name == "partition.assignment.strategy":
                name = {v: k for k, v in ASSIGNORS.items()}.get(name, name)
            if name not in key.choices:
                raise _bad(key, item)
            out.append(name)
        return tuple(out)
    if value is None or isinstance(value, str):
        return value
    raise _bad(key, value)


def validate(level: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key of `raw` at `level`; return canonical values (sorted by key).

    Raises ConfigError for an unknown key (with a did-you-mean, or the level where Kafka
    does have it) or a value of the wrong type or range."""
    table = KEYS[level]
    out: dict[str, Any] = {}
    for name in raw:
        if not isinstance(name, str):
            raise ConfigError(str(name), f"expected a Kafka config name, found {show(name)}")
        key = table.get(name)
        if key is None:
            raise ConfigError(name, _unknown(level, name))
        out[name] = coerce(key, raw[name])
    return dict(sorted(out.items()))


def _unknown(level: str, name: str) -> str:
    if name in MANAGED:
        return f"'{name}' cannot be set here: {MANAGED[name]}"
    msg = f"unknown {level} config '{name}'"
    if level == BROKER and name in KEYS[TOPIC] and KEYS[TOPIC][name].broker_name:
        return f"{msg} ('{name}' is a topic config; the broker default is " \
               f"'{KEYS[TOPIC][name].broker_name}')"
    if level == TOPIC:
        for key in KEYS[TOPIC].values():
            if key.broker_name == name:
                return f"{msg} ('{name}' is a broker config; the topic config is '{key.name}')"
    hint = did_you_mean(name, KEYS[level])
    if hint:
        return msg + hint
    others = [lv for lv in LEVELS if lv != level and name in KEYS[lv]]
    if others:
        return f"{msg} (it is a {others[0]} config)"
    return msg


class KafkaConfig(Mapping[str, Any]):
    """Effective settings of one level: Kafka's defaults with the scenario's values on top.

    Immutable and hashable; iterates in key order. `explicit` names the keys the scenario
    set (at this level, or for a topic also inherited from the broker's explicit keys)."""

    __slots__ = ("_items", "explicit", "level")

    def __init__(self, level: str, values: Mapping[str, Any], explicit: frozenset[str]) -> None:
        self.level = level
        self._items = dict(sorted(values.items()))
        self.explicit = explicit

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash((self.level, tuple(self._items.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KafkaConfig) and (self.level, self._items) == (
            other.level, other._items)

    def __repr__(self) -> str:
        set_ = {k: self._items[k] for k in sorted(self.explicit)}
        return f"KafkaConfig({self.level}, {set_})"

    def overrides(self) -> dict[str, Any]:
        """Only the keys the scenario set, e.g. for a summary."""
        return {k: self._items[k] for k in sorted(self.explicit)}


def merged(level: str, values: Mapping[str, Any], *,
           broker: KafkaConfig | None = None) -> KafkaConfig:
    """Validated `values` over Kafka's defaults; for a topic, the broker's values fill in."""
    checked = validate(level, values)
    out: dict[str, Any] = {}
    explicit = set(checked)
    for name, key in KEYS[level].items():
        if name in checked:
            out[name] = checked[name]
        elif level == TOPIC and broker is not None and key.broker_name:
            out[name] = broker[key.broker_name]
            if key.broker_name in broker.explicit:
                explicit.add(name)
        else:
            out[name] = key.default
    return KafkaConfig(level, out, frozenset(explicit))

