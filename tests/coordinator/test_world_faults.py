"""Consumer groups through faults: a paused (zombie) member, a static member's bounce,
a coordinator crash, a member cut off from the cluster."""

from __future__ import annotations

from simlog.protocol.errors import Errors
from simlog.protocol.group import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
    OffsetCommitResponse,
)

from .groupcluster import GROUP, TOPIC, GroupCluster, S


def test_zombie_member_commit_after_it_was_fenced_is_rejected():
    c = GroupCluster(seed=11)
    c.produce_every(20_000, c.now + 40 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}")
    c.run_for(10 * S)
    zombie = c.member("g-2").group
    old_member, old_gen = zombie.member_id, zombie.generation
    tp = zombie.assignment[0]
    coordinator = zombie.coordinator
    paused_at = c.now
    c.w.pause("g-2")  # a long GC pause: the session expires, the group moves on
    c.run_for(15 * S)
    resumed_at = c.now
    desc = c.coordinator_of().group_coordinator.describe(GROUP)
    assert old_member not in desc["members"] and desc["generation"] > old_gen
    committed_before = desc["offsets"].get(f"{tp[0]}/{tp[1]}")
    c.w.resume("g-2")
    got: list = []

    def zombie_commit(node) -> None:
        req = OffsetCommitRequest(
            correlation_id=node.tracker.next_correlation_id(), group_id=GROUP,
            generation_id=old_gen, member_id=old_member,
            topics=(OffsetCommitRequestTopic(name=tp[0], partitions=(
                OffsetCommitRequestPartition(partition_index=tp[1], committed_offset=0),)),))
        node.tracker.send(coordinator, req, got.append)

    c.w.call_in("g-2", zombie_commit)
    c.run_for(2 * S)
    assert len(got) == 1 and isinstance(got[0], OffsetCommitResponse)
    assert got[0].topics[0].partitions[0].error_code is Errors.UNKNOWN_MEMBER_ID
    desc = c.coordinator_of().group_coordinator.describe(GROUP)
    assert desc["offsets"].get(f"{tp[0]}/{tp[1]}", 0) >= (committed_before or 0) > 0
    # the zombie itself noticed: it gave its partitions up as lost, then rejoined
    lost = [op for op in c.history.history if op.process == "g-2" and op.f == "revoke"
            and op.type == "ok" and op.value["reason"] == "lost"]
    assert lost and lost[0].time_us == resumed_at
    # ...before handing out a single record: a zombie never consumes after its pause
    assert not [r for op in c.history.history if op.process == "g-2" and op.f == "poll"
                and op.type == "ok" and paused_at <= op.time_us <= lost[0].time_us
                for r in op.value["records"]]
    c.run_for(25 * S)
    results = c.checks()
    for name in ("committed_offsets", "poll_monotonic", "consumed_all"):
        assert results[name].passed, (name, results[name].witnesses)
    # A paused process cannot say it stopped owning: group_exclusive sees the zombie's
    # partitions handed out while it slept (Kafka's classic protocol has this window;
    # it is not a double consumption, as the assertion above shows).
    for wit in results["group_exclusive"].witnesses:
        assert "g-2" in wit["members"] and paused_at <= wit["time_us"] <= resumed_at


def test_static_member_bounce_within_session_timeout_causes_no_rebalance():
    c = GroupCluster(seed=12)
    c.produce_every(20_000, c.now + 40 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}", {"group.instance.id": f"instance-{i}"})
    c.run_for(10 * S)
    coord = c.coordinator_of().group_coordinator
    before = coord.describe(GROUP)
    assignment = list(c.member("g-2").group.assignment)
    c.crash_member("g-2")
    c.run_for(3 * S)
    c.restart_member("g-2")
    c.run_for(5 * S)
    after = coord.describe(GROUP)
    assert after["generation"] == before["generation"]
    assert after["rebalances"] == before["rebalances"]
    assert c.member("g-2").group.assignment == assignment
    assert c.member("g-2").group.generation == before["generation"]
    # others were never revoked
    for n in ("g-1", "g-3"):
        assert not [op for op in c.history.history if op.process == n and op.f == "revoke"]
    c.run_for(25 * S)
    c.assert_checks_pass()


def test_static_member_gone_longer_than_session_timeout_is_replaced():
    c = GroupCluster(seed=13)
    c.produce_every(20_000, c.now + 40 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}", {"group.instance.id": f"instance-{i}"})
    c.run_for(10 * S)
    gen = c.coordinator_of().group_coordinator.describe(GROUP)["generation"]
    c.crash_member("g-2")
    c.run_for(15 * S)
    desc = c.coordinator_of().group_coordinator.describe(GROUP)
    assert desc["generation"] > gen and len(desc["members"]) == 2
    c.restart_member("g-2")
    c.run_for(25 * S)
    c.assert_checks_pass()


def test_coordinator_crash_moves_the_group_and_keeps_committed_offsets():
    c = GroupCluster(seed=14)
    c.produce_every(20_000, c.now + 45 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}")
    c.run_for(12 * S)
    old = c.coordinator_of()
    offsets = old.group_coordinator.describe(GROUP)["offsets"]
    assert offsets
    c.w.crash(old.node_id)
    c.run_for(20 * S)
    new = c.coordinator_of()
    assert new is not None and new.node_id != old.node_id
    loaded = new.group_coordinator.describe(GROUP)["offsets"]
    for tp, off in offsets.items():
        assert loaded[tp] >= off
    c.w.restart(old.node_id)
    c.run_for(30 * S)
    c.assert_checks_pass()


def test_member_cut_off_from_the_cluster_gives_up_its_partitions():
    c = GroupCluster(seed=15)
    c.produce_every(20_000, c.now + 45 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}")
    c.run_for(10 * S)
    c.w.isolate(["g-3"])
    c.run_for(15 * S)
    assert c.w.node("g-3").group.assignment == []
    own = {tp for n in ("g-1", "g-2") for tp in c.member(n).group.assignment}
    assert own == {(TOPIC, p) for p in range(6)}
    c.w.heal()
    c.run_for(30 * S)
    assert c.member("g-3").group.assignment
    c.assert_checks_pass()


def test_coordinator_cut_off_by_a_network_partition_hands_the_group_over():
    c = GroupCluster(seed=16, member_config={
        "partition.assignment.strategy": "cooperative-sticky"})
    c.produce_every(20_000, c.now + 50 * S)
    for i in (1, 2, 3):
        c.add_member(f"g-{i}")
    c.run_for(10 * S)
    old = c.coordinator_of()
    offsets = old.group_coordinator.describe(GROUP)["offsets"]
    c.w.isolate([old.node_id])
    c.run_for(25 * S)
    new = c.coordinator_of()
    assert new is not None and new.node_id != old.node_id
    for tp, off in offsets.items():
        assert new.group_coordinator.describe(GROUP)["offsets"][tp] >= off
    assert {tp for n in ("g-1", "g-2", "g-3") for tp in c.member(n).group.assignment} == {
        (TOPIC, p) for p in range(6)}
    c.w.heal()
    c.run_for(30 * S)
    # the deposed coordinator learned it lost the partition and dropped the group
    assert old.group_coordinator.describe(GROUP) is None
    c.assert_checks_pass()
