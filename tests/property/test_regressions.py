"""Replays every scenario kept under tests/property/regressions/: shrunk failing examples
that the property tests found. Each file states the behaviour that is right (its checks
and `expect`); the test expects the run to meet it. A file whose bug is not fixed yet is
listed in KNOWN_BUGS with the reason and the owner, and its test is xfail(strict=True),
so the fix turns it into a failure that asks to drop the entry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simlog.scenario.load import load
from simlog.testing import run_property

REGRESSIONS = Path(__file__).with_name("regressions")

# file name -> (reason, owning package)
KNOWN_BUGS: dict[str, tuple[str, str]] = {
}


def _cases():
    for path in sorted(REGRESSIONS.glob("*.yaml")):
        bug = KNOWN_BUGS.get(path.name)
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError,
                                   reason=f"{bug[0]} (owner: {bug[1]})")
                 ] if bug else []
        yield pytest.param(path, id=path.stem, marks=marks)


def test_every_known_bug_has_a_file():
    assert set(KNOWN_BUGS) <= {p.name for p in REGRESSIONS.glob("*.yaml")}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", list(_cases()))
def test_regression_scenario_meets_its_expectations(path):
    scenario = load(path)
    assert scenario.faults, "a regression scenario keeps its fault schedule"
    outcome = run_property(scenario)
    assert outcome.expected_ok, f"{path.name}: {outcome.mismatches}"
