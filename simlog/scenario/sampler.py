"""Per-simulated-second gauges of the cluster, for metrics.csv and the plots.

Partitions: leader (broker id, -1 = none), ISR size, high watermark and log end offset
on the leader, under-replicated (ISR smaller than the replica set). Nodes: up, bytes on
disk. Groups: lag per partition (high watermark minus the consumer's position).
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis.metrics import MetricsRecorder
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
            lag = {f"{topic}/{p}": max(0, hws[(topic, p)] - pos)
                   for (topic, p), pos in sorted(driver.positions().items())
                   if (topic, p) in hws}
            if lag:
                rec.sample(t, "group", driver.spec.group, lag=lag)
