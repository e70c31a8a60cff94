"""The nemesis: turns a scenario's `faults:` into World fault calls at their times.

Selectors are resolved when a fault fires (SCENARIOS.md), against the cluster as it is
then, with the world's seeded `faults` stream for `random(...)`, `minority(...)`,
`majority(...)`; the report (`records`) says what each resolved to. Every fault opens an
interval (for the plots' shading and the summary) that closes when it is undone: by
`heal`, `restart`, `resume`, its own `for:`, the random nemesis, or settling.

`settle()` undoes everything: heals every link, restores degraded links, resumes paused
nodes, restarts crashed ones, puts clocks and disks back to normal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from simlog.scenario import schema as s
from simlog.scenario.cluster import ScenarioCluster, ScenarioError
from simlog.scenario.model import Fault
from simlog.scenario.selectors import Selector, TopicPartition, resolve
from simlog.sim.params import LatencyDist

UNSUPPORTED = {s.Reassign: "reassign", s.AddPartitions: "add_partitions"}
RANDOM_HOLD_MIN = 0.5   # a random fault lasts 0.5 .. 1.5 intervals
RANDOM_HOLD_MAX = 1.5
RANDOM_JITTER = 0.25    # ticks at interval × (1 ± jitter)


@dataclass
class FaultRecord:
    """One fault as it happened: when, what it resolved to, and when it was undone."""

    index: int | None            # its position in `faults:` (None: from the random nemesis)
    kind: str
    label: str
    start_us: int
    targets: list[Any]
    end_us: int | None = None
    undo: Callable[[], None] | None = field(default=None, repr=False)
    link_pairs: list[tuple[str, str]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "label": self.label,
                "start_us": self.start_us, "end_us": self.end_us, "targets": self.targets}


class ClientHooks:
    """What the nemesis tells the workload when a client crashes, leaves, or comes back."""

    def crashed(self, client: str) -> None: ...

    def left(self, client: str) -> None:
        """Close the client gracefully (a member commits and sends LeaveGroup; a producer
        sends what it has queued); the workload halts its process when that is done."""

    def restarted(self, client: str) -> None: ...


class Nemesis:
    def __init__(self, cluster: ScenarioCluster, clients: ClientHooks) -> None:
        self.cluster = cluster
        self.world = cluster.world
        self.clients = clients
        self.rng = self.world.fault_rng
        self.records: list[FaultRecord] = []
        self.by_index: dict[int, FaultRecord] = {}
        self.random_until_us: int | None = None
        self.settling = False

    @staticmethod
    def check_supported(faults: Sequence[Fault]) -> None:
        for fault in faults:
            name = UNSUPPORTED.get(type(fault.op))
            if name is not None:
                raise ScenarioError(f"faults[{fault.index}] (line {fault.line}): {name} is "
                                    "not supported by this build yet")

    def schedule(self, faults: Sequence[Fault]) -> None:
        self.check_supported(faults)
        for fault in faults:
            delay = self.cluster.t0_us + fault.at_us - self.world.now_us
            self.world.call_later(max(0, delay), lambda f=fault: self.fire(f))

    # -- helpers ------------------------------------------------------------------------

    def _nodes(self, sel: Selector) -> list[str]:
        return list(resolve(sel, self.cluster.view, self.rng))

    def _open(self, index: int | None, kind: str, label: str, targets: list[Any],
              undo: Callable[[], None] | None = None) -> FaultRecord:
        rec = FaultRecord(index, kind, label, self.cluster.rel_us(), targets, undo=undo)
        self.records.append(rec)
        if index is not None:
            self.by_index[index] = rec
        return rec

    def _close(self, rec: FaultRecord) -> None:
        if rec.end_us is None:
            rec.end_us = self.cluster.rel_us()

    def _close_after(self, rec: FaultRecord, for_us: int | None) -> None:
        if for_us is not None:
            self.world.call_later(for_us, lambda: self._close(rec))

    def _open_of(self, kind: str, node: str) -> list[FaultRecord]:
        return [r for r in self.records
                if r.end_us is None and r.kind == kind and node in r.targets]

    # -- firing --------------------------------------------------------------------------

    def fire(self, fault: Fault) -> None:
        if self.settling:
            return
        handler = getattr(self, f"_do_{fault.kind}")
        handler(fault.index, fault.op)

    def _do_partition(self, index: int | None, op: s.PartitionOp) -> None:
        groups = [self._nodes(g) for g in op.groups]
        self.world.partition(groups)
        self._open(index, "partition", "partition " + " | ".join(",".join(g) for g in groups),
                   groups, undo=lambda: self.world.heal_partition(groups))

    def _do_isolate(self, index: int | None, op: s.Isolate) -> None:
        nodes = self._nodes(op.node)
        if nodes:
            self.world.isolate(nodes)
        self._open(index, "isolate", "isolate " + ",".join(nodes), nodes,
                   undo=lambda: self.world.heal_isolate(nodes))

    def _do_cut(self, index: int | None, op: s.Cut) -> None:
        srcs, dsts = self._nodes(op.from_), self._nodes(op.to)
        self.world.cut(srcs, dsts)
        self._open(index, "cut", f"cut {','.join(srcs)}→{','.join(dsts)}", [srcs, dsts],
                   undo=lambda: self.world.heal_cut(srcs, dsts))

    def _do_heal(self, index: int | None, op: s.Heal) -> None:
        if op.undoes is None:
            self.world.heal()
            for rec in self.records:
                if rec.end_us is None and rec.kind in ("partition", "isolate", "cut"):
                    self._close(rec)
            return
        rec = self.by_index.get(op.undoes)
        if rec is None or rec.end_us is not None:
            return
        if rec.undo is not None:
            rec.undo()
        self._close(rec)

    def _do_link(self, index: int | None, op: s.Link) -> None:
        srcs, dsts = self._nodes(op.from_), self._nodes(op.to)
        latency = None if op.latency is None else LatencyDist(op.latency.median, op.latency.p99)
        self.world.degrade_link(srcs, dsts, latency=latency, loss=op.loss,
                                duplicate=op.duplicate, reorder=op.reorder, for_us=op.for_us)
        pairs = [(a, b) for a in srcs for b in dsts if a != b]
        rec = self._open(index, "link", f"degrade {','.join(srcs)}→{','.join(dsts)}",
                         [srcs, dsts],
                         undo=lambda: [self.world.restore_link(a, b) for a, b in pairs])
        rec.link_pairs = pairs
        self._close_after(rec, op.for_us)

    def _do_crash(self, index: int | None, op: s.Crash) -> None:
        nodes = [n for n in self._nodes(op.node) if self.world.alive(n)]
        for node in nodes:
            self.world.crash(node, lose_unsynced=op.lose_unsynced)
            self.clients.crashed(node)
        word = "power loss" if op.lose_unsynced else "crash"
        self._open(index, "crash", f"{word} {','.join(nodes)}", nodes,
                   undo=lambda: [self._restart(n) for n in nodes])

    def _restart(self, node: str) -> None:
        if not self.world.alive(node):
            self.world.restart(node)
            self.clients.restarted(node)
        for rec in self._open_of("crash", node):
            if all(self.world.alive(n) for n in rec.targets):
                self._close(rec)

    def _do_restart(self, index: int | None, op: s.Restart) -> None:
        for node in self._nodes(op.node):
            self._restart(node)

    def _do_pause(self, index: int | None, op: s.Pause) -> None:
        nodes = self._nodes(op.node)
        for node in nodes:
            self.world.pause(node)
        self._open(index, "pause", "pause " + ",".join(nodes), nodes,
                   undo=lambda: [self._resume(n) for n in nodes])
        if op.for_us is not None:
            self.world.call_later(op.for_us, lambda: [self._resume(n) for n in nodes])

    def _resume(self, node: str) -> None:
        self.world.resume(node)
        for rec in self._open_of("pause", node):
            self._close(rec)

    def _do_resume(self, index: int | None, op: s.Resume) -> None:
        for node in self._nodes(op.node):
            self._resume(node)

    def _do_slow_disk(self, index: int | None, op: s.SlowDisk) -> None:
        nodes = self._nodes(op.node)
        for node in nodes:
            self.world.slow_disk(node, op.factor, op.for_us)
        rec = self._open(index, "slow_disk", f"slow disk ×{op.factor:g} {','.join(nodes)}",
                         nodes, undo=lambda: [self.world.slow_disk(n, 1.0) for n in nodes])
        self._close_after(rec, op.for_us)

    def _do_disk_full(self, index: int | None, op: s.DiskFull) -> None:
        nodes = self._nodes(op.node)
        for node in nodes:
            self.world.disk_full(node, op.for_us)
        rec = self._open(index, "disk_full", "disk full " + ",".join(nodes), nodes,
                         undo=lambda: [self.world.disk_full(n, full=False) for n in nodes])
        self._close_after(rec, op.for_us)

    def _do_corrupt(self, index: int | None, op: s.Corrupt) -> None:
        hit = []
        for node in self._nodes(op.node):
            path = newest_segment(self.world.disk(node).list(), op.partition)
            if path is not None:
                self.world.corrupt(node, path, op.bytes)
                hit.append(f"{node}:{path}")
        rec = self._open(index, "corrupt", f"corrupt {op.partition}", hit)
        self._close(rec)

    def _do_clock(self, index: int | None, op: s.Clock) -> None:
        nodes = self._nodes(op.node)
        for node in nodes:
            self.world.set_clock(node, offset_us=op.offset, drift=op.drift)
        what = f"offset {op.offset}us" if op.offset is not None else f"drift {op.drift:g}"
        self._open(index, "clock", f"clock {what} {','.join(nodes)}", nodes,
                   undo=lambda: [self.world.set_clock(n, offset_us=0, drift=0.0)
                                 for n in nodes])

    def _do_add_broker(self, index: int | None, op: s.AddBroker) -> None:
        if op.node not in self.world.node_ids:
            self.cluster.add_broker(op.node)
        rec = self._open(index, "add_broker", f"add {op.node}", [op.node])
        self._close(rec)

    def _do_client(self, index: int | None, op: s.ClientOp) -> None:
        action, client = op.action
        if action in ("crash", "leave") and self.world.alive(client):
            if action == "crash":
                self.world.crash(client)
                self.clients.crashed(client)
            else:
                self.clients.left(client)
            self._open(index, "client", f"client {action} {client}", [client],
                       undo=lambda: self._restart(client))
        elif action in ("restart", "join") and not self.world.alive(client):
            self.world.restart(client)
            self.clients.restarted(client)
            for rec in self.records:
                if rec.end_us is None and rec.kind == "client" and client in rec.targets:
                    self._close(rec)

    # -- the random nemesis ------------------------------------------------------------------

    def _do_random(self, index: int | None, op: s.RandomNemesis) -> None:
        until_us = op.until
        self.random_until_us = until_us
        rec = self._open(index, "random", "random nemesis", list(op.kinds))
        rec.end_us = until_us

        def tick() -> None:
            now = self.cluster.rel_us()
            if self.settling or now >= until_us:
                return
            kind = self.rng.choice(list(op.kinds))
            hold = round(op.interval * self.rng.uniform(RANDOM_HOLD_MIN, RANDOM_HOLD_MAX))
            hold = max(1, min(hold, until_us - now))
            self._random_fault(kind, hold)
            step = round(op.interval * self.rng.uniform(1 - RANDOM_JITTER, 1 + RANDOM_JITTER))
            self.world.call_later(max(1, step), tick)
        tick()

    def _random_fault(self, kind: str, hold_us: int) -> None:
        servers = sorted(set(self.cluster.view.brokers()) | set(self.cluster.view.controllers()))
        victim = self.rng.choice(servers)
        if kind == "partition":
            shuffled = list(servers)
            self.rng.shuffle(shuffled)
            k = max(1, (len(shuffled) - 1) // 2)
            groups = [sorted(shuffled[:k]), sorted(shuffled[k:])]
            self.world.partition(groups)
            rec = self._open(None, kind, "partition " + " | ".join(",".join(g) for g in groups),
                             groups, undo=lambda: self.world.heal_partition(groups))
        elif kind == "isolate":
            self.world.isolate([victim])
            rec = self._open(None, kind, f"isolate {victim}", [victim],
                             undo=lambda: self.world.heal_isolate([victim]))
        elif kind == "cut":
            other = self.rng.choice([n for n in servers if n != victim] or [victim])
            self.world.cut([victim], [other])
            rec = self._open(None, kind, f"cut {victim}→{other}", [[victim], [other]],
                             undo=lambda: self.world.heal_cut([victim], [other]))
        elif kind == "crash":
            if not self.world.alive(victim):
                return
            self.world.crash(victim)
            rec = self._open(None, kind, f"crash {victim}", [victim],
                             undo=lambda: self._restart(victim))
        elif kind == "pause":
            self.world.pause(victim)
            rec = self._open(None, kind, f"pause {victim}", [victim],
                             undo=lambda: self._resume(victim))
        elif kind == "clock":
            offset = self.rng.choice([-1, 1]) * self.rng.randrange(1, 60) * 1_000_000
            self.world.set_clock(victim, offset_us=offset)
            rec = self._open(None, kind, f"clock {offset}us {victim}", [victim],
                             undo=lambda: self.world.set_clock(victim, offset_us=0, drift=0.0))
        elif kind == "slow_disk":
            factor = float(self.rng.choice([5, 10, 50]))
            self.world.slow_disk(victim, factor)
            rec = self._open(None, kind, f"slow disk ×{factor:g} {victim}", [victim],
                             undo=lambda: self.world.slow_disk(victim, 1.0))
        elif kind == "disk_full":
            self.world.disk_full(victim)
            rec = self._open(None, kind, f"disk full {victim}", [victim],
                             undo=lambda: self.world.disk_full(victim, full=False))
        else:  # link
            other = self.rng.choice([n for n in servers if n != victim] or [victim])
            loss = self.rng.choice([0.1, 0.3])
            self.world.degrade_link([victim], [other], loss=loss,
                                    latency=LatencyDist(5_000, 50_000))
            rec = self._open(None, kind, f"degrade {victim}→{other}", [[victim], [other]],
                             undo=lambda: self.world.restore_link(victim, other))

        def undo() -> None:
            if rec.end_us is None and rec.undo is not None:
                rec.undo()
                self._close(rec)
        self.world.call_later(hold_us, undo)

    # -- settling -----------------------------------------------------------------------------

    def settle(self) -> None:
        """Undo every fault still in force: the start of the settle phase."""
        self.settling = True
        self.world.heal()
        for rec in self.records:
            for a, b in rec.link_pairs:
                self.world.restore_link(a, b)
        for node in self.world.node_ids:
            host_paused = getattr(self.world.hosts[node], "paused", False)
            if host_paused:
                self.world.resume(node)
            disk = self.world.disk(node)
            disk.set_slow(1.0)
            disk.set_full(False)
            clock = self.world.hosts[node].clock
            if clock.offset_us or clock.drift_ppb:
                self.world.set_clock(node, offset_us=0, drift=0.0)
        for node in self.world.node_ids:
            if not self.world.alive(node) and node != "admin":
                self.world.restart(node)
                self.clients.restarted(node)
        for rec in self.records:
            self._close(rec)

    def intervals(self) -> list[dict[str, Any]]:
        """Fault intervals for plots: start_us, end_us (None: until the end), label."""
        return [{"start_us": r.start_us, "end_us": r.end_us, "label": r.label}
                for r in self.records if r.kind != "random"]


def newest_segment(paths: Sequence[str], partition: TopicPartition) -> str | None:
    prefix = f"{partition.topic}-{partition.partition}/"
    logs = sorted(p for p in paths if p.startswith(prefix) and p.endswith(".log"))
    return logs[-1] if logs else None
