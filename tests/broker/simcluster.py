"""A KRaft cluster in the sim World for integration tests: controllers c1..c3, brokers
b1..bN (BrokerNode), one topic "t" with one partition, a producer node, and helpers that
read every replica's log at the end.

Writes carry their id as the value ("w17"), so acknowledged writes can be matched to
the final logs: `lost()` lists acknowledged writes missing from the leader's log at the
offset they were acknowledged with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simlog.broker.node import BrokerNode, broker_factory
from simlog.client.producer import Producer
from simlog.client.results import SendResult
from simlog.controller.config import ControllerConfig
from simlog.controller.node import ControllerNode, controller_factory
from simlog.protocol.controller import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from simlog.runtime import Message, NodeBase, Runtime
from simlog.sim import NetworkParams, World

MS = 1_000
S = 1_000_000
VOTERS = ("c1", "c2", "c3")


class Admin(NodeBase):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.got: list[Message] = []

    def on_message(self, src: str, msg: Message) -> None:
        self.got.append(msg)


@dataclass
class Write:
    value: str
    sent_us: int
    result: SendResult | None = None
    done_us: int = -1


@dataclass
class SimCluster:
    seed: int = 1
    brokers: int = 3
    settings: dict[str, Any] = field(default_factory=dict)
    topic_config: dict[str, Any] = field(default_factory=dict)
    producer_config: dict[str, Any] = field(default_factory=dict)
    transport: str = "tcp"
    partitions: int = 1  # of topic t; writes and helpers use partition 0

    def __post_init__(self) -> None:
        self.w = World(seed=self.seed, record_events=True,
                       network=NetworkParams(transport=self.transport))
        ccfg = ControllerConfig.from_kafka(VOTERS, self.settings)
        for c in VOTERS:
            self.w.add_node(c, controller_factory(ccfg))
        self.broker_ids = [f"b{i}" for i in range(1, self.brokers + 1)]
        for i in range(1, self.brokers + 1):
            self.w.add_node(f"b{i}", broker_factory(i, self.settings, VOTERS))
        self.w.add_node("admin", Admin)
        self.w.run_for(3 * S)
        configs = tuple(CreatableTopicConfig(name=k, value=str(v))
                        for k, v in sorted(self.topic_config.items()))

        def create(node: Admin) -> None:
            for c in VOTERS:
                node.rt.send(c, CreateTopicsRequest(correlation_id=1, topics=(CreatableTopic(
                    name="t", num_partitions=self.partitions, replication_factor=self.brokers,
                    configs=configs),)))

        self.w.call_in("admin", create)
        self.w.run_for(2 * S)
        assert self.leader() is not None, "topic t has no leader after creation"
        pcfg = {"bootstrap.servers": ",".join(self.broker_ids), "acks": "all",
                "linger.ms": 0, "delivery.timeout.ms": 120_000, "request.timeout.ms": 30_000}
        pcfg.update(self.producer_config)
        self.w.add_node("p1", lambda rt: Producer(rt, pcfg))
        self.writes: list[Write] = []
        self.w.run_for(1 * S)

    # -- state ------------------------------------------------------------------------

    def image(self):
        for c in VOTERS:
            node = self.w.node(c)
            if isinstance(node, ControllerNode) and node.is_active:
                return node.image
        for c in VOTERS:
            node = self.w.node(c)
            if isinstance(node, ControllerNode):
                return node.image
        raise AssertionError("no controller alive")

    def leader(self) -> int | None:
        p = self.image().partition("t", 0)
        return None if p is None or p.leader < 0 else p.leader

    def isr(self) -> tuple[int, ...]:
        return tuple(self.image().partition("t", 0).isr)

    def broker(self, b: str) -> BrokerNode:
        node = self.w.node(b)
        assert isinstance(node, BrokerNode), f"{b} is down"
        return node

    def values(self, b: str) -> list[str]:
        """Every record value in b's log, by offset (b must be alive)."""
        p = self.broker(b).rm.partition(("t", 0))
        if p is None:
            return []
        out = []
        for batch in p.log.plog.batches(p.log.log_start_offset):  # type: ignore[attr-defined]
            for r in batch.records():
                out.append(r.value.decode())
        return out

    def sequences(self, b: str) -> list[tuple[int, int, int]]:
        """(producer id, producer epoch, sequence) of every record in b's log."""
        p = self.broker(b).rm.partition(("t", 0))
        if p is None:
            return []
        out = []
        for batch in p.log.plog.batches(p.log.log_start_offset):  # type: ignore[attr-defined]
            for i in range(batch.records_count):
                out.append((batch.producer_id, batch.producer_epoch, batch.base_sequence + i))
        return out

    def high_watermark(self, b: str) -> int:
        p = self.broker(b).rm.partition(("t", 0))
        return -1 if p is None else p.high_watermark

    # -- workload -----------------------------------------------------------------------

    def send(self, n: int = 1) -> list[Write]:
        batch = []
        for _ in range(n):
            wr = Write(f"w{len(self.writes)}", self.w.now_us)
            self.writes.append(wr)
            batch.append(wr)

        def go(p: Producer) -> None:
            for wr in batch:
                def done(r: SendResult, wr: Write = wr) -> None:
                    wr.result, wr.done_us = r, self.w.now_us
                p.send("t", value=wr.value.encode(), partition=0, on_complete=done)

        self.w.call_in("p1", go)
        return batch

    def send_every(self, interval_us: int, until_us: int) -> None:
        """Send one write every interval until the given world time."""
        def tick() -> None:
            if self.w.now_us < until_us:
                self.send(1)
                self.w.call_later(interval_us, tick)
        self.w.call_later(0, tick)

    def acked(self) -> list[Write]:
        return [wr for wr in self.writes if wr.result is not None and wr.result.ok]

    def lost(self, on: str) -> list[Write]:
        """Acknowledged writes missing from `on`'s log at their acknowledged offset."""
        log = self.values(on)
        return [wr for wr in self.acked()
                if wr.result.offset is None or wr.result.offset >= len(log)
                or log[wr.result.offset] != wr.value]

    def run_for(self, us: int) -> None:
        self.w.run_for(us)

    def events(self, kind: str) -> list[dict]:
        return [e for e in self.w.events if e.get("kind") == "emit" and e["fields"][0] == kind]
