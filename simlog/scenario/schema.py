"""The declared schema of a scenario file (SCENARIOS.md), as frozen pydantic v2 models.

Every model forbids unknown keys and is strict (no silent "3" -> 3); unit-bearing fields
parse their units on the way in, so a validated model already holds integer µs, integer
bytes, typed rates, typed selectors and partitions. Cross-references (does `b7` exist,
is `orders/9` in range, are faults in time order) need the whole file and live in
`refs.py`; Kafka `config:` mappings are checked against `kafka_config` by the loader.

Fault ops are models too (`Isolate`, `Crash`, ...). Where SCENARIOS.md lets an op take a
bare selector (`isolate: b1`, `crash: b1`), the value is read as `{node: b1}`, so every op
is a model with a `node` field where it targets nodes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    model_validator,
)

from simlog.scenario.selectors import Selector, TopicPartition, parse, parse_partition
from simlog.scenario.units import (
    ByteRate,
    MaxRate,
    MessageRate,
    parse_byte_rate,
    parse_message_rate,
    parse_size_bytes,
    parse_time_us,
)

TimeUs = Annotated[int, BeforeValidator(parse_time_us)]
OffsetUs = Annotated[int, BeforeValidator(lambda v: parse_time_us(v, signed=True))]
SizeBytes = Annotated[int, BeforeValidator(parse_size_bytes)]
Bandwidth = Annotated[ByteRate | MaxRate, PlainValidator(parse_byte_rate)]
ProduceRate = Annotated[MessageRate | MaxRate, PlainValidator(parse_message_rate)]
Sel = Annotated[Selector, PlainValidator(parse)]
Partition = Annotated[TopicPartition, PlainValidator(parse_partition)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
KafkaSettings = dict[str, Any]

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Name = Annotated[str, Field(pattern=NAME_RE, max_length=249)]


class Spec(BaseModel):
    """Base: strict, frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _as_node(value: Any) -> Any:
    """`crash: b1` means `crash: {node: b1}`."""
    return value if isinstance(value, dict) else {"node": value}


def _as_latency(value: Any) -> Any:
    """`latency: 2ms` means a fixed latency: `{median: 2ms, p99: 2ms}`."""
    return value if isinstance(value, dict) else {"median": value, "p99": value}


# ---- cluster, network, disk -------------------------------------------------------------

class ClusterSpec(Spec):
    brokers: int = Field(3, ge=1, le=1000)
    controllers: int = Field(3, ge=0, le=99)
    config: KafkaSettings = Field(default_factory=dict)
    protocol: Literal["kafka-isr"] = "kafka-isr"


class Latency(Spec):
    """One-way latency of a link: a log-normal-ish distribution fixed by median and p99."""

    median: TimeUs
    p99: TimeUs

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.p99 < self.median:
            raise ValueError(f"expected p99 >= median, found p99 {self.p99}us < median "
                             f"{self.median}us")
        return self


LatencyField = Annotated[Latency, BeforeValidator(_as_latency)]


class LinkSpec(Spec):
    """`network.links[]`: overrides for messages from `from` to `to` (both ways unless
    `symmetric: false`)."""

    from_: Sel = Field(alias="from")
    to: Sel
    symmetric: bool = True
    latency: LatencyField | None = None
    bandwidth: Bandwidth | None = None
    loss: Probability | None = None


class NetworkSpec(Spec):
    latency: LatencyField = Latency.model_construct(median=500, p99=5000)
    bandwidth: Bandwidth = ByteRate(125_000_000)
    loss: Probability = 0.0
    links: list[LinkSpec] = Field(default_factory=list)
    # tcp: what a cut catches is retransmitted after the heal (Kafka runs over TCP);
    # datagram: it is lost
    transport: Literal["tcp", "datagram"] = "tcp"


class DiskSpec(Spec):
    write_bandwidth: Bandwidth = ByteRate(500 * 1_048_576)
    read_bandwidth: Bandwidth = ByteRate(1_073_741_824)
    fsync_latency: TimeUs = 2000
    page_cache: SizeBytes = 4 * 1_073_741_824


# ---- topics and workload ------------------------------------------------------------------

class TopicSpec(Spec):
    name: Name
    partitions: int = Field(1, ge=1, le=100_000)
    replication_factor: int = Field(1, ge=1)
    config: KafkaSettings = Field(default_factory=dict)


class Keys(Spec):
    """Key distribution: `none` (no key), `uniform` over n keys, `zipf` (n, s), or `hot`
    (one key takes `share` of the messages, the rest uniform over n)."""

    dist: Literal["none", "uniform", "zipf", "hot"] = "none"
    n: int | None = Field(None, ge=1)
    s: float | None = Field(None, gt=0.0)
    share: Probability | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"dist": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fields_fit_dist(self) -> Keys:
        allowed = {"none": set(), "uniform": {"n"}, "zipf": {"n", "s"},
                   "hot": {"n", "share"}}[self.dist]
        extra = sorted((self.model_fields_set - {"dist"}) - allowed)
        if extra:
            raise ValueError(f"dist {self.dist} takes {', '.join(sorted(allowed)) or 'no'} "
                             f"parameters, found {', '.join(extra)}")
        if self.dist == "hot" and self.share is None:
            raise ValueError("dist hot needs share (the hot key's fraction of messages)")
        return self

    @property
    def key_count(self) -> int:
        """How many distinct keys (1000 when a distribution with keys leaves n out)."""
        return 0 if self.dist == "none" else (self.n or 1000)

    @property
    def zipf_s(self) -> float:
        return self.s or 1.0


class ProducerSpec(Spec):
    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
    topic: str
    rate: ProduceRate
    start: TimeUs = 0
    stop: TimeUs | None = None
    keys: Keys = Keys()
    value_size: SizeBytes = 100
    config: KafkaSettings = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window(self) -> ProducerSpec:
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"expected stop after start, found start {self.start}us, "
                             f"stop {self.stop}us")
        return self


class Processing(Spec):
    """How long the application takes with what a poll returned, before it polls again:
    `per_record` for each record plus `per_poll` for each poll (an empty one too), times
    a factor drawn per poll uniformly from [1 - jitter, 1 + jitter] (seeded; 0: exact).
    `processing: 20ms` is `{per_record: 20ms}`. The group's heartbeats go on meanwhile
    (Kafka's background heartbeat thread); rebalances wait for the next poll."""

    per_record: TimeUs = 0
    per_poll: TimeUs = 0
    jitter: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {"per_record": value}


class ConsumerSpec(Spec):
    group: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    members: int = Field(1, ge=1, le=1000)
    topics: list[str] = Field(min_length=1)
    start: TimeUs = 0
    stop: TimeUs | None = None
    processing: Processing = Processing()
    static: bool = False          # KIP-345: each member's group.instance.id is its id
    config: KafkaSettings = Field(default_factory=dict)

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(f"{self.group}-{i}" for i in range(1, self.members + 1))


class WorkloadSpec(Spec):
    producers: list[ProducerSpec] = Field(default_factory=list)
    consumers: list[ConsumerSpec] = Field(default_factory=list)


# ---- fault ops ----------------------------------------------------------------------------

class PartitionOp(Spec):
    groups: list[Sel] = Field(min_length=2)


class Isolate(Spec):
    node: Sel


class Cut(Spec):
    from_: Sel = Field(alias="from")
    to: Sel


class Link(Spec):
    from_: Sel = Field(alias="from")
    to: Sel
    latency: LatencyField | None = None
    loss: Probability | None = None
    duplicate: Probability | None = None
    reorder: Probability | None = None
    for_us: TimeUs | None = Field(None, alias="for")


class Crash(Spec):
    node: Sel
    lose_unsynced: bool = False


class Restart(Spec):
    node: Sel


class Pause(Spec):
    node: Sel
    for_us: TimeUs | None = Field(None, alias="for")


class Resume(Spec):
    node: Sel


class SlowDisk(Spec):
    node: Sel
    factor: float = Field(gt=0.0)
    for_us: TimeUs | None = Field(None, alias="for")


class DiskFull(Spec):
    node: Sel
    for_us: TimeUs | None = Field(None, alias="for")


class Corrupt(Spec):
    node: Sel
    partition: Partition
    bytes: SizeBytes = Field(16, ge=1)


class Clock(Spec):
    node: Sel
    offset: OffsetUs | None = None
    drift: float | None = Field(None, gt=-1.0, lt=1.0)

    @model_validator(mode="after")
    def _one(self) -> Clock:
        if (self.offset is None) == (self.drift is None):
            raise ValueError("expected exactly one of offset or drift")
        return self


class AddBroker(Spec):
    node: Annotated[str, Field(pattern=r"^b[1-9][0-9]*$")]


class Reassign(Spec):
    partition: Partition
    replicas: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)


class AddPartitions(Spec):
    topic: str
    count: int = Field(ge=1)


class ClientOp(Spec):
    """`client: {crash: p1}`: exactly one action on one client."""

    crash: str | None = None
    restart: str | None = None
    leave: str | None = None
    join: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ClientOp:
        if len(self.model_fields_set) != 1:
            raise ValueError("expected exactly one of crash, restart, leave, join")
        return self

    @property
    def action(self) -> tuple[str, str]:
        (name,) = self.model_fields_set
        return name, getattr(self, name)


RANDOM_KINDS = ("clock", "crash", "cut", "disk_full", "isolate", "link", "partition",
                "pause", "slow_disk")


class RandomNemesis(Spec):
    kinds: list[Literal[RANDOM_KINDS]] = Field(min_length=1)  # type: ignore[valid-type]
    interval: TimeUs = Field(gt=0)
    until: TimeUs


class Heal(Spec):
    """Restore links: all of them (`undoes` None), or those fault number `undoes` cut.
    The file says `heal: all` or repeats the earlier op's value; the loader resolves it."""

    undoes: int | None = None


FaultOp = (PartitionOp | Isolate | Cut | Heal | Link | Crash | Restart | Pause | Resume
           | SlowDisk | DiskFull | Corrupt | Clock | AddBroker | Reassign | AddPartitions
           | ClientOp | RandomNemesis)

# op name in the file -> model; `heal` is resolved by the loader from its raw value.
OPS: dict[str, type[Spec]] = {
    "partition": PartitionOp, "isolate": Isolate, "cut": Cut, "heal": Heal, "link": Link,
    "crash": Crash, "restart": Restart, "pause": Pause, "resume": Resume,
    "slow_disk": SlowDisk, "disk_full": DiskFull, "corrupt": Corrupt, "clock": Clock,
    "add_broker": AddBroker, "reassign": Reassign, "add_partitions": AddPartitions,
    "client": ClientOp, "random": RandomNemesis,
}
LINK_OPS = ("partition", "isolate", "cut", "link")


class FaultSpec(Spec):
    """One `faults:` item: `at:` and exactly one op."""

    at: TimeUs
    partition: PartitionOp | None = None
    isolate: Annotated[Isolate, BeforeValidator(_as_node)] | None = None
    cut: Cut | None = None
    heal: Any = None
    link: Link | None = None
    crash: Annotated[Crash, BeforeValidator(_as_node)] | None = None
    restart: Annotated[Restart, BeforeValidator(_as_node)] | None = None
    pause: Annotated[Pause, BeforeValidator(_as_node)] | None = None
    resume: Annotated[Resume, BeforeValidator(_as_node)] | None = None
    slow_disk: SlowDisk | None = None
    disk_full: DiskFull | None = None
    corrupt: Corrupt | None = None
    clock: Clock | None = None
    add_broker: Annotated[AddBroker, BeforeValidator(_as_node)] | None = None
    reassign: Reassign | None = None
    add_partitions: AddPartitions | None = None
    client: ClientOp | None = None
    random: RandomNemesis | None = None

    @model_validator(mode="after")
    def _one_op(self) -> FaultSpec:
        ops = sorted(self.model_fields_set - {"at"})
        if len(ops) != 1:
            found = "none" if not ops else ", ".join(ops)
            raise ValueError(f"a fault needs `at:` and exactly one op "
                             f"({', '.join(sorted(OPS))}), found {found}")
        if getattr(self, ops[0]) is None:
            raise ValueError(f"{ops[0]} needs a value, found null")
        return self

    @property
    def op_name(self) -> str:
        (name,) = self.model_fields_set - {"at"}
        return name


class ScenarioSpec(Spec):
    """The whole file, as written (before references, Kafka configs and checks)."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**64)
    duration: TimeUs = Field(gt=0)
    cluster: ClusterSpec = ClusterSpec()
    network: NetworkSpec = NetworkSpec()
    disk: DiskSpec = DiskSpec()
    topics: list[TopicSpec] = Field(default_factory=list)
    workload: WorkloadSpec = WorkloadSpec()
    faults: list[FaultSpec] = Field(default_factory=list)
    checks: list[Any] | None = None
    expect: dict[str, Literal["pass", "fail"]] = Field(default_factory=dict)

