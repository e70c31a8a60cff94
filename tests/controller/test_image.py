"""MetadataImage replay, deltas, local changes and snapshot round trip."""

from __future__ import annotations

import msgspec

from simlog.controller.image import MetadataImage
from simlog.controller.records import (
    NO_LEADER,
    ConfigRecord,
    FenceBrokerRecord,
    LogEntry,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)


def entries(*records, start=0, epoch=1):
    return [LogEntry(offset=start + i, epoch=epoch, record=r) for i, r in enumerate(records)]


def cluster() -> MetadataImage:
    image = MetadataImage()
    image.apply(entries(
        RegisterBrokerRecord(broker_id=1, broker_epoch=0, host="b1"),
        RegisterBrokerRecord(broker_id=2, broker_epoch=1, host="b2"),
        UnfenceBrokerRecord(id=1, epoch=0),
        UnfenceBrokerRecord(id=2, epoch=1),
        TopicRecord(name="orders", topic_id="t4"),
        ConfigRecord(resource_name="orders", name="min.insync.replicas", value="2"),
        PartitionRecord(partition_id=0, topic_id="t4", replicas=(1, 2), isr=(1, 2), leader=1),
    ))
    return image


def test_replay_builds_brokers_topics_partitions():
    image = cluster()
    assert image.offset == 6
    assert image.eligible_broker_ids() == [1, 2]
    p = image.partition("orders", 0)
    assert (p.leader, p.isr, p.leader_epoch, p.partition_epoch) == (1, (1, 2), 0, 0)
    assert image.topic_config("orders", "min.insync.replicas") == "2"
    assert image.broker_host(2) == "b2"


def test_delta_reports_leadership_moves_per_broker():
    image = cluster()
    delta = image.apply(entries(
        FenceBrokerRecord(id=1, epoch=0),
        PartitionChangeRecord(partition_id=0, topic_id="t4", leader=2, isr=(2,),
                              leader_epoch=1, partition_epoch=1),
        start=7))
    assert delta.brokers[1][0].fenced is False and delta.brokers[1][1].fenced is True
    local2 = delta.local_changes(2)
    assert [p.leader for p in local2.leaders] == [2]
    local1 = delta.local_changes(1)
    assert [p.leader_epoch for p in local1.followers] == [1]
    assert local1.leaders == ()


def test_isr_only_change_is_not_a_leadership_move():
    image = cluster()
    delta = image.apply(entries(
        PartitionChangeRecord(partition_id=0, topic_id="t4", leader=1, isr=(1,),
                              leader_epoch=0, partition_epoch=1), start=7))
    local = delta.local_changes(1)
    assert local.leaders == () and [p.isr for p in local.isr_changes] == [(1,)]


def test_fence_of_old_incarnation_is_ignored():
    image = cluster()
    image.apply(entries(RegisterBrokerRecord(broker_id=1, broker_epoch=7, host="b1"), start=7))
    image.apply(entries(UnfenceBrokerRecord(id=1, epoch=0), start=8))
    assert image.broker(1).fenced is True


def test_snapshot_round_trip_equals_image():
    image = cluster()
    image.apply(entries(PartitionChangeRecord(partition_id=0, topic_id="t4", leader=NO_LEADER,
                                              isr=(2,), leader_epoch=1, partition_epoch=1),
                        start=7))
    records = image.to_records()
    encoded = msgspec.msgpack.encode(records)
    from simlog.controller.records import AnyRecord
    decoded = msgspec.msgpack.decode(encoded, type=list[AnyRecord])
    rebuilt = MetadataImage.from_records(decoded, offset=image.offset, epoch=image.epoch)
    assert rebuilt == image
    assert rebuilt.partition("orders", 0).leader == NO_LEADER
