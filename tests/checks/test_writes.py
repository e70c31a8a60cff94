"""lost_writes, duplicates, order on hand-written histories and logs."""

from __future__ import annotations

from simlog.checks.writes import duplicates, lost_writes, order
from simlog.testing.builders import Hist, final, partition


def test_acked_writes_present_pass_and_info_sends_are_free_either_way():
    h = Hist()
    h.send("p1", "p1-1", "orders/0", ok=0)
    h.send("p1", "p1-2", "orders/0", outcome="info")   # landed
    h.send("p1", "p1-3", "orders/0", outcome="info")   # did not
    h.send("p1", "p1-4", "orders/0", outcome="fail")   # did not, as promised
    state = final(partition("orders/0", {"b1": ["p1-1", "p1-2"], "b2": ["p1-1", "p1-2"]}))
    result = lost_writes(h.ops, state)
    assert result.passed and result.witnesses == ()
    assert (result.stats["acked"], result.stats["info_present"],
            result.stats["info_absent"]) == (1, 1, 1)


def test_acked_write_missing_from_committed_log_is_lost():
    h = Hist()
    h.send("p1", "p1-1", "orders/0", ok=0)
    h.send("p1", "p1-2", "orders/0", ok=1)
    # p1-2 is on the leader but above the high watermark: not in the final log
    state = final(partition("orders/0", {"b1": ["p1-1", "p1-2"], "b2": ["p1-1"]}, hw=1))
    result = lost_writes(h.ops, state)
    assert not result.passed
    assert result.witnesses == ({"kind": "lost", "id": "p1-2", "process": "p1",
                                 "partition": "orders/0", "offset": 1,
                                 "acked_at_us": 4000},)


def test_failed_send_present_is_its_own_witness_kind():
    h = Hist()
    h.send("p1", "p1-1", "orders/0", outcome="fail")
    state = final(partition("orders/0", {"b1": ["p1-1"]}))
    result = lost_writes(h.ops, state)
    assert not result.passed
    assert [w["kind"] for w in result.witnesses] == ["failed_present"]
    assert result.witnesses[0]["offset"] == 0 and result.stats["lost"] == 0


def test_writes_deleted_by_retention_are_not_lost():
    h = Hist()
    h.send("p1", "p1-1", "orders/0", ok=0)
    state = final(partition("orders/0", {"b1": ["p1-9"]}, log_start=5))
    result = lost_writes(h.ops, state)
    assert result.passed and result.stats["deleted_by_retention"] == 1


def test_duplicates():
    h = Hist()
    h.send("p1", "p1-1", "orders/0", outcome="info")
    once = final(partition("orders/0", {"b1": ["p1-1", "p1-2"]}))
    assert duplicates(h.ops, once).passed
    twice = final(partition("orders/0", {"b1": ["p1-1", "p1-2", "p1-1"]}),
                  partition("orders/1", {"b2": ["p1-2"]}, leader="b2"))
    result = duplicates(h.ops, twice)
    assert not result.passed
    assert result.witnesses == (
        {"kind": "duplicate", "id": "p1-1", "locations": [
            {"partition": "orders/0", "offset": 0}, {"partition": "orders/0", "offset": 2}]},
        {"kind": "duplicate", "id": "p1-2", "locations": [
            {"partition": "orders/0", "offset": 1}, {"partition": "orders/1", "offset": 0}]})


def _pipelined():
    """p1 invokes a, then b before a's ack; both acked; b lands below a."""
    h = Hist()
    h.invoke_send("p1", "a", "orders/0")
    h.invoke_send("p1", "b", "orders/0")
    h.complete_send("p1", "a", "orders/0", offset=1)
    h.complete_send("p1", "b", "orders/0", offset=0)
    return h


def test_order_concurrent_sends_may_reorder_without_idempotence():
    state = final(partition("orders/0", {"b1": ["b", "a"]}))
    assert order(_pipelined().ops, state).passed


def test_order_idempotent_producer_must_keep_send_order():
    state = final(partition("orders/0", {"b1": ["b", "a"]}), idempotent_producers=frozenset({"p1"}))
    result = order(_pipelined().ops, state)
    assert not result.passed
    (w,) = result.witnesses
    assert (w["rule"], w["first"]["id"], w["first"]["offset"], w["second"]["id"],
            w["second"]["offset"]) == ("idempotent send order", "a", 1, "b", 0)


def test_order_acked_before_invoked_is_always_required():
    h = Hist()
    h.send("p1", "a", "orders/0", ok=1)
    h.send("p1", "b", "orders/0", ok=0)
    h.send("p2", "c", "orders/0", ok=2)   # other producers do not constrain p1
    state = final(partition("orders/0", {"b1": ["b", "a", "c"]}))
    result = order(h.ops, state)
    assert not result.passed
    (w,) = result.witnesses
    assert (w["process"], w["partition"], w["rule"], w["first"]["id"], w["second"]["id"]) == (
        "p1", "orders/0", "acked before invoked", "a", "b")
    in_order = final(partition("orders/0", {"b1": ["a", "b", "c"]}))
    assert order(h.ops, in_order).passed


def test_order_ignores_lost_and_unacked_writes_and_other_partitions():
    h = Hist()
    h.send("p1", "a", "orders/0", ok=5)
    h.send("p1", "b", "orders/0", outcome="info")
    h.send("p1", "c", "orders/1", ok=0)
    h.send("p1", "d", "orders/0", ok=0)
    state = final(partition("orders/0", {"b1": ["d", "b"]}),
                  partition("orders/1", {"b1": ["c"]}))
    assert order(h.ops, state).passed
