"""How the simulator's wall time grows with brokers, partitions and message rate.

Each point is one generated scenario (no faults, no consumers: the replicated core
alone): `--brokers` brokers with a 3-node KRaft quorum, one topic of `--partitions`
partitions (RF 3), one producer with acks=all at `--rate` messages/s for `--seconds`
simulated seconds. Printed per point: wall seconds of the run loop (bootstrap, workload,
settle; not judging), simulated seconds per wall second, messages delivered by the
simulated network and wall microseconds per delivered message, which stays flat when
the cost is linear in simulated events (BENCHMARKS.md: nothing quadratic in partitions).

Run: .venv/bin/python bench/scale.py [--brokers 3,6,12] [--partitions 6,60,600]
     [--rate 1000] [--seconds 10]
Points vary one axis at a time from the first value of the others.
"""

from __future__ import annotations

import argparse
import time

from simlog.scenario.load import loads
from simlog.scenario.run import Run

TEMPLATE = """\
name: scale-{brokers}b-{partitions}p-{rate}
seed: 1
duration: {seconds}s
cluster: {{brokers: {brokers}, controllers: 3, config: {{min.insync.replicas: 2}}}}
topics:
  - {{name: orders, partitions: {partitions}, replication_factor: 3}}
workload:
  producers:
    - {{id: p1, topic: orders, rate: {rate}/s, keys: {{dist: uniform, n: 10000}},
       value_size: 100B, config: {{acks: all}}}}
checks: [lost_writes]
"""


def point(brokers: int, partitions: int, rate: int, seconds: int) -> tuple[float, int, float]:
    scenario = loads(TEMPLATE.format(brokers=brokers, partitions=partitions, rate=rate,
                                     seconds=seconds), "scale.yaml")
    run = Run(scenario)
    start = time.perf_counter()
    run.execute()
    wall = time.perf_counter() - start
    stats = run.world.stats()
    return wall, stats["delivered"], run.cluster.rel_us() / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", default="3,6,12")
    ap.add_argument("--partitions", default="6,60,600")
    ap.add_argument("--rate", default="1000")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    brokers = [int(x) for x in args.brokers.split(",")]
    partitions = [int(x) for x in args.partitions.split(",")]
    rates = [int(x) for x in args.rate.split(",")]
    points = sorted({(b, partitions[0], rates[0]) for b in brokers}
                    | {(brokers[0], p, rates[0]) for p in partitions}
                    | {(brokers[0], partitions[0], r) for r in rates})
    print(f"{'brokers':>7} {'parts':>6} {'rate/s':>7} {'wall s':>7} {'sim s/wall s':>12} "
          f"{'messages':>9} {'us/message':>10}")
    for b, p, r in points:
        wall, delivered, sim_s = point(b, p, r, args.seconds)
        print(f"{b:>7} {p:>6} {r:>7} {wall:7.2f} {sim_s / wall:12.2f} {delivered:>9} "
              f"{wall * 1e6 / max(1, delivered):10.1f}", flush=True)


if __name__ == "__main__":
    main()
