"""Consumer groups in the sim World: a KRaft cluster whose brokers embed the group
coordinator, a producer, and GroupConsumers; assertions on the history and the checks."""

from __future__ import annotations

from .groupcluster import GROUP, GroupCluster, S


def owners(c: GroupCluster, names: list[str]) -> dict[tuple[str, int], list[str]]:
    out: dict[tuple[str, int], list[str]] = {}
    for n in names:
        node = c.w.node(n)
        if node is None:
            continue
        for tp in node.group.assignment:
            out.setdefault(tp, []).append(n)
    return out


def test_three_members_share_six_partitions_and_consume_everything():
    c = GroupCluster(seed=1)
    c.produce_every(20_000, c.now + 25 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}")
    c.run_for(15 * S)
    own = owners(c, ["g-1", "g-2", "g-3"])
    assert sorted(own) == [("orders", p) for p in range(6)]
    assert all(len(v) == 1 for v in own.values())
    assert sorted(len(c.member(n).group.assignment) for n in ("g-1", "g-2", "g-3")) == [2, 2, 2]
    # one rebalance: the initial delay gathers all three joins into generation 1
    assert {g for n in ("g-1", "g-2", "g-3") for _, g, _ in c.generations[n]} == {1}
    c.run_for(20 * S)
    results = c.assert_checks_pass()
    assert results["consumed_all"].stats["consumed"][GROUP] == c.sent
    desc = c.coordinator_of().group_coordinator.describe(GROUP)
    assert desc["state"] == "Stable" and len(desc["offsets"]) == 6


def test_member_crash_reassigns_its_partitions_within_the_session_timeout():
    c = GroupCluster(seed=2)
    c.produce_every(20_000, c.now + 40 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}")
    c.run_for(10 * S)
    lost = list(c.member("g-2").group.assignment)
    assert lost
    crashed_at = c.now
    c.crash_member("g-2")
    session_us = 10 * S
    deadline = crashed_at + session_us + 3 * S  # session timeout + rebalance
    moved_at = None
    while c.now < deadline:
        c.run_for(S // 4)
        own = owners(c, ["g-1", "g-3"])
        if all(tp in own for tp in lost):
            moved_at = c.now
            break
    assert moved_at is not None, "partitions of the crashed member were not reassigned"
    assert moved_at - crashed_at >= session_us * 9 // 10  # not before the session expired
    c.run_for(25 * S)
    c.assert_checks_pass()
