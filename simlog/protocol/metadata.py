"""Metadata (API key 3): which brokers exist and who leads each partition.

Fields are those of Kafka's MetadataRequest/MetadataResponse v5 (WIRE.md), plus the
partition `leader_epoch` (v7+), which clients need for KIP-320 (fencing fetches and
detecting log truncation), and `correlation_id`.

In the simulation a broker's `host` is its runtime node id ("b1"), the address a
client sends to; `port` is nominal (9092). `topics=None` asks for every topic.
Lists are sorted (brokers by node_id, topics by name, partitions by index) by whoever
builds the response, so iteration order never depends on dict order.
"""

from __future__ import annotations

import msgspec

from simlog.protocol.errors import Errors
from simlog.runtime import Message

NO_LEADER = -1


class MetadataRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    topics: tuple[str, ...] | None = None
    allow_auto_topic_creation: bool = True


class MetadataResponseBroker(msgspec.Struct, frozen=True, kw_only=True):
    node_id: int
    host: str
    port: int = 9092
    rack: str | None = None


class MetadataResponsePartition(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    error_code: Errors = Errors.NONE
    leader_id: int = NO_LEADER
    leader_epoch: int = -1
    replica_nodes: tuple[int, ...] = ()
    isr_nodes: tuple[int, ...] = ()
    offline_replicas: tuple[int, ...] = ()


class MetadataResponseTopic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    error_code: Errors = Errors.NONE
    is_internal: bool = False
    partitions: tuple[MetadataResponsePartition, ...] = ()


class MetadataResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    brokers: tuple[MetadataResponseBroker, ...] = ()
    cluster_id: str | None = None
    controller_id: int = -1
    topics: tuple[MetadataResponseTopic, ...] = ()


__all__ = [
    "NO_LEADER",
    "MetadataRequest",
    "MetadataResponse",
    "MetadataResponseBroker",
    "MetadataResponsePartition",
    "MetadataResponseTopic",
]
