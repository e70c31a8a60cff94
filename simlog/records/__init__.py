"""Kafka record batch v2 codec (CRC-32C, compression), shared by disk and wire.

`batch` holds the format; `compression` the codecs; `varint` the zigzag varints."""

from simlog.records.batch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchError,
    BatchHeader,
    ControlRecord,
    Record,
    RecordBatch,
    build_batch,
    build_control_batch,
    decode_header,
    iter_batches,
    parse_batches,
    patch_offset_and_epoch,
    peek_batch,
    set_base_offset,
    set_partition_leader_epoch,
)
from simlog.records.compression import Compression, CompressionError

__all__ = [
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "BatchError",
    "BatchHeader",
    "Compression",
    "CompressionError",
    "ControlRecord",
    "Record",
    "RecordBatch",
    "build_batch",
    "build_control_batch",
    "decode_header",
    "iter_batches",
    "parse_batches",
    "patch_offset_and_epoch",
    "peek_batch",
    "set_base_offset",
    "set_partition_leader_epoch",
]
