"""Produce (API key 0): a client appends record batches to partition leaders.

Fields are those of Kafka's ProduceRequest/ProduceResponse v7 (the version WIRE.md
advertises), plus `correlation_id` from the request header and, on the response,
`error_message` (v8+) for diagnostics and `current_leader` (v10+, KIP-951). Names follow Kafka's JSON schema in snake_case.

Invariants:
- `records` is the raw bytes of one or more record batches in Kafka's v2 format, as
  the producer built them; the broker stores them without re-encoding (it only patches
  base offset and partition leader epoch, which lie outside the CRC).
- `acks` is -1 (all in-sync replicas), 0 (no response is sent at all) or 1 (leader).
- `timeout_ms` is Kafka's unit on the wire; the broker converts to µs once.
- With acks=0 the broker sends no ProduceResponse, whatever happens.
"""

from __future__ import annotations

import msgspec

from simlog.protocol.errors import Errors
from simlog.runtime import Message

#: Producer id / epoch / sequence values meaning "not idempotent" (RecordBatch.NO_*).
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1

ACKS_ALL = -1
ACKS_NONE = 0
ACKS_LEADER = 1

_FRAME_OVERHEAD = 32  # header and top-level fields, an estimate for wire_size
_TOPIC_OVERHEAD = 8
_PARTITION_OVERHEAD = 12


class ProducePartitionData(msgspec.Struct, frozen=True, kw_only=True):
    """One partition's batches. `index` is the partition number."""

    index: int
    records: bytes


class ProduceTopicData(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partition_data: tuple[ProducePartitionData, ...]


class ProduceRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    acks: int = ACKS_ALL
    timeout_ms: int = 30_000
    transactional_id: str | None = None
    topic_data: tuple[ProduceTopicData, ...] = ()

    def wire_size(self) -> int:
        """Record bytes dominate; the rest is a close estimate (cheap, no encoding)."""
        size = _FRAME_OVERHEAD + (len(self.transactional_id) if self.transactional_id else 0)
        for topic in self.topic_data:
            size += _TOPIC_OVERHEAD + len(topic.name)
            for part in topic.partition_data:
                size += _PARTITION_OVERHEAD + len(part.records)
        return size


class ProduceLeaderIdAndEpoch(msgspec.Struct, frozen=True, kw_only=True):
    """ProduceResponse's CurrentLeader (v10+, KIP-951): sent with NOT_LEADER_OR_FOLLOWER
    so the producer can retry at the new leader without a metadata round trip."""

    leader_id: int = -1
    leader_epoch: int = -1


class ProducePartitionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome for one partition. On success `base_offset` is the offset given to the
    first record of the request's batch for this partition. On DUPLICATE_SEQUENCE_NUMBER
    Kafka >= 2.x answers NONE with the original offset instead where it can."""

    index: int
    error_code: Errors = Errors.NONE
    base_offset: int = -1
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    current_leader: ProduceLeaderIdAndEpoch | None = None


class ProduceTopicResponse(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partition_responses: tuple[ProducePartitionResponse, ...]


class ProduceResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    responses: tuple[ProduceTopicResponse, ...] = ()
    throttle_time_ms: int = 0


__all__ = [
    "ACKS_ALL",
    "ACKS_LEADER",
    "ACKS_NONE",
    "NO_PRODUCER_EPOCH",
    "NO_PRODUCER_ID",
    "NO_SEQUENCE",
    "ProduceLeaderIdAndEpoch",
    "ProducePartitionData",
    "ProducePartitionResponse",
    "ProduceRequest",
    "ProduceResponse",
    "ProduceTopicData",
    "ProduceTopicResponse",
]
