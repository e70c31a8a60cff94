"""Broker configuration: Kafka's names at the edge, typed µs fields inside.

`BrokerConfig.from_kafka(broker_id, {...})` maps Kafka settings (`replica.lag.time.max.ms`,
`min.insync.replicas`, ...) once, with Kafka's defaults. Topic-level overrides
(`min.insync.replicas`, `unclean.leader.election.enable`, `simlog.follower.truncation`)
are resolved per partition by `TopicSettings.resolve(broker_config, topic_config)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from simlog.runtime import ms_to_us

TRUNCATION_LEADER_EPOCH = "leader-epoch"
TRUNCATION_HIGH_WATERMARK = "high-watermark"
TRUNCATION_MODES = (TRUNCATION_LEADER_EPOCH, TRUNCATION_HIGH_WATERMARK)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """The settings replication reads per partition (topic config over broker default)."""

    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    follower_truncation: str = TRUNCATION_LEADER_EPOCH

    @staticmethod
    def resolve(broker: BrokerConfig, topic_config: Mapping[str, Any] | None) -> TopicSettings:
        cfg = dict(topic_config or {})
        truncation = str(cfg.get("simlog.follower.truncation", broker.follower_truncation))
        if truncation not in TRUNCATION_MODES:
            raise ValueError(f"simlog.follower.truncation: {truncation!r} not in {TRUNCATION_MODES}")
        return TopicSettings(
            min_insync_replicas=int(cfg.get("min.insync.replicas", broker.min_insync_replicas)),
            unclean_leader_election_enable=_bool(
                cfg.get("unclean.leader.election.enable", broker.unclean_leader_election_enable)),
            follower_truncation=truncation,
        )


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    broker_id: int
    # node ids of the controller quorum voters ("c1".."c3", or brokers in combined mode)
    controller_nodes: tuple[str, ...] = ()
    # Kafka broker settings
    replica_lag_time_max_us: int = ms_to_us(30_000)
    replica_fetch_wait_max_us: int = ms_to_us(500)
    replica_fetch_min_bytes: int = 1
    replica_fetch_max_bytes: int = 1 << 20
    replica_fetch_response_max_bytes: int = 10 << 20
    replica_fetch_backoff_us: int = ms_to_us(1_000)
    replica_high_watermark_checkpoint_interval_us: int = ms_to_us(5_000)
    replica_socket_timeout_us: int = ms_to_us(30_000)
    max_incremental_fetch_session_cache_slots: int = 1000
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    follower_truncation: str = TRUNCATION_LEADER_EPOCH
    broker_heartbeat_interval_us: int = ms_to_us(2_000)
    broker_session_timeout_us: int = ms_to_us(9_000)
    controller_request_timeout_us: int = ms_to_us(2_000)
    # cost model: CPU per request and per byte handled (simulation only matters)
    cpu_request_base_us: int = 20
    cpu_per_kib_us: int = 1
    # every other setting, kept for topic defaults (log.* settings for storage)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_kafka(broker_id: int, settings: Mapping[str, Any] | None = None,
                   controller_nodes: tuple[str, ...] | list[str] = ()) -> BrokerConfig:
        s = dict(settings or {})
        base = BrokerConfig(broker_id=broker_id, controller_nodes=tuple(controller_nodes))

        def ms(key: str, default_us: int) -> int:
            return ms_to_us(s[key]) if key in s else default_us

        truncation = str(s.get("simlog.follower.truncation", base.follower_truncation))
        if truncation not in TRUNCATION_MODES:
            raise ValueError(f"simlog.follower.truncation: {truncation!r} not in {TRUNCATION_MODES}")
        return replace(
            base,
            replica_lag_time_max_us=ms("replica.lag.time.max.ms", base.replica_lag_time_max_us),
            replica_fetch_wait_max_us=ms("replica.fetch.wait.max.ms",
                                         base.replica_fetch_wait_max_us),
            replica_fetch_min_bytes=int(s.get("replica.fetch.min.bytes",
                                              base.replica_fetch_min_bytes)),
            replica_fetch_max_bytes=int(s.get("replica.fetch.max.bytes",
                                              base.replica_fetch_max_bytes)),
            replica_fetch_response_max_bytes=int(s.get(
                "replica.fetch.response.max.bytes", base.replica_fetch_response_max_bytes)),
            replica_fetch_backoff_us=ms("replica.fetch.backoff.ms", base.replica_fetch_backoff_us),
            replica_high_watermark_checkpoint_interval_us=ms(
                "replica.high.watermark.checkpoint.interval.ms",
                base.replica_high_watermark_checkpoint_interval_us),
            replica_socket_timeout_us=ms("replica.socket.timeout.ms",
                                         base.replica_socket_timeout_us),
            max_incremental_fetch_session_cache_slots=int(s.get(
                "max.incremental.fetch.session.cache.slots",
                base.max_incremental_fetch_session_cache_slots)),
            min_insync_replicas=int(s.get("min.insync.replicas", base.min_insync_replicas)),
            unclean_leader_election_enable=_bool(s.get("unclean.leader.election.enable",
                                                       base.unclean_leader_election_enable)),
            follower_truncation=truncation,
            broker_heartbeat_interval_us=ms("broker.heartbeat.interval.ms",
                                            base.broker_heartbeat_interval_us),
            broker_session_timeout_us=ms("broker.session.timeout.ms",
                                         base.broker_session_timeout_us),
            controller_request_timeout_us=ms("controller.socket.timeout.ms",
                                             base.controller_request_timeout_us),
            cpu_request_base_us=int(s.get("simlog.cpu.request.us", base.cpu_request_base_us)),
            cpu_per_kib_us=int(s.get("simlog.cpu.per.kib.us", base.cpu_per_kib_us)),
            extra=s,
        )

    def request_cost_us(self, nbytes: int) -> int:
        """CPU charged for handling one request carrying nbytes of records."""
        return self.cpu_request_base_us + (nbytes * self.cpu_per_kib_us) // 1024
