"""poll_monotonic, group_exclusive, committed_offsets, consumed_all."""

from __future__ import annotations

from simlog.checks.consumers import committed_offsets, consumed_all, group_exclusive, poll_monotonic
from simlog.scenario.selectors import TopicPartition
from simlog.testing.builders import Hist, final, partition

LOG = partition("orders/0", {"b1": ["m0", "m1", "m2", "m3", "m4"]})


def test_polls_in_order_across_polls_pass():
    h = Hist()
    h.assign("g-1", "g", 1, "orders/0")
    h.poll("g-1", ("orders/0", 0, "m0"), ("orders/0", 1, "m1"))
    h.poll("g-1", ("orders/0", 2, "m2"))
    assert poll_monotonic(h.ops, final(LOG)).passed


def test_backwards_within_an_assignment_fails_but_a_new_assignment_may_rewind():
    h = Hist()
    h.assign("g-1", "g", 1, "orders/0")
    h.poll("g-1", ("orders/0", 0, "m0"), ("orders/0", 1, "m1"))
    h.assign("g-1", "g", 2, "orders/0")
    h.poll("g-1", ("orders/0", 0, "m0"))          # rewind after reassignment: fine
    h.poll("g-1", ("orders/0", 1, "m1"), ("orders/0", 1, "m1"))
    result = poll_monotonic(h.ops, final(LOG))
    assert [(w["kind"], w["from_offset"], w["to_offset"]) for w in result.witnesses] == [
        ("backwards", 1, 1)]


def test_skip_over_records_the_log_holds_fails_but_log_gaps_do_not():
    h = Hist()
    h.poll("g-1", ("orders/0", 0, "m0"), ("orders/0", 3, "m3"))
    result = poll_monotonic(h.ops, final(LOG))
    assert [(w["kind"], w["skipped"]) for w in result.witnesses] == [("skip", [1, 2])]
    compacted = partition("orders/0", {"b1": [(0, "m0", 0), (3, "m3", 0)]}, hw=4)
    assert poll_monotonic(h.ops, final(compacted)).passed


def test_group_exclusive_handoff_after_revocation_passes():
    h = Hist()
    h.assign("g-1", "g", 1, "orders/0", "orders/1")
    h.assign("g-1", "g", 2, "orders/0")           # gives up orders/1
    h.assign("g-2", "g", 2, "orders/1")
    h.assign("other-1", "other", 1, "orders/0")   # another group may read the same
    assert group_exclusive(h.ops, final()).passed


def test_group_exclusive_overlap_fails_and_crash_ends_ownership():
    h = Hist()
    h.assign("g-1", "g", 1, "orders/0")
    h.assign("g-2", "g", 2, "orders/0")
    result = group_exclusive(h.ops, final())
    assert [(w["partition"], w["members"], w["generation"]) for w in result.witnesses] == [
        ("orders/0", ["g-1", "g-2"], 2)]
    h2 = Hist()
    h2.assign("g-1", "g", 1, "orders/0")
    h2.op("g-1", "crash", None, outcome="info")
    h2.assign("g-2", "g", 2, "orders/0")
    assert group_exclusive(h2.ops, final()).passed


def frozen_member(lapsed_at: int, zombie_poll: bool = False) -> Hist:
    """g-1 owns orders/0 and freezes; the coordinator gives orders/0 to g-2 at t=100;
    g-1 runs again at t=200 and records the loss, its session having lapsed at
    `lapsed_at`."""
    h = Hist()
    h.op("g-1", "assign", {"group": "g", "generation": 1, "partitions": ["orders/0"]}, at=10)
    h.op("g-1", "poll", {"records": [{"topic": "orders", "partition": 0, "offset": 0,
                                      "id": "m0"}]}, at=20)
    h.op("g-2", "assign", {"group": "g", "generation": 2, "partitions": ["orders/0"]}, at=100)
    if zombie_poll:
        h.op("g-1", "poll", {"records": [{"topic": "orders", "partition": 0, "offset": 1,
                                          "id": "m1"}]}, at=150)
    h.op("g-1", "revoke", {"group": "g", "partitions": ["orders/0"], "reason": "lost",
                           "lapsed_us": lapsed_at}, at=200)
    return h


def test_a_member_frozen_past_its_session_stopped_owning_when_it_lapsed():
    assert group_exclusive(frozen_member(lapsed_at=90).ops, final(LOG)).passed
    # it lapsed only after the other member got the partition: both owned it
    late = group_exclusive(frozen_member(lapsed_at=120).ops, final(LOG))
    assert [(w["members"], w["time_us"]) for w in late.witnesses] == [(["g-1", "g-2"], 100)]
    # it read the partition after its session lapsed: a zombie, still shared
    zombie = group_exclusive(frozen_member(lapsed_at=90, zombie_poll=True).ops, final(LOG))
    assert [w["kind"] for w in zombie.witnesses] == ["shared"]


def test_committed_offsets_backwards_and_final_below_acked():
    h = Hist()
    h.commit("g-1", "g", orders__0=5)
    h.commit("g-2", "g", orders__0=7)
    h.commit("g-1", "g", orders__0=6)
    result = committed_offsets(h.ops, final())
    assert [(w["kind"], w["from_offset"], w["to_offset"]) for w in result.witnesses] == [
        ("backwards", 7, 6)]
    ok = Hist()
    ok.commit("g-1", "g", orders__0=5)
    ok.commit("g-1", "g", orders__0=9)
    tp = TopicPartition("orders", 0)
    assert committed_offsets(ok.ops, final(committed_offsets={("g", tp): 9})).passed
    lost = committed_offsets(ok.ops, final(committed_offsets={("g", tp): 5}))
    assert [(w["kind"], w["final"], w["acked_max"]) for w in lost.witnesses] == [
        ("final_below_acked", 5, 9)]


def test_consumed_all():
    h = Hist()
    h.send("p1", "m0", "orders/0", ok=0)
    h.send("p1", "m1", "orders/0", ok=1)
    h.send("p1", "m2", "orders/0", outcome="info")    # not required
    h.send("p1", "lost", "orders/0", ok=9)            # lost_writes' business
    h.assign("g-1", "g", 1, "orders/0")
    h.poll("g-1", ("orders/0", 0, "m0"))
    h.poll("h-1", ("orders/0", 0, "m0"), ("orders/0", 1, "m1"))  # group by name
    state = final(partition("orders/0", {"b1": ["m0", "m1", "m2"]}),
                  groups={"g": ("orders",), "h": ("orders",), "idle": ("audit",)})
    result = consumed_all(h.ops, state)
    assert result.witnesses == ({"kind": "unconsumed", "group": "g", "id": "m1",
                                 "partition": "orders/0", "offset": 1},)


def test_manual_assignments_are_not_group_ownership():
    h = Hist()
    h.op("c-1", "assign", {"partitions": ["orders/0"]})
    h.op("c-2", "assign", {"partitions": ["orders/0"]})
    assert group_exclusive(h.ops, final()).passed


def test_consumed_all_derives_subscriptions_from_assignments_when_state_has_none():
    h = Hist()
    h.send("p1", "m0", "orders/0", ok=0)
    h.assign("g-1", "g", 1, "orders/0")
    result = consumed_all(h.ops, final(partition("orders/0", {"b1": ["m0"]})))
    assert [(w["group"], w["id"]) for w in result.witnesses] == [("g", "m0")]
