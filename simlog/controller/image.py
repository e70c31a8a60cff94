"""The metadata image: the cluster state built by replaying metadata records, and deltas.

`MetadataImage` is what every broker and controller knows of the cluster: registered
brokers (fenced or not), topics, and for each partition its replicas, ISR, leader,
leader epoch and partition epoch. It changes only through `apply(entries)`, which
replays committed `LogEntry`s in offset order and returns a `MetadataDelta` saying what
changed, so a broker reacts to exactly the partitions whose leadership moved
(`delta.local_changes(broker_id)`, Kafka's `TopicsDelta.localChanges`).

Invariants: `offset` is the last applied log offset (-1 for none) and grows strictly;
replay is deterministic (no clock, no chance); every accessor that returns several
items returns them sorted, so callers never depend on dict order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from simlog.controller.records import (
    NO_LEADER,
    TOPIC_RESOURCE,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FenceBrokerRecord,
    LeaderChangeRecord,
    LogEntry,
    MetadataRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    UnregisterBrokerRecord,
)


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    """A registered broker. host is the runtime node id requests go to."""

    broker_id: int
    broker_epoch: int
    host: str
    port: int = 9092
    rack: str | None = None
    fenced: bool = True
    in_controlled_shutdown: bool = False

    @property
    def eligible(self) -> bool:
        """May lead or join an ISR: unfenced and not shutting down."""
        return not self.fenced and not self.in_controlled_shutdown


@dataclass(frozen=True, slots=True)
class PartitionRegistration:
    """One partition's replication state, as of the image's offset."""

    topic: str
    topic_id: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int

    @property
    def online(self) -> bool:
        return self.leader != NO_LEADER


@dataclass(slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: dict[int, PartitionRegistration] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)

    def sorted_partitions(self) -> list[PartitionRegistration]:
        return [self.partitions[p] for p in sorted(self.partitions)]


TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LocalReplicaChanges:
    """What a delta means for one broker (Kafka's LocalReplicaChanges): partitions it now
    leads (new leader or new leader epoch), partitions it now follows (leader or epoch
    changed, or ISR changed while it follows), partitions it no longer hosts. Sorted by
    (topic, partition)."""

    leaders: tuple[PartitionRegistration, ...]
    followers: tuple[PartitionRegistration, ...]
    deletes: tuple[TopicPartition, ...]
    isr_changes: tuple[PartitionRegistration, ...]


@dataclass(slots=True)
class MetadataDelta:
    """What one `MetadataImage.apply` changed: before/after per partition and broker
    (None = did not exist / removed). `offset` is the image offset after the apply."""

    offset: int = -1
    partitions: dict[TopicPartition, tuple[PartitionRegistration | None,
                                            PartitionRegistration | None]] = field(
        default_factory=dict)
    brokers: dict[int, tuple[BrokerRegistration | None, BrokerRegistration | None]] = field(
        default_factory=dict)
    created_topics: list[str] = field(default_factory=list)
    deleted_topics: list[str] = field(default_factory=list)
    config_changes: list[tuple[str, str]] = field(default_factory=list)
    leader_changes: list[LeaderChangeRecord] = field(default_factory=list)

    def _partition(self, tp: TopicPartition, before: PartitionRegistration | None,
                   after: PartitionRegistration | None) -> None:
        old = self.partitions.get(tp)
        self.partitions[tp] = (old[0] if old is not None else before, after)

    def _broker(self, broker_id: int, before: BrokerRegistration | None,
                after: BrokerRegistration | None) -> None:
        old = self.brokers.get(broker_id)
        self.brokers[broker_id] = (old[0] if old is not None else before, after)

    @property
    def empty(self) -> bool:
        return not (self.partitions or self.brokers or self.created_topics
                    or self.deleted_topics or self.config_changes)

    def changed_partitions(self) -> list[tuple[PartitionRegistration | None,
                                               PartitionRegistration | None]]:
        """(before, after) for every partition that changed, sorted by (topic, partition);
        entries whose before equals after are left out."""
        return [self.partitions[tp] for tp in sorted(self.partitions)
                if self.partitions[tp][0] != self.partitions[tp][1]]

    def local_changes(self, broker_id: int) -> LocalReplicaChanges:
        leaders: list[PartitionRegistration] = []
        followers: list[PartitionRegistration] = []
        isr_changes: list[PartitionRegistration] = []
        deletes: list[TopicPartition] = []
        for tp in sorted(self.partitions):
            before, after = self.partitions[tp]
            if before == after:
                continue
            was_replica = before is not None and broker_id in before.replicas
            if after is None or broker_id not in after.replicas:
                if was_replica:
                    deletes.append(tp)
                continue
            leadership_moved = (before is None or before.leader != after.leader
                                or before.leader_epoch != after.leader_epoch
                                or not was_replica)
            if after.leader == broker_id:
                if leadership_moved:
                    leaders.append(after)
                elif before is not None and before.isr != after.isr:
                    isr_changes.append(after)
            elif leadership_moved:
                followers.append(after)
            elif before is not None and before.isr != after.isr:
                isr_changes.append(after)
        return LocalReplicaChanges(tuple(leaders), tuple(followers), tuple(deletes),
                                   tuple(isr_changes))


class MetadataImage:
    """Cluster metadata as of `offset`. Mutated only by `apply`/`replay`."""

    __slots__ = ("brokers", "epoch", "offset", "quorum_leader", "topic_names", "topics")

    def __init__(self) -> None:
        self.offset = -1
        self.epoch = 0  # Raft epoch of the last applied entry
        self.brokers: dict[int, BrokerRegistration] = {}
        self.topics: dict[str, TopicImage] = {}
        self.topic_names: dict[str, str] = {}  # topic_id -> name
        self.quorum_leader: str | None = None  # from the last LeaderChangeRecord

    # -- queries -------------------------------------------------------------------

    def broker(self, broker_id: int) -> BrokerRegistration | None:
        return self.brokers.get(broker_id)

    def sorted_brokers(self) -> list[BrokerRegistration]:
        return [self.brokers[b] for b in sorted(self.brokers)]

    def eligible_broker_ids(self) -> list[int]:
        """Unfenced brokers not in controlled shutdown, sorted."""
        return [b for b in sorted(self.brokers) if self.brokers[b].eligible]

    def broker_host(self, broker_id: int) -> str | None:
        reg = self.brokers.get(broker_id)
        return reg.host if reg is not None else None

    def topic(self, name: str) -> TopicImage | None:
        return self.topics.get(name)

    def topic_by_id(self, topic_id: str) -> TopicImage | None:
        name = self.topic_names.get(topic_id)
        return self.topics.get(name) if name is not None else None

    def partition(self, topic: str, partition: int) -> PartitionRegistration | None:
        t = self.topics.get(topic)
        return t.partitions.get(partition) if t is not None else None

    def partitions(self) -> Iterator[PartitionRegistration]:
        """Every partition, sorted by (topic, partition)."""
        for name in sorted(self.topics):
            yield from self.topics[name].sorted_partitions()

    def partitions_led_by(self, broker_id: int) -> list[PartitionRegistration]:
        return [p for p in self.partitions() if p.leader == broker_id]

    def partitions_on(self, broker_id: int) -> list[PartitionRegistration]:
        return [p for p in self.partitions() if broker_id in p.replicas]

    def topic_config(self, topic: str, name: str, default: str | None = None) -> str | None:
        t = self.topics.get(topic)
        if t is None:
            return default
        return t.configs.get(name, default)

    # -- replay --------------------------------------------------------------------

    def apply(self, entries: Iterable[LogEntry]) -> MetadataDelta:
        """Replay entries (offset order, each above `offset`) and return the delta."""
        delta = MetadataDelta(offset=self.offset)
        for entry in entries:
            if entry.offset <= self.offset:
                raise ValueError(f"replay out of order: {entry.offset} <= {self.offset}")
            self.replay(entry.record, delta)
            self.offset = entry.offset
            self.epoch = entry.epoch
        delta.offset = self.offset
        return delta

    def replay(self, record: MetadataRecord, delta: MetadataDelta) -> None:
        """Apply one record (no offset bookkeeping; `apply` does that)."""
        handler = _REPLAY.get(type(record))
        if handler is None:
            raise TypeError(f"unknown metadata record {type(record).__name__}")
        handler(self, record, delta)

    def _register(self, r: RegisterBrokerRecord, delta: MetadataDelta) -> None:
        before = self.brokers.get(r.broker_id)
        after = BrokerRegistration(r.broker_id, r.broker_epoch, r.host, r.port, r.rack,
                                   r.fenced, r.in_controlled_shutdown)
        self.brokers[r.broker_id] = after
        delta._broker(r.broker_id, before, after)

    def _unregister(self, r: UnregisterBrokerRecord, delta: MetadataDelta) -> None:
        before = self.brokers.get(r.broker_id)
        if before is not None and before.broker_epoch == r.broker_epoch:
            del self.brokers[r.broker_id]
            delta._broker(r.broker_id, before, None)

    def _set_broker(self, broker_id: int, epoch: int, delta: MetadataDelta,
                    fenced: bool | None = None, shutting_down: bool | None = None) -> None:
        before = self.brokers.get(broker_id)
        if before is None or before.broker_epoch != epoch:
            return  # a record about an older incarnation: ignored, as Kafka does
        after = before
        if fenced is not None:
            after = replace(after, fenced=fenced)
        if shutting_down is not None:
            after = replace(after, in_controlled_shutdown=shutting_down)
        if fenced is False:
            after = replace(after, in_controlled_shutdown=False)
        self.brokers[broker_id] = after
        delta._broker(broker_id, before, after)

    def _fence(self, r: FenceBrokerRecord, delta: MetadataDelta) -> None:
        self._set_broker(r.id, r.epoch, delta, fenced=True)

    def _unfence(self, r: UnfenceBrokerRecord, delta: MetadataDelta) -> None:
        self._set_broker(r.id, r.epoch, delta, fenced=False)

    def _registration_change(self, r: BrokerRegistrationChangeRecord,
                             delta: MetadataDelta) -> None:
        fenced = {1: True, -1: False}.get(r.fenced)
        shutting = True if r.in_controlled_shutdown == 1 else None
        self._set_broker(r.broker_id, r.broker_epoch, delta, fenced=fenced,
                         shutting_down=shutting)

    def _topic(self, r: TopicRecord, delta: MetadataDelta) -> None:
        self.topics[r.name] = TopicImage(r.name, r.topic_id)
        self.topic_names[r.topic_id] = r.name
        delta.created_topics.append(r.name)

    def _remove_topic(self, r: RemoveTopicRecord, delta: MetadataDelta) -> None:
        name = self.topic_names.pop(r.topic_id, None)
        if name is None:
            return
        t = self.topics.pop(name)
        for p in t.sorted_partitions():
            delta._partition((name, p.partition), p, None)
        delta.deleted_topics.append(name)

    def _config(self, r: ConfigRecord, delta: MetadataDelta) -> None:
        if r.resource_type != TOPIC_RESOURCE:
            return
        t = self.topics.get(r.resource_name)
        if t is None:
            return
        if r.value is None:
            t.configs.pop(r.name, None)
        else:
            t.configs[r.name] = r.value
        delta.config_changes.append((r.resource_name, r.name))

    def _partition_record(self, r: PartitionRecord, delta: MetadataDelta) -> None:
        t = self.topic_by_id(r.topic_id)
        if t is None:
            return
        before = t.partitions.get(r.partition_id)
        after = PartitionRegistration(t.name, r.topic_id, r.partition_id, tuple(r.replicas),
                                      tuple(r.isr), r.leader, r.leader_epoch,
                                      r.partition_epoch)
        t.partitions[r.partition_id] = after
        delta._partition((t.name, r.partition_id), before, after)

    def _partition_change(self, r: PartitionChangeRecord, delta: MetadataDelta) -> None:
        t = self.topic_by_id(r.topic_id)
        if t is None:
            return
        before = t.partitions.get(r.partition_id)
        if before is None:
            return
        after = replace(before, leader=r.leader, isr=tuple(r.isr),
                        leader_epoch=r.leader_epoch, partition_epoch=r.partition_epoch,
                        replicas=tuple(r.replicas) if r.replicas is not None
                        else before.replicas)
        t.partitions[r.partition_id] = after
        delta._partition((t.name, r.partition_id), before, after)

    def _leader_change(self, r: LeaderChangeRecord, delta: MetadataDelta) -> None:
        self.quorum_leader = r.leader_id
        delta.leader_changes.append(r)

    def _noop(self, r: NoOpRecord, delta: MetadataDelta) -> None:
        pass

    # -- snapshots -----------------------------------------------------------------

    def to_records(self) -> list[MetadataRecord]:
        """Records that rebuild this image from empty (a snapshot's content), in a fixed
        order: brokers, then per topic its TopicRecord, configs, partitions."""
        out: list[MetadataRecord] = []
        for b in self.sorted_brokers():
            out.append(RegisterBrokerRecord(
                broker_id=b.broker_id, broker_epoch=b.broker_epoch, host=b.host, port=b.port,
                rack=b.rack, fenced=b.fenced, in_controlled_shutdown=b.in_controlled_shutdown))
        for name in sorted(self.topics):
            t = self.topics[name]
            out.append(TopicRecord(name=name, topic_id=t.topic_id))
            for key in sorted(t.configs):
                out.append(ConfigRecord(resource_name=name, name=key, value=t.configs[key]))
            for p in t.sorted_partitions():
                out.append(PartitionRecord(
                    partition_id=p.partition, topic_id=p.topic_id, replicas=p.replicas,
                    isr=p.isr, leader=p.leader, leader_epoch=p.leader_epoch,
                    partition_epoch=p.partition_epoch))
        return out

    @staticmethod
    def from_records(records: Iterable[MetadataRecord], offset: int, epoch: int,
                     quorum_leader: str | None = None) -> MetadataImage:
        """Rebuild an image from a snapshot's records, as of (offset, epoch)."""
        image = MetadataImage()
        delta = MetadataDelta()
        for record in records:
            image.replay(record, delta)
        image.offset = offset
        image.epoch = epoch
        image.quorum_leader = quorum_leader
        return image

    def copy(self) -> MetadataImage:
        """An independent copy (registrations are immutable; containers are copied)."""
        other = MetadataImage()
        other.offset = self.offset
        other.epoch = self.epoch
        other.brokers = dict(self.brokers)
        other.topics = {name: TopicImage(t.name, t.topic_id, dict(t.partitions),
                                         dict(t.configs))
                        for name, t in self.topics.items()}
        other.topic_names = dict(self.topic_names)
        other.quorum_leader = self.quorum_leader
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MetadataImage):
            return NotImplemented
        return (self.brokers == other.brokers and self.topic_names == other.topic_names
                and self.topics == other.topics)

    __hash__ = None  # type: ignore[assignment]


_REPLAY = {
    RegisterBrokerRecord: MetadataImage._register,
    UnregisterBrokerRecord: MetadataImage._unregister,
    FenceBrokerRecord: MetadataImage._fence,
    UnfenceBrokerRecord: MetadataImage._unfence,
    BrokerRegistrationChangeRecord: MetadataImage._registration_change,
    TopicRecord: MetadataImage._topic,
    RemoveTopicRecord: MetadataImage._remove_topic,
    ConfigRecord: MetadataImage._config,
    PartitionRecord: MetadataImage._partition_record,
    PartitionChangeRecord: MetadataImage._partition_change,
    LeaderChangeRecord: MetadataImage._leader_change,
    NoOpRecord: MetadataImage._noop,
}

__all__ = [
    "BrokerRegistration",
    "LocalReplicaChanges",
    "MetadataDelta",
    "MetadataImage",
    "PartitionRegistration",
    "TopicImage",
    "TopicPartition",
]
