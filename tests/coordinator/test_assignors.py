"""Assignors: Kafka's documented examples, and properties over random groups."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.coordinator.assignors import (
    ASSIGNORS,
    COOPERATIVE,
    EAGER,
    Subscription,
    cooperative_sticky_assign,
    parse_strategies,
    range_assign,
    rebalance_protocol,
    roundrobin_assign,
    select_protocol,
    sticky_assign,
)


def subs(*members: str, topics=("t0", "t1")) -> dict[str, Subscription]:
    return {m: Subscription(tuple(topics)) for m in members}


def test_range_gives_each_topic_consecutive_ranges_extra_to_the_first():
    # RangeAssignor javadoc: C0, C1; t0, t1 with 3 partitions each
    out = range_assign({"t0": 3, "t1": 3}, subs("C0", "C1"))
    assert out == {"C0": [("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)],
                   "C1": [("t0", 2), ("t1", 2)]}


def test_roundrobin_deals_sorted_partitions_in_turn():
    out = roundrobin_assign({"t0": 3, "t1": 3}, subs("C0", "C1"))
    assert out == {"C0": [("t0", 0), ("t0", 2), ("t1", 1)],
                   "C1": [("t0", 1), ("t1", 0), ("t1", 2)]}


def test_roundrobin_skips_members_not_subscribed():
    s = {"C0": Subscription(("t0",)), "C1": Subscription(("t0", "t1")),
         "C2": Subscription(("t0", "t1", "t2"))}
    out = roundrobin_assign({"t0": 1, "t1": 2, "t2": 3}, s)
    # the RoundRobinAssignor javadoc's example
    assert out == {"C0": [("t0", 0)], "C1": [("t1", 0)],
                   "C2": [("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)]}


def test_static_members_are_ordered_by_instance_id():
    s = {"a": Subscription(("t",), instance_id="z"), "b": Subscription(("t",), instance_id="y")}
    assert range_assign({"t": 2}, s) == {"a": [("t", 1)], "b": [("t", 0)]}


def test_sticky_keeps_owned_partitions_when_a_member_leaves():
    before = sticky_assign({"t": 6}, subs("a", "b", "c", topics=("t",)))
    s = {m: Subscription(("t",), tuple(before[m]), 1) for m in ("a", "c")}
    after = sticky_assign({"t": 6}, s)
    assert set(before["a"]) <= set(after["a"]) and set(before["c"]) <= set(after["c"])
    assert sorted(after["a"] + after["c"]) == [("t", i) for i in range(6)]


def test_cooperative_withholds_partitions_that_change_owner():
    s = {"a": Subscription(("t",), tuple(("t", i) for i in range(4)), 1),
         "b": Subscription(("t",))}
    first = cooperative_sticky_assign({"t": 4}, s)
    assert first == {"a": [("t", 0), ("t", 1)], "b": []}  # t-2, t-3 are being revoked
    s2 = {"a": Subscription(("t",), (("t", 0), ("t", 1)), 2), "b": Subscription(("t",), (), 2)}
    second = cooperative_sticky_assign({"t": 4}, s2)
    assert second == {"a": [("t", 0), ("t", 1)], "b": [("t", 2), ("t", 3)]}


def test_sticky_higher_generation_claim_wins():
    s = {"a": Subscription(("t",), (("t", 0),), 3), "b": Subscription(("t",), (("t", 0),), 5)}
    out = sticky_assign({"t": 2}, s)
    assert out["b"] == [("t", 0)] and out["a"] == [("t", 1)]


def test_protocol_selection_and_rebalance_protocol():
    assert parse_strategies(None) == ["range", "cooperative-sticky"]
    assert parse_strategies("org.apache.kafka.clients.consumer.StickyAssignor,range") == [
        "sticky", "range"]
    assert select_protocol({"m1": ["cooperative-sticky", "range"],
                            "m2": ["range"]}) == "range"
    assert select_protocol({"m1": ["roundrobin", "range"],
                            "m2": ["roundrobin", "range"]}) == "roundrobin"
    assert select_protocol({"m1": ["range"], "m2": ["sticky"]}) is None
    assert rebalance_protocol(["range", "cooperative-sticky"]) == EAGER
    assert rebalance_protocol(["cooperative-sticky"]) == COOPERATIVE


members_st = st.lists(st.sampled_from([f"m{i}" for i in range(8)]), min_size=1, max_size=8,
                      unique=True)
topics_st = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 9), min_size=1)


@settings(max_examples=200, deadline=None)
@given(members=members_st, topics=topics_st, name=st.sampled_from(sorted(ASSIGNORS)),
       data=st.data())
def test_every_partition_assigned_exactly_once_and_only_to_subscribers(members, topics, name,
                                                                       data):
    s = {m: Subscription(tuple(sorted(data.draw(st.sets(st.sampled_from(sorted(topics)),
                                                        min_size=1)))))
         for m in members}
    out = ASSIGNORS[name].assign(topics, s)
    assert sorted(out) == sorted(members)
    got = [tp for tps in out.values() for tp in tps]
    assert len(got) == len(set(got))
    for m, tps in out.items():
        assert all(tp[0] in s[m].topics for tp in tps)
    subscribed = {t for x in s.values() for t in x.topics}
    assert sorted(got) == sorted((t, p) for t in subscribed for p in range(topics[t]))
    assert out == ASSIGNORS[name].assign(topics, s)  # deterministic


@settings(max_examples=200, deadline=None)
@given(members=members_st, n=st.integers(0, 30), name=st.sampled_from(
    ["roundrobin", "sticky", "cooperative-sticky"]), data=st.data())
def test_uniform_subscriptions_are_balanced_and_sticky_is_sticky(members, n, name, data):
    first = ASSIGNORS[name].assign({"t": n}, subs(*members, topics=("t",)))
    counts = [len(v) for v in first.values()]
    assert max(counts) - min(counts) <= 1
    if name == "roundrobin":
        return
    # membership changes: some leave, some join; survivors keep what quota allows
    stay = data.draw(st.lists(st.sampled_from(members), unique=True, min_size=1))
    joiners = data.draw(st.lists(st.sampled_from([f"n{i}" for i in range(4)]), unique=True))
    s = {m: Subscription(("t",), tuple(first[m]), 1) for m in stay}
    s.update({m: Subscription(("t",), (), 1) for m in joiners})
    second = sticky_assign({"t": n}, s)
    counts = [len(v) for v in second.values()]
    assert max(counts) - min(counts) <= 1
    quota_low = n // len(s)
    for m in stay:
        kept = set(first[m]) & set(second[m])
        assert len(kept) >= min(len(first[m]), quota_low)
    if name == "cooperative-sticky":
        coop = cooperative_sticky_assign({"t": n}, s)
        for m in s:
            assert set(coop[m]) <= set(second[m])
            # nothing owned by another current member is handed over in this round
            for tp in coop[m]:
                assert all(tp not in s[o].owned for o in s if o != m)
