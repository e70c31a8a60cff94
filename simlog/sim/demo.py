"""`simlog demo`: a short run of the example program in the simulated world.

Three counter nodes exchange heartbeats; n1 is partitioned away and healed, n2 loses
power and restarts, n3's clock runs fast (see `simlog.sim.example.scripted_run`).
Prints what happened and the trace hash, which the same seed always reproduces.
"""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.table import Table

from simlog.sim.example import scripted_run


@click.command()
@click.option("--seed", default=42, show_default=True, help="Run seed.")
@click.option("--duration", "duration_s", default=3.0, show_default=True,
              help="Simulated seconds.")
def demo(seed: int, duration_s: float) -> None:
    """Run a small simulated cluster through a partition, a crash and a restart."""
    console = Console()
    t0 = time.perf_counter()
    w = scripted_run(seed, duration_us=round(duration_s * 1_000_000))
    wall_s = time.perf_counter() - t0
    stats = w.stats()

    faults = Table(title="Faults (connectivity changes and node faults)")
    faults.add_column("time", justify="right")
    faults.add_column("fault")
    for e in w.fault_log:
        args = " ".join(str(x) for x in e[2:] if x is not None)
        faults.add_row(f"{e[0] / 1e6:.3f} s", f"{e[1]} {args}")
    console.print(faults)

    nodes = Table(title=f"Nodes after {w.now_us / 1e6:.1f} simulated seconds (seed {seed})")
    for col in ("node", "events", "crashes", "counter", "recovered at start", "heartbeats in"):
        nodes.add_column(col, justify="right" if col != "node" else "left")
    for n in w.node_ids:
        s = stats["nodes"][n]
        node = w.node(n)
        nodes.add_row(n, str(s["events"]), str(s["crashes"]),
                      str(node.counter) if node else "down",
                      str(node.recovered) if node else "-",
                      str(sum(node.received.values())) if node else "-")
    console.print(nodes)

    summary = Table(title="Run", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    dropped = stats["dropped"]
    summary.add_row("events traced", f"{stats['trace_events']:,}")
    summary.add_row("messages sent", f"{stats['sent']:,}")
    summary.add_row("messages delivered", f"{stats['delivered']:,}")
    summary.add_row("messages dropped", f"{sum(dropped.values()):,} "
                    + " ".join(f"{k}={v}" for k, v in dropped.items()))
    summary.add_row("wall time", f"{wall_s:.3f} s")
    summary.add_row("trace hash", w.trace_hash)
    console.print(summary)
