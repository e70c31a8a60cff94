"""A stub broker for controller tests: follows metadata, registers and heartbeats.

It embeds exactly what a real broker embeds (MetadataFollower + BrokerLifecycleManager,
and a QuorumController in combined mode) and records the deltas it saw."""

from __future__ import annotations

from simlog.controller.config import ControllerConfig
from simlog.controller.controller import QuorumController
from simlog.controller.follower import MetadataFollower
from simlog.controller.lifecycle import BrokerLifecycleManager
from simlog.runtime import Message, NodeBase, Runtime


class StubBroker(NodeBase):
    def __init__(self, rt: Runtime, broker_id: int, config: ControllerConfig) -> None:
        super().__init__(rt)
        self.broker_id = broker_id
        self.metadata = MetadataFollower(rt, config.quorum, on_delta=self._on_delta)
        self.controller = (QuorumController(rt, config, self.metadata)
                           if rt.node_id in config.quorum.voters else None)
        self.lifecycle = BrokerLifecycleManager(
            rt, broker_id, self.metadata,
            heartbeat_interval_us=config.broker_heartbeat_interval_us,
            on_shutdown_complete=lambda: rt.halt("controlled shutdown complete"))
        self.led: dict[tuple[str, int], int] = {}  # partition -> leader epoch we lead in
        self.followed: set[tuple[str, int]] = set()
        self.responses: list[Message] = []

    def start(self) -> None:
        self.metadata.start()
        self.lifecycle.start()

    def _on_delta(self, image, delta) -> None:
        local = delta.local_changes(self.broker_id)
        for p in local.leaders:
            self.led[(p.topic, p.partition)] = p.leader_epoch
        for p in local.followers:
            self.led.pop((p.topic, p.partition), None)
            self.followed.add((p.topic, p.partition))
        for tp in local.deletes:
            self.led.pop(tp, None)
            self.followed.discard(tp)

    def on_message(self, src: str, msg: Message) -> None:
        if self.controller is not None and self.controller.on_message(src, msg):
            return
        if self.metadata.on_message(src, msg) or self.lifecycle.on_message(src, msg):
            return
        self.responses.append(msg)

    def shutdown(self) -> None:
        self.lifecycle.begin_controlled_shutdown()


def broker_factory(broker_id: int, config: ControllerConfig):
    return lambda rt: StubBroker(rt, broker_id, config)
