"""Simulator speed: world events per wall second beside bare SimPy, in one run.

A busy three-node program (every node keeps `WINDOW` pings in flight to each peer and
answers every ping it gets, plus a 1 ms heartbeat timer) runs in the World until it
has handled N node events; then 1000 bare SimPy processes do N timeouts between them.
The two alternate `--repeat` times after a warm-up; printed: the median rates (wall
clock), and the median of the per-pair ratios, in wall time and in CPU time of this
process (the CPU-time ratio is the steadier one on a shared, loaded machine).
Aim: ratio >= 0.8. Run: .venv/bin/python bench/sim_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import simpy

from simlog.runtime import Message, NodeBase, Runtime
from simlog.sim import LatencyDist, NetworkParams, World

WINDOW = 64
IDS = ["b1", "b2", "b3"]


class BenchPing(Message, frozen=True, tag=True, kw_only=True):
    n: int


class BusyNode(NodeBase):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.peers = [p for p in IDS if p != rt.node_id]
        self.ticks = 0

    def start(self) -> None:
        for peer in self.peers:
            for i in range(WINDOW):
                self.rt.send(peer, BenchPing(n=i))
        self.rt.set_timer(1_000, self.tick)

    def tick(self) -> None:
        self.ticks += 1
        self.rt.set_timer(1_000, self.tick)

    def on_message(self, src: str, msg: Message) -> None:
        self.rt.send(src, BenchPing(n=msg.n + 1))  # type: ignore[attr-defined]


def world_rate(events: int, seed: int = 1) -> tuple[float, float, int]:
    """(events per wall second, events per CPU second, events handled)."""
    w = World(seed, network=NetworkParams(latency=LatencyDist(500, 5_000)))
    for n in IDS:
        w.add_node(n, BusyNode)
    t0, c0 = time.perf_counter(), time.process_time()
    handled = 0
    while handled < events:
        w.run_for(100_000)
        handled = sum(h.events_handled for h in w.hosts.values())
    return (handled / (time.perf_counter() - t0), handled / (time.process_time() - c0),
            handled)


def simpy_rate(events: int, procs: int = 1000) -> tuple[float, float]:
    """(timeouts per wall second, per CPU second) for procs processes."""
    env = simpy.Environment()
    per = events // procs

    def proc(env: simpy.Environment, i: int):
        for _ in range(per):
            yield env.timeout(1 + i % 7)

    for i in range(procs):
        env.process(proc(env, i))
    t0, c0 = time.perf_counter(), time.process_time()
    env.run()
    done = per * procs
    return done / (time.perf_counter() - t0), done / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    world_rate(args.events // 10)  # warm-up: the first measurement runs slow
    simpy_rate(args.events // 10)
    wr, sr, wall_ratios, cpu_ratios = [], [], [], []
    for _ in range(args.repeat):  # interleaved pairs: the machine's noise hits both
        w_wall, w_cpu, handled = world_rate(args.events)
        s_wall, s_cpu = simpy_rate(handled)
        wr.append(w_wall)
        sr.append(s_wall)
        wall_ratios.append(w_wall / s_wall)
        cpu_ratios.append(w_cpu / s_cpu)
    print(f"world (3 busy nodes):       {statistics.median(wr):>10,.0f} events/s (wall, "
          f"median of {args.repeat})")
    print(f"bare SimPy (1000 timeouts): {statistics.median(sr):>10,.0f} events/s (wall)")
    print(f"ratio world / SimPy, wall:  {statistics.median(wall_ratios):10.2f}   "
          f"(min {min(wall_ratios):.2f}, max {max(wall_ratios):.2f})")
    print(f"ratio world / SimPy, CPU:   {statistics.median(cpu_ratios):10.2f}   "
          f"(min {min(cpu_ratios):.2f}, max {max(cpu_ratios):.2f}; aim >= 0.8)")


if __name__ == "__main__":
    main()
