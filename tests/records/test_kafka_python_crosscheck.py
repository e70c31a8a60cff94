"""Independent cross-check against kafka-python's own record reader and builder.

kafka-python is a test-only dependency. Its snappy support needs python-snappy, which
is not installed; we hand it cramjam's raw snappy block functions under the name it
imports, so its own xerial framing code (kafka/codec.py) still does the framing.
"""

from __future__ import annotations

import cramjam
import pytest
from hypothesis import given
from hypothesis import strategies as st

kafka_codec = pytest.importorskip("kafka.codec")
from kafka.record import MemoryRecords  # noqa: E402
from kafka.record.default_records import DefaultRecordBatchBuilder  # noqa: E402

from simlog.records import (  # noqa: E402
    BatchError,
    Compression,
    Record,
    RecordBatch,
    build_batch,
    build_control_batch,
    parse_batches,
    patch_offset_and_epoch,
)


class _CramjamSnappy:
    """The two functions kafka.codec calls on the python-snappy module."""

    @staticmethod
    def compress(data: bytes) -> bytes:
        return bytes(cramjam.snappy.compress_raw(data))

    @staticmethod
    def decompress(data: bytes) -> bytes:
        return bytes(cramjam.snappy.decompress_raw(data))


@pytest.fixture(autouse=True)
def _snappy_for_kafka_python(monkeypatch: pytest.MonkeyPatch) -> None:
    if kafka_codec.snappy is None:
        monkeypatch.setattr(kafka_codec, "snappy", _CramjamSnappy)


# Values compress well, so kafka-python's builder keeps the codec (it falls back to
# none when compression does not shrink the batch).
rec = st.builds(
    Record,
    st.none() | st.binary(min_size=1, max_size=8),
    st.none() | st.binary(max_size=8).map(lambda b: b * 40),
    st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=6)), max_size=2).map(tuple),
    st.integers(1_600_000_000_000, 1_700_000_000_000),
)
CODECS = list(Compression)


def _kp_records(data: bytes) -> list[tuple]:
    mr = MemoryRecords(data)
    out = []
    while mr.has_next():
        batch = mr.next_batch()
        assert batch.validate_crc()
        for r in batch:
            out.append((batch.base_offset, batch.compression_type, r.offset, r.timestamp,
                        r.key, r.value, tuple(tuple(h) for h in r.headers)))
    return out


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.kafka_name)
@given(recs=st.lists(rec, min_size=1, max_size=10), base=st.integers(0, 2**40))
def test_kafka_python_reads_our_batches(codec: Compression, recs: list[Record], base: int) -> None:
    data = build_batch(recs, compression=codec, producer_id=4, producer_epoch=1, base_sequence=0)
    data = patch_offset_and_epoch(data, base, 6)  # as the broker stores it
    got = _kp_records(data + data)  # two concatenated batches, as in a segment
    expect = [
        (base, int(codec), base + i, r.timestamp, r.key, r.value, r.headers)
        for i, r in enumerate(recs)
    ]
    assert got == expect + expect
    kb = MemoryRecords(data).next_batch()
    assert (kb.leader_epoch, kb.producer_id, kb.producer_epoch, kb.base_sequence) == (6, 4, 1, 0)
    assert kb.max_timestamp == max(r.timestamp for r in recs)
    assert kb.last_offset == base + len(recs) - 1


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.kafka_name)
@given(recs=st.lists(rec, min_size=1, max_size=10), base=st.integers(0, 2**40))
def test_we_read_kafka_python_batches(codec: Compression, recs: list[Record], base: int) -> None:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=int(codec), is_transactional=False,
        producer_id=8, producer_epoch=2, base_sequence=5, batch_size=1 << 20,
    )
    for i, r in enumerate(recs):
        builder.append(i, timestamp=r.timestamp, key=r.key, value=r.value, headers=list(r.headers))
    data = bytes(builder.build())
    batch = RecordBatch(data)
    assert batch.validate() is None
    if codec is not Compression.NONE and len(data) > 200:
        assert batch.compression is codec
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (8, 2, 5)
    patched = patch_offset_and_epoch(data, base, 3)
    batches, err = parse_batches(patched + patched)
    assert err is None and len(batches) == 2
    got = batches[0].records()
    assert not isinstance(got, BatchError)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in got] == [
        (base + i, r.timestamp, r.key, r.value, r.headers) for i, r in enumerate(recs)
    ]
    # And kafka-python agrees the patched batch is intact (CRC untouched by the patch).
    assert MemoryRecords(patched).next_batch().validate_crc()


def test_kafka_python_reads_our_control_batch() -> None:
    data = build_control_batch(True, producer_id=3, producer_epoch=0, coordinator_epoch=9,
                               timestamp=1_650_000_000_000, base_offset=12)
    batch = MemoryRecords(data).next_batch()
    assert batch.validate_crc() and batch.is_control_batch and batch.is_transactional
    (marker,) = list(batch)
    assert marker.commit and not marker.abort


def test_kafka_python_detects_our_crc_on_corruption() -> None:
    data = bytearray(build_batch([Record(b"k", b"v" * 50, (), 1)]))
    data[-3] ^= 0x10
    assert not MemoryRecords(bytes(data)).next_batch().validate_crc()
    assert RecordBatch(bytes(data)).validate() is not None


@pytest.mark.parametrize("xerial", [True, False])
def test_both_snappy_framings_from_kafka_python(xerial: bool) -> None:
    payload = b"abc" * 20000
    framed = kafka_codec.snappy_encode(payload, xerial_compatible=xerial)
    from simlog.records.compression import decompress

    assert decompress(Compression.SNAPPY, framed) == payload
