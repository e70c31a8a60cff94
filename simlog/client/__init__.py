"""Kafka clients as event-driven simlog nodes: a producer and a consumer.

    Producer(rt, {"bootstrap.servers": "b1,b2,b3", "acks": "all"}).send(
        "orders", b"value", key=b"k", headers=(("id", b"p1-42"),), on_complete=cb)
    Consumer(rt, {"bootstrap.servers": "b1", "auto.offset.reset": "earliest"})

Both take Kafka's config names (mapped once into `ProducerConfig` / `ConsumerConfig`),
speak the message types of `simlog.protocol`, and report outcomes through callbacks
(`SendResult` ok / fail / info, `PollResult`). See producer.py and consumer.py.
"""

from simlog.client.config import ConfigError, ConsumerConfig, ProducerConfig
from simlog.client.consumer import Consumer, PollResult
from simlog.client.fetcher import ConsumerRecord
from simlog.client.offset_fetcher import Truncation
from simlog.client.partitioner import murmur2, partition_for_key
from simlog.client.producer import Producer
from simlog.client.results import FAIL, INFO, OK, SendResult

__all__ = [
    "FAIL",
    "INFO",
    "OK",
    "ConfigError",
    "Consumer",
    "ConsumerConfig",
    "ConsumerRecord",
    "PollResult",
    "Producer",
    "ProducerConfig",
    "SendResult",
    "Truncation",
    "murmur2",
    "partition_for_key",
]
