"""Per-simulated-second gauges of the cluster, for metrics.csv and the plots.

Partitions: leader (broker id, -1 = none), ISR size, high watermark and log end offset
on the leader, under-replicated (ISR smaller than the replica set). Nodes: up, bytes on
disk. Groups, for every partition of every topic the group subscribes to (owned or not):
- `lag[topic/p]`: Kafka's consumer lag, what `kafka-consumer-groups --describe` shows as
  LAG: the log end offset a consumer sees (the leader's high watermark, ListOffsets
  latest under read_uncommitted) minus the group's committed offset, or the whole high
  watermark when the group has committed nothing for the partition;
- `committed_offset[topic/p]`: the committed offset (only once there is one);
- `position_lag[topic/p]`: high watermark minus the position of the member that owns
  the partition (what the members have fetched and handed out; owned partitions only).
A partition without a leader (or whose leader is down) has no high watermark: its lags
are not sampled at that instant. The analysis adds `lag_total`, `lag_max` and per topic
`lag_total[topic]` (analysis/metrics.py).

Committed offsets come from the group's coordinator, read in place (`describe`), so
sampling sends nothing, draws nothing and emits nothing: the trace is the same with or
without it. The coordinator is the broker leading the group's `__consumer_offsets`
partition in the controller's image when it holds the group (an isolated former leader
may still hold a stale copy), else the first broker in id order that describes it. While
no live broker describes a group that had been described, its last committed offsets
stand (commits are acknowledged only once replicated, and none can be made meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis.metrics import MetricsRecorder
from simlog.client.group_metrics import group_lag
from simlog.coordinator.records import OFFSETS_TOPIC, partition_for
from simlog.scenario.cluster import ScenarioCluster
from simlog.scenario.workload import ConsumerDriver

SAMPLE_INTERVAL_US = 1_000_000


class Sampler:
    def __init__(self, cluster: ScenarioCluster, consumers: Sequence[ConsumerDriver],
                 recorder: MetricsRecorder) -> None:
        self.cluster = cluster
        self.consumers = consumers
        self.recorder = recorder
        self.stopped = False
        # group -> its committed offsets ("topic/p" -> offset) when last described
        self.committed: dict[str, dict[str, int]] = {}

    def start(self) -> None:
        self.cluster.world.call_later(0, self._tick)

    def _tick(self) -> None:
        if self.stopped:
            return
        self.sample()
        self.cluster.world.call_later(SAMPLE_INTERVAL_US, self._tick)

    def sample(self) -> None:
        cluster, rec = self.cluster, self.recorder
        t = cluster.rel_us()
        if t < 0:
            return
        hws: dict[tuple[str, int], int] = {}
        for tp in cluster.partitions():
            reg = cluster.registration(tp)
            if reg is None:
                continue
            leader = cluster.broker(f"b{reg.leader}") if reg.leader >= 0 else None
            part = None if leader is None else leader.rm.partition((tp.topic, tp.partition))
            hw = part.high_watermark if part is not None else None
            leo = part.log.log_end_offset if part is not None else None
            if hw is not None:
                hws[(tp.topic, tp.partition)] = hw
            rec.sample(t, "partition", str(tp), leader=reg.leader, isr_size=len(reg.isr),
                       high_watermark=hw, log_end_offset=leo,
                       under_replicated=int(len(reg.isr) < len(reg.replicas)))
        world = cluster.world
        for node in world.node_ids:
            if node == "admin":
                continue
            disk = world.disk(node)
            size = 0
            for path in disk.list():
                n = disk.size(path)
                size += n if isinstance(n, int) else 0
            rec.sample(t, "node", node, up=int(world.alive(node)), bytes_on_disk=size)
        for driver in self.consumers:
            self._sample_group(t, driver, hws)

    def _sample_group(self, t: int, driver: ConsumerDriver,
                      hws: dict[tuple[str, int], int]) -> None:
        group, topics = driver.spec.group, set(driver.spec.topics)
        described = coordinator_offsets(self.cluster, group)
        if described is not None:
            self.committed[group] = described
        committed = self.committed.get(group, {})
        log_end = {f"{topic}/{p}": hw for (topic, p), hw in sorted(hws.items())
                   if topic in topics}
        position_lag = {f"{topic}/{p}": max(0, hws[(topic, p)] - pos)
                        for (topic, p), pos in sorted(driver.positions().items())
                        if (topic, p) in hws}
        values = {}
        if log_end:
            values["lag"] = group_lag(log_end, committed)
        if position_lag:
            values["position_lag"] = position_lag
        offsets = {name: offset for name, offset in sorted(committed.items())
                   if name.rpartition("/")[0] in topics}
        if offsets:
            values["committed_offset"] = offsets
        if values:
            self.recorder.sample(t, "group", group, **values)


def coordinator_offsets(cluster: ScenarioCluster, group: str) -> dict[str, int] | None:
    """The group's committed offsets ("topic/p" -> offset) as its coordinator holds them,
    read without a message; None when no live broker describes the group."""
    brokers = sorted(cluster.view.brokers(), key=lambda node: int(node[1:]))
    image = cluster.view.image()
    offsets_topic = None if image is None else image.topic(OFFSETS_TOPIC)
    if image is not None and offsets_topic is not None and offsets_topic.partitions:
        reg = image.partition(OFFSETS_TOPIC,
                              partition_for(group, len(offsets_topic.partitions)))
        if reg is not None and reg.leader >= 0:
            leader = f"b{reg.leader}"
            brokers = [leader, *(node for node in brokers if node != leader)]
    for node in brokers:
        broker = cluster.broker(node)
        described = None if broker is None else broker.group_coordinator.describe(group)
        if described is not None:
            return dict(sorted(described["offsets"].items()))
    return None
