"""Controller and quorum configuration: Kafka's names at the edge, typed µs inside.

`QuorumConfig.from_kafka(voters, {...})` and `ControllerConfig.from_kafka(...)` map
Kafka's settings once, with Kafka's defaults. simlog-only knobs are prefixed `simlog.`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simlog.runtime import ms_to_us


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


@dataclass(frozen=True, slots=True)
class QuorumConfig:
    """The Raft quorum. voters: node ids of the voters (controller.quorum.voters);
    every other node following the log is an observer."""

    voters: tuple[str, ...]
    election_timeout_us: int = ms_to_us(1_000)        # controller.quorum.election.timeout.ms
    fetch_timeout_us: int = ms_to_us(2_000)           # controller.quorum.fetch.timeout.ms
    election_backoff_max_us: int = ms_to_us(1_000)    # controller.quorum.election.backoff.max.ms
    request_timeout_us: int = ms_to_us(2_000)         # controller.quorum.request.timeout.ms
    retry_backoff_us: int = ms_to_us(20)              # controller.quorum.retry.backoff.ms
    fetch_max_wait_us: int = ms_to_us(500)            # KRaft's fixed fetch max wait
    fetch_max_records: int = 1_000                    # simlog.quorum.fetch.max.records
    snapshot_interval_records: int = 1_000            # simlog.metadata.snapshot.interval.records

    def __post_init__(self) -> None:
        if not self.voters:
            raise ValueError("controller.quorum.voters is empty")
        if len(set(self.voters)) != len(self.voters):
            raise ValueError(f"controller.quorum.voters has duplicates: {self.voters}")

    @staticmethod
    def from_kafka(voters: tuple[str, ...] | list[str],
                   settings: Mapping[str, Any] | None = None) -> QuorumConfig:
        s = dict(settings or {})
        d = QuorumConfig(voters=tuple(voters))

        def ms(key: str, default_us: int) -> int:
            return ms_to_us(s[key]) if key in s else default_us

        return QuorumConfig(
            voters=tuple(voters),
            election_timeout_us=ms("controller.quorum.election.timeout.ms",
                                   d.election_timeout_us),
            fetch_timeout_us=ms("controller.quorum.fetch.timeout.ms", d.fetch_timeout_us),
            election_backoff_max_us=ms("controller.quorum.election.backoff.max.ms",
                                       d.election_backoff_max_us),
            request_timeout_us=ms("controller.quorum.request.timeout.ms",
                                  d.request_timeout_us),
            retry_backoff_us=ms("controller.quorum.retry.backoff.ms", d.retry_backoff_us),
            fetch_max_records=int(s.get("simlog.quorum.fetch.max.records",
                                        d.fetch_max_records)),
            snapshot_interval_records=int(s.get("simlog.metadata.snapshot.interval.records",
                                                d.snapshot_interval_records)),
        )


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """The quorum controller (the active one applies these)."""

    quorum: QuorumConfig
    broker_session_timeout_us: int = ms_to_us(9_000)      # broker.session.timeout.ms
    broker_heartbeat_interval_us: int = ms_to_us(2_000)   # broker.heartbeat.interval.ms
    unclean_leader_election_enable: bool = False          # unclean.leader.election.enable
    auto_leader_rebalance_enable: bool = True             # auto.leader.rebalance.enable
    # leader.imbalance.check.interval.seconds
    leader_imbalance_check_interval_us: int = 300 * 1_000_000
    default_replication_factor: int = 1                   # default.replication.factor
    num_partitions: int = 1                               # num.partitions
    cluster_id: str = "simlog"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_kafka(voters: tuple[str, ...] | list[str],
                   settings: Mapping[str, Any] | None = None) -> ControllerConfig:
        s = dict(settings or {})
        d = ControllerConfig(quorum=QuorumConfig(voters=tuple(voters)))

        def ms(key: str, default_us: int, scale: int = 1) -> int:
            return ms_to_us(s[key] * scale) if key in s else default_us

        return ControllerConfig(
            quorum=QuorumConfig.from_kafka(voters, s),
            broker_session_timeout_us=ms("broker.session.timeout.ms",
                                         d.broker_session_timeout_us),
            broker_heartbeat_interval_us=ms("broker.heartbeat.interval.ms",
                                            d.broker_heartbeat_interval_us),
            unclean_leader_election_enable=_bool(s.get("unclean.leader.election.enable",
                                                       d.unclean_leader_election_enable)),
            auto_leader_rebalance_enable=_bool(s.get("auto.leader.rebalance.enable",
                                                     d.auto_leader_rebalance_enable)),
            leader_imbalance_check_interval_us=ms(
                "leader.imbalance.check.interval.seconds", d.leader_imbalance_check_interval_us,
                scale=1_000),
            default_replication_factor=int(s.get("default.replication.factor",
                                                 d.default_replication_factor)),
            num_partitions=int(s.get("num.partitions", d.num_partitions)),
            cluster_id=str(s.get("simlog.cluster.id", d.cluster_id)),
            extra=s,
        )
