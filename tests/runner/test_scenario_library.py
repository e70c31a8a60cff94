"""Every scenario in scenarios/ meets its `expect` block (SCENARIOS.md: exit 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simlog.scenario.load import load, loads
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


def _unowned_ms(name: str) -> tuple[float, int]:
    outcome = run_scenario(load(Path(LIBRARY[0]).with_name(f"{name}.yaml")))
    assert outcome.mismatches == []
    group = outcome.summary["groups"]["analytics"]
    return group["partition_unowned_ms"], group["rebalances"]


def test_cooperative_rebalancing_leaves_partitions_unowned_for_less_time_than_eager() -> None:
    """Issue 7: the same scale-out (3 -> 6 members of a lagging group) and member crash,
    eager vs cooperative-sticky; cooperative revokes only what moves."""
    eager_ms, eager_rebalances = _unowned_ms("consumer_rebalance")
    coop_ms, coop_rebalances = _unowned_ms("consumer_rebalance_cooperative")
    assert coop_ms < eager_ms
    assert coop_rebalances > eager_rebalances  # KIP-429's second rounds


def test_static_member_bounce_within_the_session_causes_no_rebalance() -> None:
    """Issue 7 / KIP-345: static_membership.yaml bounces a static member inside
    session.timeout.ms: one generation only; the same file with dynamic members
    rebalances for the bounce."""
    path = LIBRARY[0].with_name("static_membership.yaml")
    outcome = run_scenario(load(path))
    assert outcome.mismatches == []
    assert outcome.summary["groups"]["analytics"]["rebalances"] == 1
    dynamic = path.read_text().replace("static: true", "static: false")
    assert dynamic != path.read_text()
    outcome = run_scenario(loads(dynamic, str(path)))
    assert outcome.mismatches == ["rebalances"]
    assert outcome.summary["groups"]["analytics"]["rebalances"] >= 2
