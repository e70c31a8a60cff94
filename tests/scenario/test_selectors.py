"""Selectors: parsing every form of SCENARIOS.md, and resolution against a fake cluster."""

from __future__ import annotations

import random

import pytest

from simlog.scenario.selectors import (
    ActiveController,
    Coordinator,
    Leader,
    Node,
    NodeSet,
    Pick,
    SelectorError,
    Several,
    TopicPartition,
    parse,
    resolve,
)


class FakeView:
    def __init__(self, brokers=("b1", "b2", "b3", "b4", "b5"), controllers=("c1", "c2", "c3"),
                 clients=("p1", "analytics-1"), leaders=None, active="c2"):
        self._b, self._c, self._cl = brokers, controllers, clients
        self._leaders = leaders or {TopicPartition("orders", 0): "b2"}
        self._active = active

    def brokers(self):
        return list(reversed(self._b))  # unsorted on purpose: resolve must sort

    def controllers(self):
        return list(self._c)

    def clients(self):
        return list(self._cl)

    def leader_of(self, tp):
        return self._leaders.get(tp)

    def active_controller(self):
        return self._active

    def coordinator_of(self, group):
        return {"analytics": "b4"}.get(group)


@pytest.mark.parametrize(("text", "sel"), [
    ("b2", Node("b2")),
    ("analytics-2", Node("analytics-2")),
    ("brokers", NodeSet("brokers")),
    ("all", NodeSet("all")),
    ("controller", ActiveController()),
    ("leader(orders/0)", Leader(TopicPartition("orders", 0))),
    ("coordinator(analytics)", Coordinator("analytics")),
    ("random(brokers)", Pick("random", NodeSet("brokers"))),
    ("minority(controllers)", Pick("minority", NodeSet("controllers"))),
    ("majority(brokers)", Pick("majority", NodeSet("brokers"))),
    (["b1", "leader(orders/0)"], Several((Node("b1"), Leader(TopicPartition("orders", 0))))),
])
def test_parse(text, sel):
    assert parse(text) == sel
    assert parse(str(sel)) == sel if not isinstance(sel, Several) else True


@pytest.mark.parametrize(("text", "message"), [
    ("leader(orders)", "expected a partition like orders/0, found 'orders'"),
    ("random(b1)", "expected random(brokers|controllers|clients|all), found 'random(b1)'"),
    ("follower(orders/0)", "unknown selector function 'follower'"),
    ("coordinator(a b)", "expected coordinator(<consumer group>), found 'coordinator(a b)'"),
    ("b 1", "found 'b 1'"),
    ([], "found an empty list"),
    (3, "found 3"),
])
def test_parse_errors(text, message):
    with pytest.raises(SelectorError) as err:
        parse(text)
    assert message in str(err.value)


def test_resolve_fixed_selectors():
    view, rng = FakeView(), random.Random(0)
    assert resolve(parse("b3"), view, rng) == ("b3",)
    assert resolve(parse("brokers"), view, rng) == ("b1", "b2", "b3", "b4", "b5")
    assert resolve(parse("leader(orders/0)"), view, rng) == ("b2",)
    assert resolve(parse("leader(orders/1)"), view, rng) == ()
    assert resolve(parse("controller"), view, rng) == ("c2",)
    assert resolve(parse("coordinator(analytics)"), view, rng) == ("b4",)
    assert resolve(parse("coordinator(billing)"), view, rng) == ()
    assert resolve(parse(["b3", "leader(orders/0)", "b2"]), view, rng) == ("b2", "b3")
    assert resolve(parse("all"), view, rng) == (
        "analytics-1", "b1", "b2", "b3", "b4", "b5", "c1", "c2", "c3", "p1")


def test_resolve_quorum_pickers_sizes_and_membership():
    view = FakeView()
    for seed in range(20):
        rng = random.Random(seed)
        minority = resolve(parse("minority(brokers)"), view, rng)
        majority = resolve(parse("majority(brokers)"), view, rng)
        one = resolve(parse("random(controllers)"), view, rng)
        assert len(minority) == 2 and set(minority) <= set(view.brokers())
        assert len(majority) == 3 and set(majority) <= set(view.brokers())
        assert len(one) == 1 and one[0] in view.controllers()


def test_resolve_is_deterministic_per_seed_and_varies_across_seeds():
    view = FakeView()
    picks = {resolve(parse("majority(brokers)"), view, random.Random(s)) for s in range(30)}
    again = {resolve(parse("majority(brokers)"), view, random.Random(s)) for s in range(30)}
    assert picks == again
    assert len(picks) > 1
