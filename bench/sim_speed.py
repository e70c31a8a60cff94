"""Simulator speed: world events per wall second beside bare SimPy, in one run.

A busy three-node program (every node keeps `WINDOW` pings in flight to each peer and
answers every ping it gets, plus a 1 ms heartbeat timer) runs in the World until it
has handled N node events; then 1000 bare SimPy processes do N timeouts between them.
Prints both rates and their ratio (aim: >= 0.8). Run: .venv/bin/python bench/sim_speed.py
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


def world_rate(events: int, seed: int = 1) -> tuple[float, int]:
    w = World(seed, network=NetworkParams(latency=LatencyDist(500, 5_000)))
    for n in IDS:
        w.add_node(n, BusyNode)
    t0 = time.perf_counter()
    handled = 0
    while handled < events:
        w.run_for(100_000)
        handled = sum(h.events_handled for h in w.hosts.values())
    dt = time.perf_counter() - t0
    return handled / dt, handled


def simpy_rate(events: int, procs: int = 1000) -> float:
    env = simpy.Environment()
    per = events // procs

    def proc(env: simpy.Environment, i: int):
        for _ in range(per):
            yield env.timeout(1 + i % 7)

    for i in range(procs):
        env.process(proc(env, i))
    t0 = time.perf_counter()
    env.run()
    return per * procs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    wr, sr, ratios = [], [], []
    for _ in range(args.repeat):  # interleaved pairs: the machine's noise hits both
        rate, handled = world_rate(args.events)
        bare = simpy_rate(handled)
        wr.append(rate)
        sr.append(bare)
        ratios.append(rate / bare)
    w, s = statistics.median(wr), statistics.median(sr)
    print(f"world (3 busy nodes):       {w:>10,.0f} events/s   (median of {args.repeat})")
    print(f"bare SimPy (1000 timeouts): {s:>10,.0f} events/s")
    print(f"ratio world / SimPy:        {statistics.median(ratios):10.2f}   "
          f"(median of pairs; min {min(ratios):.2f}, max {max(ratios):.2f}; aim >= 0.8)")


if __name__ == "__main__":
    main()
