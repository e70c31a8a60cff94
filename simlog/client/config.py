"""Producer and consumer settings: Kafka's names at the edge, typed fields inside.

`ProducerConfig.from_kafka({...})` / `ConsumerConfig.from_kafka({...})` take Kafka's
config keys and values (as a scenario file writes them) and map them once into a
frozen, typed config with units last (`linger_us`). Defaults are Kafka 4.x's client
defaults:

- `linger.ms` = 5 (KIP-1030 raised it from 0 in Kafka 4.0), `batch.size` = 16384,
  `acks` = all and `enable.idempotence` = true (Kafka 3.0+),
  `max.in.flight.requests.per.connection` = 5, `retries` = 2147483647,
  `retry.backoff.ms` = 100, `retry.backoff.max.ms` = 1000 (KIP-580 exponential
  backoff), `delivery.timeout.ms` = 120000, `request.timeout.ms` = 30000,
  `max.block.ms` = 60000, `max.request.size` = 1048576, `buffer.memory` = 32 MiB,
  `compression.type` = none,
  `metadata.max.age.ms` = 300000.
- consumer: `fetch.min.bytes` = 1, `fetch.max.wait.ms` = 500,
  `max.partition.fetch.bytes` = 1 MiB, `fetch.max.bytes` = 50 MiB,
  `max.poll.records` = 500, `auto.offset.reset` = latest,
  `isolation.level` = read_uncommitted, `request.timeout.ms` = 30000,
  `check.crcs` = true.

Idempotence as in Kafka 3.x+: on by default, but silently off when the user set a
conflicting `acks`, `retries` = 0 or more than 5 in flight without asking for it; an
explicit `enable.idempotence=true` with a conflict is a ConfigError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from simlog.records import Compression
from simlog.runtime import ms_to_us

MAX_INT = 2_147_483_647


class ConfigError(ValueError):
    """A setting is unknown, malformed or inconsistent (Kafka's ConfigException)."""


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def _int(value: Any, key: str, minimum: int = 0) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if isinstance(value, bool) or n < minimum:
        raise ConfigError(f"{key}: must be an integer >= {minimum}, got {value!r}")
    return n


def _acks(value: Any) -> int:
    text = str(value).lower()
    if text in ("all", "-1"):
        return -1
    if text in ("0", "1"):
        return int(text)
    raise ConfigError(f"acks: expected all, -1, 0 or 1, got {value!r}")


def _compression(value: Any) -> Compression:
    try:
        return Compression[str(value).upper()]
    except KeyError:
        raise ConfigError(f"compression.type: unknown codec {value!r}") from None


def _servers(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [s.strip() for s in value.split(",")]
    else:
        items = [str(s).strip() for s in value]
    return tuple(s for s in items if s)


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    """A producer's settings. `bootstrap_servers` are node ids ("b1") in the sim."""

    bootstrap_servers: tuple[str, ...] = ()
    acks: int = -1
    enable_idempotence: bool = True
    batch_size: int = 16_384
    linger_us: int = 5_000
    compression: Compression = Compression.NONE
    max_in_flight: int = 5
    retries: int = MAX_INT
    retry_backoff_us: int = 100_000
    retry_backoff_max_us: int = 1_000_000
    delivery_timeout_us: int = 120_000_000
    request_timeout_us: int = 30_000_000
    reconnect_backoff_us: int = 50_000
    reconnect_backoff_max_us: int = 1_000_000
    max_block_us: int = 60_000_000
    max_request_size: int = 1_048_576
    buffer_memory: int = 33_554_432
    metadata_max_age_us: int = 300_000_000
    transaction_timeout_ms: int = 60_000
    partitioner_ignore_keys: bool = False

    @classmethod
    def from_kafka(cls, settings: Mapping[str, Any]) -> ProducerConfig:
        """Map Kafka's producer config keys; unknown keys raise ConfigError."""
        kw: dict[str, Any] = {}
        explicit_idempotence: bool | None = None
        for key in sorted(settings):
            value = settings[key]
            if key == "bootstrap.servers":
                kw["bootstrap_servers"] = _servers(value)
            elif key == "acks":
                kw["acks"] = _acks(value)
            elif key == "enable.idempotence":
                explicit_idempotence = _bool(value, key)
            elif key == "batch.size":
                kw["batch_size"] = _int(value, key)
            elif key == "linger.ms":
                kw["linger_us"] = ms_to_us(_int(value, key))
            elif key == "compression.type":
                kw["compression"] = _compression(value)
            elif key == "max.in.flight.requests.per.connection":
                kw["max_in_flight"] = _int(value, key, 1)
            elif key == "retries":
                kw["retries"] = _int(value, key)
            elif key in _PRODUCER_MS:
                kw[_PRODUCER_MS[key]] = ms_to_us(_int(value, key))
            elif key == "max.request.size":
                kw["max_request_size"] = _int(value, key, 1)
            elif key == "buffer.memory":
                kw["buffer_memory"] = _int(value, key, 1)
            elif key == "transaction.timeout.ms":
                kw["transaction_timeout_ms"] = _int(value, key)
            elif key == "partitioner.ignore.keys":
                kw["partitioner_ignore_keys"] = _bool(value, key)
            elif key == "transactional.id":
                if value is not None:
                    raise ConfigError("transactional.id: transactions are not modelled yet")
            elif key in _IGNORED or key in _GROUP_KEYS:
                continue
            else:
                raise ConfigError(f"unknown producer config {key!r}")
        cfg = cls(**kw)
        conflict = cfg.idempotence_conflict()
        if explicit_idempotence is True and conflict:
            raise ConfigError(f"enable.idempotence=true requires {conflict}")
        if explicit_idempotence is False or conflict:
            cfg = replace(cfg, enable_idempotence=False)
        if cfg.delivery_timeout_us < cfg.linger_us + cfg.request_timeout_us:
            raise ConfigError("delivery.timeout.ms must be >= linger.ms + request.timeout.ms")
        return cfg

    def idempotence_conflict(self) -> str:
        """What stops idempotence with these settings ("" if nothing)."""
        if self.acks != -1:
            return "acks=all"
        if self.max_in_flight > 5:
            return "max.in.flight.requests.per.connection <= 5"
        if self.retries == 0:
            return "retries > 0"
        return ""


_PRODUCER_MS = {
    "retry.backoff.ms": "retry_backoff_us",
    "retry.backoff.max.ms": "retry_backoff_max_us",
    "delivery.timeout.ms": "delivery_timeout_us",
    "request.timeout.ms": "request_timeout_us",
    "reconnect.backoff.ms": "reconnect_backoff_us",
    "reconnect.backoff.max.ms": "reconnect_backoff_max_us",
    "max.block.ms": "max_block_us",
    "metadata.max.age.ms": "metadata_max_age_us",
}
# Kafka client keys accepted (a scenario may pass Kafka's full defaults) with no
# effect in the model: connection idling is not modelled, nor adaptive partitioning.
_IGNORED = frozenset({
    "client.id", "key.serializer", "value.serializer", "key.deserializer",
    "value.deserializer",
    "connections.max.idle.ms", "partitioner.adaptive.partitioning.enable",
    "partitioner.availability.timeout.ms", "compression.gzip.level",
    "compression.lz4.level", "compression.zstd.level", "allow.auto.create.topics",
    "default.api.timeout.ms", "retry.backoff.max.ms",
})

AUTO_OFFSET_RESET = ("latest", "earliest", "none")


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """A consumer's settings. `group_id` is kept for the group client (later)."""

    bootstrap_servers: tuple[str, ...] = ()
    group_id: str | None = None
    fetch_min_bytes: int = 1
    fetch_max_wait_us: int = 500_000
    max_partition_fetch_bytes: int = 1_048_576
    fetch_max_bytes: int = 52_428_800
    max_poll_records: int = 500
    auto_offset_reset: str = "latest"
    isolation_level: int = 0
    request_timeout_us: int = 30_000_000
    retry_backoff_us: int = 100_000
    reconnect_backoff_us: int = 50_000
    reconnect_backoff_max_us: int = 1_000_000
    metadata_max_age_us: int = 300_000_000
    check_crcs: bool = True
    client_rack: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kafka(cls, settings: Mapping[str, Any]) -> ConsumerConfig:
        """Map Kafka's consumer config keys. Group settings the group client will read
        (session.timeout.ms, partition.assignment.strategy, enable.auto.commit, ...)
        are kept verbatim in `extra`; other unknown keys raise ConfigError."""
        kw: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key in sorted(settings):
            value = settings[key]
            if key == "bootstrap.servers":
                kw["bootstrap_servers"] = _servers(value)
            elif key == "group.id":
                kw["group_id"] = str(value)
            elif key in _CONSUMER_INT:
                kw[_CONSUMER_INT[key]] = _int(value, key, 0)
            elif key in _CONSUMER_MS:
                kw[_CONSUMER_MS[key]] = ms_to_us(_int(value, key))
            elif key == "auto.offset.reset":
                text = str(value).lower()
                if text not in AUTO_OFFSET_RESET:
                    raise ConfigError(f"auto.offset.reset: expected one of {AUTO_OFFSET_RESET}")
                kw["auto_offset_reset"] = text
            elif key == "isolation.level":
                text = str(value).lower()
                if text not in ("read_uncommitted", "read_committed"):
                    raise ConfigError("isolation.level: read_uncommitted or read_committed")
                kw["isolation_level"] = 1 if text == "read_committed" else 0
            elif key == "check.crcs":
                kw["check_crcs"] = _bool(value, key)
            elif key == "client.rack":
                kw["client_rack"] = str(value)
            elif key in _GROUP_KEYS or key in _IGNORED:
                extra[key] = value
            else:
                raise ConfigError(f"unknown consumer config {key!r}")
        if kw.get("max_poll_records", 1) < 1:
            raise ConfigError("max.poll.records must be >= 1")
        return cls(extra=extra, **kw)


_CONSUMER_INT = {
    "fetch.min.bytes": "fetch_min_bytes",
    "max.partition.fetch.bytes": "max_partition_fetch_bytes",
    "fetch.max.bytes": "fetch_max_bytes",
    "max.poll.records": "max_poll_records",
}
_CONSUMER_MS = {
    "fetch.max.wait.ms": "fetch_max_wait_us",
    "request.timeout.ms": "request_timeout_us",
    "retry.backoff.ms": "retry_backoff_us",
    "reconnect.backoff.ms": "reconnect_backoff_us",
    "reconnect.backoff.max.ms": "reconnect_backoff_max_us",
    "metadata.max.age.ms": "metadata_max_age_us",
}
_GROUP_KEYS = frozenset({
    "group.id", "enable.auto.commit", "auto.commit.interval.ms", "session.timeout.ms",
    "heartbeat.interval.ms", "max.poll.interval.ms", "partition.assignment.strategy",
    "group.instance.id", "group.protocol", "rebalance.timeout.ms",
})

__all__ = ["AUTO_OFFSET_RESET", "MAX_INT", "ConfigError", "ConsumerConfig", "ProducerConfig"]
