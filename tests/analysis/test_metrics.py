"""Per-second metrics: history-derived series against an independent computation, gauge
samples, and a deterministic CSV."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from analysis.metrics import MetricsRecorder

US_PER_S = 1_000_000


def derived(recorder, metric, entity="cluster"):
    """{second: value} of one metric from the recorder's public frame."""
    frame = recorder.frame()
    rows = frame[(frame["metric"] == metric) & (frame["entity"] == entity)]
    return dict(zip(rows["time_s"].astype(int), rows["value"]))


def test_per_second_counts_match_the_ground_truth(run):
    recorder = MetricsRecorder()
    recorder.add_history(run.history, end_us=run.duration_us)
    acked = Counter(t["complete_us"] // US_PER_S for t in run.truth if t["type"] == "ok")
    attempts = Counter(t["invoke_us"] // US_PER_S for t in run.truth)
    failed = Counter(t["complete_us"] // US_PER_S for t in run.truth if t["type"] == "fail")
    seconds = range(run.duration_us // US_PER_S + 1)
    assert derived(recorder, "acked_per_s") == {s: acked.get(s, 0) for s in seconds}
    assert derived(recorder, "send_attempts_per_s") == {s: attempts.get(s, 0) for s in seconds}
    assert derived(recorder, "send_failed_per_s") == {s: failed.get(s, 0) for s in seconds}
    assert sum(derived(recorder, "acked_per_s").values()) == sum(
        t["type"] == "ok" for t in run.truth)


def test_per_partition_acked_rate_matches_the_ground_truth(run):
    recorder = MetricsRecorder()
    recorder.add_history(run.history)
    expected = Counter(t["complete_us"] // US_PER_S for t in run.truth
                       if t["type"] == "ok" and t["partition"] == 2)
    got = derived(recorder, "acked_per_s", entity="orders/2")
    assert {s: v for s, v in got.items() if v} == dict(expected)


@pytest.mark.parametrize("label,q", [("p50", 50), ("p99", 99), ("p999", 99.9)])
def test_latency_percentiles_per_second_match_numpy(run, label, q):
    recorder = MetricsRecorder()
    recorder.add_history(run.history)
    by_second: dict[int, list[int]] = {}
    for t in run.truth:
        if t["type"] == "ok":
            by_second.setdefault(t["complete_us"] // US_PER_S, []).append(
                t["complete_us"] - t["invoke_us"])
    got = derived(recorder, f"ack_latency_{label}_ms")
    assert sorted(got) == sorted(by_second)
    for second, latencies_us in by_second.items():
        assert got[second] == pytest.approx(np.percentile(latencies_us, q) / 1000, abs=1e-6)


def test_latency_of_a_hand_made_second():
    """Four acks in second 1 with latencies 1, 2, 3, 10 ms: p50 2.5 ms (linear)."""
    history, index = [], 0
    for n, latency_ms in enumerate([1, 2, 3, 10]):
        value = {"id": f"p1-{n}", "topic": "t", "partition": 0}
        history.append({"index": index, "time_us": 1_000_000 + n, "process": "p1",
                        "type": "invoke", "f": "send", "value": value})
        history.append({"index": index + 1, "time_us": 1_000_000 + n + latency_ms * 1000,
                        "process": "p1", "type": "ok", "f": "send", "value": value})
        index += 2
    history.sort(key=lambda o: (o["time_us"], o["index"]))
    for i, o in enumerate(history):
        o["index"] = i
    recorder = MetricsRecorder()
    recorder.add_history(history)
    assert derived(recorder, "ack_latency_p50_ms") == {1: 2.5}
    assert derived(recorder, "acked_per_s") == {0: 0, 1: 4}


def test_a_second_without_acks_has_no_latency_row_but_a_zero_rate():
    value = {"id": "p1-0", "topic": "t", "partition": 0}
    history = [{"index": 0, "time_us": 0, "process": "p1", "type": "invoke", "f": "send",
                "value": value},
               {"index": 1, "time_us": 2_500_000, "process": "p1", "type": "ok", "f": "send",
                "value": value}]
    recorder = MetricsRecorder()
    recorder.add_history(history, end_us=3_000_000)
    assert derived(recorder, "acked_per_s") == {0: 0, 1: 0, 2: 1, 3: 0}
    assert derived(recorder, "ack_latency_p99_ms") == {2: 2500.0}


def test_gauges_expand_mappings_and_keep_the_last_sample_of_an_instant():
    recorder = MetricsRecorder()
    recorder.sample(1_000_000, "group", "analytics", lag={"orders/1": 4, "orders/0": 9})
    recorder.sample(1_000_000, "partition", "orders/0", isr_size=3, under_replicated=False)
    recorder.sample(1_000_000, "partition", "orders/0", isr_size=2, leader=None)
    frame = recorder.frame().set_index(["entity", "metric"])["value"]
    assert frame[("analytics", "lag[orders/0]")] == 9
    assert frame[("analytics", "lag[orders/1]")] == 4
    assert frame[("orders/0", "isr_size")] == 2
    assert frame[("orders/0", "under_replicated")] == 0
    assert math.isnan(frame[("orders/0", "leader")])


@pytest.mark.parametrize("kwargs,error", [
    ({"kind": "broker"}, ValueError),
    ({"time_us": -1}, ValueError),
    ({"time_us": 1.5}, ValueError),
    ({"leader": "leader"}, TypeError),
    ({"leader": [1]}, TypeError),
])
def test_bad_samples_are_rejected(kwargs, error):
    args = {"time_us": 0, "kind": "partition", "entity": "orders/0", "leader": 1, **kwargs}
    with pytest.raises(error):
        MetricsRecorder().sample(args.pop("time_us"), args.pop("kind"), args.pop("entity"),
                                 **args)


def test_cluster_and_group_figures_are_derived_at_each_instant():
    recorder = MetricsRecorder()
    for partition, (leader, under) in enumerate([(1, True), (None, True), (-1, False),
                                                 (2, False)]):
        recorder.sample(2_000_000, "partition", f"t/{partition}", leader=leader,
                        under_replicated=under)
    recorder.sample(2_000_000, "group", "g", lag={"t/0": 4, "t/1": 10, "t/2": None})
    recorder.sample(2_000_000, "group", "h", lag={"t/0": 1})
    values = recorder.frame().set_index(["entity", "metric"])["value"]
    assert values[("cluster", "under_replicated_partitions")] == 2
    assert values[("cluster", "leaderless_partitions")] == 2
    assert (values[("g", "lag_total")], values[("g", "lag_max")]) == (14, 10)
    assert (values[("h", "lag_total")], values[("h", "lag_max")]) == (1, 1)


def test_group_lag_totals_per_topic_count_kafka_lag_only():
    recorder = MetricsRecorder()
    recorder.sample(1_000_000, "group", "g", lag={"a/0": 4, "a/1": 6, "b.x/0": 7},
                    position_lag={"a/0": 100}, committed_offset={"a/0": 50})
    values = recorder.frame().set_index(["entity", "metric"])["value"]
    assert values[("g", "lag_total[a]")] == 10
    assert values[("g", "lag_total[b.x]")] == 7
    assert (values[("g", "lag_total")], values[("g", "lag_max")]) == (17, 7)
    assert values[("g", "position_lag[a/0]")] == 100
    assert "position_lag_total" not in set(recorder.frame()["metric"])


def test_a_node_id_gauge_is_recorded_as_its_number():
    recorder = MetricsRecorder()
    recorder.sample(0, "partition", "orders/0", leader="b3")
    recorder.sample(0, "partition", "orders/1", leader=None)
    values = dict(zip(recorder.frame()["entity"], recorder.frame()["value"]))
    assert values["orders/0"] == 3 and math.isnan(values["orders/1"])


def test_csv_is_sorted_and_independent_of_sampling_order(run, tmp_path):
    calls = [(t, kind, entity, {metric: value})
             for (t, kind, entity, metric), value in run.recorder.gauges.items()]
    paths = []
    for n, seed in enumerate([1, 2]):
        shuffled = calls[:]
        random.Random(seed).shuffle(shuffled)
        recorder = MetricsRecorder()
        for t, kind, entity, values in shuffled:
            recorder.sample(t, kind, entity, **values)
        recorder.add_history(run.history)
        paths.append(tmp_path / f"metrics{n}.csv")
        recorder.write_metrics_csv(paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    lines = paths[0].read_text().splitlines()
    assert lines[0] == "time_s,kind,entity,metric,value"
    keys = [line.split(",")[:4] for line in lines[1:]]
    assert keys == sorted(keys, key=lambda k: (float(k[0]), k[1], k[2], k[3]))
