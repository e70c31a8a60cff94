"""Write a run's results folder (SCENARIOS.md "Running"): summary.json, history.jsonl,
events.jsonl, metrics.csv and plots/*.png.

Every file is a function of its inputs alone, so the same run writes the same bytes (apart
from summary.json's wall-clock fields): history lines in index order with the contract's
field order, events in the order given with sorted keys, metrics sorted, plots without
dates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from analysis.history import FIELDS, history_frames, load_history
from analysis.metrics import US_PER_S, MetricsRecorder
from analysis.plots import write_plots
from analysis.summary import stable, write_summary


def write_results(out_dir: str | Path, summary: Mapping[str, Any], history: Any,
                  events: Iterable[Mapping[str, Any]], recorder: MetricsRecorder,
                  faults: Iterable[Mapping[str, Any]]) -> Path:
    """Write every results file into out_dir (created if needed) and return it. The
    recorder gets the history-derived series here unless the caller added them already."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ops = sorted(load_history(history), key=lambda op: op["index"])
    end_us = round(float(summary.get("sim_seconds") or 0.0) * US_PER_S)
    if not recorder.history_added:
        recorder.add_history(history_frames(ops), end_us=end_us)
    write_summary(out / "summary.json", summary)
    write_history_jsonl(out / "history.jsonl", ops)
    write_events_jsonl(out / "events.jsonl", events)
    recorder.write_metrics_csv(out / "metrics.csv")
    end_s = max(end_us, recorder.end_us) / US_PER_S
    write_plots(out / "plots", recorder.frame(), faults, end_s=end_s if end_s > 0 else None)
    return out


def write_history_jsonl(path: Path, ops: Iterable[Mapping[str, Any]]) -> None:
    """One op per line: index, time_us, process, type, f, value (values as given)."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for op in ops:
            out.write(json.dumps({name: stable(op.get(name)) for name in FIELDS}) + "\n")


def write_events_jsonl(path: Path, events: Iterable[Mapping[str, Any]]) -> None:
    """One event per line, keys sorted; values that are not JSON become strings."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for event in events:
            out.write(json.dumps(stable(dict(event)), sort_keys=True) + "\n")
