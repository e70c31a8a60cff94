"""`simlog report DIR` prints a results folder's summary and can redraw its plots."""

from __future__ import annotations

from click.testing import CliRunner

from analysis.cli import report
from analysis.results import write_results
from analysis.summary import build_summary


def test_report_prints_the_summary_and_redraws_plots(tmp_path, run_factory):
    run = run_factory(duration_s=3, rate_per_s=50)
    summary = build_summary(scenario="synthetic-report", seed=3, trace_hash="77aa",
                            checks={"order": {"result": "pass", "witnesses": []}},
                            history=run.history, recorder=run.recorder, lost=0,
                            sim_seconds=3.0, wall_seconds=1.0, faults=run.faults)
    write_results(tmp_path, summary, run.history, run.events, run.recorder, run.faults)
    before = (tmp_path / "plots" / "throughput.png").read_bytes()
    (tmp_path / "plots" / "throughput.png").unlink()
    result = CliRunner().invoke(report, [str(tmp_path), "--plots"])
    assert result.exit_code == 0, result.output
    assert "synthetic-report" in result.output and "77aa" in result.output
    assert (tmp_path / "plots" / "throughput.png").read_bytes() == before


def test_report_on_a_folder_without_summary_fails(tmp_path):
    result = CliRunner().invoke(report, [str(tmp_path)])
    assert result.exit_code != 0 and "not a results folder" in result.output
