"""The loaded scenario: a typed, frozen value the runner consumes.

Everything is resolved here: times are integer µs, sizes integer bytes, node ids spelled
out (b1..bN, c1..cM, producer ids, consumer members `group-1..group-N`), Kafka settings
merged over Kafka's defaults per level (broker config; topic config falling back to the
broker's; producer and consumer configs), fault ops typed (`schema.Isolate`, ...), checks
with validated parameters, and `expect` filled in for every listed check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from pydantic import BaseModel

from simlog.scenario.kafka_config import KafkaConfig
from simlog.scenario.schema import DiskSpec, FaultOp, Keys, NetworkSpec
from simlog.scenario.selectors import TopicPartition
from simlog.scenario.units import MaxRate, MessageRate, format_time_us


@dataclass(frozen=True, slots=True)
class Cluster:
    brokers: tuple[str, ...]
    controllers: tuple[str, ...]  # empty: combined mode, the brokers vote
    config: KafkaConfig           # broker level, Kafka names
    protocol: str

    @property
    def combined(self) -> bool:
        return not self.controllers

    @staticmethod
    def broker_id(node: str) -> int:
        """`b3` -> 3 (Kafka's broker.id)."""
        return int(node[1:])


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    partitions: int
    replication_factor: int
    config: KafkaConfig           # topic level: overrides, else the broker's, else Kafka's

    def partition_list(self) -> tuple[TopicPartition, ...]:
        return tuple(TopicPartition(self.name, i) for i in range(self.partitions))


@dataclass(frozen=True, slots=True)
class Producer:
    id: str
    topic: str
    rate: MessageRate | MaxRate
    start_us: int
    stop_us: int | None
    keys: Keys
    value_size_bytes: int
    config: KafkaConfig           # producer level

    @property
    def idempotent(self) -> bool:
        return bool(self.config["enable.idempotence"])


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    group: str
    members: tuple[str, ...]      # group-1..group-N
    topics: tuple[str, ...]
    start_us: int
    stop_us: int | None
    config: KafkaConfig           # consumer level
    processing_per_record_us: int = 0   # application time per record polled
    processing_per_poll_us: int = 0     # and per poll
    processing_jitter: float = 0.0      # each poll's time x uniform(1 - j, 1 + j)
    static: bool = False          # members use their id as group.instance.id

    def processing_us(self, records: int, draw: float = 0.5) -> int:
        """How long the application works on one poll's records before polling again;
        `draw` in [0, 1) picks the jitter factor (0.5: none)."""
        base = self.processing_per_poll_us + records * self.processing_per_record_us
        return round(base * (1.0 + self.processing_jitter * (2.0 * draw - 1.0)))


@dataclass(frozen=True, slots=True)
class Fault:
    index: int                    # position in `faults:`
    at_us: int
    kind: str                     # the op's name in the file: isolate, crash, ...
    op: FaultOp
    line: int | None              # where it is written, for reports


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    params: BaseModel             # the check's validated parameter model


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    duration_us: int
    cluster: Cluster
    network: NetworkSpec
    disk: DiskSpec
    topics: tuple[Topic, ...]
    producers: tuple[Producer, ...]
    consumers: tuple[ConsumerGroup, ...]
    faults: tuple[Fault, ...]
    checks: tuple[CheckSpec, ...]
    expect: Mapping[str, str]     # every listed check -> "pass" | "fail"
    source: str = ""              # the file it came from

    def with_seed(self, seed: int) -> Scenario:
        """`--seed N` on the command line overrides the file's seed."""
        return replace(self, seed=seed)

    def topic(self, name: str) -> Topic:
        return next(t for t in self.topics if t.name == name)

    @property
    def clients(self) -> tuple[str, ...]:
        """Every client process id, producers first, in file order."""
        return tuple(p.id for p in self.producers) + tuple(
            m for g in self.consumers for m in g.members)

    def summary(self) -> str:
        """One line: what `simlog validate` prints after OK."""
        c = self.cluster
        quorum = "combined" if c.combined else f"{len(c.controllers)} controllers"
        parts = sum(t.partitions for t in self.topics)
        return (f"{self.name}: {format_time_us(self.duration_us)}, seed {self.seed}, "
                f"{_n(len(c.brokers), 'broker')}, {quorum}, {_n(len(self.topics), 'topic')} "
                f"({_n(parts, 'partition')}), {_n(len(self.producers), 'producer')}, "
                f"{_n(len(self.consumers), 'consumer group')}, "
                f"{_n(len(self.faults), 'fault')}, "
                f"checks: {', '.join(ch.name for ch in self.checks) or 'none'}")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def frozen_map(items: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(items))
