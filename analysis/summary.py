"""A run's summary: the summary.json dict (SCENARIOS.md "Running") and its printed table.

`build_summary` computes the figures from the history and the metrics recorder; the run
loop supplies what only it knows (scenario, seed, trace hash, check results, lost writes,
times). `write_summary` writes it with sorted keys and floats rounded to 6 decimals, so the
same run gives the same bytes; only `wall_seconds` and `sim_seconds_per_wall_second` hold
wall-clock figures. `render` prints it as a rich table to a given Console.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analysis.history import HistoryFrames, history_frames
from analysis.metrics import US_PER_S, MetricsRecorder, latency_percentiles_ms

FINAL_LAG_PARTITIONS = 32  # a group's final lag per partition is listed up to this many


def build_summary(
    *,
    scenario: str,
    seed: int,
    trace_hash: str,
    checks: Mapping[str, Any],
    history: Any,
    recorder: MetricsRecorder | None,
    sim_seconds: float,
    wall_seconds: float,
    expect: Mapping[str, str] | None = None,
    faults: Iterable[Mapping[str, Any]] = (),
    leader_changes: Iterable[Any] | None = None,
    leader_elections: int | None = None,
    unavailable_ms: float | None = None,
    lost: int | None = None,
) -> dict[str, Any]:
    """The summary dict. `checks`: name -> {"result": "pass"|"fail", "witnesses": [...]}
    (or a CheckResult-like object with `result` or `passed`, `witnesses`, and optionally
    `anomalies` and `stats`, which are kept). `expect`: check -> "pass"|"fail" (default:
    every check passes; a check that expect does not name must pass). `history`: op dicts,
    Op objects, a path or HistoryFrames. `sim_seconds`: the simulated length of the run,
    which throughput divides by.

    `lost` (acknowledged writes missing from the final logs) defaults to the lost_writes
    check's `stats["lost"]`, and is None when that check did not run.

    `leader_changes` (the checks' FinalState.leader_changes: time_us, partition, leader,
    initial leaders included) gives exact leaderless time and elections; without them
    both come from the recorder's gauges. `leader_elections` / `unavailable_ms` override."""
    frames = history if isinstance(history, HistoryFrames) else history_frames(history)
    sends = frames.sends
    acked = sends[sends["type"] == "ok"]
    recorder = recorder or MetricsRecorder()
    check_results = {name: normalise_check(checks[name]) for name in sorted(checks)}
    changes = None if leader_changes is None else leader_timelines(leader_changes)
    if leader_elections is None:
        leader_elections = (gauge_max(recorder, "cluster", "leader_elections")
                            if changes is None else elections_from_changes(changes))
    if unavailable_ms is None:
        unavailable_ms = (leaderless_ms(recorder) if changes is None else
                          leaderless_ms_from_changes(changes, round(sim_seconds * US_PER_S)))
    return {
        "scenario": scenario,
        "seed": int(seed),
        "trace_hash": trace_hash,
        "checks": check_results,
        "expected_ok": expected_ok(check_results, expect),
        "produced": len(sends),
        "acked": len(acked),
        "failed": int((sends["type"] == "fail").sum()),
        "unknown": int((sends["type"] == "info").sum()),
        "lost": lost if lost is not None else lost_from_checks(check_results),
        "throughput_msgs_per_s": round(len(acked) / sim_seconds, 6) if sim_seconds else 0.0,
        "latency_ms": latency_percentiles_ms(acked["latency_us"]),
        "max_consumer_lag": max_consumer_lag(recorder),
        "leader_elections": int(leader_elections or 0),
        "unavailable_ms": float(unavailable_ms),
        "longest_ack_gap_ms": longest_ack_gap_ms(sends),
        "wall_seconds": round(float(wall_seconds), 3),
        "sim_seconds": float(sim_seconds),
        "sim_seconds_per_wall_second": (round(sim_seconds / wall_seconds, 3)
                                        if wall_seconds > 0 else None),
        "faults": normalise_faults(faults),
    }


def normalise_check(result: Any) -> dict[str, Any]:
    """{"result": "pass"|"fail", "witnesses": [...]} from a dict or a result object."""
    if isinstance(result, Mapping):
        verdict, witnesses = result.get("result", result.get("passed")), result.get("witnesses")
    else:
        verdict = getattr(result, "result", getattr(result, "passed", None))
        witnesses = getattr(result, "witnesses", None)
    if isinstance(verdict, bool):
        verdict = "pass" if verdict else "fail"
    if verdict not in ("pass", "fail"):
        raise ValueError(f"check result {result!r}: expected result 'pass' or 'fail'")
    out = {"result": verdict, "witnesses": list(witnesses or [])}
    for extra in ("anomalies", "stats"):
        found = result.get(extra) if isinstance(result, Mapping) else getattr(result, extra, None)
        if found is not None:
            out[extra] = found
    return out


def lost_from_checks(checks: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The lost_writes check's count of lost acknowledged writes, when it ran."""
    stats = checks.get("lost_writes", {}).get("stats") or {}
    return int(stats["lost"]) if stats.get("lost") is not None else None


def expected_ok(checks: Mapping[str, Mapping[str, Any]], expect: Mapping[str, str] | None) -> bool:
    """True when every check's result is what `expect` names (default: pass)."""
    expect = expect or {}
    return all(checks[name]["result"] == expect.get(name, "pass") for name in checks)


def gauge_values(recorder: MetricsRecorder, kind: str, metric_prefix: str) -> dict:
    """(time_us, entity, metric) -> value of gauges whose metric starts with the prefix."""
    return {(time_us, entity, metric): value
            for (time_us, k, entity, metric), value in recorder.gauges.items()
            if k == kind and (metric == metric_prefix or metric.startswith(metric_prefix + "["))}


def gauge_max(recorder: MetricsRecorder, kind: str, metric: str) -> float | None:
    values = [v for v in gauge_values(recorder, kind, metric).values() if not math.isnan(v)]
    return max(values) if values else None


def max_consumer_lag(recorder: MetricsRecorder) -> int | None:
    """The largest lag any group had on any partition (None: no group lag sampled)."""
    lag = gauge_max(recorder, "group", "lag")
    return None if lag is None else int(lag)


def group_lag_figures(recorder: MetricsRecorder,
                      max_partitions: int = FINAL_LAG_PARTITIONS) -> dict[str, dict[str, Any]]:
    """Per group, from its `lag[topic/p]` gauges (Kafka's lag: log end minus committed):
    `final_lag_total`, the sum at the group's last sampled instant; `final_lag`,
    partition -> lag at that instant (only when the group has at most `max_partitions`
    partitions); `max_lag_total`, the largest sum at any sampled instant. A lag unknown at
    an instant (None) counts in neither."""
    by_group: dict[str, dict[int, dict[str, float]]] = {}
    for (time_us, entity, metric), value in gauge_values(recorder, "group", "lag").items():
        if metric != "lag" and not math.isnan(value):
            by_group.setdefault(entity, {}).setdefault(time_us, {})[metric[4:-1]] = value
    out: dict[str, dict[str, Any]] = {}
    for group in sorted(by_group):
        instants = by_group[group]
        final = instants[max(instants)]
        figures: dict[str, Any] = {
            "final_lag_total": int(sum(final.values())),
            "max_lag_total": int(max(sum(lags.values()) for lags in instants.values()))}
        if len(final) <= max_partitions:
            figures["final_lag"] = {name: int(final[name]) for name in sorted(final)}
        out[group] = figures
    return out


def leaderless_ms(recorder: MetricsRecorder) -> float:
    """Simulated ms during which some partition had no leader (leader gauge None or < 0),
    to the resolution of the sampling: a sample holds until the next one of its partition."""
    by_partition: dict[str, list[tuple[int, float]]] = {}
    for (time_us, entity, _), value in sorted(gauge_values(recorder, "partition", "leader").items()):
        by_partition.setdefault(entity, []).append((time_us, value))
    intervals = []
    for samples in by_partition.values():
        for (start_us, leader), (end_us, _) in pairwise(samples):
            if no_leader(leader):
                intervals.append((start_us, end_us))
    return round(union_length_us(intervals) / 1000.0, 3)


def leader_timelines(changes: Iterable[Any]) -> dict[str, list[tuple[int, Any]]]:
    """partition -> [(time_us, leader)] in time order, from LeaderChange objects or dicts."""
    timelines: dict[str, list[tuple[int, Any]]] = {}
    for change in changes:
        get = change.get if isinstance(change, Mapping) else lambda name, c=change: getattr(c, name)
        timelines.setdefault(str(get("partition")), []).append((int(get("time_us")),
                                                                get("leader")))
    return {name: sorted(timelines[name], key=lambda entry: entry[0])
            for name in sorted(timelines)}


def leaderless_ms_from_changes(timelines: Mapping[str, list[tuple[int, Any]]],
                               end_us: int) -> float:
    """Simulated ms during which some partition had no leader (None or a negative id),
    exactly, from leader timelines; a partition's last state lasts until end_us."""
    intervals = []
    for timeline in timelines.values():
        for number, (start_us, leader) in enumerate(timeline):
            stop_us = timeline[number + 1][0] if number + 1 < len(timeline) else end_us
            if no_leader(leader) and stop_us > start_us:
                intervals.append((start_us, stop_us))
    return round(union_length_us(intervals) / 1000.0, 3)


def no_leader(leader: Any) -> bool:
    """None, NaN (a gauge that was None) and negative broker ids (Kafka's -1) mean none."""
    if leader is None:
        return True
    if isinstance(leader, int | float):
        return math.isnan(leader) or leader < 0
    return False


def elections_from_changes(timelines: Mapping[str, list[tuple[int, Any]]]) -> int:
    """Leaders elected after each partition's first: changes to a leader that differ
    from the partition's previous state."""
    count = 0
    for timeline in timelines.values():
        previous = timeline[0][1] if timeline else None
        for _, leader in timeline[1:]:
            if leader is not None and leader != previous:
                count += 1
            previous = leader
    return count


def union_length_us(intervals: list[tuple[int, int]]) -> int:
    total_us, reach_us = 0, None
    for start_us, end_us in sorted(intervals):
        if reach_us is None or start_us > reach_us:
            total_us += end_us - start_us
            reach_us = end_us
        elif end_us > reach_us:
            total_us += end_us - reach_us
            reach_us = end_us
    return total_us


def longest_ack_gap_ms(sends: Any) -> float | None:
    """The longest simulated time, from the first send, without an acknowledged send."""
    if sends.empty:
        return None
    acks_us = np.sort(sends.loc[sends["type"] == "ok", "complete_time_us"].to_numpy())
    first_us = int(sends["invoke_time_us"].min())
    last_us = int(sends["complete_time_us"].max())
    points = np.concatenate([[first_us], acks_us, [last_us]])
    return round(float(np.diff(points).max()) / 1000.0, 3)


def normalise_faults(faults: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Faults as dicts with start_us, end_us (None: until the end), label and whatever
    else the run loop recorded (op, targets...), ordered by start time then label."""
    out = []
    for fault in faults:
        if "start_us" not in fault or "label" not in fault:
            raise ValueError(f"fault {dict(fault)!r}: needs start_us and label")
        out.append({**fault, "end_us": fault.get("end_us")})
    return sorted(out, key=lambda f: (f["start_us"], str(f["label"])))


def stable(value: Any) -> Any:
    """JSON-ready copy: floats rounded to 6 decimals, NaN/inf -> None, numpy scalars and
    tuples/sets converted, mapping keys as strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): stable(value[key]) for key in value}
    if isinstance(value, set | frozenset):
        return [stable(item) for item in sorted(value, key=repr)]
    if isinstance(value, list | tuple):
        return [stable(item) for item in value]
    return str(value)


def summary_json(summary: Mapping[str, Any]) -> str:
    """The summary as JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(stable(summary), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_summary(path: str | Path, summary: Mapping[str, Any]) -> None:
    Path(path).write_text(summary_json(summary), encoding="utf-8")


def render(summary: Mapping[str, Any], console: Console) -> None:
    """Print the summary as a table: checks coloured pass/fail, then the figures."""
    verdict = "[green]as expected[/]" if summary["expected_ok"] else "[bold red]NOT as expected[/]"
    table = Table(title=f"{summary['scenario']}  seed {summary['seed']}  {verdict}",
                  show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, check in summary["checks"].items():
        colour = "green" if check["result"] == "pass" else "red"
        count = f" ({check['anomalies']} found)" if check.get("anomalies") else ""
        witness = f"  first witness: {check['witnesses'][0]}" if check["witnesses"] else ""
        table.add_row(f"check {escape(name)}",
                      f"[{colour}]{check['result']}[/]{escape(count + witness)}")
    latency = summary["latency_ms"]
    lost = "-" if summary["lost"] is None else f"{summary['lost']:,}"
    table.add_row("sent / acked / failed / unknown",
                  " / ".join(f"{summary.get(name) or 0:,}"
                             for name in ("produced", "acked", "failed", "unknown")))
    table.add_row("lost (acked, then missing)", lost)
    table.add_row("throughput", f"{summary['throughput_msgs_per_s']:,.1f} msg/s")
    table.add_row("ack latency p50 / p99 / p999",
                  " / ".join(ms_text(latency[label]) for label in ("p50", "p99", "p999")))
    lag = summary["max_consumer_lag"]
    table.add_row("max consumer lag", "no consumers" if lag is None else f"{lag:,}")
    for name, group in summary.get("groups", {}).items():
        table.add_row(f"group {escape(name)}", group_text(group))
    table.add_row("leader elections", str(summary["leader_elections"]))
    table.add_row("unavailable (no leader)", ms_text(summary["unavailable_ms"]))
    if summary.get("longest_ack_gap_ms") is not None:
        table.add_row("longest time without an ack", ms_text(summary["longest_ack_gap_ms"]))
    speed = summary.get("sim_seconds_per_wall_second")
    speed_text = f" ({speed:g} sim s per wall s)" if speed else ""
    table.add_row("simulated / wall time",
                  f"{summary['sim_seconds']:g} s / {summary['wall_seconds']:g} s{speed_text}")
    for fault in summary.get("faults", []):
        end = "end" if fault["end_us"] is None else f"{fault['end_us'] / US_PER_S:g}s"
        targets = fault.get("targets")
        target_text = f" -> {', '.join(map(str, targets))}" if targets else ""
        table.add_row(f"fault {fault['start_us'] / US_PER_S:g}s-{end}",
                      escape(f"{fault['label']}{target_text}"))
    table.add_row("trace hash", summary["trace_hash"])
    console.print(table)


def group_text(group: Mapping[str, Any]) -> str:
    """A group's line: rebalances, partition-unowned time, final and largest total lag."""
    parts = []
    if "rebalances" in group:
        parts.append(f"{group['rebalances']} rebalances")
    if group.get("partition_unowned_ms") is not None:
        parts.append(f"partitions unowned {ms_text(group['partition_unowned_ms'])}")
    if group.get("final_lag_total") is not None:
        parts.append(f"lag at end {group['final_lag_total']:,}")
    if group.get("max_lag_total") is not None:
        parts.append(f"max total lag {group['max_lag_total']:,}")
    return escape(", ".join(parts)) or "-"


def ms_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f} ms"
