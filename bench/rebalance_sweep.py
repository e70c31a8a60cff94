"""Eager vs cooperative-sticky rebalancing across application processing times.

Runs scenarios/consumer_rebalance.yaml (eager, range) and its cooperative twin with the
consumer group's `processing` per record replaced by each value of `--per-record`, over
`--seeds`, and prints each protocol's total partition-unowned time (the summary's
`groups.analytics.partition_unowned_ms`) and the cooperative / eager ratio. It shows the
crossover: with instant processing an eager rebalance of members that heartbeat in step
completes in milliseconds while KIP-429's second round waits for a heartbeat, so eager
wins; once members spend about a heartbeat interval on each poll, eager's stop-the-world
(every partition waits for the slowest member's next poll) costs more.

Run: .venv/bin/python bench/rebalance_sweep.py [--per-record 0ms,5ms,20ms] [--seeds 1,29,30]
These are simulated figures, the same on every machine for the same seed.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from simlog.scenario.load import loads
from simlog.scenario.run import run_scenario

ROOT = Path(__file__).resolve().parents[1] / "scenarios"
FILES = {"eager": ROOT / "consumer_rebalance.yaml",
         "cooperative": ROOT / "consumer_rebalance_cooperative.yaml"}


def unowned_s(path: Path, per_record: str, seed: int) -> float:
    text = path.read_text()
    old = "per_record: 20ms"
    assert old in text, f"{path.name}: expected `{old}`"
    text = text.replace(old, f"per_record: {per_record}")
    outcome = run_scenario(loads(text, str(path)).with_seed(seed))
    if outcome.mismatches:
        raise SystemExit(f"{path.name} {per_record} seed {seed}: checks missed "
                         f"{outcome.mismatches}")
    return outcome.summary["groups"]["analytics"]["partition_unowned_ms"] / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-record", default="0ms,5ms,10ms,20ms,40ms")
    ap.add_argument("--seeds", default="1,29,30")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{'per record':>10} {'eager s':>9} {'coop s':>9} {'coop/eager':>10}   (seeds "
          f"{args.seeds}, medians; jitter 0.5, max.poll.records 100, heartbeat 1 s)")
    for per_record in args.per_record.split(","):
        eager = statistics.median(unowned_s(FILES["eager"], per_record, s) for s in seeds)
        coop = statistics.median(unowned_s(FILES["cooperative"], per_record, s) for s in seeds)
        print(f"{per_record:>10} {eager:9.1f} {coop:9.1f} {coop / eager:10.2f}", flush=True)


if __name__ == "__main__":
    main()
