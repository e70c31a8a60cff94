"""summary.json fields and figures, and the printed table."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from rich.console import Console

from analysis.metrics import MetricsRecorder
from analysis.summary import build_summary, group_lag_figures, render, summary_json

# SCENARIOS.md "Running": the fields summary.json holds at least, with their JSON types.
CONTRACT_FIELDS = {
    "scenario": str, "seed": int, "trace_hash": str, "checks": dict, "expected_ok": bool,
    "produced": int, "acked": int, "lost": int, "throughput_msgs_per_s": (int, float),
    "latency_ms": dict, "max_consumer_lag": int, "leader_elections": int,
    "wall_seconds": (int, float), "sim_seconds": (int, float),
}
CHECKS = {"lost_writes": {"result": "pass", "witnesses": []},
          "order": {"result": "fail",
                    "witnesses": [{"producer": "p1", "partition": "orders/0", "offsets": [4, 3]}]}}


def summarise(run, **overrides):
    args = {"scenario": "synthetic", "seed": 7, "trace_hash": "9f2c", "checks": CHECKS,
            "history": run.history, "recorder": run.recorder, "lost": 3,
            "sim_seconds": run.duration_us / 1e6, "wall_seconds": 0.25, "faults": run.faults,
            **overrides}
    return build_summary(**args)


def test_summary_json_has_every_contract_field_with_its_type(run):
    loaded = json.loads(summary_json(summarise(run)))
    for name, kind in CONTRACT_FIELDS.items():
        assert isinstance(loaded[name], kind), name
        assert not isinstance(loaded[name], bool) or kind is bool, name
    assert set(loaded["latency_ms"]) == {"p50", "p99", "p999"}
    assert all(isinstance(v, float) for v in loaded["latency_ms"].values())
    for check in loaded["checks"].values():
        assert check["result"] in ("pass", "fail") and isinstance(check["witnesses"], list)
    assert isinstance(loaded["sim_seconds_per_wall_second"], float)
    assert isinstance(loaded["unavailable_ms"], float)
    assert [f["targets"] for f in loaded["faults"]] == [["b1"], ["b3"]]


def test_counts_throughput_and_latency_match_the_ground_truth(run):
    summary = summarise(run)
    ok = [t for t in run.truth if t["type"] == "ok"]
    latencies_us = [t["complete_us"] - t["invoke_us"] for t in ok]
    assert summary["produced"] == len(run.truth)
    assert summary["acked"] == len(ok)
    assert summary["lost"] == 3
    assert summary["throughput_msgs_per_s"] == pytest.approx(len(ok) / 8.0)
    for label, q in [("p50", 50), ("p99", 99), ("p999", 99.9)]:
        assert summary["latency_ms"][label] == pytest.approx(
            np.percentile(latencies_us, q) / 1000, abs=1e-6)
    assert summary["sim_seconds_per_wall_second"] == pytest.approx(8.0 / 0.25)


def test_gauge_figures_lag_elections_and_leaderless_time():
    recorder = MetricsRecorder()
    for second in range(7):
        t = second * 1_000_000
        recorder.sample(t, "partition", "a/0", leader=None if 2 <= second < 4 else 1)
        recorder.sample(t, "partition", "a/1", leader=-1 if 3 <= second < 5 else 2)
        recorder.sample(t, "group", "g", lag={"a/0": second * 3, "a/1": 1})
        recorder.sample(t, "cluster", "cluster", leader_elections=min(second, 4))
    summary = build_summary(scenario="s", seed=0, trace_hash="h", checks={}, history=[],
                            recorder=recorder, lost=0, sim_seconds=7.0, wall_seconds=1.0)
    assert summary["unavailable_ms"] == 3000.0  # a/0 leaderless 2-4 s, a/1 3-5 s: union 2-5 s
    assert summary["max_consumer_lag"] == 18
    assert summary["leader_elections"] == 4
    assert summary["latency_ms"] == {"p50": None, "p99": None, "p999": None}
    assert summary["throughput_msgs_per_s"] == 0.0
    assert summary["expected_ok"] is True  # no checks: nothing unexpected


def test_max_consumer_lag_is_kafka_lag_not_position_lag():
    recorder = MetricsRecorder()
    recorder.sample(0, "group", "g", lag={"a/0": 5}, position_lag={"a/0": 90},
                    committed_offset={"a/0": 1000})
    summary = build_summary(scenario="s", seed=0, trace_hash="h", checks={}, history=[],
                            recorder=recorder, lost=0, sim_seconds=1.0, wall_seconds=1.0)
    assert summary["max_consumer_lag"] == 5


def test_group_lag_figures_final_and_largest_total():
    recorder = MetricsRecorder()
    for second, lags in enumerate([{"a/0": 3, "a/1": 4}, {"a/0": 9, "a/1": None},
                                   {"a/0": 2, "a/1": 8}, {"a/0": 1, "a/1": 0}]):
        recorder.sample(second * 1_000_000, "group", "g", lag=lags,
                        position_lag={"a/0": 50})
    recorder.sample(1_500_000, "group", "h", lag={"a/0": 6})
    figures = group_lag_figures(recorder)
    assert figures == {
        "g": {"final_lag_total": 1, "max_lag_total": 10, "final_lag": {"a/0": 1, "a/1": 0}},
        "h": {"final_lag_total": 6, "max_lag_total": 6, "final_lag": {"a/0": 6}}}
    assert "final_lag" not in group_lag_figures(recorder, max_partitions=1)["g"]
    assert group_lag_figures(MetricsRecorder()) == {}


def test_leader_changes_give_exact_leaderless_time_and_elections():
    changes = [  # as the checks' FinalState.leader_changes, initial leaders included
        {"time_us": 0, "partition": "a/0", "leader": "b1"},
        {"time_us": 0, "partition": "a/1", "leader": "b2"},
        {"time_us": 2_100_000, "partition": "a/0", "leader": None},
        {"time_us": 2_350_000, "partition": "a/0", "leader": "b2"},
        {"time_us": 2_300_000, "partition": "a/1", "leader": None},
        {"time_us": 2_500_000, "partition": "a/1", "leader": "b3"},
        {"time_us": 9_000_000, "partition": "a/1", "leader": None},  # until the end (10 s)
    ]
    recorder = MetricsRecorder()
    recorder.sample(0, "cluster", "cluster", leader_elections=99)  # changes take precedence
    summary = build_summary(scenario="s", seed=0, trace_hash="h", checks={}, history=[],
                            recorder=recorder, lost=0, sim_seconds=10.0, wall_seconds=1.0,
                            leader_changes=changes)
    assert summary["unavailable_ms"] == 400.0 + 1000.0  # 2.1-2.5 s, then 9-10 s
    assert summary["leader_elections"] == 2


def test_lost_comes_from_the_lost_writes_check_unless_given(run):
    checks = {"lost_writes": {"result": "fail", "witnesses": [{"kind": "lost"}],
                              "anomalies": 2, "stats": {"acked": 10, "lost": 2}}}
    assert summarise(run, checks=checks, lost=None)["lost"] == 2
    assert summarise(run, checks=checks, lost=5)["lost"] == 5
    assert summarise(run, checks={}, lost=None)["lost"] is None


def test_no_consumers_means_no_lag_figure():
    summary = build_summary(scenario="s", seed=0, trace_hash="h", checks={}, history=[],
                            recorder=None, lost=0, sim_seconds=1.0, wall_seconds=1.0)
    assert summary["max_consumer_lag"] is None
    assert summary["unavailable_ms"] == 0.0 and summary["leader_elections"] == 0


@dataclass
class CheckResult:  # the shape a checks package might return
    passed: bool
    witnesses: list


@pytest.mark.parametrize("expect,ok", [(None, False), ({"order": "fail"}, True),
                                       ({"order": "fail", "lost_writes": "fail"}, False)])
def test_expected_ok_compares_results_with_expect(run, expect, ok):
    checks = {"lost_writes": CheckResult(True, []), "order": CheckResult(False, ["w"])}
    summary = summarise(run, checks=checks, expect=expect)
    assert summary["expected_ok"] is ok
    assert summary["checks"]["order"] == {"result": "fail", "witnesses": ["w"]}


def test_check_objects_keep_their_anomaly_count_and_stats(run):
    @dataclass
    class Result:
        result: str
        witnesses: tuple
        anomalies: int
        stats: dict

    checks = {"lost_writes": Result("fail", ({"kind": "lost", "id": "p1-3"},), 7, {"acked": 9})}
    summary = json.loads(summary_json(summarise(run, checks=checks)))
    assert summary["checks"]["lost_writes"] == {
        "result": "fail", "witnesses": [{"kind": "lost", "id": "p1-3"}], "anomalies": 7,
        "stats": {"acked": 9}}


def test_summary_json_is_sorted_and_stable(run):
    text = summary_json(summarise(run))
    assert text == summary_json(summarise(run))
    loaded = json.loads(text)
    assert list(loaded) == sorted(loaded)
    assert text.endswith("}\n")


def test_nan_and_numpy_values_become_plain_json():
    text = summary_json({"a": float("nan"), "b": np.int64(3), "c": np.float64(0.1234567891)})
    assert json.loads(text) == {"a": None, "b": 3, "c": 0.123457}


def test_render_shows_checks_in_colour_and_the_figures(run):
    console = Console(record=True, width=140, force_terminal=True, color_system="standard")
    summary = summarise(run)
    render(summary, console)
    plain = console.export_text()
    for text in ("check lost_writes", "check order", "9f2c", "msg/s", "leader elections",
                 f"{summary['produced']:,} / {summary['acked']:,} / {summary['failed']:,}",
                 "unavailable", "isolate leader(orders/0)", f"{summary['latency_ms']['p99']:,.3f}"):
        assert text in plain, text
    console = Console(record=True, width=140, force_terminal=True, color_system="standard")
    render({**summary, "groups": {"analytics": {
        "rebalances": 3, "partition_unowned_ms": 1500.0, "final_lag_total": 74,
        "max_lag_total": 1599}}}, console)
    plain = console.export_text()
    assert "group analytics" in plain
    assert "3 rebalances, partitions unowned 1,500.000 ms, lag at end 74, max total lag 1,599" \
        in plain
    console = Console(record=True, width=140, force_terminal=True, color_system="standard")
    render(summary, console)
    styled = console.export_text(styles=True)
    assert "\x1b[32mpass" in styled and "\x1b[31mfail" in styled
