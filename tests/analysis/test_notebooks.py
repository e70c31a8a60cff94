"""The notebooks in notebooks/ run against a real results folder: every code cell is
executed in order (matplotlib's Agg backend), as a reader's kernel would."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

from simlog.scenario.load import loads
from simlog.scenario.run import run_scenario

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

SCENARIO = """\
name: nb
seed: 2
duration: 6s
cluster: {brokers: 3, controllers: 3, config: {min.insync.replicas: 2,
          offsets.topic.num.partitions: 1}}
topics:
  - {name: orders, partitions: 3, replication_factor: 3}
workload:
  producers:
    - {id: p1, topic: orders, rate: 100/s, keys: {dist: uniform, n: 30}}
  consumers:
    - {group: g, members: 2, topics: [orders], config: {session.timeout.ms: 6000,
       heartbeat.interval.ms: 1000}}
faults:
  - {at: 4s, client: {crash: g-2}}
checks: [lost_writes, group_exclusive]
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "run"
    run_scenario(loads(SCENARIO, "nb.yaml"), out)
    return out


def test_there_is_a_notebook() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_results_folder(path: Path, results: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SIMLOG_RESULTS", str(results))
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(cells):
        exec(compile("".join(cell["source"]), f"{path.name}[{i}]", "exec"), namespace)
    assert namespace["run"].summary["scenario"] == "nb"
    assert plt.get_fignums(), "the notebook drew nothing"
    # the ownership cell found both members' spans over the group's partitions
    assert {s[1] for s in namespace["spans"]} == {"g-1", "g-2"}
    plt.close("all")
