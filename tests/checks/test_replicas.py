"""replicas_converge: ISR members agree below the HW; no committed prefix was truncated."""

from __future__ import annotations

from simlog.checks.replicas import replicas_converge
from simlog.checks.state import Truncation
from simlog.scenario.selectors import TopicPartition
from simlog.testing.builders import final, partition


def test_in_sync_replicas_agreeing_below_hw_pass_even_if_they_differ_above():
    ps = partition("orders/0", {"b1": ["a", "b", "c"], "b2": ["a", "b"], "b3": ["a", "b", "x"]},
                   hw=2)
    assert replicas_converge((), final(ps)).passed


def test_out_of_sync_replicas_are_not_compared():
    ps = partition("orders/0", {"b1": ["a", "b"], "b2": ["a", "b"], "b3": ["z"]},
                   isr=["b1", "b2"])
    assert replicas_converge((), final(ps)).passed


def test_divergence_below_hw_names_offset_nodes_and_records():
    ps = partition("orders/0", {"b1": ["a", "b", "c"],
                                "b2": [(0, "a", 0), (1, "x", 1), (2, "c", 0)],
                                "b3": ["a"]}, hw=3)
    result = replicas_converge((), final(ps))
    assert not result.passed
    assert result.witnesses == (
        {"kind": "diverged", "partition": "orders/0", "node": "b2", "reference": "b1",
         "offset": 1, "high_watermark": 3, "expected": {"id": "b", "leader_epoch": 0},
         "found": {"id": "x", "leader_epoch": 1}},
        {"kind": "diverged", "partition": "orders/0", "node": "b3", "reference": "b1",
         "offset": 1, "high_watermark": 3, "expected": {"id": "b", "leader_epoch": 0},
         "found": None})


def test_same_id_different_leader_epoch_is_divergence():
    ps = partition("orders/0", {"b1": [(0, "a", 0)], "b2": [(0, "a", 1)]})
    assert [w["offset"] for w in replicas_converge((), final(ps)).witnesses] == [0]


def test_truncating_committed_records_at_any_time_fails():
    ps = partition("orders/0", {"b1": ["a"], "b2": ["a"]})
    tp = TopicPartition("orders", 0)
    fine = Truncation(5_000, tp, "b2", to_offset=3, high_watermark=3)
    bad = Truncation(7_000, tp, "b3", to_offset=1, high_watermark=3)
    assert replicas_converge((), final(ps, truncations=(fine,))).passed
    result = replicas_converge((), final(ps, truncations=(bad, fine)))
    assert result.witnesses == ({"kind": "committed_truncated", "partition": "orders/0",
                                 "node": "b3", "time_us": 7_000, "to_offset": 1,
                                 "high_watermark": 3},)
