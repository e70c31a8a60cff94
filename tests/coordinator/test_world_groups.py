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


def revokes(c: GroupCluster, name: str) -> list[dict]:
    return [op.value for op in c.history.history
            if op.process == name and op.f == "revoke" and op.type == "ok"]


def test_joins_and_leaves_rebalance_and_the_checks_hold():
    c = GroupCluster(seed=3)
    c.produce_every(20_000, c.now + 45 * S)
    for i in (1, 2):
        c.add_member(f"g-{i}")
    c.run_for(8 * S)
    for i in (3, 4, 5):
        c.add_member(f"g-{i}")
    c.run_for(8 * S)
    names = [f"g-{i}" for i in range(1, 6)]
    own = owners(c, names)
    assert sorted(own) == [("orders", p) for p in range(6)]
    assert all(len(v) == 1 for v in own.values())
    assert all(c.member(n).group.assignment for n in names)  # 6 over 5: nobody idle
    c.leave_member("g-1")
    c.run_for(6 * S)
    assert c.w.node("g-1").group.assignment == []
    own = owners(c, names[1:])
    assert sorted(own) == [("orders", p) for p in range(6)]
    c.run_for(30 * S)
    c.assert_checks_pass()


def test_cooperative_sticky_keeps_unmoved_partitions_owned_through_a_rebalance():
    c = GroupCluster(seed=4, member_config={
        "partition.assignment.strategy": "cooperative-sticky"})
    c.produce_every(20_000, c.now + 40 * S)
    for i in (1, 2):
        c.add_member(f"g-{i}")
    c.run_for(8 * S)
    before = {n: set(c.member(n).group.assignment) for n in ("g-1", "g-2")}
    assert sorted(before["g-1"] | before["g-2"]) == [("orders", p) for p in range(6)]
    c.add_member("g-3")
    c.run_for(10 * S)
    after = {n: set(c.member(n).group.assignment) for n in ("g-1", "g-2", "g-3")}
    assert len(after["g-3"]) == 2 and len(after["g-1"]) == 2 and len(after["g-2"]) == 2
    for n in ("g-1", "g-2"):
        kept = before[n] & after[n]
        assert len(kept) == 2
        revoked = {tuple(p.split("/")) for v in revokes(c, n) for p in v["partitions"]}
        revoked = {(t, int(p)) for t, p in revoked}
        # only the moved partitions were ever revoked; the kept ones stayed owned
        assert revoked == before[n] - after[n]
    # two rounds: g-3 got its partitions in the generation after the revocations
    gens = [g for _, g, _ in c.generations["g-3"]]
    assert gens[-1] >= 3 and c.generations["g-3"][-1][2]
    c.run_for(25 * S)
    c.assert_checks_pass()


def test_eager_rebalance_revokes_everything_first():
    c = GroupCluster(seed=5, member_config={"partition.assignment.strategy": "range"})
    c.produce_every(20_000, c.now + 30 * S)
    c.add_member("g-1")
    c.run_for(8 * S)
    assert len(c.member("g-1").group.assignment) == 6
    c.add_member("g-2")
    c.run_for(8 * S)
    rv = revokes(c, "g-1")
    assert rv and len(rv[0]["partitions"]) == 6
    assert c.member("g-1").group.assignment == [("orders", p) for p in range(3)]
    assert c.member("g-2").group.assignment == [("orders", p) for p in range(3, 6)]
    c.run_for(25 * S)
    c.assert_checks_pass()


def test_member_that_stops_polling_leaves_after_max_poll_interval_and_comes_back():
    c = GroupCluster(seed=6, member_config={"max.poll.interval.ms": 6_000})
    c.produce_every(20_000, c.now + 35 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}")
    c.run_for(8 * S)
    mine = set(c.member("g-2").group.assignment)
    assert mine
    c.stop_polling("g-2")
    c.run_for(10 * S)  # > max.poll.interval.ms, < session timeout + interval
    assert c.member("g-2").group.assignment == []
    assert [v for v in revokes(c, "g-2") if v["reason"] == "poll timeout"]
    own = owners(c, ["g-1", "g-3"])
    assert mine <= set(own)
    c.resume_polling("g-2")
    c.run_for(8 * S)
    assert c.member("g-2").group.assignment
    c.run_for(20 * S)
    c.assert_checks_pass()


def polled(c: GroupCluster, name: str, since_us: int = 0) -> list[dict]:
    return [r for op in c.history.history if op.process == name and op.f == "poll"
            and op.type == "ok" and op.time_us >= since_us for r in op.value["records"]]


def test_manual_commits_and_resume_from_the_committed_offset_after_a_restart():
    c = GroupCluster(seed=7, partitions=2, member_config={"enable.auto.commit": False})
    c.produce_every(20_000, c.now + 30 * S)
    c.add_member("g-1")
    c.run_for(8 * S)
    assert c.coordinator_of().group_coordinator.describe(GROUP)["offsets"] == {}
    done: list[str] = []
    c.w.call_in("g-1", lambda m: m.commit(on_done=lambda outcome, err: done.append(outcome)))
    c.run_for(S)
    assert done == ["ok"]
    committed = c.coordinator_of().group_coordinator.describe(GROUP)["offsets"]
    assert sorted(committed) == ["orders/0", "orders/1"] and min(committed.values()) > 0
    c.run_for(2 * S)  # consumes beyond the commit, which is never committed
    c.crash_member("g-1")
    c.run_for(S)
    restarted = c.now
    c.restart_member("g-1")
    c.run_for(12 * S)  # the old member id must expire first (session timeout)
    first = {}
    for r in polled(c, "g-1", restarted):
        first.setdefault(f"{r['topic']}/{r['partition']}", r["offset"])
    # at-least-once: it starts again exactly at the committed offset, not at the start
    assert first == committed
    c.w.call_in("g-1", lambda m: m.commit())
    c.run_for(20 * S)
    c.w.call_in("g-1", lambda m: m.commit())
    c.run_for(2 * S)
    c.assert_checks_pass()


def test_latest_reset_without_a_committed_offset_skips_older_records():
    c = GroupCluster(seed=8, partitions=2, member_config={"auto.offset.reset": "latest"})
    c.produce_every(20_000, c.now + 20 * S)
    c.run_for(5 * S)
    start = c.now
    c.add_member("g-1")
    c.run_for(8 * S)
    recs = polled(c, "g-1")
    assert recs and min(r["offset"] for r in recs) > 50  # ~125 per partition existed
    assert all(int(r["id"].split("-")[1]) > (start - 6 * S) // 20_000 for r in recs)


def test_offsets_topic_is_created_on_first_find_coordinator():
    c = GroupCluster(seed=9, create_offsets_topic=False)
    assert c.image().topic("__consumer_offsets") is None
    c.produce_every(20_000, c.now + 15 * S)
    for i in (1, 2):
        c.add_member(f"g-{i}")
    c.run_for(12 * S)
    t = c.image().topic("__consumer_offsets")
    assert t is not None and len(t.partitions) == 3
    assert t.configs.get("cleanup.policy") == "compact"
    assert sorted(tp for n in ("g-1", "g-2") for tp in c.member(n).group.assignment) == [
        ("orders", p) for p in range(6)]
    c.run_for(15 * S)
    c.assert_checks_pass()
