"""Idempotent producer state: duplicates answer with the original offsets, gaps and
zombie epochs are refused, only the last five batches are remembered."""

from simlog.broker.producer_state import (
    INT32_MAX,
    ProducerStateManager,
    SequenceCheck,
    last_sequence,
)


def written(psm: ProducerStateManager, pid: int, epoch: int, first: int, last: int,
            offset: int) -> None:
    assert psm.check(pid, epoch, first, last).status is SequenceCheck.OK
    psm.record(pid, epoch, first, last, offset, offset + last - first)


def test_first_batch_must_start_at_zero() -> None:
    psm = ProducerStateManager()
    assert psm.check(7, 0, 3, 4).status is SequenceCheck.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert psm.check(7, 0, 0, 4).status is SequenceCheck.OK


def test_duplicate_of_a_retained_batch_returns_its_offsets() -> None:
    psm = ProducerStateManager()
    written(psm, 7, 0, 0, 4, offset=100)
    written(psm, 7, 0, 5, 9, offset=105)
    res = psm.check(7, 0, 0, 4)
    assert res.status is SequenceCheck.DUPLICATE
    assert (res.duplicate.first_offset, res.duplicate.last_offset) == (100, 104)


def test_gap_is_out_of_order() -> None:
    psm = ProducerStateManager()
    written(psm, 7, 0, 0, 4, offset=0)
    assert psm.check(7, 0, 6, 9).status is SequenceCheck.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_only_five_batches_are_retained() -> None:
    psm = ProducerStateManager()
    for i in range(7):
        written(psm, 7, 0, i, i, offset=i)
    assert len(psm.entry(7).batches) == 5
    assert psm.check(7, 0, 2, 2).status is SequenceCheck.DUPLICATE
    assert psm.check(7, 0, 0, 0).status is SequenceCheck.DUPLICATE_SEQUENCE_NUMBER


def test_older_epoch_is_fenced_and_new_epoch_restarts_at_zero() -> None:
    psm = ProducerStateManager()
    written(psm, 7, 1, 0, 0, offset=0)
    assert psm.check(7, 0, 1, 1).status is SequenceCheck.INVALID_PRODUCER_EPOCH
    assert psm.check(7, 2, 1, 1).status is SequenceCheck.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert psm.check(7, 2, 0, 0).status is SequenceCheck.OK


def test_sequence_wraps_at_int32_max() -> None:
    psm = ProducerStateManager()
    psm.record(7, 0, INT32_MAX - 1, INT32_MAX, 0, 1)
    assert last_sequence(INT32_MAX, 2) == 0
    assert psm.check(7, 0, 0, 1).status is SequenceCheck.OK


def test_non_idempotent_batches_are_not_checked() -> None:
    psm = ProducerStateManager()
    assert psm.check(-1, -1, -1, -1).status is SequenceCheck.OK
    psm.record(-1, -1, -1, -1, 0, 0)
    assert psm.producer_ids() == []
