"""The deterministic world: nodes, network, disks, faults and trace over one SimPy clock.

`World(seed)` owns a `simpy.Environment` whose time is integer µs. Protocol nodes
are not SimPy processes: node events (deliveries, timers, fsync completions,
`call_in`) are plain entries (time_us, priority, id, fn, *args) pushed on SimPy's
own event queue and run by `World.run` as fn(entry); it also runs ordinary SimPy
events (time, priority, id, event), so workloads and nemeses can be
generator processes on `world.env` (start them with `env.process` and advance with
`world.run`, the fast loop; `env.run` also works, through `_Env.step`). Ties break by (time, priority, insertion order) as in
SimPy, so one seed gives one order of events and one trace hash.

Randomness: one `random.Random` per (stream, node), seeded through SHA-256 of
f"{seed}:{stream}:{node_id}" (`simlog.sim.rand`): streams `network` (the sender's
link draws), `disk`, `faults` (nemesis draws, `world.fault_rng`) and `node`
(`rt.random`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import simpy

from simlog.runtime import Node, NodeFactory
from simlog.sim import rand
from simlog.sim.disk import SimDisk
from simlog.sim.network import Network
from simlog.sim.node_host import NodeHost
from simlog.sim.params import CpuParams, DiskParams, LatencyDist, LinkParams, NetworkParams
from simlog.sim.trace import Trace

if TYPE_CHECKING:
    import networkx as nx

_NORMAL = 1  # simpy.events.NORMAL
_NEVER = float("inf")  # only compared with event times, never scheduled


class World:
    """A simulated cluster; see docs/architecture.md (the World contract)."""

    def __init__(self, seed: int = 0, network: NetworkParams | None = None,
                 disk: DiskParams | None = None, cpu: CpuParams | None = None,
                 record_events: bool = False) -> None:
        self.seed = seed
        self.env = _Env(initial_time=0)
        self._queue = self.env._queue
        self._eid = self.env._eid
        self.disk_params = disk or DiskParams()
        self.cpu = cpu or CpuParams()
        self.trace = Trace(record=record_events)
        self.hosts: dict[str, NodeHost] = {}
        self.network = Network(network or NetworkParams(), self.hosts, self._queue, self._eid,
                               self._at,
                               self.trace.append, lambda: self.env._now)
        self.fault_rng = rand.stream_rng(seed, rand.FAULTS)
        self.steps = 0
        self._stopped = False
        self.fault_log: list[tuple[Any, ...]] = []  # (time_us, op, *args) of every fault
        self._fault_tokens: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ scheduling

    @property
    def now_us(self) -> int:
        return self.env._now

    def _at(self, time_us: int, fn: Callable[[Any], None], arg: Any) -> None:
        """Schedule fn(arg) at time_us (not before now)."""
        now = self.env._now
        heappush(self._queue, (time_us if time_us > now else now, _NORMAL, next(self._eid),
                               _call_arg, fn, arg))

    def call_later(self, delay_us: int, fn: Callable[[], None]) -> None:
        """Run fn() after delay_us of true time, outside any node (tests, nemesis)."""
        self._at(self.env._now + max(0, int(delay_us)), _call0, fn)

    def call_in(self, node_id: str, fn: Callable[[Node], None]) -> None:
        """Run fn(node) as an event of that node now: charged, queued behind its busy
        time, held while paused, dropped if it is (or becomes) crashed first."""
        self.hosts[node_id].call_in(fn)

    def run(self, until_us: int | None = None) -> None:
        """Process events up to and including time until_us (all of them when None);
        the clock then reads until_us."""
        queue = self._queue
        env = self.env
        trace = self.trace
        limit = until_us if until_us is not None else _NEVER
        steps = 0
        self._stopped = False
        try:
            while queue:
                entry = heappop(queue)
                if entry[0] > limit:
                    heappush(queue, entry)
                    break
                env._now = entry[0]
                steps += 1
                if len(entry) > 4:  # ours: (time, prio, id, fn, *args) -> fn(entry)
                    entry[3](entry)
                else:  # a SimPy event: (time, prio, id, event)
                    _simpy_step(entry[3])
                if not steps & 1023:
                    trace.flush()
                if self._stopped:
                    break
        finally:
            self.steps += steps
            trace.flush()
        if until_us is not None and until_us > env._now and not self._stopped:
            env._now = until_us

    def run_for(self, delay_us: int) -> None:
        self.run(self.env._now + int(delay_us))

    def stop(self) -> None:
        """Make the current `run` return after the event being processed."""
        self._stopped = True

    # ------------------------------------------------------------------ nodes

    def add_node(self, node_id: str, factory: NodeFactory, disk: DiskParams | None = None,
                 cpu: CpuParams | None = None) -> Node:
        """Create node_id with its disk and start it (start() runs as its first event).
        disk / cpu override the world's parameters for this node."""
        if node_id in self.hosts:
            raise ValueError(f"node {node_id} exists")
        host = NodeHost(self, node_id, factory, None,  # type: ignore[arg-type]
                        rand.stream_rng(self.seed, rand.NODE, node_id),
                        rand.stream_rng(self.seed, rand.NETWORK, node_id))
        if cpu is not None:
            host.per_event_us = cpu.per_event_us
            host.per_kib_us = cpu.per_kib_us
        host.disk = SimDisk(host, disk or self.disk_params,
                            rand.stream_rng(self.seed, rand.DISK, node_id))
        self.hosts[node_id] = host
        self.trace.add(self.now_us, node_id, "add_node", ())
        host.boot()
        return host.node  # type: ignore[return-value]

    def node(self, node_id: str) -> Node | None:
        """The node's current object; None while it is crashed."""
        return self.hosts[node_id].node

    def disk(self, node_id: str) -> SimDisk:
        return self.hosts[node_id].disk

    @property
    def node_ids(self) -> list[str]:
        return sorted(self.hosts)

    def now_of(self, node_id: str) -> int:
        """The node's own clock reading now."""
        return self.hosts[node_id].clock.local(self.now_us)

    def alive(self, node_id: str) -> bool:
        return self.hosts[node_id].node is not None

    # ------------------------------------------------------------------ faults

    def _fault(self, op: str, *fields: Any) -> None:
        self.fault_log.append((self.now_us, op, *fields))
        self.trace.add(self.now_us, "world", "fault", (op, *fields))

    def partition(self, groups: Sequence[Sequence[str]]) -> None:
        self._fault("partition", [sorted(g) for g in groups])
        self.network.partition(groups)

    def isolate(self, nodes: Sequence[str]) -> None:
        self._fault("isolate", sorted(nodes))
        self.network.isolate(nodes)

    def cut(self, srcs: Sequence[str], dsts: Sequence[str]) -> None:
        self._fault("cut", sorted(srcs), sorted(dsts))
        self.network.cut(srcs, dsts)

    def heal(self) -> None:
        """Restore every cut link (partitions, isolations, one-way cuts)."""
        self._fault("heal")
        self.network.heal()

    def heal_partition(self, groups: Sequence[Sequence[str]]) -> bool:
        self._fault("heal_partition", [sorted(g) for g in groups])
        return bool(self.network.heal(("partition", tuple(tuple(sorted(g)) for g in groups))))

    def heal_isolate(self, nodes: Sequence[str]) -> bool:
        self._fault("heal_isolate", sorted(nodes))
        return bool(self.network.heal(("isolate", tuple(sorted(nodes)))))

    def heal_cut(self, srcs: Sequence[str], dsts: Sequence[str]) -> bool:
        self._fault("heal_cut", sorted(srcs), sorted(dsts))
        return bool(self.network.heal(("cut", tuple(sorted(srcs)), tuple(sorted(dsts)))))

    def degrade_link(self, src: str | Sequence[str], dst: str | Sequence[str],
                     latency: LatencyDist | None = None, loss: float | None = None,
                     duplicate: float | None = None, reorder: float | None = None,
                     bandwidth_bytes_per_s: int | None = None,
                     for_us: int | None = None) -> None:
        """Change the behaviour of the links src→dst (each a node id or a list; fields
        left None keep their current value), until for_us has passed (for good when
        None). A newer degradation of a link replaces an older one, whose expiry then
        does nothing."""
        srcs = [src] if isinstance(src, str) else sorted(src)
        dsts = [dst] if isinstance(dst, str) else sorted(dst)
        self._fault("degrade_link", srcs, dsts,
                    None if latency is None else [latency.median_us, latency.p99_us],
                    loss, duplicate, reorder, bandwidth_bytes_per_s, for_us)
        for s in srcs:
            for d in dsts:
                if s != d:
                    self._degrade_one(s, d, latency, loss, duplicate, reorder,
                                      bandwidth_bytes_per_s, for_us)

    def _degrade_one(self, src: str, dst: str, latency: LatencyDist | None,
                     loss: float | None, duplicate: float | None, reorder: float | None,
                     bandwidth_bytes_per_s: int | None, for_us: int | None) -> None:
        cur = self.network.link(src, dst).params
        new = LinkParams(
            latency if latency is not None else cur.latency,
            bandwidth_bytes_per_s if bandwidth_bytes_per_s is not None
            else cur.bandwidth_bytes_per_s,
            loss if loss is not None else cur.loss,
            duplicate if duplicate is not None else cur.duplicate,
            reorder if reorder is not None else cur.reorder)
        token = self.network.degrade(src, dst, new)
        if for_us is not None:
            def restore() -> None:
                if self.network.restore(src, dst, token):
                    self._fault("restore_link", src, dst)
            self.call_later(for_us, restore)

    def restore_link(self, src: str, dst: str) -> None:
        self._fault("restore_link", src, dst)
        self.network.restore(src, dst)

    def crash(self, node_id: str, lose_unsynced: bool = False) -> None:
        """Kill the process. Its machine stays up: its peers' connections are reset
        and a message reaching it gets a `ConnectionReset` back (see network.py). With
        lose_unsynced, a power loss:
        the disk loses unsynced bytes and the machine is silent until restart."""
        host = self.hosts[node_id]
        self._fault("crash", node_id, lose_unsynced)
        if lose_unsynced:
            host.powered_off = True  # before stop: a machine that is off resets nothing
        host.stop("crash")
        if lose_unsynced:
            host.disk.power_loss()

    def restart(self, node_id: str) -> Node:
        """Start a crashed node: a fresh object from the same factory, same disk."""
        host = self.hosts[node_id]
        if host.node is not None:
            raise ValueError(f"{node_id} is running")
        self._fault("restart", node_id)
        host.boot()
        return host.node  # type: ignore[return-value]

    def shutdown(self, node_id: str) -> None:
        """Graceful stop: the node's shutdown() runs as its event (NodeBase's halts at
        once; a broker may shut down in steps and call rt.halt when done)."""
        host = self.hosts[node_id]
        self._fault("shutdown", node_id)

        def do(node: Node) -> None:
            stop = getattr(node, "shutdown", None)
            if stop is not None:
                stop()
            else:
                host.stop("halt", "shutdown")
        host.call_in(do)

    def pause(self, node_id: str, for_us: int | None = None) -> None:
        """Freeze the process (SIGSTOP, a GC pause): its events wait in its inbox.
        With for_us it resumes by itself, unless resumed or paused again first."""
        self._fault("pause", node_id, for_us)
        host = self.hosts[node_id]
        host.pause()
        self._timed(("pause", node_id), for_us, host.resume)

    def resume(self, node_id: str) -> None:
        self._fault("resume", node_id)
        self._timed(("pause", node_id), None, lambda: None)  # cancels a timed resume
        self.hosts[node_id].resume()

    def set_clock(self, node_id: str, offset_us: int | None = None,
                  drift: float | None = None) -> None:
        """Skew a node's clock: offset_us sets local = true + offset_us from now on;
        drift sets the rate error (0.01: 1% fast)."""
        self._fault("clock", node_id, offset_us, drift)
        self.hosts[node_id].clock.set(self.now_us, offset_us, drift)

    def _timed(self, key: tuple[str, str], for_us: int | None, undo: Callable[[], None]) -> None:
        """Undo a timed fault after for_us, unless a newer fault of the same kind on
        the same node replaced it first (the newer one's own timer undoes it)."""
        token = self._fault_tokens.get(key, 0) + 1
        self._fault_tokens[key] = token
        if for_us is not None:
            def expire() -> None:
                if self._fault_tokens.get(key) == token:
                    self._fault(f"{key[0]}_end", key[1])
                    undo()
            self.call_later(for_us, expire)

    def slow_disk(self, node_id: str, factor: float, for_us: int | None = None) -> None:
        """Multiply the node's fsync and read-miss times by factor (1: back to normal)."""
        self._fault("slow_disk", node_id, factor, for_us)
        disk = self.hosts[node_id].disk
        disk.set_slow(factor)
        self._timed(("slow_disk", node_id), for_us, lambda: disk.set_slow(1.0))

    def disk_full(self, node_id: str, for_us: int | None = None, full: bool = True) -> None:
        """Writes that need space fail with NO_SPACE (until for_us passes, or
        disk_full(node, full=False))."""
        self._fault("disk_full", node_id, for_us, full)
        disk = self.hosts[node_id].disk
        disk.set_full(full)
        self._timed(("disk_full", node_id), for_us if full else None,
                    lambda: disk.set_full(False))

    def corrupt(self, node_id: str, path: str, nbytes: int) -> list[int]:
        self._fault("corrupt", node_id, path, nbytes)
        return self.hosts[node_id].disk.corrupt(path, nbytes)

    # ------------------------------------------------------------------ reports

    def reachable(self, src: str, dst: str) -> bool:
        return self.network.reachable(src, dst)

    @property
    def connectivity(self) -> nx.DiGraph:
        """Current links that work, as a directed graph over every node."""
        return self.network.connectivity_at(None)

    def connectivity_at(self, time_us: int) -> nx.DiGraph:
        return self.network.connectivity_at(time_us)

    @property
    def connectivity_log(self) -> list[tuple[int, str, frozenset[tuple[str, str]]]]:
        """(time_us, what changed, the set of cut links after it), in time order."""
        return list(self.network.log)

    @property
    def trace_hash(self) -> str:
        return self.trace.hexdigest

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event as {time_us, node, kind, fields} (record_events=True only)."""
        return self.trace.events

    @property
    def raw_events(self) -> list[tuple[Any, ...]]:
        """Every event as a flat tuple (time_us, node, kind, *fields); cheaper."""
        return self.trace.raw_events

    def stats(self) -> dict[str, Any]:
        """Counters for summaries: events, deliveries, drops by reason, per-node."""
        return {
            "time_us": self.now_us,
            "steps": self.steps,
            "trace_events": len(self.trace),
            "sent": self.network.sent_count(),
            "duplicated": self.network.duplicated_count(),
            "delivered": self.network.delivered_count(),
            "in_flight": self.network.in_flight_count(),
            "dropped": dict(sorted(self.network.dropped.items())),
            "resets": self.network.resets,
            "held": self.network.held,
            "holding": self.network.holding_count(),
            "retransmitted": self.network.retransmitted,
            "nodes": {n: {"events": h.events_handled, "busy_us": h.busy_total_us,
                          "crashes": h.crashes, "alive": h.node is not None,
                          "lost_events": h.lost_events}
                      for n, h in sorted(self.hosts.items())},
        }

    def describe(self) -> dict[str, Any]:
        """The seed and every parameter of the model, so a run can be replayed from
        one line of a report."""
        net = self.network.params
        return {
            "seed": self.seed,
            "network": {**{k: v for k, v in dataclasses.asdict(net).items() if k != "links"},
                        "links": {f"{s}->{d}": dataclasses.asdict(p)
                                  for (s, d), p in sorted(net.links.items())}},
            "disk": dataclasses.asdict(self.disk_params),
            "cpu": dataclasses.asdict(self.cpu),
        }

    def rng_for(self, stream: str, node_id: str = "") -> random.Random:
        """A fresh generator for an extra stream (e.g. a workload's draws)."""
        return rand.stream_rng(self.seed, stream, node_id)


class _Env(simpy.Environment):
    """SimPy's environment, whose `step` also runs the World's (time, prio, id, fn,
    *args) entries, so `env.run()` / `env.step()` work too (World.run is faster)."""

    def step(self) -> None:
        try:
            entry = heappop(self._queue)
        except IndexError:
            raise simpy.core.EmptySchedule from None
        self._now = entry[0]
        if len(entry) > 4:
            entry[3](entry)
            return
        heappush(self._queue, entry)  # an ordinary event: SimPy's own step
        super().step()


def _call0(fn: Callable[[], None]) -> None:
    fn()


def _call_arg(entry: tuple[Any, ...]) -> None:
    entry[4](entry[5])


def _simpy_step(event: Any) -> None:
    """What `simpy.Environment.step` does with an event once popped."""
    callbacks, event.callbacks = event.callbacks, None
    for callback in callbacks:
        callback(event)
    if not event._ok and not hasattr(event, "_defused"):
        exc = type(event._value)(*event._value.args)
        exc.__cause__ = event._value
        raise exc
