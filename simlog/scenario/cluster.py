"""Build the simulated cluster a scenario describes, and answer questions about it.

`ScenarioCluster(scenario)` makes a `World` from the scenario's network, disk and
cluster sections; adds controllers (or combined-mode brokers), brokers, an `admin`
node that creates the topics, and one client node per producer and consumer member.
`bootstrap()` runs the world until every topic has a leader on every partition; the
scenario's time 0 is that instant (`t0_us`), so `at: 10s` means ten seconds into the
workload, whatever the quorum took to form.

It is also the `ClusterView` that selectors resolve against (`leader(orders/0)`,
`controller`, ...), reading the active controller's metadata image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simlog.broker.node import BrokerNode, broker_factory
from simlog.client.consumer import Consumer
from simlog.client.producer import Producer
from simlog.controller.config import ControllerConfig
from simlog.controller.image import MetadataImage, PartitionRegistration
from simlog.controller.node import ControllerNode, controller_factory
from simlog.coordinator.records import OFFSETS_TOPIC, partition_for
from simlog.protocol.controller import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from simlog.runtime import Message, NodeBase, Runtime
from simlog.scenario.kafka_config import KafkaConfig
from simlog.scenario.model import Scenario
from simlog.scenario.selectors import TopicPartition, resolve
from simlog.scenario.units import ByteRate
from simlog.sim import World
from simlog.sim.params import DiskParams, LatencyDist, LinkParams, NetworkParams

BOOTSTRAP_LIMIT_US = 60_000_000
BOOTSTRAP_STEP_US = 100_000
CREATE_RETRY_US = 1_000_000


class ScenarioError(Exception):
    """The scenario asks for something this build cannot run (not a file error)."""


class Admin(NodeBase):
    """The operator: sends CreateTopics to every controller voter until topics exist."""

    def __init__(self, rt: Runtime, voters: Sequence[str], topics: Sequence[CreatableTopic]):
        super().__init__(rt)
        self.voters = tuple(voters)
        self.topics = tuple(topics)
        self.done = False
        self.correlation_id = 0

    def start(self) -> None:
        self._create()

    def _create(self) -> None:
        if self.done or not self.topics:
            return
        self.correlation_id += 1
        for voter in self.voters:
            self.rt.send(voter, CreateTopicsRequest(correlation_id=self.correlation_id,
                                                    topics=self.topics))
        self.rt.set_timer(CREATE_RETRY_US, self._create)

    def on_message(self, src: str, msg: Message) -> None:
        pass  # success is observed in the metadata image; retries are idempotent


def explicit(config: KafkaConfig) -> dict[str, Any]:
    """The settings a scenario wrote at this level; the core applies Kafka's defaults."""
    return {key: config[key] for key in sorted(config.explicit)}


def network_params(scenario: Scenario, nodes: Sequence[str], view: ClusterView) -> NetworkParams:
    spec = scenario.network
    default = LinkParams(latency=LatencyDist(spec.latency.median, spec.latency.p99),
                         bandwidth_bytes_per_s=_bandwidth(spec.bandwidth), loss=spec.loss)
    links: dict[tuple[str, str], LinkParams] = {}
    for link in spec.links:
        srcs = resolve(link.from_, view, _NoRandom())
        dsts = resolve(link.to, view, _NoRandom())
        pairs = [(s, d) for s in srcs for d in dsts if s != d]
        if link.symmetric:
            pairs += [(d, s) for s, d in pairs]
        for src, dst in sorted(set(pairs)):
            base = links.get((src, dst), default)
            links[(src, dst)] = LinkParams(
                latency=(LatencyDist(link.latency.median, link.latency.p99)
                         if link.latency is not None else base.latency),
                bandwidth_bytes_per_s=(_bandwidth(link.bandwidth) if link.bandwidth is not None
                                       else base.bandwidth_bytes_per_s),
                loss=link.loss if link.loss is not None else base.loss)
    return NetworkParams(latency=default.latency,
                         bandwidth_bytes_per_s=default.bandwidth_bytes_per_s,
                         loss=default.loss, links=links, transport=spec.transport)


def disk_params(scenario: Scenario) -> DiskParams:
    spec = scenario.disk
    return DiskParams(write_bytes_per_s=_bandwidth(spec.write_bandwidth) or 1 << 40,
                      read_bytes_per_s=_bandwidth(spec.read_bandwidth) or 1 << 40,
                      fsync_latency_us=spec.fsync_latency, page_cache_bytes=spec.page_cache)


def _bandwidth(rate: Any) -> int | None:
    return rate.bytes_per_s if isinstance(rate, ByteRate) else None  # `max`: unlimited


class _NoRandom:
    """Link overrides are resolved before the run; random selectors are refused there."""

    def randrange(self, *args: int) -> int:
        raise ScenarioError("network.links: random selectors cannot name links")


class ClusterView:
    """What selectors resolve against: configured node lists and current leadership."""

    def __init__(self, scenario: Scenario, world: World | None = None) -> None:
        self.scenario = scenario
        self.world = world
        self._brokers = list(scenario.cluster.brokers)
        self.voters = tuple(scenario.cluster.controllers or scenario.cluster.brokers)

    def brokers(self) -> Sequence[str]:
        return self._brokers

    def controllers(self) -> Sequence[str]:
        return self.voters

    def clients(self) -> Sequence[str]:
        return self.scenario.clients

    def add_broker(self, node: str) -> None:
        if node not in self._brokers:
            self._brokers.append(node)

    def image(self) -> MetadataImage | None:
        """The freshest metadata image among live voters (active controller first)."""
        if self.world is None:
            return None
        best: MetadataImage | None = None
        for voter in self.voters:
            state = _voter_state(self.world.node(voter))
            if state is None:
                continue
            active, image = state
            if active:
                return image
            if best is None or image.offset > best.offset:
                best = image
        return best

    def leader_of(self, partition: TopicPartition) -> str | None:
        image = self.image()
        reg = None if image is None else image.partition(partition.topic, partition.partition)
        return None if reg is None or reg.leader < 0 else f"b{reg.leader}"

    def coordinator_of(self, group: str) -> str | None:
        image = self.image()
        topic = None if image is None else image.topic(OFFSETS_TOPIC)
        if topic is None or not topic.partitions:
            return None
        p = partition_for(group, len(topic.partitions))
        return self.leader_of(TopicPartition(OFFSETS_TOPIC, p))

    def active_controller(self) -> str | None:
        if self.world is None:
            return None
        for voter in self.voters:
            state = _voter_state(self.world.node(voter))
            if state is not None and state[0]:
                return voter
        return None


def _voter_state(node: Any) -> tuple[bool, MetadataImage] | None:
    """(is the active controller, its committed metadata image) of a live voter, in
    dedicated or combined mode; None for a crashed node or a non-voter."""
    if isinstance(node, ControllerNode):
        return node.is_active, node.image
    if isinstance(node, BrokerNode) and node.controller is not None:
        return node.controller.active, node.metadata.image
    return None


class ScenarioCluster:
    """The World with every node of a scenario, plus lookups the runner needs."""

    def __init__(self, scenario: Scenario, record_events: bool = True) -> None:
        self.scenario = scenario
        self.view = ClusterView(scenario)
        nodes = [*scenario.cluster.controllers, *scenario.cluster.brokers, *scenario.clients]
        self.world = World(seed=scenario.seed,
                           network=network_params(scenario, nodes, self.view),
                           disk=disk_params(scenario), record_events=record_events)
        self.view.world = self.world
        self.t0_us = 0
        # member id -> node factory; the workload installs group consumers here
        self.consumer_factories: dict[str, Any] = {}
        self.settings = explicit(scenario.cluster.config)
        voters = self.view.voters
        if scenario.cluster.controllers:
            ccfg = ControllerConfig.from_kafka(voters, self.settings)
            for node in scenario.cluster.controllers:
                self.world.add_node(node, controller_factory(ccfg))
        for node in scenario.cluster.brokers:
            self.add_broker(node)
        topics = tuple(CreatableTopic(
            name=t.name, num_partitions=t.partitions, replication_factor=t.replication_factor,
            configs=tuple(CreatableTopicConfig(name=k, value=_kafka_str(v))
                          for k, v in explicit(t.config).items()))
            for t in scenario.topics)
        self.world.add_node("admin", lambda rt: Admin(rt, voters, topics))

    def add_broker(self, node: str) -> None:
        self.world.add_node(node, broker_factory(int(node[1:]), self.settings, self.view.voters))
        self.view.add_broker(node)

    # -- clients --------------------------------------------------------------------------

    def add_clients(self) -> None:
        bootstrap = ",".join(self.scenario.cluster.brokers)
        for p in self.scenario.producers:
            self.world.add_node(p.id, producer_factory(p.config, bootstrap))
        for g in self.scenario.consumers:
            for member in g.members:
                factory = (self.consumer_factories.get(member)
                           or consumer_factory(g.config, bootstrap, g.group))
                self.world.add_node(member, factory)

    def bootstrap(self) -> None:
        """Run until every partition of every topic has a leader; that instant is t0."""
        deadline = self.world.now_us + BOOTSTRAP_LIMIT_US
        while not self._all_led():
            if self.world.now_us >= deadline:
                raise ScenarioError(f"the cluster did not elect leaders for every partition "
                                    f"within {BOOTSTRAP_LIMIT_US // 1_000_000}s of start")
            self.world.run_for(BOOTSTRAP_STEP_US)
        admin = self.world.node("admin")
        if isinstance(admin, Admin):
            admin.done = True
        self.add_clients()
        self.t0_us = self.world.now_us

    def _all_led(self) -> bool:
        image = self.view.image()
        if image is None:
            return False
        for topic in self.scenario.topics:
            for p in range(topic.partitions):
                reg = image.partition(topic.name, p)
                if reg is None or reg.leader < 0:
                    return False
        return True

    # -- state ----------------------------------------------------------------------------

    def partitions(self) -> list[TopicPartition]:
        image = self.view.image()
        out = []
        for topic in self.scenario.topics:
            count = topic.partitions
            if image is not None and image.topic(topic.name) is not None:
                count = max(count, len(image.topic(topic.name).partitions))
            out.extend(TopicPartition(topic.name, p) for p in range(count))
        return out

    def registration(self, tp: TopicPartition) -> PartitionRegistration | None:
        image = self.view.image()
        return None if image is None else image.partition(tp.topic, tp.partition)

    def broker(self, node: str) -> BrokerNode | None:
        found = self.world.node(node)
        return found if isinstance(found, BrokerNode) else None

    def rel_us(self) -> int:
        """Scenario time: µs since t0."""
        return self.world.now_us - self.t0_us


def producer_factory(config: KafkaConfig, bootstrap: str):
    settings = {**explicit(config), "bootstrap.servers": bootstrap}
    return lambda rt: Producer(rt, settings)


def consumer_factory(config: KafkaConfig, bootstrap: str, group: str):
    settings = {**explicit(config), "bootstrap.servers": bootstrap}
    return lambda rt: Consumer(rt, settings)


def _kafka_str(value: Any) -> str:
    """A config value as Kafka's CreateTopics carries it (a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)

