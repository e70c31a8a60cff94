"""Group work happens inside poll, as in Kafka's consumer: a member whose application is
busy with the records of its last poll holds up a rebalance (and its own auto commits)
until it polls again, while its heartbeats go on.

Member g-1 is slow (each record takes long to process, a few records per poll), g-2
polls back to back; then g-3 joins. With the eager protocol g-2 revokes everything at
once and waits, owning nothing, for g-1's next poll (stop-the-world); with
cooperative-sticky g-2 keeps consuming its partitions meanwhile."""

from __future__ import annotations

from .groupcluster import GroupCluster, S

SLOW_US = 600_000          # g-1's application time per record
SLOW_CONFIG = {"max.poll.records": 5}  # so one poll is up to 3 s of work


def ops(c: GroupCluster, name: str, f: str, kind: str = "ok") -> list:
    return [op for op in c.history.history
            if op.process == name and op.f == f and op.type == kind]


def poll_starts(c: GroupCluster, name: str) -> list[int]:
    return [op.time_us for op in ops(c, name, "poll", "invoke")]


def inside_a_poll(c: GroupCluster, name: str, time_us: int) -> bool:
    """Whether the member's application was inside poll (not processing) then."""
    start = None
    for op in c.history.history:
        if op.process != name or op.f != "poll":
            continue
        if op.type == "invoke":
            start = op.time_us
        elif start is not None:
            if start <= time_us <= op.time_us:
                return True
            start = None
    return start is not None and start <= time_us


def slow_and_fast_then_join(strategy: str, seed: int) -> tuple[GroupCluster, int]:
    c = GroupCluster(seed=seed, member_config={"partition.assignment.strategy": strategy})
    c.produce_every(10_000, c.now + 40 * S)     # 100 records/s over 6 partitions
    c.processing_us["g-1"] = SLOW_US
    c.add_member("g-1", SLOW_CONFIG)
    c.add_member("g-2")
    c.run_for(8 * S)
    assert c.member("g-1").group.assignment and c.member("g-2").group.assignment
    joined_at = c.now
    c.add_member("g-3")
    c.run_for(12 * S)
    return c, joined_at


def test_eager_rebalance_waits_for_the_busy_members_next_poll_with_everything_revoked():
    c, joined_at = slow_and_fast_then_join("range", seed=11)
    fast = [op for op in ops(c, "g-2", "revoke") if op.time_us >= joined_at]
    slow = [op for op in ops(c, "g-1", "revoke") if op.time_us >= joined_at]
    assert fast and slow
    # the slow member revoked (and rejoined) only when its application polled again
    assert inside_a_poll(c, "g-1", slow[0].time_us)
    # the fast member gave up everything first and then owned nothing until the
    # rebalance could complete, after the slow member's poll
    assert fast[0].time_us < slow[0].time_us
    assert len(fast[0].value["partitions"]) == len(ops(c, "g-2", "assign")[0].value["partitions"])
    back = [op for op in ops(c, "g-2", "assign") if op.time_us > fast[0].time_us]
    assert back and back[0].time_us >= slow[0].time_us
    stalled = [op for op in ops(c, "g-2", "poll")
               if fast[0].time_us < op.time_us < back[0].time_us]
    assert stalled and all(not op.value["records"] for op in stalled)
    c.processing_us["g-1"] = 0  # it catches up, and every acknowledged write is read
    c.run_for(20 * S)
    c.assert_checks_pass()


def test_cooperative_members_keep_consuming_while_the_busy_member_holds_up_the_rebalance():
    c, joined_at = slow_and_fast_then_join("cooperative-sticky", seed=11)
    owned_before = set(ops(c, "g-2", "assign")[0].value["partitions"])
    slow_join = [t for t in poll_starts(c, "g-1") if t > joined_at]
    g3 = [op for op in ops(c, "g-3", "assign") if op.value["partitions"]]
    assert slow_join and g3
    # g-2 kept the partitions it was not giving up and read them during the rebalance
    revoked = {p for op in ops(c, "g-2", "revoke") for p in op.value["partitions"]}
    kept = owned_before - revoked
    assert kept
    read = {f"{r['topic']}/{r['partition']}" for op in ops(c, "g-2", "poll")
            if joined_at < op.time_us < g3[0].time_us for r in op.value["records"]}
    assert kept <= read
    # and the new member got its partitions only after the slow member polled again
    assert g3[0].time_us > slow_join[0]
    # the slow member gave up its moved partition inside a poll (onJoinComplete runs in
    # poll), never while its application was still working on them
    slow_revokes = [op for op in ops(c, "g-1", "revoke") if op.time_us >= joined_at]
    assert slow_revokes
    assert all(inside_a_poll(c, "g-1", op.time_us) for op in slow_revokes)
    c.processing_us["g-1"] = 0
    c.run_for(20 * S)
    c.assert_checks_pass()


def test_auto_commits_happen_inside_poll_so_they_cover_only_processed_records():
    c = GroupCluster(seed=12, member_config={"auto.commit.interval.ms": 500})
    c.produce_every(10_000, c.now + 20 * S)
    c.processing_us["g-1"] = SLOW_US
    c.add_member("g-1", SLOW_CONFIG)
    c.run_for(20 * S)
    commits = ops(c, "g-1", "commit", "invoke")
    assert len(commits) >= 3
    for op in commits:
        assert inside_a_poll(c, "g-1", op.time_us), "an auto commit outside poll"
        # what it commits was handed out by an earlier poll whose processing is over
        handed = {}
        for p in ops(c, "g-1", "poll"):
            if p.time_us <= op.time_us:
                for r in p.value["records"]:
                    key = f"{r['topic']}/{r['partition']}"
                    handed[key] = max(handed.get(key, 0), r["offset"] + 1)
        for part, offset in op.value["offsets"].items():
            assert offset <= handed.get(part, 0)
    c.processing_us["g-1"] = 0
    c.run_for(10 * S)
    c.assert_checks_pass()
