"""Kafka record batch v2 (magic 2), byte for byte (DefaultRecordBatch.java).

Layout (WIRE.md section 3): a 61-byte header
    baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2 |
    crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 |
    maxTimestamp i64 | producerId i64 | producerEpoch i16 | baseSequence i32 |
    recordsCount i32
then the records region (one compressed blob when attributes name a codec).
batchLength counts the bytes after itself, so a batch is batchLength + 12 bytes.

Invariants this module keeps:
- The CRC is CRC-32C over bytes [21, end): attributes to the last record. baseOffset
  and partitionLeaderEpoch lie outside it, so `patch_offset_and_epoch` changes them
  in place without recomputing the CRC or touching the records (ARCHITECTURE rule 4).
- Parsing never raises on bad input: a corrupt or torn batch comes back as a
  `BatchError` value naming the offset, the position and the reason.
- Timestamps are Kafka's: milliseconds since the epoch, as the producer set them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import crc32c

from simlog.records.compression import Compression, CompressionError, compress, decompress
from simlog.records.varint import VarintError, decode_varint, encode_varint

MAGIC_V2 = 2
HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: bytes not counted by batchLength
CRC_START = 21

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

ATTR_COMPRESSION_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08  # 1 = LogAppendTime
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40

CONTROL_ABORT = 0
CONTROL_COMMIT = 1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_OFFSET_LEN = struct.Struct(">qi")
_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")
_CONTROL_KEY = struct.Struct(">hh")
_CONTROL_VALUE = struct.Struct(">hi")

Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class Record:
    """One record. As input to `build_batch` only key, value, headers and timestamp
    count (offset is assigned from the batch); as parsed output every field is set.
    value None is a tombstone; key None is a keyless record."""

    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    timestamp: int = 0
    offset: int = -1


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """A transaction marker: the single record of a control batch."""

    commit: bool
    coordinator_epoch: int
    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class BatchError:
    """Why bytes at a position are not a valid batch. A value, never raised.

    offset is the batch's base offset as far as it could be read (-1 if not even
    that), position its byte position in the buffer or file scanned.
    `truncated` marks a batch cut short by the end of the data (a torn tail), as
    opposed to bytes present but wrong.
    """

    offset: int
    position: int
    reason: str
    truncated: bool = False

    def __str__(self) -> str:
        return f"corrupt batch at offset {self.offset} (position {self.position}): {self.reason}"


class BatchHeader(NamedTuple):
    """Every field of the 61-byte header, decoded. (A NamedTuple: the append path
    decodes one per batch, and a tuple is several times cheaper to build than a
    frozen dataclass.)"""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def compression(self) -> Compression:
        return Compression(self.attributes & ATTR_COMPRESSION_MASK)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & ATTR_DELETE_HORIZON)

    @property
    def timestamp_type(self) -> int:
        """0 CreateTime, 1 LogAppendTime."""
        return 1 if self.attributes & ATTR_TIMESTAMP_TYPE else 0


def decode_header(buf: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Decode the 61-byte header at position (caller checks there are 61 bytes)."""
    return BatchHeader._make(_HEADER.unpack_from(buf, position))


class RecordBatch:
    """A view of one whole v2 batch held as bytes (exactly its `size` bytes).

    Cheap to make: decodes the header only. `records()` decompresses and decodes on
    demand. `validate()` checks the structure and CRC without decoding records.
    """

    __slots__ = ("_h", "data", "position")

    HEADER_SIZE: ClassVar[int] = HEADER_SIZE

    def __init__(self, data: bytes, position: int = 0, header: BatchHeader | None = None):
        """data: the batch's bytes; position: where it sits in its file (informative);
        header: its decoded header when the caller has it already."""
        self.data = data
        self.position = position
        self._h = header if header is not None else decode_header(data, 0)

    # header accessors ------------------------------------------------------
    @property
    def header(self) -> BatchHeader:
        return self._h

    base_offset = property(lambda self: self._h.base_offset)
    partition_leader_epoch = property(lambda self: self._h.partition_leader_epoch)
    magic = property(lambda self: self._h.magic)
    crc = property(lambda self: self._h.crc)
    attributes = property(lambda self: self._h.attributes)
    last_offset_delta = property(lambda self: self._h.last_offset_delta)
    base_timestamp = property(lambda self: self._h.base_timestamp)
    max_timestamp = property(lambda self: self._h.max_timestamp)
    producer_id = property(lambda self: self._h.producer_id)
    producer_epoch = property(lambda self: self._h.producer_epoch)
    base_sequence = property(lambda self: self._h.base_sequence)
    records_count = property(lambda self: self._h.records_count)
    size = property(lambda self: self._h.size)
    last_offset = property(lambda self: self._h.last_offset)
    next_offset = property(lambda self: self._h.next_offset)
    compression = property(lambda self: self._h.compression)
    is_transactional = property(lambda self: self._h.is_transactional)
    is_control = property(lambda self: self._h.is_control)
    has_delete_horizon = property(lambda self: self._h.has_delete_horizon)

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record, wrapping at 2**31 as Kafka does (-1 if none)."""
        if self._h.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self._h.base_sequence + self._h.last_offset_delta) % (1 << 31)

    def compute_crc(self) -> int:
        return crc32c.crc32c(memoryview(self.data)[CRC_START:])

    def crc_ok(self) -> bool:
        return self.compute_crc() == self._h.crc

    def validate(self) -> BatchError | None:
        """Structure + CRC check (what a broker and a recovery scan do). No decoding."""
        return check_header(self._h, len(self.data), self.position) or (
            None
            if self.crc_ok()
            else BatchError(
                self._h.base_offset,
                self.position,
                f"CRC mismatch: stored {self._h.crc:#010x}, computed {self.compute_crc():#010x}",
            )
        )

    def records(self) -> list[Record] | BatchError:
        """Decompress and decode every record (offsets and timestamps absolute)."""
        h = self._h
        try:
            payload = decompress(h.compression, memoryview(self.data)[HEADER_SIZE:])
        except CompressionError as exc:
            return BatchError(h.base_offset, self.position, f"cannot decompress: {exc}")
        try:
            out = _decode_records(payload, h.records_count, h.base_offset, h.base_timestamp)
        except (VarintError, ValueError, IndexError, struct.error) as exc:
            return BatchError(h.base_offset, self.position, f"bad record encoding: {exc}")
        if h.timestamp_type == 1:
            # LogAppendTime: every record's timestamp is the batch's max timestamp.
            out = [
                Record(r.key, r.value, r.headers, h.max_timestamp, r.offset) for r in out
            ]
        return out

    def control_record(self) -> ControlRecord | BatchError:
        """The marker of a control batch (commit or abort)."""
        recs = self.records()
        if isinstance(recs, BatchError):
            return recs
        if not self.is_control or len(recs) != 1 or recs[0].key is None or recs[0].value is None:
            return BatchError(self.base_offset, self.position, "not a control batch")
        r = recs[0]
        if len(r.key) < 4 or len(r.value) < 6:
            return BatchError(self.base_offset, self.position, "short control record")
        _version, kind = _CONTROL_KEY.unpack_from(r.key)
        _v, coordinator_epoch = _CONTROL_VALUE.unpack_from(r.value)
        if kind not in (CONTROL_ABORT, CONTROL_COMMIT):
            return BatchError(self.base_offset, self.position, f"unknown control type {kind}")
        return ControlRecord(kind == CONTROL_COMMIT, coordinator_epoch, r.offset, r.timestamp)

    def __repr__(self) -> str:
        h = self._h
        return (
            f"RecordBatch(base_offset={h.base_offset}, last_offset={h.last_offset}, "
            f"count={h.records_count}, size={h.size}, codec={h.compression.kafka_name})"
        )


def check_header(h: BatchHeader, available: int, position: int) -> BatchError | None:
    """Structural checks of a decoded header against the bytes available after it
    (magic, lengths, codec id, counts); no CRC."""
    if h.magic != MAGIC_V2:
        return BatchError(h.base_offset, position, f"unsupported magic {h.magic}")
    if h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        return BatchError(h.base_offset, position, f"batch length {h.batch_length} too small")
    if h.size > available:
        return BatchError(
            h.base_offset,
            position,
            f"batch of {h.size} bytes cut short at {available} bytes",
            truncated=True,
        )
    if h.attributes & ATTR_COMPRESSION_MASK > Compression.ZSTD:
        return BatchError(
            h.base_offset, position, f"unknown codec id {h.attributes & ATTR_COMPRESSION_MASK}"
        )
    if h.records_count < 0 or h.last_offset_delta < 0:
        return BatchError(h.base_offset, position, "negative record count or offset delta")
    if h.records_count > 0 and h.last_offset_delta < h.records_count - 1:
        return BatchError(h.base_offset, position, "last offset delta below record count - 1")
    return None


def _decode_records(payload: bytes, count: int, base_offset: int, base_ts: int) -> list[Record]:
    out: list[Record] = []
    i = 0
    end = len(payload)
    for _ in range(count):
        length, i = decode_varint(payload, i)
        stop = i + length
        if length < 0 or stop > end:
            raise ValueError("record length runs past the records region")
        i += 1  # record attributes, unused
        ts_delta, i = decode_varint(payload, i)
        off_delta, i = decode_varint(payload, i)
        klen, i = decode_varint(payload, i)
        key = None
        if klen >= 0:
            key = bytes(payload[i : i + klen])
            i += klen
        vlen, i = decode_varint(payload, i)
        value = None
        if vlen >= 0:
            value = bytes(payload[i : i + vlen])
            i += vlen
        nheaders, i = decode_varint(payload, i)
        headers: list[Header] = []
        for _h in range(nheaders):
            hklen, i = decode_varint(payload, i)
            hkey = bytes(payload[i : i + hklen]).decode("utf-8")
            i += hklen
            hvlen, i = decode_varint(payload, i)
            hval = None
            if hvlen >= 0:
                hval = bytes(payload[i : i + hvlen])
                i += hvlen
            headers.append((hkey, hval))
        if i != stop:
            raise ValueError("record length does not match its fields")
        out.append(Record(key, value, tuple(headers), base_ts + ts_delta, base_offset + off_delta))
    if i != end:
        raise ValueError(f"{end - i} bytes after the last record")
    return out


def _encode_record(r: Record, offset_delta: int, ts_delta: int) -> bytes:
    parts = [b"\x00", encode_varint(ts_delta), encode_varint(offset_delta)]
    if r.key is None:
        parts.append(b"\x01")  # varint -1
    else:
        parts.append(encode_varint(len(r.key)))
        parts.append(r.key)
    if r.value is None:
        parts.append(b"\x01")
    else:
        parts.append(encode_varint(len(r.value)))
        parts.append(r.value)
    parts.append(encode_varint(len(r.headers)))
    for hk, hv in r.headers:
        kb = hk.encode("utf-8")
        parts.append(encode_varint(len(kb)))
        parts.append(kb)
        if hv is None:
            parts.append(b"\x01")
        else:
            parts.append(encode_varint(len(hv)))
            parts.append(hv)
    body = b"".join(parts)
    return encode_varint(len(body)) + body


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    compression: Compression | int = Compression.NONE,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    transactional: bool = False,
    control: bool = False,
    offset_deltas: Sequence[int] | None = None,
    last_offset_delta: int | None = None,
    base_timestamp: int | None = None,
    delete_horizon: bool = False,
) -> bytes:
    """Encode records into one v2 batch (CreateTime), as a producer would.

    offset_deltas (default 0..n-1) and last_offset_delta (default the last delta)
    exist for the compactor, which rewrites retained records with their original
    offsets. base_timestamp defaults to the first record's timestamp; with
    delete_horizon it is the delete horizon (KIP-534) and bit 6 is set.
    """
    n = len(records)
    if offset_deltas is None:
        offset_deltas = range(n)
    if last_offset_delta is None:
        last_offset_delta = offset_deltas[-1] if n else 0
    if base_timestamp is None:
        base_timestamp = records[0].timestamp if n else NO_TIMESTAMP
    max_ts = max((r.timestamp for r in records), default=NO_TIMESTAMP)
    body = b"".join(
        _encode_record(r, d, r.timestamp - base_timestamp)
        for r, d in zip(records, offset_deltas)
    )
    # An empty batch (the compactor's end-of-segment marker) is written uncompressed,
    # as Kafka's DefaultRecordBatch.writeEmptyHeader does.
    codec = Compression(compression) if n else Compression.NONE
    payload = compress(codec, body) if codec is not Compression.NONE else body
    attributes = int(codec)
    if transactional:
        attributes |= ATTR_TRANSACTIONAL
    if control:
        attributes |= ATTR_CONTROL
    if delete_horizon:
        attributes |= ATTR_DELETE_HORIZON
    after_crc = struct.pack(
        ">hiqqqhii",
        attributes,
        last_offset_delta,
        base_timestamp,
        max_ts,
        producer_id,
        producer_epoch,
        base_sequence,
        n,
    ) + payload
    crc = crc32c.crc32c(after_crc)
    batch_length = len(after_crc) + 9  # epoch(4) + magic(1) + crc(4)
    return (
        struct.pack(">qiibI", base_offset, batch_length, partition_leader_epoch, MAGIC_V2, crc)
        + after_crc
    )


def build_control_batch(
    commit: bool,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
) -> bytes:
    """A transaction marker batch: transactional + control bits, one record whose key
    is (version 0, type 0 abort / 1 commit) and value (version 0, coordinator epoch)."""
    key = _CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    return build_batch(
        [Record(key, value, (), timestamp)],
        base_offset=base_offset,
        partition_leader_epoch=partition_leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transactional=True,
        control=True,
    )


def patch_offset_and_epoch(
    data: bytes | bytearray, base_offset: int, partition_leader_epoch: int | None = None
) -> bytes:
    """Return data (one batch) with baseOffset and optionally partitionLeaderEpoch
    replaced; the CRC stays valid because neither field is covered by it."""
    buf = bytearray(data)
    set_base_offset(buf, base_offset)
    if partition_leader_epoch is not None:
        set_partition_leader_epoch(buf, partition_leader_epoch)
    return bytes(buf)


def set_base_offset(buf: bytearray | memoryview, base_offset: int, position: int = 0) -> None:
    """Overwrite bytes [position, position+8) in place (Java's setLastOffset)."""
    _I64.pack_into(buf, position, base_offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, epoch: int, position: int = 0) -> None:
    """Overwrite bytes [position+12, position+16) in place."""
    _I32.pack_into(buf, position + 12, epoch)


def peek_batch(
    data: bytes | bytearray | memoryview, position: int = 0
) -> tuple[int, int] | None:
    """(base_offset, size) of the batch at position, from its first 12 bytes, or None
    if fewer than 12 bytes remain."""
    if len(data) - position < LOG_OVERHEAD:
        return None
    base, length = _OFFSET_LEN.unpack_from(data, position)
    return base, length + LOG_OVERHEAD


def iter_batches(
    data: bytes | bytearray | memoryview, *, position: int = 0, validate: bool = True
) -> Iterator[RecordBatch | BatchError]:
    """Walk concatenated batches (a segment, a produce or fetch payload).

    Yields a RecordBatch per whole batch (its `position` is relative to the start of
    data plus the given position). Stops after yielding a BatchError at the first
    bad or cut-short batch; ends silently only at exactly the end of data. With
    validate=False only the header structure is checked (no CRC), as for reads of
    data already validated on append.
    """
    view = memoryview(data)
    i = 0
    end = len(view)
    while i < end:
        pos = position + i
        if end - i < HEADER_SIZE:
            base = _I64.unpack_from(view, i)[0] if end - i >= 8 else -1
            yield BatchError(base, pos, f"only {end - i} bytes left, header needs 61", True)
            return
        h = decode_header(view, i)
        err = check_header(h, end - i, pos)
        if err is not None:
            yield err
            return
        whole = i == 0 and h.size == end and isinstance(data, bytes)
        batch = RecordBatch(data if whole else bytes(view[i : i + h.size]), pos, h)
        if validate and not batch.crc_ok():
            yield batch.validate() or BatchError(h.base_offset, pos, "CRC mismatch")
            return
        yield batch
        i += h.size


def parse_batches(
    data: bytes | bytearray | memoryview, *, position: int = 0, validate: bool = True
) -> tuple[list[RecordBatch], BatchError | None]:
    """All whole valid batches at the front of data, and the error that stopped the
    walk (None if data ended exactly on a batch boundary)."""
    out: list[RecordBatch] = []
    for item in iter_batches(data, position=position, validate=validate):
        if isinstance(item, BatchError):
            return out, item
        out.append(item)
    return out, None
