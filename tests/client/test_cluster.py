"""Producer and consumer against a real KRaft cluster (controllers + BrokerNodes) in
the sim World: partitioning, offsets, consumption, and a leader crash."""

from __future__ import annotations

from collections import Counter
from typing import Any

from simlog.broker.node import broker_factory
from simlog.client import Consumer, PollResult, Producer, SendResult, partition_for_key
from simlog.controller.config import ControllerConfig
from simlog.controller.node import controller_factory
from simlog.protocol.controller import CreatableTopic, CreateTopicsRequest
from simlog.runtime import Message, NodeBase, Runtime
from simlog.sim import World

S = 1_000_000
VOTERS = ("c1", "c2", "c3")
SETTINGS = {"min.insync.replicas": 2}


class Admin(NodeBase):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.got: list[Message] = []

    def on_message(self, src: str, msg: Message) -> None:
        self.got.append(msg)


def cluster(seed: int = 1, settings: dict[str, Any] | None = None) -> World:
    settings = SETTINGS if settings is None else settings
    w = World(seed=seed)
    ccfg = ControllerConfig.from_kafka(VOTERS, settings)
    for c in VOTERS:
        w.add_node(c, controller_factory(ccfg))
    for i in (1, 2, 3):
        w.add_node(f"b{i}", broker_factory(i, settings, VOTERS))
    w.add_node("admin", Admin)
    w.run_for(5 * S)

    def create(node: Any) -> None:
        for c in VOTERS:  # only the active controller answers without error
            node.rt.send(c, CreateTopicsRequest(correlation_id=1, topics=(CreatableTopic(
                name="orders", num_partitions=3, replication_factor=3),)))

    w.call_in("admin", create)
    w.run_for(2 * S)
    return w


class Workload:
    """A producer p1 sending keyed records with ids, and a consumer q1 polling."""

    def __init__(self, w: World, producer: dict[str, Any] | None = None) -> None:
        self.w = w
        self.results: dict[str, SendResult] = {}
        self.keys: dict[str, bytes] = {}
        self.consumed: list[tuple[int, int, str]] = []
        self.sent = 0
        pcfg = {"bootstrap.servers": "b1,b2,b3", **(producer or {})}
        w.add_node("p1", lambda rt: Producer(rt, pcfg))
        w.add_node("q1", lambda rt: Consumer(rt, {"bootstrap.servers": "b1,b2,b3",
                                                  "auto.offset.reset": "earliest"}))
        w.call_in("q1", lambda c: c.assign([("orders", p) for p in range(3)]))
        w.call_in("q1", self._poll)

    def send(self, n: int, partition: int | None = None) -> None:
        start, self.sent = self.sent, self.sent + n

        def go(p: Any) -> None:
            for i in range(start, start + n):
                rid = f"p1-{i}"
                self.keys[rid] = b"k%d" % (i % 11)
                p.send("orders", b"v", key=self.keys[rid], headers=(("id", rid.encode()),),
                       partition=partition,
                       on_complete=lambda r, rid=rid: self.results.__setitem__(rid, r))

        self.w.call_in("p1", go)

    def _poll(self, c: Any) -> None:
        def got(res: PollResult) -> None:
            for r in res.records:
                self.consumed.append((r.partition, r.offset, r.header("id").decode()))
            self.w.call_in("q1", self._poll)

        c.poll(got, timeout_us=100_000)


def test_records_land_on_murmur2_partitions_and_are_consumed_once_in_offset_order() -> None:
    w = cluster()
    wl = Workload(w)
    wl.send(300)
    w.run_for(5 * S)
    assert len(wl.results) == 300 and all(r.ok for r in wl.results.values())
    for rid, r in wl.results.items():
        assert r.partition == partition_for_key(wl.keys[rid], 3)
    assert len({(r.partition, r.offset) for r in wl.results.values()}) == 300
    consumed = {rid: (p, o) for p, o, rid in wl.consumed}
    assert len(wl.consumed) == 300 and len(consumed) == 300
    assert consumed == {rid: (r.partition, r.offset) for rid, r in wl.results.items()}
    for p in range(3):
        offsets = [o for q, o, _ in wl.consumed if q == p]
        assert offsets == sorted(offsets)


def test_leader_crash_keeps_acks_all_writes_flowing_without_loss_or_duplicates() -> None:
    w = cluster(seed=3)
    wl = Workload(w)
    wl.send(100)
    w.run_for(2 * S)
    victim = None
    for b in ("b1", "b2", "b3"):
        node: Any = w.node(b)
        if node is not None and node.rm.partition(("orders", 0)) is not None \
                and node.rm.partition(("orders", 0)).is_leader:
            victim = b
    assert victim is not None
    w.crash(victim)
    for _ in range(20):
        wl.send(10)
        w.run_for(S // 2)
    w.run_for(60 * S)
    statuses = Counter(r.status for r in wl.results.values())
    assert len(wl.results) == 300 and statuses["fail"] == 0, statuses
    assert statuses["ok"] >= 250, statuses
    ids = [rid for _, _, rid in wl.consumed]
    assert len(ids) == len(set(ids))  # idempotence: no duplicates
    acked = {rid for rid, r in wl.results.items() if r.ok}
    assert acked <= set(ids)  # nothing acknowledged was lost
    by_key: dict[bytes, list[int]] = {}
    for _, _, rid in wl.consumed:
        by_key.setdefault(wl.keys[rid], []).append(int(rid.split("-")[1]))
    assert all(seq == sorted(seq) for seq in by_key.values())  # per-key order kept


def leader_of(w: World, partition: int) -> str:
    for b in ("b1", "b2", "b3"):
        node: Any = w.node(b)
        p = node.rm.partition(("orders", partition)) if node is not None else None
        if p is not None and p.is_leader:
            return b
    raise AssertionError("no leader")


def test_consumer_detects_log_truncation_after_an_unclean_election() -> None:
    """KIP-320 end to end: the ISR shrinks to a partitioned leader, which takes acks=1
    writes 50..59 that the consumer reads; the leader dies, an out-of-sync replica
    becomes leader (unclean election) with a log ending epoch 0 at offset 50. The
    consumer notices the truncation, moves back to 50 and reads the new epoch."""
    w = cluster(seed=5, settings={"min.insync.replicas": 1,
                                  "unclean.leader.election.enable": True})
    wl = Workload(w, producer={"acks": 1, "enable.idempotence": False})
    wl.send(50, partition=0)
    w.run_for(3 * S)
    leader = leader_of(w, 0)
    w.partition([[leader], [b for b in ("b1", "b2", "b3") if b != leader]])
    wl.send(10, partition=0)
    w.run_for(45 * S)  # replica.lag.time.max.ms: the ISR shrinks to the leader alone
    consumer: Any = w.node("q1")
    assert consumer.position(("orders", 0)) == 60  # it read the 10 unreplicated writes
    w.crash(leader)
    w.heal()
    w.run_for(20 * S)
    assert leader_of(w, 0) != leader
    wl.send(20, partition=0)
    w.run_for(40 * S)
    (t,) = consumer.truncations
    assert (t.tp, t.position, t.offset_epoch, t.end_offset) == (("orders", 0), 60, 0, 50)
    assert consumer.position(("orders", 0)) == 70  # 50 + the 20 written after
    new = [rid for p, o, rid in wl.consumed if p == 0 and o >= 50][-20:]
    assert new == [f"p1-{i}" for i in range(60, 80)]


def test_same_seed_gives_the_same_trace_with_clients() -> None:
    def run() -> tuple[str, list[tuple[str, str, int | None]]]:
        w = cluster(seed=9)
        wl = Workload(w)
        wl.send(100)
        w.run_for(2 * S)
        w.crash(leader_of(w, 1))
        wl.send(50)
        w.run_for(35 * S)
        return w.trace_hash, sorted((k, r.status, r.offset) for k, r in wl.results.items())

    assert run() == run()
