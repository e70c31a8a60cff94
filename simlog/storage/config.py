"""Typed per-partition log configuration, mapped once from Kafka's topic config names.

Kafka's names and defaults are kept at the edge (`LogConfig.from_kafka`); inside, every
duration is integer microseconds (the core's time unit) and "never" is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_MS = 1_000
_DAY_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """One partition log's settings. Defaults are Kafka's.

    segment_bytes / segment_us: roll the active segment past this size / age.
    index_interval_bytes: bytes of log between two sparse index entries.
    retention_us / retention_bytes: None keeps forever (Kafka's -1).
    cleanup_policy: "delete", "compact" or "compact,delete".
    delete_retention_us: how long a tombstone survives after the cleaner first saw it.
    flush_messages / flush_interval_us: fsync after this many appended records / this
    much time since the last flush; None (Kafka's default) never forces an fsync, so
    only rolled segments are flushed (as Kafka flushes a segment when it rolls).
    max_message_bytes: the largest batch accepted on append.
    """

    segment_bytes: int = 1 << 30
    segment_us: int = 7 * _DAY_US
    index_interval_bytes: int = 4096
    retention_us: int | None = 7 * _DAY_US
    retention_bytes: int | None = None
    cleanup_policy: str = "delete"
    delete_retention_us: int = _DAY_US
    min_compaction_lag_us: int = 0
    flush_messages: int | None = None
    flush_interval_us: int | None = None
    max_message_bytes: int = 1_048_588

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy.split(",")

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy.split(",")

    @classmethod
    def from_kafka(cls, props: Mapping[str, str | int]) -> LogConfig:
        """Build from Kafka topic-config names ("segment.bytes": "1048576", ...).
        Unknown names are ignored (the broker owns the others); -1 / Long.MAX mean none."""

        def num(name: str) -> int | None:
            v = props.get(name)
            return None if v is None else int(v)

        def ms(name: str, default: int | None) -> int | None:
            v = num(name)
            if v is None:
                return default
            if v < 0 or v >= (1 << 63) - 1:
                return None
            return v * _MS

        def count(name: str, default: int | None) -> int | None:
            v = num(name)
            if v is None:
                return default
            if v < 0 or v >= (1 << 63) - 1:
                return None
            return v

        d = cls()
        policy = str(props.get("cleanup.policy", d.cleanup_policy)).replace(" ", "")
        return cls(
            segment_bytes=count("segment.bytes", d.segment_bytes) or d.segment_bytes,
            segment_us=ms("segment.ms", d.segment_us) or d.segment_us,
            index_interval_bytes=count("index.interval.bytes", d.index_interval_bytes)
            or d.index_interval_bytes,
            retention_us=ms("retention.ms", d.retention_us),
            retention_bytes=count("retention.bytes", d.retention_bytes),
            cleanup_policy=policy,
            delete_retention_us=ms("delete.retention.ms", d.delete_retention_us) or 0,
            min_compaction_lag_us=ms("min.compaction.lag.ms", 0) or 0,
            flush_messages=count("flush.messages", None),
            flush_interval_us=ms("flush.ms", None),
            max_message_bytes=count("max.message.bytes", d.max_message_bytes)
            or d.max_message_bytes,
        )
