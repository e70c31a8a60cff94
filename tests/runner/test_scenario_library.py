"""Every scenario in scenarios/ meets its `expect` block (SCENARIOS.md: exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simlog.scenario.load import load
from simlog.scenario.run import run_scenario

LIBRARY = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


def test_library_is_not_empty() -> None:
    names = {p.stem for p in LIBRARY}
    assert {"split_brain", "leader_crash", "swarm"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_scenario_meets_its_expectation(path: Path) -> None:
    outcome = run_scenario(load(path))
    failing = {name: outcome.summary["checks"][name]
               for name in outcome.mismatches if name in outcome.summary["checks"]}
    assert outcome.mismatches == [], failing
