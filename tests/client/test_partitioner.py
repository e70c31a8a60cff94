"""The partitioner puts keys where Kafka's Java client and kafka-python put them."""

from __future__ import annotations

import random as pyrandom

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kp_murmur2

from simlog.client.partitioner import StickyPartitioner, murmur2, partition_for_key


@given(key=st.binary(max_size=300))
def test_murmur2_matches_kafka_python(key: bytes) -> None:
    assert murmur2(key) == kp_murmur2(key) & 0xFFFFFFFF


def test_murmur2_matches_kafka_python_on_many_keys() -> None:
    rng = pyrandom.Random(7)
    for n in range(3000):
        key = bytes(rng.getrandbits(8) for _ in range(n % 37)) if n % 2 else f"k{n}".encode()
        assert murmur2(key) == kp_murmur2(key) & 0xFFFFFFFF, key


def test_wire_md_examples_for_three_partitions() -> None:
    got = {k: partition_for_key(k.encode(), 3) for k in ("k0", "k1", "k2", "hello")}
    assert got == {"k0": 2, "k1": 2, "k2": 0, "hello": 0}


@given(key=st.binary(max_size=64), n=st.integers(min_value=1, max_value=1000))
def test_partition_in_range_and_as_java_computes(key: bytes, n: int) -> None:
    p = partition_for_key(key, n)
    assert 0 <= p < n
    assert p == (kp_murmur2(key) & 0x7FFFFFFF) % n


def test_sticky_partitioner_sticks_until_batch_size_then_moves() -> None:
    sticky = StickyPartitioner(pyrandom.Random(1), batch_size=1000)
    first = sticky.partition("t", 6, range(6))
    for _ in range(9):  # 9 * 100 bytes < 1000
        assert sticky.partition("t", 6, range(6)) == first
        sticky.on_append("t", first, 100)
    sticky.on_append("t", first, 100)  # reaches batch.size
    second = sticky.partition("t", 6, range(6))
    assert second != first


def test_sticky_partitioner_only_picks_available_partitions() -> None:
    sticky = StickyPartitioner(pyrandom.Random(3), batch_size=10)
    seen = set()
    for _ in range(50):
        p = sticky.partition("t", 6, [1, 4])
        sticky.on_append("t", p, 10)
        seen.add(p)
    assert seen == {1, 4}
