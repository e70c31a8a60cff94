"""OffsetsForLeaderEpoch (API key 23): where did a leader epoch end on the leader?

Kafka's JSON names the API OffsetForLeaderEpoch; simlog's contract (issue #5) names
the messages OffsetsForLeaderEpochRequest/Response, and the Kafka spellings are aliases.
Fields are those of v3 (`replica_id`, `current_leader_epoch`) plus `correlation_id`.

Used by followers (KIP-101/279: truncate to the leader's end of the follower's last
epoch instead of the high watermark) and by consumers (KIP-320: after a leader change,
validate the position against the epoch of the last consumed record; if the leader's
`end_offset` for that epoch is below the position, the log was truncated under it).

The answer for (leader_epoch=E) is the largest epoch <= E that the leader knows, and the
start offset of the first epoch after it (or the log end offset when it is the last),
or UNDEFINED (-1, -1) when the leader knows no such epoch.
"""

from __future__ import annotations

import msgspec

from simlog.protocol.errors import Errors
from simlog.runtime import Message

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
#: replica_id for a consumer (v3+); followers send their broker id.
CONSUMER_REPLICA_ID = -1


class OffsetForLeaderPartition(msgspec.Struct, frozen=True, kw_only=True):
    partition: int
    leader_epoch: int
    current_leader_epoch: int = -1


class OffsetForLeaderTopic(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    partitions: tuple[OffsetForLeaderPartition, ...]


class OffsetsForLeaderEpochRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    replica_id: int = CONSUMER_REPLICA_ID
    topics: tuple[OffsetForLeaderTopic, ...] = ()


class EpochEndOffset(msgspec.Struct, frozen=True, kw_only=True):
    partition: int
    error_code: Errors = Errors.NONE
    leader_epoch: int = UNDEFINED_EPOCH
    end_offset: int = UNDEFINED_EPOCH_OFFSET


class OffsetForLeaderTopicResult(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    partitions: tuple[EpochEndOffset, ...]


class OffsetsForLeaderEpochResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    topics: tuple[OffsetForLeaderTopicResult, ...] = ()


# Kafka's own spelling of the API name.
OffsetForLeaderEpochRequest = OffsetsForLeaderEpochRequest
OffsetForLeaderEpochResponse = OffsetsForLeaderEpochResponse

__all__ = [
    "CONSUMER_REPLICA_ID",
    "UNDEFINED_EPOCH",
    "UNDEFINED_EPOCH_OFFSET",
    "EpochEndOffset",
    "OffsetForLeaderEpochRequest",
    "OffsetForLeaderEpochResponse",
    "OffsetForLeaderPartition",
    "OffsetForLeaderTopic",
    "OffsetForLeaderTopicResult",
    "OffsetsForLeaderEpochRequest",
    "OffsetsForLeaderEpochResponse",
]
