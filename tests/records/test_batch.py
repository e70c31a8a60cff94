"""Record batch v2 codec: round trips, header fields, in-place patching, corruption."""

from __future__ import annotations

import struct

import cramjam
import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simlog.records import (
    BatchError,
    Compression,
    Record,
    RecordBatch,
    build_batch,
    build_control_batch,
    iter_batches,
    parse_batches,
    patch_offset_and_epoch,
)
from simlog.records.compression import compress, decompress
from simlog.records.varint import decode_varint, encode_varint, varint_size

keys = st.none() | st.binary(max_size=20)
values = st.none() | st.binary(max_size=300)
headers = st.lists(
    st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=10)), max_size=3
).map(tuple)
records = st.lists(
    st.builds(Record, keys, values, headers, st.integers(0, 2**41)), min_size=1, max_size=12
)
codecs = st.sampled_from(list(Compression))


@given(st.integers(-(2**63), 2**63 - 1))
def test_varint_round_trip(v: int) -> None:
    enc = encode_varint(v)
    assert len(enc) == varint_size(v)
    assert decode_varint(enc, 0) == (v, len(enc))


def test_varint_known_encodings() -> None:
    # Zigzag: 0->0, -1->1, 1->2, -64->127, 64->128 (two bytes).
    assert [encode_varint(v) for v in (0, -1, 1, -64, 64)] == [
        b"\x00", b"\x01", b"\x02", b"\x7f", b"\x80\x01"
    ]


@given(records, codecs, st.integers(0, 2**40), st.integers(-1, 2**20))
def test_build_parse_round_trip(recs: list[Record], codec: Compression, base: int, epoch: int) -> None:
    data = build_batch(
        recs, base_offset=base, compression=codec, partition_leader_epoch=epoch,
        producer_id=99, producer_epoch=3, base_sequence=7,
    )
    b = RecordBatch(data)
    assert b.validate() is None
    assert (b.base_offset, b.partition_leader_epoch, b.magic) == (base, epoch, 2)
    assert b.compression is codec and b.records_count == len(recs)
    assert (b.producer_id, b.producer_epoch, b.base_sequence) == (99, 3, 7)
    assert b.last_offset == base + len(recs) - 1 and b.size == len(data)
    assert b.base_timestamp == recs[0].timestamp
    assert b.max_timestamp == max(r.timestamp for r in recs)
    got = b.records()
    assert not isinstance(got, BatchError)
    assert [(r.key, r.value, r.headers, r.timestamp) for r in got] == [
        (r.key, r.value, r.headers, r.timestamp) for r in recs
    ]
    assert [r.offset for r in got] == list(range(base, base + len(recs)))


def test_header_layout_byte_for_byte() -> None:
    data = build_batch([Record(b"k", b"v", (), 1_700_000_000_000)], base_offset=5,
                       partition_leader_epoch=4, producer_id=11, producer_epoch=2,
                       base_sequence=9, transactional=True)
    fields = struct.unpack_from(">qiibIhiqqqhii", data)
    assert fields[0] == 5 and fields[1] == len(data) - 12 and fields[2] == 4 and fields[3] == 2
    assert fields[4] == crc32c.crc32c(data[21:])
    assert fields[5] == 0x10  # transactional, no codec, CreateTime
    assert fields[6:] == (0, 1_700_000_000_000, 1_700_000_000_000, 11, 2, 9, 1)
    # The record: length, attributes, ts delta 0, offset delta 0, key, value, 0 headers.
    assert data[61:] == bytes([0x10, 0, 0, 0, 0x02]) + b"k" + b"\x02v\x00"


@given(records, codecs, st.integers(0, 2**62), st.integers(0, 2**31 - 1))
def test_patch_keeps_crc_and_records(recs: list[Record], codec: Compression, base: int, epoch: int) -> None:
    data = build_batch(recs, compression=codec)
    patched = patch_offset_and_epoch(data, base, epoch)
    assert patched[21:] == data[21:]  # nothing covered by the CRC changed
    b = RecordBatch(patched)
    assert b.validate() is None
    assert (b.base_offset, b.partition_leader_epoch) == (base, epoch)


def test_corrupt_batch_names_offset_position_and_reason() -> None:
    one = build_batch([Record(b"a", b"1", (), 10)], base_offset=0)
    two = bytearray(build_batch([Record(b"b", b"2", (), 11)], base_offset=1))
    two[-1] ^= 0xFF
    batches, err = parse_batches(one + bytes(two))
    assert [b.base_offset for b in batches] == [0]
    assert isinstance(err, BatchError)
    assert (err.offset, err.position, err.truncated) == (1, len(one), False)
    assert "CRC" in err.reason and "offset 1" in str(err)


def test_torn_tail_is_reported_as_truncated() -> None:
    one = build_batch([Record(b"a", b"1" * 50, (), 10)], base_offset=3)
    for cut in (5, 40, len(one) - 1):
        batches, err = parse_batches(one + one[:cut])
        assert len(batches) == 1 and err is not None and err.truncated
        assert err.position == len(one)


def test_bad_magic_and_length_are_errors_not_exceptions() -> None:
    data = bytearray(build_batch([Record(None, b"x", (), 1)]))
    data[16] = 1
    _, err = parse_batches(bytes(data))
    assert err is not None and "magic" in err.reason
    data = bytearray(build_batch([Record(None, b"x", (), 1)]))
    struct.pack_into(">i", data, 8, 3)
    _, err = parse_batches(bytes(data))
    assert err is not None and "length" in err.reason


def test_garbled_compressed_payload_gives_error_value() -> None:
    data = bytearray(build_batch([Record(b"k", b"v" * 100, (), 1)], compression=Compression.LZ4))
    data[70] ^= 0x55
    data[17:21] = struct.pack(">I", crc32c.crc32c(bytes(data[21:])))  # CRC ok, payload bad
    b = RecordBatch(bytes(data))
    assert b.validate() is None
    res = b.records()
    assert isinstance(res, BatchError) and res.offset == 0


def test_control_batch_markers() -> None:
    for commit in (True, False):
        data = build_control_batch(commit, producer_id=5, producer_epoch=1,
                                   coordinator_epoch=7, timestamp=123, base_offset=40)
        b = RecordBatch(data)
        assert b.is_control and b.is_transactional and b.validate() is None
        marker = b.control_record()
        assert not isinstance(marker, BatchError)
        assert (marker.commit, marker.coordinator_epoch, marker.offset) == (commit, 7, 40)


def test_iter_batches_without_validation_skips_crc() -> None:
    data = bytearray(build_batch([Record(b"k", b"v", (), 1)]))
    data[-1] ^= 1
    assert isinstance(next(iter_batches(bytes(data), validate=False)), RecordBatch)
    assert isinstance(next(iter_batches(bytes(data), validate=True)), BatchError)


@pytest.mark.parametrize("codec", list(Compression))
def test_codec_framing(codec: Compression) -> None:
    payload = bytes(range(256)) * 300  # > 64 KiB: several snappy/lz4 blocks
    framed = compress(codec, payload)
    assert decompress(codec, framed) == payload
    magic = {
        Compression.GZIP: b"\x1f\x8b",
        Compression.SNAPPY: b"\x82SNAPPY\x00",
        Compression.LZ4: b"\x04\x22\x4d\x18",
        Compression.ZSTD: b"\x28\xb5\x2f\xfd",
    }.get(codec)
    if magic:
        assert framed.startswith(magic)


def test_raw_snappy_is_accepted_on_read() -> None:
    payload = b"hello snappy " * 100
    raw = bytes(cramjam.snappy.compress_raw(payload))
    assert decompress(Compression.SNAPPY, raw) == payload
