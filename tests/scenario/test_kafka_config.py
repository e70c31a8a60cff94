"""The Kafka config table: levels, types, ranges, defaults, and topic <- broker fallback."""

from __future__ import annotations

import pytest

from simlog.scenario import kafka_config as kc


def test_every_topic_key_with_a_broker_twin_shares_its_kind_and_default():
    for key in kc.KEYS[kc.TOPIC].values():
        assert key.broker_name, f"{key.name} has no broker default"
        twin = kc.KEYS[kc.BROKER][key.broker_name]
        assert (twin.kind, twin.default, twin.choices) == (key.kind, key.default, key.choices)


def test_kafka_defaults_where_the_scenario_is_silent():
    assert kc.default(kc.PRODUCER, "acks") == "all"
    assert kc.default(kc.PRODUCER, "enable.idempotence") is True
    assert kc.default(kc.BROKER, "min.insync.replicas") == 1
    assert kc.default(kc.BROKER, "unclean.leader.election.enable") is False
    assert kc.default(kc.BROKER, "log.flush.interval.messages") == 2**63 - 1
    assert kc.default(kc.CONSUMER, "partition.assignment.strategy") == (
        "range", "cooperative-sticky")


@pytest.mark.parametrize(("level", "raw", "canonical"), [
    (kc.PRODUCER, {"acks": -1}, {"acks": "all"}),
    (kc.PRODUCER, {"acks": 1}, {"acks": "1"}),
    (kc.PRODUCER, {"linger.ms": "250ms"}, {"linger.ms": 250}),
    (kc.BROKER, {"unclean.leader.election.enable": "true"},
     {"unclean.leader.election.enable": True}),
    (kc.TOPIC, {"cleanup.policy": "compact, delete"}, {"cleanup.policy": ("compact", "delete")}),
    (kc.TOPIC, {"min.cleanable.dirty.ratio": 1}, {"min.cleanable.dirty.ratio": 1.0}),
    (kc.CONSUMER, {"partition.assignment.strategy":
                   ["org.apache.kafka.clients.consumer.RoundRobinAssignor", "range"]},
     {"partition.assignment.strategy": ("roundrobin", "range")}),
])
def test_values_are_canonicalised(level, raw, canonical):
    assert kc.validate(level, raw) == canonical


@pytest.mark.parametrize(("level", "raw", "message"), [
    (kc.BROKER, {"min.insync.replicas": True}, "expected an integer >= 1, found true"),
    (kc.TOPIC, {"segment.bytes": 10}, "expected an integer in [14, 2147483647], found 10"),
    (kc.TOPIC, {"min.cleanable.dirty.ratio": 1.5}, "expected a number in [0, 1], found 1.5"),
    (kc.TOPIC, {"cleanup.policy": "shred"}, "expected a list of delete, compact, found 'shred'"),
    (kc.BROKER, {"retention.ms": 1}, "unknown broker config 'retention.ms' ('retention.ms' is "
                                     "a topic config; the broker default is 'log.retention.ms')"),
    (kc.CONSUMER, {"linger.ms": 1}, "unknown consumer config 'linger.ms' (it is a producer "
                                    "config)"),
    (kc.PRODUCER, {"lingr.ms": 1}, "unknown producer config 'lingr.ms' (did you mean "
                                   "'linger.ms'?)"),
    (kc.CONSUMER, {"group.id": "g"}, "'group.id' cannot be set here: it is the consumer "
                                     "entry's `group:`"),
    (kc.BROKER, {"replica.lag.time.max.ms": "1500us"},
     "expected a whole number of milliseconds, found '1500us'"),
])
def test_bad_values_name_key_found_and_expected(level, raw, message):
    with pytest.raises(kc.ConfigError) as err:
        kc.validate(level, raw)
    assert str(err.value) == message and err.value.key == next(iter(raw))


def test_topic_config_falls_back_to_broker_then_kafka():
    broker = kc.merged(kc.BROKER, {"log.retention.ms": 1000, "min.insync.replicas": 2})
    topic = kc.merged(kc.TOPIC, {"min.insync.replicas": 3}, broker=broker)
    assert topic["retention.ms"] == 1000            # from the broker
    assert topic["min.insync.replicas"] == 3        # the topic's own
    assert topic["segment.bytes"] == 1 << 30        # Kafka's default
    assert topic.overrides() == {"min.insync.replicas": 3, "retention.ms": 1000}
    assert topic == kc.merged(kc.TOPIC, {"min.insync.replicas": 3}, broker=broker)
    assert hash(topic) == hash(kc.merged(kc.TOPIC, {"min.insync.replicas": 3}, broker=broker))
    assert list(topic) == sorted(topic)
