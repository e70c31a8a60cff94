"""Metadata records: the entries of the replicated metadata log (`__cluster_metadata`).

Each record mirrors the KRaft record of the same name (metadata/src/main/resources/
common/metadata/*.json) with the fields the logic needs. Replaying the committed records
in order, from an empty image or a snapshot, rebuilds the `MetadataImage` exactly; that
is the whole contract between the controller (which writes them) and every broker (which
follows them).

Identifiers: brokers are Kafka's integer broker ids; `RegisterBrokerRecord.host` is the
runtime node id a request is sent to ("b1"). Topic ids are strings chosen by the active
controller (deterministic: derived from the log offset), in place of Kafka's UUIDs.

Deviation from Kafka, on purpose: `PartitionChangeRecord` carries the *resulting*
leader, ISR, leader epoch and partition epoch (Kafka's carries deltas and lets replay
bump the epochs). A follower then cannot compute a different epoch from the same
record, and a checker can read the epochs straight off the log.

`LeaderChangeRecord` is KRaft's LeaderChangeMessage control record: the first entry a new
Raft leader appends in its epoch. Committing it commits every earlier entry (Raft's rule
that a leader only counts replicas for entries of its own epoch).
"""

from __future__ import annotations

from typing import Union

import msgspec

#: PartitionRecord/PartitionChangeRecord leader when the partition has none (offline).
NO_LEADER = -1
#: ConfigRecord.resource_type of a topic (Kafka's ConfigResource.Type.TOPIC).
TOPIC_RESOURCE = 2


class MetadataRecord(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Base of every metadata record; tagged by class name in the log encoding."""


class RegisterBrokerRecord(MetadataRecord, frozen=True, kw_only=True):
    """A broker registered (or re-registered after a restart). broker_epoch is the log
    offset of this record, as in Kafka; a new registration starts fenced."""

    broker_id: int
    broker_epoch: int
    host: str
    port: int = 9092
    rack: str | None = None
    incarnation_id: str = ""
    fenced: bool = True
    in_controlled_shutdown: bool = False


class UnregisterBrokerRecord(MetadataRecord, frozen=True, kw_only=True):
    broker_id: int
    broker_epoch: int


class FenceBrokerRecord(MetadataRecord, frozen=True, kw_only=True):
    """The broker's session expired (or it asked to be fenced): it leads nothing and is
    no longer eligible for leadership or ISR membership."""

    id: int
    epoch: int


class UnfenceBrokerRecord(MetadataRecord, frozen=True, kw_only=True):
    """The broker caught up with the metadata log and heartbeats: it may serve."""

    id: int
    epoch: int


class BrokerRegistrationChangeRecord(MetadataRecord, frozen=True, kw_only=True):
    """Registration flags changed. fenced: 0 no change, 1 fenced, -1 unfenced;
    in_controlled_shutdown: 0 no change, 1 entered controlled shutdown (Kafka's values)."""

    broker_id: int
    broker_epoch: int
    fenced: int = 0
    in_controlled_shutdown: int = 0


class TopicRecord(MetadataRecord, frozen=True, kw_only=True):
    name: str
    topic_id: str


class RemoveTopicRecord(MetadataRecord, frozen=True, kw_only=True):
    topic_id: str


class ConfigRecord(MetadataRecord, frozen=True, kw_only=True):
    """A dynamic config (topic configs such as unclean.leader.election.enable or
    min.insync.replicas). value None deletes the key."""

    resource_type: int = TOPIC_RESOURCE
    resource_name: str
    name: str
    value: str | None


class PartitionRecord(MetadataRecord, frozen=True, kw_only=True):
    """A partition created: its replica assignment and first leader/ISR."""

    partition_id: int
    topic_id: str
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0


class PartitionChangeRecord(MetadataRecord, frozen=True, kw_only=True):
    """A partition's leader and/or ISR changed. Carries the resulting state (see the
    module docstring). Invariants: partition_epoch grows by exactly one per change;
    leader_epoch grows by one exactly when the leader changes (including to and from
    NO_LEADER); leader is NO_LEADER or a member of isr."""

    partition_id: int
    topic_id: str
    leader: int
    isr: tuple[int, ...]
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...] | None = None


class LeaderChangeRecord(MetadataRecord, frozen=True, kw_only=True):
    """KRaft's LeaderChangeMessage: a Raft leader's first entry of its epoch."""

    leader_id: str
    leader_epoch: int
    voters: tuple[str, ...]


class NoOpRecord(MetadataRecord, frozen=True, kw_only=True):
    """Carries nothing; the controller may write it to advance the high watermark."""


AnyRecord = Union[  # noqa: UP007 - msgspec needs a runtime Union of tagged structs
    RegisterBrokerRecord,
    UnregisterBrokerRecord,
    FenceBrokerRecord,
    UnfenceBrokerRecord,
    BrokerRegistrationChangeRecord,
    TopicRecord,
    RemoveTopicRecord,
    ConfigRecord,
    PartitionRecord,
    PartitionChangeRecord,
    LeaderChangeRecord,
    NoOpRecord,
]


class LogEntry(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One metadata log entry: its offset, the Raft epoch that wrote it, the record."""

    offset: int
    epoch: int
    record: AnyRecord


__all__ = [
    "NO_LEADER",
    "TOPIC_RESOURCE",
    "AnyRecord",
    "BrokerRegistrationChangeRecord",
    "ConfigRecord",
    "FenceBrokerRecord",
    "LeaderChangeRecord",
    "LogEntry",
    "MetadataRecord",
    "NoOpRecord",
    "PartitionChangeRecord",
    "PartitionRecord",
    "RegisterBrokerRecord",
    "RemoveTopicRecord",
    "TopicRecord",
    "UnfenceBrokerRecord",
    "UnregisterBrokerRecord",
]
