"""Consumer-group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12),
LeaveGroup (13), SyncGroup (14), OffsetCommit (8), OffsetFetch (9).

Fields are those of the versions WIRE.md settles on (FindCoordinator v1, JoinGroup v5,
SyncGroup v3, Heartbeat v1, LeaveGroup v1, OffsetCommit v3, OffsetFetch v3), plus
`correlation_id`. Nested parts are plain Structs named after Kafka's JSON schemas
(`JoinGroupRequestProtocol`, `OffsetCommitRequestPartition`, ...).

The JoinGroup protocol metadata and the SyncGroup assignment are opaque to the
coordinator. Members fill them with Kafka's ConsumerProtocol encoding
(`encode_subscription` / `encode_assignment`: Subscription v2 with owned partitions
and generation, Assignment v1), so a real Kafka client's bytes decode here and ours
decode in a Kafka client.
"""

from __future__ import annotations

import struct

import msgspec

from simlog.protocol.errors import Errors
from simlog.runtime import Message

COORDINATOR_KEY_GROUP = 0
COORDINATOR_KEY_TRANSACTION = 1
UNKNOWN_MEMBER_ID = ""
UNKNOWN_GENERATION_ID = -1
CONSUMER_PROTOCOL_TYPE = "consumer"

# --- FindCoordinator v1 ----------------------------------------------------------


class FindCoordinatorRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    key: str
    key_type: int = COORDINATOR_KEY_GROUP


class FindCoordinatorResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    error_code: Errors = Errors.NONE
    error_message: str | None = None
    node_id: int = -1
    host: str = ""
    port: int = -1


# --- JoinGroup v5 ----------------------------------------------------------------


class JoinGroupRequestProtocol(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    metadata: bytes


class JoinGroupRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    group_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    member_id: str = UNKNOWN_MEMBER_ID
    group_instance_id: str | None = None
    protocol_type: str = CONSUMER_PROTOCOL_TYPE
    protocols: tuple[JoinGroupRequestProtocol, ...] = ()


class JoinGroupResponseMember(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    group_instance_id: str | None = None
    metadata: bytes = b""


class JoinGroupResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    error_code: Errors = Errors.NONE
    generation_id: int = UNKNOWN_GENERATION_ID
    protocol_name: str = ""
    leader: str = ""
    member_id: str = UNKNOWN_MEMBER_ID
    members: tuple[JoinGroupResponseMember, ...] = ()


# --- SyncGroup v3 ----------------------------------------------------------------


class SyncGroupRequestAssignment(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    assignment: bytes


class SyncGroupRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None = None
    assignments: tuple[SyncGroupRequestAssignment, ...] = ()


class SyncGroupResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    error_code: Errors = Errors.NONE
    assignment: bytes = b""


# --- Heartbeat v1, LeaveGroup v1 ---------------------------------------------------


class HeartbeatRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    group_id: str
    generation_id: int
    member_id: str


class HeartbeatResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    error_code: Errors = Errors.NONE


class LeaveGroupRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    group_id: str
    member_id: str


class LeaveGroupResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    error_code: Errors = Errors.NONE


# --- OffsetCommit v3 ----------------------------------------------------------------


class OffsetCommitRequestPartition(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    committed_offset: int
    committed_metadata: str | None = ""


class OffsetCommitRequestTopic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partitions: tuple[OffsetCommitRequestPartition, ...]


class OffsetCommitRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    group_id: str
    generation_id: int = UNKNOWN_GENERATION_ID  # -1 with member "": a standalone commit
    member_id: str = UNKNOWN_MEMBER_ID
    retention_time_ms: int = -1
    topics: tuple[OffsetCommitRequestTopic, ...] = ()


class OffsetCommitResponsePartition(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    error_code: Errors = Errors.NONE


class OffsetCommitResponseTopic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partitions: tuple[OffsetCommitResponsePartition, ...]


class OffsetCommitResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    topics: tuple[OffsetCommitResponseTopic, ...] = ()


# --- OffsetFetch v3 -----------------------------------------------------------------


class OffsetFetchRequestTopic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partition_indexes: tuple[int, ...]


class OffsetFetchRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    group_id: str
    topics: tuple[OffsetFetchRequestTopic, ...] | None = None  # None: every partition


class OffsetFetchResponsePartition(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    committed_offset: int = -1
    metadata: str | None = ""
    error_code: Errors = Errors.NONE


class OffsetFetchResponseTopic(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partitions: tuple[OffsetFetchResponsePartition, ...]


class OffsetFetchResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    topics: tuple[OffsetFetchResponseTopic, ...] = ()
    error_code: Errors = Errors.NONE


# --- ConsumerProtocol (the opaque member metadata and assignment) ---------------------

TopicPartition = tuple[str, int]
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


class ConsumerProtocolError(ValueError):
    """Member metadata or an assignment that does not decode."""


def _str(s: str) -> bytes:
    b = s.encode()
    return _I16.pack(len(b)) + b


def _bytes(b: bytes | None) -> bytes:
    return _I32.pack(-1) if b is None else _I32.pack(len(b)) + b


def _partitions(tps: list[TopicPartition] | tuple[TopicPartition, ...]) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for t, p in sorted(tps):
        by_topic.setdefault(t, []).append(p)
    out = [_I32.pack(len(by_topic))]
    for t in sorted(by_topic):
        out.append(_str(t))
        out.append(_I32.pack(len(by_topic[t])))
        out.extend(_I32.pack(p) for p in by_topic[t])
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def i16(self) -> int:
        return self._unpack(_I16)

    def i32(self) -> int:
        return self._unpack(_I32)

    def _unpack(self, s: struct.Struct) -> int:
        if self.pos + s.size > len(self.data):
            raise ConsumerProtocolError("truncated")
        v = s.unpack_from(self.data, self.pos)[0]
        self.pos += s.size
        return v

    def string(self) -> str:
        n = self.i16()
        if n < 0 or self.pos + n > len(self.data):
            raise ConsumerProtocolError("bad string")
        v = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return v

    def blob(self) -> bytes | None:
        n = self.i32()
        if n < 0:
            return None
        if self.pos + n > len(self.data):
            raise ConsumerProtocolError("bad bytes")
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        return v

    def partitions(self) -> list[TopicPartition]:
        out = []
        for _ in range(self.i32()):
            t = self.string()
            out.extend((t, self.i32()) for _ in range(self.i32()))
        return sorted(out)

    @property
    def more(self) -> bool:
        return self.pos < len(self.data)


def encode_subscription(topics: list[str] | tuple[str, ...],
                        owned: list[TopicPartition] | tuple[TopicPartition, ...] = (),
                        generation: int = UNKNOWN_GENERATION_ID,
                        user_data: bytes | None = None) -> bytes:
    """ConsumerProtocolSubscription v2: topics, user data, owned partitions, generation."""
    return b"".join([_I16.pack(2), _I32.pack(len(topics)), *(_str(t) for t in sorted(topics)),
                     _bytes(user_data), _partitions(owned), _I32.pack(generation)])


def decode_subscription(data: bytes) -> tuple[tuple[str, ...], tuple[TopicPartition, ...], int]:
    """(topics, owned partitions, generation) of any version 0-3."""
    r = _Reader(data)
    version = r.i16()
    topics = tuple(sorted(r.string() for _ in range(r.i32())))
    r.blob()
    owned: list[TopicPartition] = []
    generation = UNKNOWN_GENERATION_ID
    if version >= 1 and r.more:
        owned = r.partitions()
    if version >= 2 and r.more:
        generation = r.i32()
    return topics, tuple(owned), generation


def encode_assignment(partitions: list[TopicPartition] | tuple[TopicPartition, ...],
                      user_data: bytes | None = None) -> bytes:
    """ConsumerProtocolAssignment v1."""
    return _I16.pack(1) + _partitions(partitions) + _bytes(user_data)


def decode_assignment(data: bytes) -> list[TopicPartition]:
    if not data:
        return []  # Kafka: an empty assignment from SyncGroup means nothing assigned
    r = _Reader(data)
    r.i16()
    return r.partitions()


__all__ = [
    "CONSUMER_PROTOCOL_TYPE",
    "COORDINATOR_KEY_GROUP",
    "COORDINATOR_KEY_TRANSACTION",
    "UNKNOWN_GENERATION_ID",
    "UNKNOWN_MEMBER_ID",
    "ConsumerProtocolError",
    "FindCoordinatorRequest",
    "FindCoordinatorResponse",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "JoinGroupRequest",
    "JoinGroupRequestProtocol",
    "JoinGroupResponse",
    "JoinGroupResponseMember",
    "LeaveGroupRequest",
    "LeaveGroupResponse",
    "OffsetCommitRequest",
    "OffsetCommitRequestPartition",
    "OffsetCommitRequestTopic",
    "OffsetCommitResponse",
    "OffsetCommitResponsePartition",
    "OffsetCommitResponseTopic",
    "OffsetFetchRequest",
    "OffsetFetchRequestTopic",
    "OffsetFetchResponse",
    "OffsetFetchResponsePartition",
    "OffsetFetchResponseTopic",
    "SyncGroupRequest",
    "SyncGroupRequestAssignment",
    "SyncGroupResponse",
    "decode_assignment",
    "decode_subscription",
    "encode_assignment",
    "encode_subscription",
]
