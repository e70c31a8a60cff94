"""Kafka setting names map once into typed broker config; topic config overrides."""

import pytest

from simlog.broker.config import BrokerConfig, TopicSettings


def test_kafka_names_and_defaults() -> None:
    d = BrokerConfig.from_kafka(1)
    assert (d.replica_lag_time_max_us, d.replica_fetch_wait_max_us) == (30_000_000, 500_000)
    assert (d.replica_fetch_min_bytes, d.replica_fetch_max_bytes) == (1, 1 << 20)
    assert (d.min_insync_replicas, d.unclean_leader_election_enable) == (1, False)
    c = BrokerConfig.from_kafka(2, {"replica.lag.time.max.ms": 10_000,
                                    "min.insync.replicas": "2",
                                    "unclean.leader.election.enable": "true",
                                    "simlog.follower.truncation": "high-watermark"})
    assert c.replica_lag_time_max_us == 10_000_000 and c.min_insync_replicas == 2
    assert c.unclean_leader_election_enable and c.follower_truncation == "high-watermark"


def test_topic_config_overrides_broker_default() -> None:
    broker = BrokerConfig.from_kafka(1, {"min.insync.replicas": 2,
                                         "simlog.follower.truncation": "high-watermark"})
    assert TopicSettings.resolve(broker, {}).follower_truncation == "high-watermark"
    t = TopicSettings.resolve(broker, {"min.insync.replicas": "1",
                                       "simlog.follower.truncation": "leader-epoch"})
    assert (t.min_insync_replicas, t.follower_truncation) == (1, "leader-epoch")


def test_unknown_truncation_mode_is_refused() -> None:
    with pytest.raises(ValueError, match=r"simlog\.follower\.truncation"):
        BrokerConfig.from_kafka(1, {"simlog.follower.truncation": "sometimes"})


def test_request_cost_grows_with_bytes() -> None:
    c = BrokerConfig.from_kafka(1, {"simlog.cpu.request.us": 50, "simlog.cpu.per.kib.us": 4})
    assert c.request_cost_us(0) == 50 and c.request_cost_us(10 * 1024) == 90
