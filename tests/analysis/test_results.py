"""The results folder: every file written, byte-identical for the same input, and read
back by load_run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.load import load_run
from analysis.plots import write_plots
from analysis.results import write_results
from analysis.summary import build_summary

PLOTS = ["consumer_lag.png", "isr_size.png", "latency.png", "throughput.png"]
CHECKS = {"lost_writes": {"result": "pass", "witnesses": []}}


def write(run, out_dir):
    summary = build_summary(scenario="synthetic", seed=7, trace_hash="9f2c", checks=CHECKS,
                            history=run.history, recorder=run.recorder, lost=0,
                            sim_seconds=run.duration_us / 1e6, wall_seconds=0.5,
                            faults=run.faults)
    write_results(out_dir, summary, run.history, run.events, run.recorder, run.faults)
    return summary


def files(directory):
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file())


@pytest.fixture(scope="module")
def written(tmp_path_factory, run_factory):
    """The synthetic run written twice, from two independently generated copies."""
    dirs = []
    for n in range(2):
        run = run_factory()
        out = tmp_path_factory.mktemp(f"run{n}")
        summary = write(run, out)
        dirs.append((out, run, summary))
    return dirs


def test_every_results_file_is_written(written):
    out, _, _ = written[0]
    assert files(out) == ["events.jsonl", "history.jsonl", "metrics.csv",
                          *[f"plots/{name}" for name in PLOTS], "summary.json"]
    for name in PLOTS:
        data = (out / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_the_same_input_gives_byte_identical_files(written):
    (first, _, _), (second, _, _) = written
    assert files(first) == files(second)
    for name in files(first):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_pngs_carry_no_software_or_date(written):
    out, _, _ = written[0]
    for name in PLOTS:
        data = (out / "plots" / name).read_bytes()
        assert b"Software" not in data and b"Creation Time" not in data and b"tIME" not in data


def test_history_jsonl_is_the_contract_shape_in_index_order(written):
    out, run, _ = written[0]
    lines = (out / "history.jsonl").read_text().splitlines()
    assert len(lines) == len(run.history)
    ops = [json.loads(line) for line in lines]
    assert ops == run.history
    assert all(list(o) == ["index", "time_us", "process", "type", "f", "value"] for o in ops)
    assert [o["index"] for o in ops] == sorted(o["index"] for o in ops)


def test_load_run_reads_everything_back(written):
    out, run, summary = written[0]
    loaded = load_run(out)
    pd.testing.assert_frame_equal(loaded.metrics, run.recorder.frame())
    assert loaded.summary == json.loads((out / "summary.json").read_text())
    assert loaded.summary["acked"] == summary["acked"]
    assert list(loaded.history["index"]) == [o["index"] for o in run.history]
    assert loaded.events["kind"].tolist() == [e["kind"] for e in run.events]
    assert loaded.events.loc[1, "leader"] == 2
    assert len(loaded.frames.sends) == summary["produced"]
    isr = loaded.metric("partition", "isr_size")
    assert list(isr.columns) == ["orders/0", "orders/1", "orders/2"]
    assert isr.loc[4.0, "orders/1"] == 2


def test_plots_without_data_are_still_written(tmp_path):
    empty = pd.DataFrame(columns=["time_s", "kind", "entity", "metric", "value"])
    paths = write_plots(tmp_path, empty.astype({"time_s": float, "value": float}))
    assert [p.name for p in paths] == PLOTS
    assert all(p.stat().st_size > 1000 for p in paths)


def test_many_partitions_plot_as_min_median_max():
    from analysis.plots import per_entity
    rows = [{"time_s": float(t), "kind": "partition", "entity": f"t/{p}", "metric": "isr_size",
             "value": 3.0 - (p % 2) * (t > 2) - (p == 7) * (t > 3)}
            for t in range(5) for p in range(40)]
    lines = per_entity(pd.DataFrame(rows), "partition", "isr_size")
    assert list(lines) == ["max of 40", "median", "min"]
    assert lines["max of 40"].tolist() == [3.0] * 5
    assert lines["min"].tolist() == [3.0, 3.0, 3.0, 2.0, 1.0]
    assert lines["median"].tolist() == [3.0, 3.0, 3.0, 2.5, 2.5]
    few = per_entity(pd.DataFrame([r for r in rows if r["entity"] in ("t/2", "t/10")]),
                     "partition", "isr_size")
    assert list(few) == ["t/2", "t/10"]  # natural order


def test_history_jsonl_from_op_objects_matches_from_dicts(tmp_path, run):
    from analysis.history import load_history
    from analysis.results import write_history_jsonl
    ops_module = pytest.importorskip("simlog.checks.history")
    objects = [ops_module.Op(**op) for op in run.history[:200]]
    write_history_jsonl(tmp_path / "a.jsonl", load_history(objects))
    write_history_jsonl(tmp_path / "b.jsonl", load_history(run.history[:200]))
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert load_history(tmp_path / "a.jsonl") == run.history[:200]
