"""What the group coordinator writes to `__consumer_offsets`, and where a group lives.

Each group lives in one partition of `__consumer_offsets`: Kafka's
`Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, with Java's String
hashCode over UTF-16 code units. The topic is compacted, so only the latest record of
each key survives cleaning:

- offset commit: key ("offset", group, topic, partition) -> OffsetValue; tombstone
  (value None) deletes it.
- group metadata: key ("group", group) -> GroupValue (generation, protocol, leader and
  every member with its subscription and assignment), written when a generation
  becomes Stable and when the group empties; tombstone when the group is removed.

Keys and values are msgpack (a documented deviation: Kafka uses its own versioned
binary schemas; nothing outside simlog reads these records yet). Replaying the
partition's records in offset order rebuilds every group of the partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from simlog.records import Record, build_batch, parse_batches

OFFSETS_TOPIC = "__consumer_offsets"
_encoder = msgspec.msgpack.Encoder()


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (a signed 32-bit int)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """Kafka's GroupMetadataManager.partitionFor (Utils.abs maps MIN_VALUE to 0)."""
    h = java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % num_partitions


class OffsetValue(msgspec.Struct, frozen=True, kw_only=True):
    offset: int
    metadata: str | None = ""
    commit_timestamp_ms: int = -1


class MemberValue(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    group_instance_id: str | None = None
    client_id: str = ""
    session_timeout_ms: int = 45_000
    rebalance_timeout_ms: int = 300_000
    protocols: tuple[tuple[str, bytes], ...] = ()
    assignment: bytes = b""


class GroupValue(msgspec.Struct, frozen=True, kw_only=True):
    protocol_type: str = ""
    generation: int = 0
    protocol: str | None = None
    leader: str | None = None
    current_state_timestamp_ms: int = -1
    members: tuple[MemberValue, ...] = ()


@dataclass
class LoadedGroup:
    """A group as the partition's records left it."""

    value: GroupValue | None = None
    offsets: dict[tuple[str, int], tuple[OffsetValue, int]] = field(default_factory=dict)


def offset_record(group: str, topic: str, partition: int, value: OffsetValue | None,
                  timestamp_ms: int) -> Record:
    key = _encoder.encode(("offset", group, topic, partition))
    return Record(key=key, value=None if value is None else _encoder.encode(value),
                  timestamp=timestamp_ms)


def group_record(group: str, value: GroupValue | None, timestamp_ms: int) -> Record:
    key = _encoder.encode(("group", group))
    return Record(key=key, value=None if value is None else _encoder.encode(value),
                  timestamp=timestamp_ms)


def batch(records: list[Record]) -> bytes:
    return build_batch(records)


def replay(data_chunks: list[bytes]) -> dict[str, LoadedGroup]:
    """Every group's last state from a partition's batches, in offset order. The int
    kept with each offset is the record's log offset (newer commits win)."""
    groups: dict[str, LoadedGroup] = {}
    for data in data_chunks:
        batches, _err = parse_batches(data, validate=False)
        for b in batches:
            if b.header.is_control:
                continue
            recs = b.records()
            if not isinstance(recs, list):
                continue
            for r in recs:
                _apply(groups, r)
    return groups


def _apply(groups: dict[str, LoadedGroup], r: Record) -> None:
    if r.key is None:
        return
    try:
        key = msgspec.msgpack.decode(r.key)
    except msgspec.DecodeError:
        return
    if not isinstance(key, list) or not key:
        return
    if key[0] == "offset" and len(key) == 4:
        g = groups.setdefault(str(key[1]), LoadedGroup())
        tp = (str(key[2]), int(key[3]))
        if r.value is None:
            g.offsets.pop(tp, None)
        else:
            g.offsets[tp] = (msgspec.msgpack.decode(r.value, type=OffsetValue), r.offset)
    elif key[0] == "group" and len(key) == 2:
        g = groups.setdefault(str(key[1]), LoadedGroup())
        g.value = None if r.value is None else msgspec.msgpack.decode(r.value, type=GroupValue)


__all__ = [
    "OFFSETS_TOPIC",
    "GroupValue",
    "LoadedGroup",
    "MemberValue",
    "OffsetValue",
    "batch",
    "group_record",
    "java_string_hash",
    "offset_record",
    "partition_for",
    "replay",
]
