"""A KRaft cluster with group coordinators in the sim World, and a consumer-group workload
that writes a Jepsen-style history the consumer checks read.

Brokers are plain BrokerNodes, which embed the group coordinator. Topic `orders` (RF 3) and
`__consumer_offsets` (`offsets.topic.num.partitions` = 3, RF 3, compacted) are created up
front. Producer p1 sends records whose `id` header is `p1-N`; members `g-1..` are
GroupConsumers polling in a loop; every assign / revoke / poll / commit / send / crash /
leave goes into `self.history`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simlog.broker.node import BrokerNode, broker_factory
from simlog.checks.consumers import (
    committed_offsets,
    consumed_all,
    group_exclusive,
    poll_monotonic,
)
from simlog.checks.history import HistoryRecorder
from simlog.checks.state import FinalState, PartitionState, Record, Replica
from simlog.client.consumer import PollResult
from simlog.client.group import GroupConsumer, GroupListener
from simlog.client.producer import Producer
from simlog.client.results import SendResult
from simlog.controller.config import ControllerConfig
from simlog.controller.node import ControllerNode, controller_factory
from simlog.coordinator import partition_for
from simlog.protocol.controller import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from simlog.records.batch import RecordBatch
from simlog.runtime import Message, NodeBase, Runtime
from simlog.scenario.selectors import TopicPartition
from simlog.sim import World

MS = 1_000
S = 1_000_000
VOTERS = ("c1", "c2", "c3")
TOPIC = "orders"
GROUP = "g"
POLL_TIMEOUT_US = 100 * MS


class Admin(NodeBase):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.got: list[Message] = []

    def on_message(self, src: str, msg: Message) -> None:
        self.got.append(msg)


BASE_SETTINGS = {"min.insync.replicas": 2, "offsets.topic.num.partitions": 3,
                 "group.initial.rebalance.delay.ms": 500}
BASE_MEMBER = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000,
               "auto.offset.reset": "earliest", "auto.commit.interval.ms": 1_000}


@dataclass
class GroupCluster:
    seed: int = 1
    partitions: int = 6
    settings: dict[str, Any] = field(default_factory=dict)
    member_config: dict[str, Any] = field(default_factory=dict)
    record_events: bool = False
    create_offsets_topic: bool = True  # False: the coordinator creates it on demand

    def __post_init__(self) -> None:
        self.w = World(seed=self.seed, record_events=self.record_events)
        settings = {**BASE_SETTINGS, **self.settings}
        ccfg = ControllerConfig.from_kafka(VOTERS, settings)
        for c in VOTERS:
            self.w.add_node(c, controller_factory(ccfg))
        self.brokers = ["b1", "b2", "b3"]
        for i, b in enumerate(self.brokers, 1):
            self.w.add_node(b, broker_factory(i, settings, VOTERS))
        self.w.add_node("admin", Admin)
        self.w.run_for(3 * S)
        topics: tuple[CreatableTopic, ...] = (
            CreatableTopic(name=TOPIC, num_partitions=self.partitions, replication_factor=3),
            CreatableTopic(name="__consumer_offsets",
                           num_partitions=int(settings["offsets.topic.num.partitions"]),
                           replication_factor=3, configs=(
                               CreatableTopicConfig(name="cleanup.policy", value="compact"),)),
        )
        if not self.create_offsets_topic:
            topics = topics[:1]

        def create(node: Admin) -> None:
            for c in VOTERS:
                node.rt.send(c, CreateTopicsRequest(correlation_id=1, topics=topics))

        self.w.call_in("admin", create)
        self.w.run_for(2 * S)
        self.history = HistoryRecorder()
        self.members: dict[str, dict[str, Any]] = {}
        self.polling: set[str] = set()
        self.stopped: set[str] = set()
        self.sent = 0
        self.results: dict[str, SendResult] = {}
        self.generations: dict[str, list[tuple[int, int, list[str]]]] = {}
        self.incarnations: dict[str, int] = {}
        self.open_commits: dict[str, dict[int, dict[str, Any]]] = {}
        # application time per polled record, per member (default 0: polls back to back)
        self.processing_us: dict[str, int] = {}
        pcfg = {"bootstrap.servers": "b1,b2,b3", "acks": "all", "linger.ms": 0}
        self.w.add_node("p1", lambda rt: Producer(rt, pcfg))
        self.w.run_for(S // 2)

    # -- time ---------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.w.now_us

    def run_for(self, us: int) -> None:
        self.w.run_for(us)

    # -- producer -------------------------------------------------------------------------

    def produce_every(self, interval_us: int, until_us: int) -> None:
        def tick() -> None:
            if self.w.now_us >= until_us:
                return
            self.sent += 1
            mid = f"p1-{self.sent}"
            part = self.sent % self.partitions
            self.history.invoke(self.now, "p1", "send",
                                {"id": mid, "topic": TOPIC, "partition": part})

            def go(p: Producer) -> None:
                def done(r: SendResult) -> None:
                    self.results[mid] = r
                    value = r.history_value(mid)
                    getattr(self.history, r.status)(self.now, "p1", "send", value)
                p.send(TOPIC, mid.encode(), headers=(("id", mid.encode()),), partition=part,
                       on_complete=done)

            self.w.call_in("p1", go)
            self.w.call_later(interval_us, tick)

        self.w.call_later(0, tick)

    # -- members --------------------------------------------------------------------------

    def add_member(self, name: str, config: dict[str, Any] | None = None) -> None:
        cfg = {"bootstrap.servers": "b1,b2,b3", "group.id": GROUP, **BASE_MEMBER,
               **self.member_config, **(config or {})}
        self.members[name] = cfg
        self.stopped.discard(name)
        self.generations.setdefault(name, [])
        self.w.add_node(name, lambda rt: GroupConsumer(rt, cfg, self._listener(name)))
        self.w.call_in(name, lambda c: c.subscribe([TOPIC]))
        self.w.call_later(0, lambda: self._poll(name))

    def restart_member(self, name: str) -> None:
        cfg = self.members[name]
        self.stopped.discard(name)
        self.w.restart(name)
        # the World rebuilds the node from the factory given to add_node
        self.w.call_in(name, lambda c: c.subscribe([TOPIC]))
        self.w.call_later(0, lambda: self._poll(name))
        del cfg

    def _listener(self, name: str) -> GroupListener:
        # a fresh listener per incarnation (the factory runs at every restart)
        self.incarnations[name] = incarnation = self.incarnations.get(name, 0) + 1
        pending: dict[int, dict[str, Any]] = {}
        self.open_commits[name] = pending

        def on_assign(generation: int, tps: list[tuple[str, int]]) -> None:
            v = {"group": GROUP, "generation": generation,
                 "partitions": [f"{t}/{p}" for t, p in tps]}
            self.history.invoke(self.now, name, "assign", v)
            self.history.ok(self.now, name, "assign", v)
            self.generations[name].append((self.now, generation, v["partitions"]))

        def on_revoke(tps: list[tuple[str, int]], reason: str) -> None:
            v = {"group": GROUP, "partitions": [f"{t}/{p}" for t, p in tps], "reason": reason}
            self.history.invoke(self.now, name, "revoke", v)
            self.history.ok(self.now, name, "revoke", v)

        def on_commit_invoke(token: int, offsets: dict[tuple[str, int], int]) -> None:
            v = {"id": f"{name}.{incarnation}-c{token}", "group": GROUP,
                 "offsets": {f"{t}/{p}": o for (t, p), o in offsets.items()}}
            pending[token] = v
            self.history.invoke(self.now, name, "commit", v)

        def on_commit_done(token: int, offsets: dict, outcome: str, err: Any) -> None:
            v = pending.pop(token)
            getattr(self.history, outcome)(self.now, name, "commit",
                                           {**v, "error": err.name})

        return GroupListener(on_assign, on_revoke, on_commit_invoke, on_commit_done)

    def _poll(self, name: str) -> None:
        if name in self.polling or name in self.stopped or self.w.node(name) is None:
            return
        self.polling.add(name)
        self.history.invoke(self.now, name, "poll", None)

        def on_result(result: PollResult) -> None:
            if name not in self.polling:
                return
            self.polling.discard(name)
            records = [{"topic": r.topic, "partition": r.partition, "offset": r.offset,
                        "id": (r.header("id") or b"").decode()} for r in result.records]
            self.history.ok(self.now, name, "poll", {"records": records})
            busy_us = self.processing_us.get(name, 0) * len(records)
            self.w.call_later(busy_us, lambda: self._poll(name))

        def poll(c: Any) -> None:
            if isinstance(c, GroupConsumer):
                c.poll(on_result, timeout_us=POLL_TIMEOUT_US)

        self.w.call_in(name, poll)

    def stop_polling(self, name: str) -> None:
        """The application stops calling poll (a stuck processing loop)."""
        self.stopped.add(name)

    def resume_polling(self, name: str) -> None:
        self.stopped.discard(name)
        self.w.call_later(0, lambda: self._poll(name))

    def crash_member(self, name: str) -> None:
        self.w.crash(name)
        if name in self.polling:
            self.polling.discard(name)
            self.history.info(self.now, name, "poll", None)
        for token in sorted(self.open_commits.get(name, {})):
            self.history.info(self.now, name, "commit", self.open_commits[name][token])
        self.open_commits[name] = {}
        self.history.invoke(self.now, name, "crash", None)
        self.history.ok(self.now, name, "crash", None)

    def leave_member(self, name: str) -> None:
        """Stop polling, close (commit, LeaveGroup); the history gets a `leave` op."""
        self.stopped.add(name)
        self.history.invoke(self.now, name, "leave", None)

        def close(c: Any) -> None:
            def done() -> None:
                self.history.ok(self.now, name, "leave", None)
            c.close(done)

        self.w.call_in(name, close)

    def member(self, name: str) -> GroupConsumer:
        node = self.w.node(name)
        assert isinstance(node, GroupConsumer), f"{name} is down"
        return node

    def coordinator_of(self, group: str = GROUP) -> BrokerNode | None:
        """The broker the controller names leader of the group's offsets partition, if
        it is up and coordinates the group (an isolated ex-leader may still think it
        leads: it is not the coordinator)."""
        image = self.image()
        p = partition_for(group, len(image.topic("__consumer_offsets").partitions))
        reg = image.partition("__consumer_offsets", p)
        node = self.w.node(f"b{reg.leader}") if reg is not None and reg.leader >= 0 else None
        if not isinstance(node, BrokerNode):
            return None
        gc = node.group_coordinator
        g = gc.groups.get(group)
        return node if g is not None and gc._owns(g) else None

    def image(self):
        for c in VOTERS:
            node = self.w.node(c)
            if isinstance(node, ControllerNode) and node.is_active:
                return node.image
        raise AssertionError("no active controller")

    # -- the end --------------------------------------------------------------------------

    def final_state(self) -> FinalState:
        image = self.image()
        parts: dict[TopicPartition, PartitionState] = {}
        for p in range(self.partitions):
            reg = image.partition(TOPIC, p)
            tp = TopicPartition(TOPIC, p)
            replicas = {}
            hw = 0
            for bid in sorted(reg.replicas):
                node = self.w.node(f"b{bid}")
                if not isinstance(node, BrokerNode):
                    continue
                part = node.rm.partition((TOPIC, p))
                if part is None:
                    continue
                recs = []
                for batch in part.log.plog.batches(part.log.log_start_offset):
                    if not isinstance(batch, RecordBatch) or batch.is_control:
                        continue
                    for r in batch.records():
                        ident = dict(r.headers).get("id")
                        recs.append(Record(r.offset, ident.decode() if ident else None,
                                           batch.partition_leader_epoch))
                replicas[f"b{bid}"] = Replica(f"b{bid}", tuple(recs))
                if bid == reg.leader:
                    hw = part.high_watermark
            parts[tp] = PartitionState(tp, replicas, f"b{reg.leader}" if reg.leader >= 0
                                       else None, reg.leader_epoch, hw,
                                       tuple(f"b{b}" for b in sorted(reg.isr)))
        committed = {}
        coord = self.coordinator_of()
        if coord is not None:
            g = coord.group_coordinator.groups[GROUP]
            for (t, p), (v, _) in sorted(g.offsets.items()):
                committed[(GROUP, TopicPartition(t, p))] = v.offset
        return FinalState(partitions=parts, end_us=self.now, committed_offsets=committed,
                          groups={GROUP: (TOPIC,)})

    def checks(self) -> dict[str, Any]:
        history = self.history.finish(self.now)
        state = self.final_state()
        return {c.__name__: c(history, state) for c in
                (group_exclusive, committed_offsets, poll_monotonic, consumed_all)}

    def assert_checks_pass(self) -> dict[str, Any]:
        results = self.checks()
        for name, r in results.items():
            assert r.result == "pass", (name, r.witnesses[:5])
        return results
