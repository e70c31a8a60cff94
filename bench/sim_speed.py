"""Simulator speed: world events per wall second beside bare SimPy, in one run.

A busy three-node program (every node keeps `WINDOW` pings in flight to each peer and
answers every ping it gets, plus a 1 ms heartbeat timer) runs in the World until it
has handled N node events; then 1000 bare SimPy processes do N timeouts between them.
The two alternate `--repeat` times after a warm-up; printed: the median rates (wall
clock), and the median of the per-pair ratios, in wall time and in CPU time of this
process (the CPU-time ratio is the steadier one on a shared, loaded machine).
Aim: ratio >= 0.8. Run: .venv/bin/python bench/sim_speed.py
`--against REV` also runs the world of simlog/sim as of git revision REV (extracted
with `git archive` into a temporary package), interleaved with the current one, and
prints both ratios and current / REV: a before/after measured in one run.
"""

from __future__ import annotations

import argparse
import importlib
import io
import pathlib
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from types import ModuleType

import simpy

import simlog.sim
from simlog.runtime import Message, NodeBase, Runtime

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


def world_rate(events: int, seed: int = 1, sim: ModuleType = simlog.sim
               ) -> tuple[float, float, int]:
    """(events per wall second, events per CPU second, events handled)."""
    w = sim.World(seed, network=sim.NetworkParams(latency=sim.LatencyDist(500, 5_000)))
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


def sim_at(rev: str) -> ModuleType:
    """simlog/sim as of git revision rev, importable beside the current one."""
    root = pathlib.Path(__file__).resolve().parent.parent
    data = subprocess.run(["git", "archive", rev, "simlog/sim"], cwd=root, check=True,
                          capture_output=True).stdout
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="sim_speed_"))
    name = "simlog_sim_" + re.sub(r"\W", "_", rev)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.endswith(".py"):
                text = tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                out = tmp / name / pathlib.Path(m.name).name
                out.parent.mkdir(exist_ok=True)
                out.write_text(re.sub(r"\bsimlog\.sim\b", name, text))
    sys.path.insert(0, str(tmp))
    return importlib.import_module(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--against", metavar="REV", help="also run simlog/sim as of REV")
    args = ap.parse_args()
    base = sim_at(args.against) if args.against else None
    world_rate(args.events // 10)  # warm-up: the first measurement runs slow
    if base is not None:
        world_rate(args.events // 10, sim=base)
    simpy_rate(args.events // 10)
    wr, sr, wall_ratios, cpu_ratios, base_ratios, gains = [], [], [], [], [], []
    for _ in range(args.repeat):  # interleaved: the machine's noise hits all of them
        w_wall, w_cpu, handled = world_rate(args.events)
        s_wall, s_cpu = simpy_rate(handled)
        wr.append(w_wall)
        sr.append(s_wall)
        wall_ratios.append(w_wall / s_wall)
        cpu_ratios.append(w_cpu / s_cpu)
        if base is not None:
            b_cpu = world_rate(args.events, sim=base)[1]
            base_ratios.append(b_cpu / s_cpu)
            gains.append(w_cpu / b_cpu)
    print(f"world (3 busy nodes):       {statistics.median(wr):>10,.0f} events/s (wall, "
          f"median of {args.repeat})")
    print(f"bare SimPy (1000 timeouts): {statistics.median(sr):>10,.0f} events/s (wall)")
    print(f"ratio world / SimPy, wall:  {statistics.median(wall_ratios):10.2f}   "
          f"(min {min(wall_ratios):.2f}, max {max(wall_ratios):.2f})")
    print(f"ratio world / SimPy, CPU:   {statistics.median(cpu_ratios):10.2f}   "
          f"(min {min(cpu_ratios):.2f}, max {max(cpu_ratios):.2f}; aim >= 0.8)")
    if base is not None:
        print(f"ratio at {args.against}, CPU: {statistics.median(base_ratios):10.2f}   "
              f"(min {min(base_ratios):.2f}, max {max(base_ratios):.2f})")
        print(f"current / {args.against}, CPU: {statistics.median(gains):8.2f}   "
              f"(min {min(gains):.2f}, max {max(gains):.2f})")


if __name__ == "__main__":
    main()
