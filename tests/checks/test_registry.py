"""Running a scenario's checks: every listed check, with its parameters, in order."""

from __future__ import annotations

import json

from simlog.checks.registry import CHECKS, expectation_mismatches, run_checks
from simlog.scenario.load import loads
from simlog.testing.builders import Hist, final, partition


def test_run_checks_uses_the_scenarios_list_and_parameters():
    s = loads("name: x\nduration: 1m\nchecks: [lost_writes, {available: "
              "{max_unavailable: 2s}}]\n")
    h = Hist()
    h.send("p1", "a", "orders/0", ok=0, at=1_000_000)
    h.send("p1", "b", "orders/0", outcome="info", at=2_000_000)
    state = final(partition("orders/0", {"b1": ["a"]}), end_us=10_000_000)
    results = run_checks(s.checks, h.ops, state)
    assert list(results) == ["lost_writes", "available"]
    assert results["lost_writes"].passed
    assert not results["available"].passed   # b waited 8s for an ok that never came
    summary = {name: r.to_json() for name, r in results.items()}
    assert summary["available"]["result"] == "fail"
    assert summary["available"]["witnesses"][0]["from_us"] == 2_000_000
    json.dumps(summary)  # JSON-ready


def test_every_check_passes_on_an_empty_run():
    for definition in CHECKS.values():
        result = definition.function()((), final())
        assert result.name == definition.name and result.passed


def test_expectation_mismatches():
    s = loads("name: x\nduration: 1m\nchecks: [lost_writes, duplicates]\n"
              "expect: {duplicates: fail}\n")
    state = final(partition("orders/0", {"b1": ["a", "a"]}))
    results = run_checks(s.checks, (), state)
    assert expectation_mismatches(s.expect, results) == []
    clean = run_checks(s.checks, (), final(partition("orders/0", {"b1": ["a"]})))
    assert expectation_mismatches(s.expect, clean) == ["duplicates"]
