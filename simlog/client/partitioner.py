"""Choosing a partition for a record, compatible with Kafka's Java client.

- A keyed record goes to `toPositive(murmur2(key)) % num_partitions` over *all*
  partitions of the topic (available or not), murmur2 with seed 0x9747b28c exactly as
  `org.apache.kafka.common.utils.Utils.murmur2`, so a key lands where a JVM,
  kafka-python or aiokafka producer would put it (WIRE.md section 5).
- A keyless record goes to a *sticky* partition (KIP-480, refined by KIP-794 in Kafka
  3.3): one partition, drawn uniformly among those with a leader, takes every keyless
  record until `batch.size` bytes have gone to it, then another is drawn. This fills
  batches instead of spreading tiny ones. (Java's adaptive weighting by queue size,
  `partitioner.adaptive.partitioning.enable`, is not modelled: draws are uniform.)

Draws use the node's `Rng`, so a run replays from its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from simlog.runtime import Rng

MURMUR2_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 (32-bit) of data as Kafka computes it; unsigned 32-bit result."""
    length = len(data)
    h = (MURMUR2_SEED ^ length) & _MASK32
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[end + 2] << 16
    if tail >= 2:
        h ^= data[end + 1] << 8
    if tail >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h


def to_positive(n: int) -> int:
    """Kafka's Utils.toPositive: clear the sign bit (not abs, so MIN_VALUE maps to 0)."""
    return n & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Java's default partitioner gives a keyed record."""
    return to_positive(murmur2(key)) % num_partitions


class StickyPartitioner:
    """Keyless partition choice (KIP-480/794): stick to one partition per topic until
    `batch_size` bytes went to it. Call `partition` to choose and `on_append` with
    each record's size once it was appended to the chosen partition."""

    def __init__(self, rng: Rng, batch_size: int) -> None:
        self._rng = rng
        self._batch_size = max(1, batch_size)
        self._sticky: dict[str, int] = {}
        self._produced: dict[str, int] = {}

    def partition(self, topic: str, num_partitions: int, available: Sequence[int]) -> int:
        """available: partitions that have a leader now, sorted; may be empty."""
        current = self._sticky.get(topic)
        if current is not None and current < num_partitions and (
                not available or current in available):
            return current
        return self._next(topic, num_partitions, available)

    def on_append(self, topic: str, partition: int, size_bytes: int) -> None:
        if self._sticky.get(topic) != partition:
            return
        produced = self._produced.get(topic, 0) + size_bytes
        self._produced[topic] = produced
        if produced >= self._batch_size:
            del self._sticky[topic]

    def _next(self, topic: str, num_partitions: int, available: Sequence[int]) -> int:
        choices = list(available) if available else list(range(num_partitions))
        previous = self._sticky.get(topic)
        if previous is not None and len(choices) > 1 and previous in choices:
            choices.remove(previous)
        chosen = self._rng.choice(choices)
        self._sticky[topic] = chosen
        self._produced[topic] = 0
        return chosen


__all__ = ["MURMUR2_SEED", "StickyPartitioner", "murmur2", "partition_for_key", "to_positive"]
