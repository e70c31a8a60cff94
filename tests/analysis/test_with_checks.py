"""The analysis fed by the checks package's own objects (Op, CheckResult, LeaderChange),
as the run loop will feed it."""

from __future__ import annotations

import json

import pytest

from analysis.history import history_frames
from analysis.summary import build_summary, summary_json

checks_history = pytest.importorskip("simlog.checks.history")
checks_result = pytest.importorskip("simlog.checks.result")
checks_state = pytest.importorskip("simlog.checks.state")
selectors = pytest.importorskip("simlog.scenario.selectors")


def test_summary_from_checks_objects():
    recorder = checks_history.HistoryRecorder()
    recorder.invoke(1_000, "p1", "send", {"id": "p1-0", "topic": "orders", "partition": 0})
    recorder.invoke(1_500, "p1", "send", {"id": "p1-1", "topic": "orders", "partition": 0})
    recorder.ok(3_000, "p1", "send", {"id": "p1-1", "topic": "orders", "partition": 0,
                                      "offset": 0})
    history = recorder.finish(10_000)  # p1-0 never completed: closed as info
    tp = selectors.TopicPartition("orders", 0)
    changes = [checks_state.LeaderChange(0, tp, "b1"), checks_state.LeaderChange(4_000, tp, None),
               checks_state.LeaderChange(6_500, tp, "b2")]
    lost = checks_result.CheckResult("lost_writes", "fail",
                                     ({"kind": "lost", "id": "p1-1", "partition": str(tp)},),
                                     1, {"acked": 1, "lost": 1})
    frames = history_frames(history)
    summary = build_summary(scenario="s", seed=1, trace_hash="h", checks={"lost_writes": lost},
                            expect={"lost_writes": "fail"}, history=frames, recorder=None,
                            sim_seconds=0.01, wall_seconds=0.001, leader_changes=changes)
    loaded = json.loads(summary_json(summary))
    assert (loaded["produced"], loaded["acked"], loaded["unknown"], loaded["lost"]) == (2, 1, 1, 1)
    assert loaded["latency_ms"]["p50"] == 1.5
    assert loaded["expected_ok"] is True
    assert loaded["unavailable_ms"] == 2.5 and loaded["leader_elections"] == 1
    assert loaded["checks"]["lost_writes"]["witnesses"][0]["partition"] == "orders/0"
