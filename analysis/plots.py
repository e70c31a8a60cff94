"""Plots of a run's metrics: throughput, ack latency, consumer lag and ISR size over time,
each with the fault intervals shaded and labelled.

Files are deterministic: figures are built with the object API on an Agg canvas (no
pyplot, no display, no global backend switch), in matplotlib's default style whatever the
user's matplotlibrc says, at a fixed size and dpi, and saved without the Software
metadata (PNG output carries no date; a fixed svg.hashsalt would keep SVG ids stable too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

US_PER_S = 1_000_000
FIGSIZE_IN = (10.0, 4.0)
DPI = 100
MAX_LINES = 12  # above this many series a plot shows min / median / max instead
STABLE_RC = {"svg.hashsalt": "simlog", "path.simplify": True}  # no random SVG ids
MARGINS = {"left": 0.11, "right": 0.98, "top": 0.8, "bottom": 0.13}
LABEL_ROWS = 3
FAULT_COLOURS = ("tab:red", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive")


def write_plots(plots_dir: str | Path, metrics: pd.DataFrame,
                faults: Iterable[Mapping[str, Any]] = (),
                end_s: float | None = None) -> list[Path]:
    """Write throughput.png, latency.png, consumer_lag.png and isr_size.png into plots_dir
    from a tidy metrics frame (MetricsRecorder.frame()); faults are dicts with start_us,
    end_us (None: until the end) and label. The time axis ends at end_s (the run's
    simulated length) or at the last row, whichever is later, so that redrawing from
    metrics.csv gives the same files. Returns the paths written, sorted."""
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    faults = sorted(faults, key=lambda f: (f["start_us"], str(f["label"])))
    last_s = float(metrics["time_s"].max()) if len(metrics) else 0.0
    end_s = max(end_s or 0.0, last_s) or 1.0  # the run's end, or the last row if later
    cluster = metrics[metrics["kind"] == "cluster"]
    plots = {
        "throughput.png": Plot("Throughput", "messages / s", series(
            cluster, {"acked_per_s": "acked", "send_attempts_per_s": "attempted",
                      "send_failed_per_s": "failed", "send_info_per_s": "unknown"}),
            bucketed=True, integer=True),
        "latency.png": Plot("Ack latency (sends acknowledged in each second)", "ms", series(
            cluster, {"ack_latency_p50_ms": "p50", "ack_latency_p99_ms": "p99",
                      "ack_latency_p999_ms": "p999"}), bucketed=True),
        "consumer_lag.png": Plot("Consumer lag (log end offset - committed offset)",
                                 "records behind", lag_series(metrics), integer=True),
        "isr_size.png": Plot("ISR size per partition (lines nudged apart)", "replicas in sync",
                             per_entity(metrics, "partition", "isr_size"), integer=True,
                             nudge=True),
    }
    written = []
    with matplotlib.style.context("default"), matplotlib.rc_context(STABLE_RC):
        for name in sorted(plots):
            draw(plots_dir / name, plots[name], faults, end_s)
            written.append(plots_dir / name)
    return written


@dataclass(frozen=True)
class Plot:
    """One figure: lines by label; `bucketed` series hold each per-second value over
    [t, t + 1); `integer` values get whole-number ticks; `nudge` shifts lines of small
    integers (ISR sizes) apart so equal lines stay visible."""

    title: str
    ylabel: str
    lines: Mapping[str, pd.Series]
    bucketed: bool = False
    integer: bool = False
    nudge: bool = False


def series(frame: pd.DataFrame, metrics: Mapping[str, str]) -> dict[str, pd.Series]:
    """label -> value by time_s for the named metrics, in the given order; the first is
    always shown when present, the others only when not zero throughout."""
    out = {}
    for number, (metric, label) in enumerate(metrics.items()):
        rows = frame[frame["metric"] == metric]
        if len(rows) and (number == 0 or rows["value"].fillna(0).abs().sum() > 0):
            out[label] = rows.groupby("time_s")["value"].last().sort_index()
    return out


def per_entity(metrics: pd.DataFrame, kind: str, metric: str) -> dict[str, pd.Series]:
    """One series per entity, or min / median / max across entities when there are many."""
    rows = metrics[(metrics["kind"] == kind) & (metrics["metric"] == metric)]
    table = rows.pivot_table(index="time_s", columns="entity", values="value", aggfunc="last")
    return spread(table.sort_index().reindex(sorted(table.columns, key=natural), axis=1))


def natural(name: str) -> tuple:
    """Sort key putting orders/2 before orders/10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", str(name)))


def lag_series(metrics: pd.DataFrame) -> dict[str, pd.Series]:
    """Per group and partition lag (`group partition`), or spread when many: Kafka's lag,
    the `lag[...]` gauges (not `position_lag[...]` nor the `lag_total` aggregates)."""
    rows = metrics[(metrics["kind"] == "group") & metrics["metric"].str.startswith("lag[")]
    rows = rows.assign(series=rows["entity"] + " " + rows["metric"].str[4:-1])
    table = rows.pivot_table(index="time_s", columns="series", values="value", aggfunc="last")
    return spread(table.sort_index().reindex(sorted(table.columns, key=natural), axis=1))


def spread(table: pd.DataFrame) -> dict[str, pd.Series]:
    if table.shape[1] <= MAX_LINES:
        return {str(column): table[column].dropna() for column in table.columns}
    return {f"max of {table.shape[1]}": table.max(axis=1),
            "median": table.median(axis=1), "min": table.min(axis=1)}


def draw(path: Path, plot: Plot, faults: list[Mapping[str, Any]], end_s: float) -> None:
    """Draw one Plot, shade the faults, and save it as a PNG."""
    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    lines = plot.lines
    for number, (label, values) in enumerate(lines.items()):
        if plot.nudge:
            values = values - 0.04 * (number - (len(lines) - 1) / 2)
        if plot.bucketed and len(values):  # one value per second: hold it over [t, t + 1)
            seconds = np.arange(values.index.min(), values.index.max() + 2.0)
            values = values.reindex(seconds)
            values.iloc[-1] = values.iloc[-2]
        ax.step(values.index.to_numpy(), values.to_numpy(), where="post", label=label,
                linewidth=1.4)
    if not lines:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
                color="grey")
    ax.set_xlim(0.0, end_s)
    tops = [float(values.max()) for values in lines.values() if values.notna().any()]
    ax.set_ylim(0.0, max(tops) * 1.1 if tops and max(tops) > 0 else 1.0)
    shade_faults(ax, faults, end_s)
    ax.set_title(plot.title, loc="left", pad=4 + 17 * min(len(faults), LABEL_ROWS))
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel(plot.ylabel)
    if plot.integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(tick_text))
    ax.grid(True, alpha=0.3)
    if lines:
        ax.legend(loc="best", fontsize=8, ncols=min(len(lines), 4), framealpha=0.9)
    figure.subplots_adjust(**MARGINS)  # fixed, not tight_layout: that draws twice
    figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def tick_text(value: float, _position: int) -> str:
    """Plain tick labels with thousands separators: no 1e6 offset text."""
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:g}"


def shade_faults(ax: Axes, faults: list[Mapping[str, Any]], end_s: float) -> None:
    """Shade each fault interval and label it in a strip above the axes, staggering
    labels over LABEL_ROWS rows so that neighbours do not overwrite each other."""
    top_axis = blended_transform_factory(ax.transData, ax.transAxes)
    for number, fault in enumerate(faults):
        start_s = fault["start_us"] / US_PER_S
        stop_s = end_s if fault.get("end_us") is None else fault["end_us"] / US_PER_S
        colour = FAULT_COLOURS[number % len(FAULT_COLOURS)]
        if stop_s > start_s:
            ax.axvspan(start_s, stop_s, color=colour, alpha=0.12, linewidth=0)
        ax.axvline(start_s, color=colour, alpha=0.6, linewidth=0.8, linestyle="--")
        ax.text(start_s, 1.01 + 0.06 * (number % LABEL_ROWS), f" {fault['label']}",
                transform=top_axis, ha="left", va="bottom", fontsize=7, color=colour,
                clip_on=False)
