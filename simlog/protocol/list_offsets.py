"""ListOffsets (API key 2): find an offset by timestamp (earliest, latest, or a time).

Fields are those of Kafka's ListOffsetsRequest/ListOffsetsResponse v3 (WIRE.md), plus
`current_leader_epoch` (request, v4+) and `leader_epoch` (response, v4+) for KIP-320,
and `correlation_id`. A consumer's `auto.offset.reset` uses LATEST_TIMESTAMP (the
high watermark, or the last stable offset under read_committed) or EARLIEST_TIMESTAMP
(the log start offset).
"""

from __future__ import annotations

import msgspec

from simlog.protocol.errors import Errors
from simlog.runtime import Message

#: Special timestamps (ListOffsetsRequest.*_TIMESTAMP).
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3


class ListOffsetsPartition(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    timestamp: int
    current_leader_epoch: int = -1


class ListOffsetsTopic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partitions: tuple[ListOffsetsPartition, ...]


class ListOffsetsRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    replica_id: int = -1
    isolation_level: int = 0
    topics: tuple[ListOffsetsTopic, ...] = ()


class ListOffsetsPartitionResponse(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    error_code: Errors = Errors.NONE
    timestamp: int = -1
    offset: int = -1
    leader_epoch: int = -1


class ListOffsetsTopicResponse(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partitions: tuple[ListOffsetsPartitionResponse, ...]


class ListOffsetsResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    topics: tuple[ListOffsetsTopicResponse, ...] = ()


__all__ = [
    "EARLIEST_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "MAX_TIMESTAMP",
    "ListOffsetsPartition",
    "ListOffsetsPartitionResponse",
    "ListOffsetsRequest",
    "ListOffsetsResponse",
    "ListOffsetsTopic",
    "ListOffsetsTopicResponse",
]
