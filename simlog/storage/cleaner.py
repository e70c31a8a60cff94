"""Log compaction's record filter (Kafka's LogCleaner, per batch), free of I/O.

Rules, for records in the cleanable range (see PartitionLog.compact):
- a keyed record survives only if it is the latest record of its key in the range
  (`latest` maps key -> highest offset);
- keyless records and control batches are kept as they are;
- a tombstone (key, null value) that survives gets a delete horizon when first kept
  (KIP-534: attribute bit 6 set and baseTimestamp = now + delete.retention.ms); once
  now >= that horizon a later pass drops it;
- offsets never change: a rewritten batch keeps its base offset, its original offset
  deltas and its lastOffsetDelta, so consumers and followers see the same offsets;
- a batch that loses nothing and needs no horizon is returned byte for byte;
- a batch that loses everything disappears, except when keep_empty (the last batch
  of a segment), where an empty batch keeps the segment's end offset on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from simlog.records.batch import BatchError, RecordBatch, build_batch


@dataclass(frozen=True, slots=True)
class FilteredBatch:
    data: bytes  # b"" when the batch disappears
    records_removed: int
    changed: bool


def filter_batch(
    batch: RecordBatch,
    latest: dict[bytes, int],
    now_ms: int,
    delete_retention_ms: int,
    keep_empty: bool,
) -> FilteredBatch | BatchError:
    """Apply the compaction rules above to one batch."""
    if batch.is_control:
        return FilteredBatch(batch.data, 0, False)
    records = batch.records()
    if isinstance(records, BatchError):
        return records
    horizon_passed = batch.has_delete_horizon and now_ms >= batch.base_timestamp
    keep = []
    has_tombstone = False
    for r in records:
        if r.key is not None:
            if latest.get(r.key) != r.offset:
                continue
            if r.value is None:
                if horizon_passed:
                    continue
                has_tombstone = True
        keep.append(r)
    removed = len(records) - len(keep)
    needs_horizon = has_tombstone and not batch.has_delete_horizon
    if removed == 0 and not needs_horizon:
        return FilteredBatch(batch.data, 0, False)
    if not keep and not keep_empty:
        return FilteredBatch(b"", removed, True)
    if batch.has_delete_horizon:
        horizon: int | None = batch.base_timestamp
    elif needs_horizon:
        horizon = now_ms + delete_retention_ms
    else:
        horizon = None
    data = build_batch(
        keep,
        base_offset=batch.base_offset,
        compression=batch.compression,
        partition_leader_epoch=batch.partition_leader_epoch,
        producer_id=batch.producer_id,
        producer_epoch=batch.producer_epoch,
        base_sequence=batch.base_sequence,
        transactional=batch.is_transactional,
        offset_deltas=[r.offset - batch.base_offset for r in keep],
        last_offset_delta=batch.last_offset_delta,
        base_timestamp=horizon,
        delete_horizon=horizon is not None,
    )
    return FilteredBatch(data, removed, True)
