"""`simlog sweep`: one scenario under many seeds, in worker processes; results in seed
order, each seed's trace hash the one `simlog run --seed` gives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simlog.cli import cli
from simlog.scenario.sweep import parse_seeds, run_seed

TINY = """\
name: tiny
seed: 1
duration: 3s
cluster: {brokers: 3, controllers: 3, config: {min.insync.replicas: 2}}
topics:
  - {name: orders, partitions: 2, replication_factor: 3}
workload:
  producers:
    - {id: p1, topic: orders, rate: 100/s, keys: {dist: uniform, n: 10}, value_size: 100B}
faults:
  - {at: 1s, crash: random(brokers)}
  - {at: 2s, restart: brokers}
checks: [lost_writes, duplicates]
"""


@pytest.mark.parametrize(("text", "seeds"), [
    ("5", [5]), ("1..4", [1, 2, 3, 4]), ("3,1,3", [1, 3]), ("1..3, 10, 8..9", [1, 2, 3, 8, 9, 10]),
])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("text", "message"), [
    ("a..b", "expected seeds like 1..100 or 3,7,9, found 'a..b'"),
    ("5..1", "expected a range low..high, found '5..1'"),
    ("", "expected seeds like 1..100 or 3,7,9, found ''"),
])
def test_bad_seeds(text, message):
    with pytest.raises(ValueError) as err:
        parse_seeds(text)
    assert str(err.value) == message


def test_sweep_runs_every_seed_in_workers_in_seed_order_with_run_s_trace_hashes(
        tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["sweep", str(path), "--seeds", "3,1..2", "--jobs", "2",
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [int(r["seed"]) for r in rows] == [1, 2, 3]
    assert all(r["expected_ok"] == "True" and r["lost"] == "0" for r in rows)
    # the same trace as a run of that seed in this process
    assert rows[1]["trace_hash"] == run_seed(str(path), 2).trace_hash
    assert len({r["trace_hash"] for r in rows}) == 3
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["expected_ok"] and summary["seeds"] == 3 and summary["failing_seeds"] == []


def test_seeds_that_miss_expect_are_listed_with_their_replay_command(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY + "expect: {lost_writes: fail}\n")  # it never loses a write
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["sweep", str(path), "--seeds", "1..2", "--jobs", "1",
                                      "--out", str(out), "--keep-runs", "--quiet"])
    assert result.exit_code == 1
    assert f"seed 1 missed expect (lost_writes): simlog run {path} --seed 1" in result.output
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["failing_seeds"] == [1, 2] and summary["checks_missed"] == {"lost_writes": 2}
    assert (out / "seed-2" / "summary.json").exists()  # --keep-runs


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    result = CliRunner().invoke(cli, ["sweep", str(path), "--seeds", "x"])
    assert result.exit_code == 2 and "--seeds: expected seeds like" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("duration: 3s", "duration: 3 sec"))
    result = CliRunner().invoke(cli, ["sweep", str(bad), "--seeds", "1"])
    assert result.exit_code == 2 and "bad.yaml:3: duration" in result.output
