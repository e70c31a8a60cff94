"""rebalance_stats and group_lag (simlog.client.group_metrics) on a hand-written history."""

from __future__ import annotations

from types import SimpleNamespace

from simlog.client.group_metrics import group_lag, rebalance_stats


def op(t, process, f, value=None, type_="ok"):
    return SimpleNamespace(time_us=t, process=process, f=f, value=value, type=type_)


def test_rebalance_stats_counts_generations_and_unowned_time():
    h = [
        op(0, "a", "assign", {"group": "g", "generation": 1, "partitions": ["t/0", "t/1"]}),
        op(10, "a", "revoke", {"group": "g", "partitions": ["t/0", "t/1"]}),
        op(25, "a", "assign", {"group": "g", "generation": 2, "partitions": ["t/0"]}),
        op(30, "b", "assign", {"group": "g", "generation": 2, "partitions": ["t/1"]}),
        op(40, "b", "crash"),
        op(45, "a", "assign", {"group": "g", "generation": 3, "partitions": ["t/0", "t/1"]}),
    ]
    st = rebalance_stats(h)["g"]
    assert st.generations == [1, 2, 3] and st.rebalances == 3
    assert st.unowned_us == {"t/0": 15, "t/1": 20 + 5}
    assert st.to_json()["total_unowned_ms"] == 0
    assert group_lag({"t/0": 10, "t/1": 5}, {"t/0": 4}) == {"t/0": 6, "t/1": 5}
