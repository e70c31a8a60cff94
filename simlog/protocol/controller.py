"""Requests the active controller serves: broker lifecycle, ISR changes, topic creation.

Fields are a subset of Kafka's BrokerRegistration (key 62), BrokerHeartbeat (63),
AlterPartition (56), CreateTopics (19) and DeleteTopics (20), plus `correlation_id` from the header.
Brokers are Kafka's int32 broker ids; a broker's address is its runtime node id,
given at registration (`host`). Partitions in AlterPartition are named by topic name
(AlterPartition v0/v1 style) rather than topic id, which the wire codec may map.

Any of these sent to a controller that is not the active one is answered with
NOT_CONTROLLER and, where known, `controller_id` (the node id of the Raft leader), so
the sender can retry there at once.
"""

from __future__ import annotations

import msgspec

from simlog.protocol.errors import Errors
from simlog.runtime import Message


class BrokerRegistrationRequest(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    broker_id: int
    cluster_id: str = ""
    incarnation_id: str = ""
    host: str  # the runtime node id the broker listens on
    port: int = 9092
    rack: str | None = None
    previous_broker_epoch: int = -1


class BrokerRegistrationResponse(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    error_code: Errors = Errors.NONE
    broker_epoch: int = -1
    controller_id: str | None = None


class BrokerHeartbeatRequest(Message, frozen=True, kw_only=True):
    """Keeps the broker's session alive. current_metadata_offset: the highest metadata
    offset the broker has applied (it is unfenced once caught up to its registration);
    want_shut_down starts a controlled shutdown (leadership moves away first)."""

    correlation_id: int = 0
    broker_id: int
    broker_epoch: int
    current_metadata_offset: int
    want_fence: bool = False
    want_shut_down: bool = False


class BrokerHeartbeatResponse(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    error_code: Errors = Errors.NONE
    is_caught_up: bool = False
    is_fenced: bool = True
    should_shut_down: bool = False
    controller_id: str | None = None


class AlterPartitionRequestPartition(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    leader_epoch: int
    new_isr: tuple[int, ...]
    partition_epoch: int


class AlterPartitionRequestTopic(msgspec.Struct, frozen=True, kw_only=True):
    topic_name: str
    partitions: tuple[AlterPartitionRequestPartition, ...]


class AlterPartitionRequest(Message, frozen=True, kw_only=True):
    """A partition leader asks to change its ISR (shrink a lagging follower, expand a
    caught-up one). Valid only against the partition's current leader and partition
    epochs; the answer carries the state the controller committed."""

    correlation_id: int = 0
    broker_id: int
    broker_epoch: int
    topics: tuple[AlterPartitionRequestTopic, ...]


class AlterPartitionResponsePartition(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    error_code: Errors = Errors.NONE
    leader_id: int = -1
    leader_epoch: int = -1
    isr: tuple[int, ...] = ()
    partition_epoch: int = -1


class AlterPartitionResponseTopic(msgspec.Struct, frozen=True, kw_only=True):
    topic_name: str
    partitions: tuple[AlterPartitionResponsePartition, ...]


class AlterPartitionResponse(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    error_code: Errors = Errors.NONE
    topics: tuple[AlterPartitionResponseTopic, ...] = ()
    controller_id: str | None = None


class CreatableTopicConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    value: str | None


class CreatableTopic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    num_partitions: int = 1
    replication_factor: int = 1
    configs: tuple[CreatableTopicConfig, ...] = ()


class CreateTopicsRequest(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    topics: tuple[CreatableTopic, ...]
    timeout_ms: int = 30_000
    validate_only: bool = False


class CreatableTopicResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    topic_id: str = ""
    error_code: Errors = Errors.NONE
    error_message: str | None = None
    num_partitions: int = -1
    replication_factor: int = -1


class CreateTopicsResponse(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    topics: tuple[CreatableTopicResult, ...] = ()
    controller_id: str | None = None


class DeleteTopicsRequest(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    topic_names: tuple[str, ...]
    timeout_ms: int = 30_000


class DeletableTopicResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    topic_id: str = ""
    error_code: Errors = Errors.NONE


class DeleteTopicsResponse(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    responses: tuple[DeletableTopicResult, ...] = ()
    controller_id: str | None = None


__all__ = [
    "AlterPartitionRequest",
    "AlterPartitionRequestPartition",
    "AlterPartitionRequestTopic",
    "AlterPartitionResponse",
    "AlterPartitionResponsePartition",
    "AlterPartitionResponseTopic",
    "BrokerHeartbeatRequest",
    "BrokerHeartbeatResponse",
    "BrokerRegistrationRequest",
    "BrokerRegistrationResponse",
    "CreatableTopic",
    "CreatableTopicConfig",
    "CreatableTopicResult",
    "CreateTopicsRequest",
    "CreateTopicsResponse",
    "DeletableTopicResult",
    "DeleteTopicsRequest",
    "DeleteTopicsResponse",
]
