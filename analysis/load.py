"""Read a results folder back (for notebooks): `load_run(dir)` gives the summary dict and
the history, metrics and events as DataFrames, with the paired history tables on demand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.history import FIELDS, HistoryFrames, history_frames, load_history
from analysis.metrics import COLUMNS


@dataclass
class Run:
    """One run's results. `history` has one row per op (the six SCENARIOS.md fields);
    `metrics` is metrics.csv (time_s, kind, entity, metric, value; NaN = unknown);
    `events` one row per event (columns are the union of the events' keys)."""

    path: Path
    summary: dict[str, Any]
    history: pd.DataFrame
    metrics: pd.DataFrame
    events: pd.DataFrame
    ops: list[dict] = field(repr=False)

    @cached_property
    def frames(self) -> HistoryFrames:
        """The history paired and split by kind: .sends, .polls, .records, .commits..."""
        return history_frames(self.ops)

    def metric(self, kind: str, metric: str) -> pd.DataFrame:
        """One metric as a wide table: time_s rows, one column per entity."""
        rows = self.metrics[(self.metrics["kind"] == kind) & (self.metrics["metric"] == metric)]
        return rows.pivot_table(index="time_s", columns="entity", values="value",
                                aggfunc="last")


def load_run(path: str | Path) -> Run:
    """Load summary.json, history.jsonl, metrics.csv and events.jsonl from a results folder."""
    path = Path(path)
    summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    ops = load_history(path / "history.jsonl")
    history = pd.DataFrame(ops, columns=list(FIELDS))
    metrics = read_metrics_csv(path / "metrics.csv")
    events_path = path / "events.jsonl"
    events = pd.DataFrame(read_jsonl(events_path) if events_path.exists() else [])
    return Run(path=path, summary=summary, history=history, metrics=metrics, events=events,
               ops=ops)


def read_metrics_csv(path: str | Path) -> pd.DataFrame:
    """metrics.csv with fixed dtypes; only an empty value cell is missing (an entity named
    "NA" stays a name)."""
    frame = pd.read_csv(path, dtype={"kind": str, "entity": str, "metric": str},
                        keep_default_na=False, na_values={"value": [""]})
    return frame[COLUMNS].astype({"time_s": "float64", "value": "float64", "kind": "object",
                                  "entity": "object", "metric": "object"})


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
