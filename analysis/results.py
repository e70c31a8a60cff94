"""Write a run's results folder (SCENARIOS.md "Running"): summary.json, history.jsonl,
events.jsonl, metrics.csv and plots/*.png.

Every file is a function of its inputs alone, so the same run writes the same bytes (apart
from summary.json's wall-clock fields): history lines in index order with the contract's
field order, events in the order given with sorted keys, metrics sorted, plots without
dates. JSON lines are compact (msgspec): a long run's history has millions of lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

import msgspec

from analysis.history import HistoryFrames, history_frames, load_history
from analysis.metrics import US_PER_S, MetricsRecorder
from analysis.plots import write_plots
from analysis.summary import write_summary


def write_results(out_dir: str | Path, summary: Mapping[str, Any], history: Any,
                  events: Iterable[Mapping[str, Any]], recorder: MetricsRecorder,
                  faults: Iterable[Mapping[str, Any]],
                  frames: HistoryFrames | None = None) -> Path:
    """Write every results file into out_dir (created if needed) and return it.

    The recorder gets the history-derived series here unless the caller added them
    already; pass `frames` (history_frames(history), as given to build_summary) to save
    pairing the history a second time."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ops = load_history(history)
    end_us = round(float(summary.get("sim_seconds") or 0.0) * US_PER_S)
    if not recorder.history_added:
        recorder.add_history(frames if frames is not None else history_frames(ops),
                             end_us=end_us)
    write_summary(out / "summary.json", summary)
    write_history_jsonl(out / "history.jsonl", ops)
    write_events_jsonl(out / "events.jsonl", events)
    recorder.write_metrics_csv(out / "metrics.csv")
    write_plots(out / "plots", recorder.frame(), faults, end_s=end_us / US_PER_S)
    return out


def write_history_jsonl(path: Path, ops: list[dict]) -> None:
    """One op per line, in index order: index, time_us, process, type, f, value (the value
    as given; the run loop builds it deterministically)."""
    ops = sorted(ops, key=itemgetter("index"))  # linear when already in order
    encoder = msgspec.json.Encoder(enc_hook=str)
    with open(path, "wb") as out:
        for start in range(0, len(ops), 10_000):
            out.write(b"".join(
                encoder.encode({"index": op["index"], "time_us": op["time_us"],
                                "process": op["process"], "type": op["type"], "f": op["f"],
                                "value": op.get("value")}) + b"\n"
                for op in ops[start:start + 10_000]))


def write_events_jsonl(path: Path, events: Iterable[Mapping[str, Any]]) -> None:
    """One event per line, keys sorted; values that are not JSON become strings."""
    encoder = msgspec.json.Encoder(enc_hook=str, order="sorted")
    with open(path, "wb") as out:
        for event in events:
            out.write(encoder.encode(event) + b"\n")
