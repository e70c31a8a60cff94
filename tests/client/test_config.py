"""Kafka config names map once into typed client configs."""

from __future__ import annotations

import pytest

from simlog.client.config import ConfigError, ConsumerConfig, ProducerConfig
from simlog.records import Compression
from simlog.scenario.kafka_config import KEYS


def test_every_kafka_producer_and_consumer_key_is_accepted_with_its_default() -> None:
    producer = {k: v.default for k, v in KEYS["producer"].items()}
    consumer = {k: v.default for k, v in KEYS["consumer"].items()}
    assert ProducerConfig.from_kafka(producer) == ProducerConfig()
    c = ConsumerConfig.from_kafka(consumer)
    assert (c.fetch_max_wait_us, c.max_poll_records, c.auto_offset_reset) == (500_000, 500,
                                                                             "latest")
    assert c.extra["session.timeout.ms"] == 45_000  # kept for the group client


def test_values_map_to_typed_fields_with_units_last() -> None:
    cfg = ProducerConfig.from_kafka({"linger.ms": "20", "acks": "1", "compression.type": "lz4",
                                     "delivery.timeout.ms": 60000, "retry.backoff.ms": 50,
                                     "bootstrap.servers": "b1, b2"})
    assert (cfg.linger_us, cfg.acks, cfg.compression) == (20_000, 1, Compression.LZ4)
    assert (cfg.delivery_timeout_us, cfg.retry_backoff_us) == (60_000_000, 50_000)
    assert cfg.bootstrap_servers == ("b1", "b2")
    assert not cfg.enable_idempotence  # acks=1 silently turns it off, as in Kafka 3+


@pytest.mark.parametrize("bad", [
    {"acks": "2"}, {"linger.ms": -1}, {"compression.type": "brotli"}, {"lingerms": 5},
    {"enable.idempotence": True, "max.in.flight.requests.per.connection": 6},
    {"delivery.timeout.ms": 1000},  # < linger.ms + request.timeout.ms
    {"transactional.id": "tx-1"},
])
def test_bad_producer_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ProducerConfig.from_kafka(bad)


def test_bad_consumer_settings_are_rejected() -> None:
    for bad in ({"auto.offset.reset": "smallest"}, {"max.poll.records": 0},
                {"isolation.level": "serializable"}, {"fetch.max.wait": 5}):
        with pytest.raises(ConfigError):
            ConsumerConfig.from_kafka(bad)
