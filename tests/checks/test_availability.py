"""available: leaderless intervals and write gaps longer than max_unavailable."""

from __future__ import annotations

from simlog.checks.availability import available
from simlog.checks.state import LeaderChange
from simlog.scenario.selectors import TopicPartition
from simlog.testing.builders import Hist, final

TP = TopicPartition("orders", 0)
S = 1_000_000


def test_short_leaderless_interval_passes_long_one_fails():
    changes = (LeaderChange(0, TP, "b1"), LeaderChange(10 * S, TP, None),
               LeaderChange(14 * S, TP, "b2"), LeaderChange(30 * S, TP, None))
    state = final(leader_changes=changes, end_us=60 * S)
    assert available((), state, max_unavailable_us=30 * S).passed
    result = available((), state, max_unavailable_us=5 * S)
    assert result.witnesses == ({"kind": "no_leader", "partition": "orders/0",
                                 "from_us": 30 * S, "to_us": 60 * S,
                                 "duration_us": 30 * S},)


def test_write_gap_starts_at_the_earliest_waiting_send():
    h = Hist()
    h.send("p1", "a", "orders/0", ok=0, at=1 * S)
    h.invoke_send("p1", "b", "orders/0", at=2 * S)
    h.complete_send("p1", "b", "orders/0", outcome="info", at=5 * S)
    h.invoke_send("p1", "c", "orders/0", at=6 * S)
    h.complete_send("p1", "c", "orders/0", offset=1, at=20 * S)
    h.send("p1", "d", "orders/1", ok=0, at=21 * S)   # a quiet partition is not unavailable
    state = final(end_us=60 * S)
    result = available(h.ops, state, max_unavailable_us=10 * S)
    assert result.witnesses == ({"kind": "no_write_succeeded", "partition": "orders/0",
                                 "from_us": 2 * S, "to_us": 20 * S, "duration_us": 18 * S},)
    assert available(h.ops, state, max_unavailable_us=20 * S).passed


def test_sends_never_acked_until_the_end_count():
    h = Hist()
    h.send("p1", "a", "orders/0", outcome="fail", at=50 * S)
    result = available(h.ops, final(end_us=60 * S), max_unavailable_us=5 * S)
    assert [(w["from_us"], w["to_us"]) for w in result.witnesses] == [(50 * S, None)]
