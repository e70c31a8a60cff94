"""Formatting and verification for `simlog dump-log`, like Kafka's kafka-dump-log.

Pure functions over the bytes of one file (the CLI in `simlog.tools.dump_log` reads
it), so the storage package stays free of file I/O. Output lines follow Kafka's
DumpLogSegments:

    baseOffset: 0 lastOffset: 1 count: 2 baseSequence: 0 lastSequence: 1 producerId: 7
    producerEpoch: 0 partitionLeaderEpoch: 3 isTransactional: false isControl: false
    deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000000 size: 95
    magic: 2 compresscodec: gzip crc: 2788409356 isvalid: true
    | offset: 0 CreateTime: 1700000000000 keySize: 1 valueSize: 3 sequence: 0
    headerKeys: [h] key: k payload: abc

(each on one line). Verification: every CRC, and offsets that never go backwards
nor overlap; gaps (compaction leaves them) fail too unless allowed. The first problem
is reported with its offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from simlog.records.batch import NO_SEQUENCE, BatchError, RecordBatch, iter_batches
from simlog.storage.index import OFFSET_ENTRY, TIME_ENTRY


@dataclass(frozen=True, slots=True)
class DumpResult:
    lines: list[str]
    problem: str | None  # the first verification failure, naming its offset
    problem_offset: int = -1


def _text(data: bytes | None) -> str:
    if data is None:
        return "null"
    return data.decode("utf-8", errors="backslashreplace")


def _bool(v: bool) -> str:
    return "true" if v else "false"


def batch_line(b: RecordBatch, crc_ok: bool) -> str:
    ts_type = "LogAppendTime" if b.header.timestamp_type else "CreateTime"
    horizon = f"OptionalLong[{b.base_timestamp}]" if b.has_delete_horizon else "OptionalLong.empty"
    last_seq = b.last_sequence if b.base_sequence != NO_SEQUENCE else NO_SEQUENCE
    return (
        f"baseOffset: {b.base_offset} lastOffset: {b.last_offset} count: {b.records_count} "
        f"baseSequence: {b.base_sequence} lastSequence: {last_seq} "
        f"producerId: {b.producer_id} producerEpoch: {b.producer_epoch} "
        f"partitionLeaderEpoch: {b.partition_leader_epoch} "
        f"isTransactional: {_bool(b.is_transactional)} isControl: {_bool(b.is_control)} "
        f"deleteHorizonMs: {horizon} position: {b.position} {ts_type}: {b.max_timestamp} "
        f"size: {b.size} magic: {b.magic} compresscodec: {b.compression.kafka_name} "
        f"crc: {b.crc} isvalid: {_bool(crc_ok)}"
    )


def record_lines(b: RecordBatch) -> list[str] | BatchError:
    recs = b.records()
    if isinstance(recs, BatchError):
        return recs
    ts_type = "LogAppendTime" if b.header.timestamp_type else "CreateTime"
    out = []
    for r in recs:
        seq = NO_SEQUENCE if b.base_sequence == NO_SEQUENCE else (
            (b.base_sequence + r.offset - b.base_offset) % (1 << 31)
        )
        head = (
            f"| offset: {r.offset} {ts_type}: {r.timestamp} "
            f"keySize: {-1 if r.key is None else len(r.key)} "
            f"valueSize: {-1 if r.value is None else len(r.value)} sequence: {seq} "
            f"headerKeys: [{','.join(k for k, _v in r.headers)}]"
        )
        if b.is_control and r.key is not None and len(r.key) >= 4:
            kind = struct.unpack_from(">h", r.key, 2)[0]
            epoch = struct.unpack_from(">i", r.value, 2)[0] if r.value and len(r.value) >= 6 else -1
            marker = {0: "ABORT", 1: "COMMIT"}.get(kind, f"UNKNOWN({kind})")
            out.append(f"{head} endTxnMarker: {marker} coordinatorEpoch: {epoch}")
        else:
            out.append(f"{head} key: {_text(r.key)} payload: {_text(r.value)}")
    return out


def dump_segment(
    data: bytes, *, print_data: bool = False, allow_gaps: bool = False
) -> DumpResult:
    """Describe every batch of a .log file's bytes and verify CRCs and offsets."""
    lines: list[str] = []
    problem: str | None = None
    problem_offset = -1
    expected: int | None = None
    first = True
    for item in iter_batches(data, validate=False):
        if isinstance(item, BatchError):
            problem, problem_offset = str(item), item.offset
            lines.append(f"Found an invalid batch: {item}")
            break
        if first:
            lines.append(f"Log starting offset: {item.base_offset}")
            first = False
        crc_ok = item.crc_ok()
        lines.append(batch_line(item, crc_ok))
        if problem is None:
            if not crc_ok:
                problem = f"CRC mismatch in batch at offset {item.base_offset} (position {item.position})"
                problem_offset = item.base_offset
            elif expected is not None and item.base_offset < expected:
                problem = (f"offset {item.base_offset} at position {item.position} goes back "
                           f"(expected >= {expected})")
                problem_offset = item.base_offset
            elif expected is not None and item.base_offset > expected and not allow_gaps:
                problem = (f"offset gap: expected {expected}, found {item.base_offset} at "
                           f"position {item.position}")
                problem_offset = item.base_offset
        expected = item.next_offset
        if print_data:
            recs = record_lines(item)
            if isinstance(recs, BatchError):
                lines.append(f"Cannot decode records: {recs}")
                if problem is None:
                    problem, problem_offset = str(recs), recs.offset
            else:
                lines.extend(recs)
    return DumpResult(lines, problem, problem_offset)


def dump_offset_index(data: bytes, base_offset: int) -> DumpResult:
    lines = [
        f"offset: {base_offset + r} position: {p}"
        for r, p in OFFSET_ENTRY.iter_unpack(data[: len(data) - len(data) % OFFSET_ENTRY.size])
    ]
    bad = "index size is not a multiple of 8" if len(data) % OFFSET_ENTRY.size else None
    return DumpResult(lines, bad)


def dump_time_index(data: bytes, base_offset: int) -> DumpResult:
    lines = [
        f"timestamp: {t} offset: {base_offset + r}"
        for t, r in TIME_ENTRY.iter_unpack(data[: len(data) - len(data) % TIME_ENTRY.size])
    ]
    bad = "time index size is not a multiple of 12" if len(data) % TIME_ENTRY.size else None
    return DumpResult(lines, bad)
