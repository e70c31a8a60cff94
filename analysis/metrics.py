"""Per-second metrics of a run, in one tidy long table (time_s, kind, entity, metric, value).

Two sources feed it:
- gauges the run loop samples once per simulated second and at the end
  (`MetricsRecorder.sample`): node, partition, group and cluster state;
- series derived from the history (`MetricsRecorder.add_history`): per simulated second,
  acknowledged sends (by ack time; cluster-wide and per partition), send attempts (by
  invoke time), failed and unknown sends, and ack latency p50 / p99 / p999 (numpy's
  default linear percentile over µs, reported in ms) of the sends acknowledged in that
  second;
- figures aggregated from the gauges at each sampled instant (under-replicated and
  leaderless partition counts, each group's total and largest lag, and its total per
  topic).

A derived row's `time_s` is the start of its one-second bucket [time_s, time_s + 1); a
gauge's is the instant it was sampled. Values are numbers (bools count 1/0; None, a gauge
unknown at that instant, is an empty cell); floats are rounded to 6 decimals once, here, so
the CSV round-trips exactly. Rows are sorted by (time, kind, entity, metric), and a gauge
sampled twice at one instant keeps its last value, so the output is deterministic.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.history import HistoryFrames, history_frames

NODE_ID = re.compile(r"[a-z]+(\d+)")
KINDS = ("node", "partition", "group", "cluster")
COLUMNS = ["time_s", "kind", "entity", "metric", "value"]
US_PER_S = 1_000_000
PERCENTILES = (("p50", 50.0), ("p99", 99.0), ("p999", 99.9))
CLUSTER = "cluster"  # the entity of cluster-wide rows


class MetricsRecorder:
    """Collects gauge samples during a run and history-derived series after it.

    Gauge names are free; the analysis reads these when present: partition `leader`
    (broker id or node id "b2"; None or -1 = no leader), `isr_size`, `high_watermark`,
    `log_end_offset`, `under_replicated`; node `bytes_on_disk`, `up`; group `lag` as a
    mapping partition -> lag (stored as metrics `lag[orders/3]`; the run loop samples
    Kafka's lag, log end minus committed, there, and also `position_lag[...]` and
    `committed_offset[...]`, which are not aggregated); cluster `leader_elections`
    (running total). From these, at each sampled instant, the rows also hold cluster
    `under_replicated_partitions` and `leaderless_partitions`, and per group `lag_total`,
    `lag_max` and per topic `lag_total[orders]` (unless sampled directly).
    """

    def __init__(self) -> None:
        self.gauges: dict[tuple[int, str, str, str], float] = {}
        self.derived: dict[tuple[int, str, str, str], float] = {}
        self.history_added = False
        self.end_us = 0

    def sample(self, time_us: int, kind: str, entity: str, **values: Any) -> None:
        """Record gauges of one entity at one simulated instant. A mapping value expands to
        one metric per key: `lag={"orders/3": 5}` -> metric `lag[orders/3]`."""
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        if not isinstance(time_us, int | np.integer) or isinstance(time_us, bool) or time_us < 0:
            raise ValueError(f"time_us {time_us!r}: expected a non-negative integer")
        time_us = int(time_us)
        self.end_us = max(self.end_us, time_us)
        for name, value in flatten(values):
            self.gauges[(time_us, kind, str(entity), name)] = number(value, name)

    def add_history(self, history: Any, end_us: int | None = None) -> None:
        """Derive the per-second series from a history (list of op dicts, a history.jsonl
        path or HistoryFrames), over seconds 0 .. end (default: the last sample or op)."""
        frames = history if isinstance(history, HistoryFrames) else history_frames(history)
        last_op_us = int(frames.ops["complete_time_us"].max()) if len(frames.ops) else 0
        last_us = max(self.end_us, last_op_us, end_us or 0)
        self.end_us = last_us
        self.derived = history_series(frames.sends, last_us // US_PER_S + 1)
        self.history_added = True

    def rows(self) -> list[tuple[int, str, str, str, float]]:
        """Every row as (time_us, kind, entity, metric, value), sorted."""
        merged = {**aggregate_gauges(self.gauges), **self.gauges, **self.derived}
        return [(*key, merged[key]) for key in sorted(merged)]

    def frame(self) -> pd.DataFrame:
        """The tidy table: time_s (float), kind, entity, metric, value (float, NaN = unknown)."""
        rows = self.rows()
        frame = pd.DataFrame(
            {"time_s": [row[0] / US_PER_S for row in rows],
             "kind": [row[1] for row in rows], "entity": [row[2] for row in rows],
             "metric": [row[3] for row in rows], "value": [row[4] for row in rows]},
            columns=COLUMNS,
        )
        return frame.astype({"time_s": "float64", "value": "float64", "kind": "object",
                             "entity": "object", "metric": "object"})

    def write_metrics_csv(self, path: str | Path) -> None:
        """metrics.csv: header time_s,kind,entity,metric,value; one row per value."""
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(COLUMNS)
            for time_us, kind, entity, metric, value in self.rows():
                writer.writerow([format_number(time_us / US_PER_S), kind, entity, metric,
                                 format_number(value)])


def aggregate_gauges(gauges: Mapping[tuple[int, str, str, str], float]) -> dict:
    """Cluster and group figures at each sampled instant, from partition and group gauges:
    how many partitions are under-replicated or leaderless; each group's total and largest
    lag (`lag[...]` only), and its total per topic. Sums of counts and integer lags are exact, so their order does not matter."""
    out: dict[tuple[int, str, str, str], float] = {}
    for (time_us, kind, entity, metric), value in gauges.items():
        if kind == "partition" and metric in ("under_replicated", "leader"):
            if metric == "under_replicated":
                name, counts = "under_replicated_partitions", value > 0
            else:
                name, counts = "leaderless_partitions", math.isnan(value) or value < 0
            key = (time_us, "cluster", CLUSTER, name)
            out[key] = out.get(key, 0.0) + float(counts)
        elif kind == "group" and metric.startswith("lag[") and not math.isnan(value):
            total, largest = (time_us, kind, entity, "lag_total"), (time_us, kind, entity, "lag_max")
            out[total] = out.get(total, 0.0) + value
            out[largest] = max(out.get(largest, value), value)
            topic = metric[4:-1].rpartition("/")[0]
            if topic:
                by_topic = (time_us, kind, entity, f"lag_total[{topic}]")
                out[by_topic] = out.get(by_topic, 0.0) + value
    return out


def flatten(values: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for name in sorted(values):
        value = values[name]
        if isinstance(value, Mapping):
            for key in sorted(value, key=str):
                yield f"{name}[{key}]", value[key]
        else:
            yield name, value


def number(value: Any, name: str) -> float:
    """A gauge value as a float rounded to 6 decimals; None -> NaN; a node id such as "b3"
    -> its number 3 (broker b3 is broker id 3)."""
    if value is None:
        return math.nan
    if isinstance(value, bool | int | float | np.integer | np.floating):
        return round(float(value), 6)
    if isinstance(value, str):
        match = NODE_ID.fullmatch(value)
        if match:
            return float(match.group(1))
    raise TypeError(f"metric {name!r}: {value!r} is neither a number nor a node id like b3")


def format_number(value: float) -> str:
    """Stable text for a number: integers without a point, NaN as an empty cell."""
    if math.isnan(value):
        return ""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(round(value, 6))


def history_series(sends: pd.DataFrame, n_seconds: int) -> dict[tuple, float]:
    """Per-second send series for seconds 0 .. n_seconds - 1: cluster-wide counts and ack
    latency percentiles, and acked sends per partition."""
    rows: dict[tuple, float] = {}
    seconds = np.arange(n_seconds)
    attempt_s = sends["invoke_time_us"].to_numpy() // US_PER_S
    complete_s = sends["complete_time_us"].to_numpy() // US_PER_S
    kinds = sends["type"].to_numpy()
    counts = {
        "send_attempts_per_s": attempt_s,
        "acked_per_s": complete_s[kinds == "ok"],
        "send_failed_per_s": complete_s[kinds == "fail"],
        "send_info_per_s": complete_s[kinds == "info"],
    }
    for metric, buckets in counts.items():
        per_second = np.bincount(buckets, minlength=n_seconds)
        for second in seconds:
            rows[(int(second) * US_PER_S, "cluster", CLUSTER, metric)] = float(per_second[second])
    acked = sends[sends["type"] == "ok"]
    acked_s = acked["complete_time_us"].to_numpy() // US_PER_S
    order = np.argsort(acked_s, kind="stable")  # group by second in one sort, not per second
    acked_s, latency_us = acked_s[order], acked["latency_us"].to_numpy()[order]
    seconds_acked, starts = np.unique(acked_s, return_index=True)
    for second, values_us in zip(seconds_acked, np.split(latency_us, starts[1:])):
        for label, q in PERCENTILES:
            rows[(int(second) * US_PER_S, "cluster", CLUSTER, f"ack_latency_{label}_ms")] = round(
                float(np.percentile(values_us, q)) / 1000.0, 6)
    by_partition = acked.dropna(subset=["topic", "partition"])
    for (topic, partition), group in by_partition.groupby(["topic", "partition"], sort=True):
        per_second = np.bincount(group["complete_time_us"].to_numpy() // US_PER_S,
                                 minlength=n_seconds)
        for second in seconds:
            rows[(int(second) * US_PER_S, "partition", f"{topic}/{partition}",
                  "acked_per_s")] = float(per_second[second])
    return rows


def latency_percentiles_ms(latency_us: Iterable[int]) -> dict[str, float | None]:
    """p50 / p99 / p999 of latencies in µs, in ms (None each when there are none)."""
    values = np.asarray(list(latency_us), dtype="float64")
    if values.size == 0:
        return {label: None for label, _ in PERCENTILES}
    return {label: round(float(np.percentile(values, q)) / 1000.0, 6)
            for label, q in PERCENTILES}
