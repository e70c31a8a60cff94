"""`simlog run` end to end on a small scenario: the results folder, the exit status, and
the same trace hash for the same file and seed (a different one for another seed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simlog.cli import cli

SMALL = """\
name: smoke
seed: 4
duration: 6s
cluster: {brokers: 3, controllers: 3, config: {min.insync.replicas: 2}}
topics:
  - {name: orders, partitions: 2, replication_factor: 3}
workload:
  producers:
    - {id: p1, topic: orders, rate: 100/s, keys: {dist: uniform, n: 10}, value_size: 100B,
       config: {acks: all, request.timeout.ms: 3000}}
  consumers:
    - {group: g, members: 1, topics: [orders]}
faults:
  - {at: 2s, crash: leader(orders/0)}
  - {at: 4s, restart: brokers}
checks: [lost_writes, duplicates, order, replicas_converge, poll_monotonic, consumed_all,
         group_exclusive, committed_offsets]
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scn") / "smoke.yaml"
    path.write_text(SMALL)
    return path


def run(path: Path, out: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["run", str(path), "--quiet", "--out", str(out), *extra])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return result.exit_code, summary


@pytest.fixture(scope="module")
def first_run(scenario_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict]:
    out = tmp_path_factory.mktemp("run1")
    code, summary = run(scenario_file, out)
    return out, code, summary


def test_run_writes_every_results_file_and_passes(first_run) -> None:
    out, code, summary = first_run
    assert code == 0, summary.get("checks")
    for name in ("summary.json", "history.jsonl", "events.jsonl", "metrics.csv"):
        assert (out / name).stat().st_size > 0, name
    assert sorted(p.name for p in (out / "plots").glob("*.png"))
    assert summary["acked"] > 400 and summary["lost"] == 0
    assert summary["faults"][0]["targets"], "the crash resolved to a node"
    assert all(c["result"] == "pass" for c in summary["checks"].values())
    assert summary["groups"]["g"]["rebalances"] >= 1


def test_same_seed_same_trace_hash_other_seed_other_hash(scenario_file: Path, first_run,
                                                          tmp_path: Path) -> None:
    _, _, summary = first_run
    _, again = run(scenario_file, tmp_path / "again")
    assert again["trace_hash"] == summary["trace_hash"]
    assert again["acked"] == summary["acked"]
    _, other = run(scenario_file, tmp_path / "other", "--seed", "5")
    assert other["seed"] == 5 and other["trace_hash"] != summary["trace_hash"]


def test_expectation_not_met_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(SMALL.replace("checks: [", "expect: {lost_writes: fail}\nchecks: ["))
    code, summary = run(path, tmp_path / "out")
    assert code == 1 and summary["expected_ok"] is False


def test_invalid_file_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SMALL.replace("rate: 100/s", "rate: 100/fortnight"))
    result = CliRunner().invoke(cli, ["run", str(path), "--quiet", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.yaml:" in lines[0] and "rate" in lines[0]
