"""BrokerNode's own requests in the World: Metadata from the image, InitProducerId
from the broker-local id blocks, and controlled shutdown moving leadership first."""

from __future__ import annotations

from simlog.protocol.errors import Errors
from simlog.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from simlog.protocol.metadata import MetadataRequest, MetadataResponse

from .simcluster import MS, Admin, S, SimCluster


def ask(c: SimCluster, dst: str, msg) -> object:
    admin = c.w.node("admin")
    assert isinstance(admin, Admin)
    before = len(admin.got)
    c.w.call_in("admin", lambda node: node.rt.send(dst, msg))
    c.run_for(50 * MS)
    assert len(admin.got) == before + 1
    return admin.got[-1]


def test_metadata_names_leader_epoch_replicas_and_isr() -> None:
    c = SimCluster()
    r = ask(c, "b2", MetadataRequest(correlation_id=7, topics=("t", "nope")))
    assert isinstance(r, MetadataResponse) and r.correlation_id == 7
    assert [b.node_id for b in r.brokers] == [1, 2, 3]
    assert [b.host for b in r.brokers] == ["b1", "b2", "b3"]
    t, nope = r.topics
    assert nope.error_code is Errors.UNKNOWN_TOPIC_OR_PARTITION
    (p,) = t.partitions
    assert p.leader_id == c.leader() and p.leader_epoch == 0
    assert sorted(p.replica_nodes) == [1, 2, 3]
    assert sorted(p.isr_nodes) == [1, 2, 3]


def test_init_producer_id_is_unique_across_brokers_and_bumps_epoch() -> None:
    c = SimCluster()
    ids = []
    for b in ("b1", "b2", "b3", "b1"):
        r = ask(c, b, InitProducerIdRequest(correlation_id=1))
        assert isinstance(r, InitProducerIdResponse) and r.error_code is Errors.NONE
        ids.append((r.producer_id, r.producer_epoch))
    assert len({pid for pid, _ in ids}) == 4 and all(e == 0 for _, e in ids)
    r = ask(c, "b2", InitProducerIdRequest(correlation_id=2, producer_id=ids[0][0],
                                           producer_epoch=0))
    assert (r.producer_id, r.producer_epoch) == (ids[0][0], 1)


def test_controlled_shutdown_moves_leadership_before_halting() -> None:
    c = SimCluster(settings={"min.insync.replicas": 2})
    c.send_every(20 * MS, c.w.now_us + 10 * S)
    c.run_for(2 * S)
    old = c.leader()
    c.w.shutdown(f"b{old}")
    c.run_for(10 * S)
    assert not c.w.alive(f"b{old}")
    assert c.leader() not in (None, old)
    (halted,) = [e["time_us"] for e in c.w.events
                 if e["node"] == f"b{old}" and e["kind"] == "halt"]
    moved = [e["time_us"] for e in c.events("partition_change")
             if dict(e["fields"][1])["leader"] != old]
    assert moved and moved[0] <= halted
    c.w.restart(f"b{old}")
    c.run_for(20 * S)
    assert c.lost(f"b{c.leader()}") == []
