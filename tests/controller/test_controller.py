"""Quorum controller: registration, heartbeats, fencing, elections, AlterPartition,
CreateTopics, controlled shutdown; dedicated and combined mode."""

from __future__ import annotations

from ctl_broker import broker_factory
from ctl_harness import Cluster

from simlog.controller.config import ControllerConfig
from simlog.controller.node import controller_factory
from simlog.controller.records import NO_LEADER
from simlog.protocol.controller import (
    AlterPartitionRequest,
    AlterPartitionRequestPartition,
    AlterPartitionRequestTopic,
    AlterPartitionResponse,
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from simlog.protocol.errors import Errors

S = 1_000_000
CONTROLLERS = ["c1", "c2", "c3"]
BROKERS = {"b1": 1, "b2": 2, "b3": 3}


def cluster(settings=None, seed=1) -> tuple[Cluster, ControllerConfig]:
    config = ControllerConfig.from_kafka(CONTROLLERS, settings or {})
    c = Cluster(seed=seed)
    for cid in CONTROLLERS:
        c.add(cid, controller_factory(config))
    for node_id, bid in BROKERS.items():
        c.add(node_id, broker_factory(bid, config))
    return c, config


def active(c: Cluster) -> str | None:
    found = [n for n in CONTROLLERS if c.node(n) is not None and c.node(n).is_active]
    assert len(found) <= 1
    return found[0] if found else None


def image(c: Cluster, node="b1"):
    return c.node(node).metadata.image


def all_unfenced(c: Cluster, n=3) -> bool:
    return active(c) is not None and len(c.node(active(c)).image.eligible_broker_ids()) == n


def create_topic(c: Cluster, name="orders", partitions=1, rf=3, configs=()) -> CreateTopicsResponse:
    ctrl = active(c)
    c.node("b1").responses.clear()
    c.node("b1").rt.send(ctrl, CreateTopicsRequest(correlation_id=7, topics=(CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=rf,
        configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in configs)),)))
    c.run_for(S)
    resp = [m for m in c.node("b1").responses if isinstance(m, CreateTopicsResponse)]
    assert len(resp) == 1
    return resp[0]


def started(settings=None, seed=1):
    c, config = cluster(settings, seed)
    assert c.run_until_true(lambda: all_unfenced(c), 20 * S)
    return c, config


def test_brokers_register_and_are_unfenced_once_caught_up():
    c, _ = started()
    assert sorted(e["broker"] for e in c.events_of("broker_registered")) == [1, 2, 3]
    assert sorted(e["broker"] for e in c.events_of("broker_unfenced")) == [1, 2, 3]
    c.run_for(S)
    for b in BROKERS:
        assert image(c, b).eligible_broker_ids() == [1, 2, 3]
        assert c.node(b).lifecycle.state == "running"


def test_create_topics_places_replicas_round_robin_deterministically():
    c, _ = started()
    resp = create_topic(c, "orders", partitions=3, rf=2)
    assert resp.topics[0].error_code == Errors.NONE
    c.run_for(S)
    parts = [image(c).partition("orders", i) for i in range(3)]
    assert [p.replicas for p in parts] == [(1, 2), (2, 3), (3, 1)]
    assert [p.leader for p in parts] == [1, 2, 3]
    assert create_topic(c, "orders").topics[0].error_code == Errors.TOPIC_ALREADY_EXISTS
    assert create_topic(c, "big", rf=4).topics[0].error_code == Errors.INVALID_REPLICATION_FACTOR
    # brokers learn leadership through the delta
    assert c.node("b2").led == {("orders", 1): 0}


def test_session_expiry_fences_and_moves_leadership_within_session_timeout():
    c, config = started()
    create_topic(c, "orders", partitions=1, rf=3)
    c.run_for(S)
    assert image(c).partition("orders", 0).leader == 1
    crash_us = c.now_us
    c.crash("b1")
    assert c.run_until_true(lambda: image(c, "b2").partition("orders", 0).leader != 1, 20 * S)
    p = image(c, "b2").partition("orders", 0)
    assert p.leader == 2 and p.isr == (2, 3) and p.leader_epoch == 1
    fenced = c.events_of("broker_fenced")
    assert [e["broker"] for e in fenced] == [1]
    assert fenced[0]["time_us"] - crash_us <= config.broker_session_timeout_us + 200_000
    assert c.node("b2").led == {("orders", 0): 1}


def test_restarted_broker_registers_again_and_rejoins():
    c, _ = started()
    c.crash("b3")
    c.run_for(12 * S)
    assert image(c).broker(3).fenced
    c.restart("b3")
    assert c.run_until_true(lambda: not image(c).broker(3).fenced, 10 * S)
    assert image(c).broker(3).broker_epoch > 0


def offline_scenario(unclean: bool):
    settings = {"unclean.leader.election.enable": str(unclean).lower()}
    c, _ = started(settings)
    create_topic(c, "orders", partitions=1, rf=3)
    c.run_for(S)
    # shrink the ISR to the leader, as a leader does when followers lag
    alter(c, "b1", 1, "orders", 0, new_isr=(1,))
    assert image(c).partition("orders", 0).isr == (1,)
    c.crash("b1")
    c.run_for(15 * S)
    return c


def test_unclean_election_off_keeps_the_partition_offline_until_isr_returns():
    c = offline_scenario(unclean=False)
    p = image(c, "b2").partition("orders", 0)
    assert p.leader == NO_LEADER and p.isr == (1,)
    c.restart("b1")
    assert c.run_until_true(lambda: image(c, "b2").partition("orders", 0).leader == 1, 15 * S)
    assert not c.events_of("unclean_leader_election")


def test_unclean_election_on_elects_an_out_of_sync_replica():
    c = offline_scenario(unclean=True)
    p = image(c, "b2").partition("orders", 0)
    assert p.leader == 2 and p.isr == (2,)
    assert c.events_of("unclean_leader_election")


def test_unclean_topic_config_overrides_the_default():
    c, _ = started()
    create_topic(c, "t", partitions=1, rf=2, configs=[("unclean.leader.election.enable", "true")])
    c.run_for(S)
    p = image(c).partition("t", 0)
    alter(c, f"b{p.leader}", p.leader, "t", 0, new_isr=(p.leader,))
    c.crash(f"b{p.leader}")
    c.run_for(15 * S)
    q = image(c, f"b{p.replicas[1]}").partition("t", 0)
    assert q.leader == p.replicas[1]


def alter(c, node, broker_id, topic, index, new_isr, leader_epoch=None, partition_epoch=None,
          broker_epoch=None):
    p = image(c, node).partition(topic, index)
    b = c.node(node)
    b.responses.clear()
    b.rt.send(active(c), AlterPartitionRequest(
        correlation_id=9, broker_id=broker_id,
        broker_epoch=b.lifecycle.broker_epoch if broker_epoch is None else broker_epoch,
        topics=(AlterPartitionRequestTopic(topic_name=topic, partitions=(
            AlterPartitionRequestPartition(
                partition_index=index, new_isr=tuple(new_isr),
                leader_epoch=(p.leader_epoch if p else 0) if leader_epoch is None
                else leader_epoch,
                partition_epoch=(p.partition_epoch if p else 0) if partition_epoch is None
                else partition_epoch),)),)))
    c.run_for(S)
    resp = [m for m in b.responses if isinstance(m, AlterPartitionResponse)]
    assert len(resp) == 1
    return resp[0]


def alter_code(resp):
    if resp.error_code != Errors.NONE:
        return resp.error_code
    return resp.topics[0].partitions[0].error_code


def test_alter_partition_validation():
    c, _ = started()
    create_topic(c, "orders", partitions=1, rf=3)
    c.run_for(S)
    ok = alter(c, "b1", 1, "orders", 0, new_isr=(1, 2))
    assert alter_code(ok) == Errors.NONE
    part = ok.topics[0].partitions[0]
    assert part.isr == (1, 2) and part.partition_epoch == 1 and part.leader_epoch == 0
    assert alter_code(alter(c, "b1", 1, "orders", 0, new_isr=(1,), partition_epoch=0)) \
        == Errors.INVALID_UPDATE_VERSION
    assert alter_code(alter(c, "b1", 1, "orders", 0, new_isr=(1,), leader_epoch=5)) \
        == Errors.FENCED_LEADER_EPOCH
    assert alter_code(alter(c, "b2", 2, "orders", 0, new_isr=(2,))) == Errors.INVALID_REQUEST
    assert alter_code(alter(c, "b1", 1, "orders", 0, new_isr=(1, 9))) == Errors.INVALID_REQUEST
    assert alter_code(alter(c, "b1", 1, "orders", 0, new_isr=(1,), broker_epoch=12345)) \
        == Errors.STALE_BROKER_EPOCH
    assert alter_code(alter(c, "b1", 1, "nope", 0, new_isr=(1,))) \
        == Errors.UNKNOWN_TOPIC_OR_PARTITION
    # expanding with a fenced replica is refused
    c.crash("b3")
    c.run_for(12 * S)
    assert alter_code(alter(c, "b1", 1, "orders", 0, new_isr=(1, 2, 3))) \
        == Errors.INELIGIBLE_REPLICA
    assert image(c).partition("orders", 0).isr == (1, 2)


def test_controlled_shutdown_moves_leadership_before_the_broker_stops():
    c, _ = started()
    create_topic(c, "orders", partitions=3, rf=3)
    c.run_for(S)
    led_by_1 = [p.partition for p in image(c).partitions_led_by(1)]
    assert led_by_1
    halted_at = []
    b1 = c.node("b1")
    b1.lifecycle.on_shutdown_complete = lambda: (halted_at.append(c.now_us),
                                                 b1.rt.halt("done"))
    b1.shutdown()
    c.run_for(3 * S)
    assert halted_at and c.node("b1") is None
    img = image(c, "b2")
    assert img.partitions_led_by(1) == []
    assert all(1 not in p.isr for p in img.partitions())
    moved = [e for e in c.events_of("partition_change") if e["time_us"] <= halted_at[0]
             and e["leader"] != 1 and e["partition"] in led_by_1]
    assert {e["partition"] for e in moved} == set(led_by_1)
    assert img.broker(1).in_controlled_shutdown and img.broker(1).fenced
    # a cleanly stopped broker registers again at once (it was fenced on shutdown)
    restarted_at = c.now_us
    c.restart("b1")
    assert c.run_until_true(lambda: not image(c, "b2").broker(1).fenced, 5 * S)
    assert c.now_us - restarted_at < 2 * S


def test_crashed_broker_restarting_at_once_waits_for_its_old_session():
    c, config = started()
    old_epoch = image(c, "b2").broker(1).broker_epoch
    c.crash("b1")
    crashed_at = c.now_us
    c.restart("b1")
    assert c.run_until_true(lambda: image(c, "b2").broker(1).broker_epoch > old_epoch
                            and not image(c, "b2").broker(1).fenced
                            and c.node("b1").lifecycle.state == "running", 20 * S)
    # the old incarnation's session had to expire first (DUPLICATE_BROKER_REGISTRATION)
    fenced = c.events_of("broker_fenced")
    assert [e["broker_epoch"] for e in fenced] == [old_epoch]
    assert fenced[0]["time_us"] - crashed_at >= config.broker_session_timeout_us - 2 * S


def test_controller_failover_keeps_metadata_and_serves_requests():
    c, _ = started()
    create_topic(c, "a", partitions=2, rf=2)
    first = active(c)
    c.crash(first)
    assert c.run_until_true(lambda: active(c) not in (None, first), 10 * S)
    assert create_topic(c, "b").topics[0].error_code == Errors.NONE
    c.run_for(S)
    assert sorted(image(c).topics) == ["a", "b"]
    assert all(not image(c).broker(b).fenced for b in (1, 2, 3))


def test_combined_mode_brokers_run_the_quorum():
    config = ControllerConfig.from_kafka(list(BROKERS), {})
    c = Cluster(seed=3)
    for node_id, bid in BROKERS.items():
        c.add(node_id, broker_factory(bid, config))

    def ready():
        act = [n for n in BROKERS if c.node(n).controller.active]
        return len(act) == 1 and len(c.node(act[0]).metadata.image.eligible_broker_ids()) == 3

    assert c.run_until_true(ready, 20 * S)
    leader = next(n for n in BROKERS if c.node(n).controller.active)
    other = next(n for n in BROKERS if n != leader)
    c.node(other).rt.send(leader, CreateTopicsRequest(topics=(CreatableTopic(
        name="t", num_partitions=3, replication_factor=3),)))
    c.run_for(S)
    assert len(image(c, other).partitions_on(BROKERS[other])) == 3
    c.crash(leader)
    assert c.run_until_true(lambda: sum(
        1 for n in BROKERS if c.node(n) is not None and c.node(n).controller.active) == 1, 20 * S)
    c.run_for(12 * S)
    survivor = next(n for n in BROKERS if c.node(n) is not None)
    assert image(c, survivor).broker(BROKERS[leader]).fenced
    assert image(c, survivor).partitions_led_by(BROKERS[leader]) == []


def test_lagging_broker_catches_up_from_a_snapshot_and_sees_its_partitions():
    c, _ = started({"simlog.metadata.snapshot.interval.records": 10})
    create_topic(c, "x", partitions=3, rf=3)
    c.crash("b3")
    c.run_for(12 * S)  # fenced: leadership of x-2 moved away
    create_topic(c, "y", partitions=6, rf=2)
    c.run_for(S)
    ctrl = c.node(active(c))
    assert ctrl.metadata.raft.log.start_offset > 0  # the log was cut by a snapshot
    b3 = c.restart("b3")
    assert c.run_until_true(lambda: b3.metadata.image == ctrl.image
                            and not ctrl.image.broker(3).fenced, 20 * S)
    assert [e for e in c.events_of("raft_snapshot_loaded") if e["node"] == "b3"]
    # the delta from the snapshot told b3 which partitions it hosts, as a follower
    assert b3.followed == {("x", 0), ("x", 1), ("x", 2)}
    assert b3.led == {}
    assert ctrl.image.partitions_led_by(3) == []


def test_delete_topics_removes_partitions_everywhere():
    c, _ = started()
    create_topic(c, "gone", partitions=2, rf=3)
    c.run_for(S)
    assert c.node("b1").led
    b1 = c.node("b1")
    b1.responses.clear()
    b1.rt.send(active(c), DeleteTopicsRequest(correlation_id=3, topic_names=("gone", "nope")))
    c.run_for(S)
    resp = [m for m in b1.responses if isinstance(m, DeleteTopicsResponse)]
    assert [(r.name, r.error_code) for r in resp[0].responses] == [
        ("gone", Errors.NONE), ("nope", Errors.UNKNOWN_TOPIC_OR_PARTITION)]
    for b in BROKERS:
        assert image(c, b).topic("gone") is None
        assert c.node(b).led == {} and c.node(b).followed == set()


def rebalance_scenario(enable: bool):
    c, _ = started({"auto.leader.rebalance.enable": str(enable).lower(),
                    "leader.imbalance.check.interval.seconds": 30})
    create_topic(c, "orders", partitions=1, rf=3)
    c.crash("b1")
    c.run_for(12 * S)
    assert image(c, "b2").partition("orders", 0).leader == 2
    c.restart("b1")
    assert c.run_until_true(lambda: not image(c, "b2").broker(1).fenced, 10 * S)
    alter(c, "b2", 2, "orders", 0, new_isr=(1, 2, 3))  # the leader lets b1 back in
    c.run_for(40 * S)
    return c


def test_auto_leader_rebalance_returns_leadership_to_the_preferred_replica():
    c = rebalance_scenario(enable=True)
    p = image(c, "b2").partition("orders", 0)
    assert p.leader == 1 and p.leader_epoch == 2
    assert c.events_of("preferred_leader_election")


def test_auto_leader_rebalance_off_leaves_leadership_alone():
    c = rebalance_scenario(enable=False)
    assert image(c, "b2").partition("orders", 0).leader == 2
    assert not c.events_of("preferred_leader_election")
