"""rebalances: a group's generations that handed out an assignment, at most `max`."""

from __future__ import annotations

from simlog.checks.rebalances import rebalances
from simlog.scenario.load import loads
from simlog.testing.builders import Hist, final, partition

LOG = partition("orders/0", {"b1": ["m0"]})


def test_a_static_bounce_in_the_same_generation_is_not_a_rebalance():
    h = Hist()
    h.assign("g-1", "g", 1, "orders/0")
    h.assign("g-2", "g", 1)
    h.assign("g-2", "g", 1)            # the restarted static member: same generation
    result = rebalances(h.ops, final(LOG), max_rebalances=1)
    assert result.passed and result.stats["rebalances"] == {"g": 1}


def test_more_generations_than_allowed_fail_and_name_the_extra_ones():
    h = Hist()
    h.assign("g-1", "g", 1, "orders/0")
    h.assign("g-1", "g", 2, "orders/0")
    h.assign("g-2", "g", 2)
    h.assign("h-1", "h", 5, "orders/0")
    result = rebalances(h.ops, final(LOG), max_rebalances=1)
    assert not result.passed
    (w,) = result.witnesses
    assert (w["group"], w["rebalances"], w["max"]) == ("g", 2, 1)
    assert [(e["generation"], e["members"]) for e in w["extra"]] == [(2, ["g-1", "g-2"])]
    assert rebalances(h.ops, final(LOG), max_rebalances=2).passed


def test_the_check_takes_max_in_a_scenario_file():
    text = ("name: x\nduration: 1s\ntopics: [{name: t}]\n"
            "checks: [{rebalances: {max: 3}}]\n")
    (spec,) = loads(text, "x.yaml").checks
    assert (spec.name, spec.params.model_dump()) == ("rebalances", {"max_rebalances": 3})
