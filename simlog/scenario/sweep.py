"""Seed sweeps: run one scenario file under many seeds and tabulate the outcomes.

    simlog sweep FILE --seeds 1..200 [--jobs 2] [--out DIR] [--keep-runs] [--quiet]

Each seed is an independent run (`Run(scenario.with_seed(s))`), in a pool of worker
processes; results come back in seed order whatever the order they finish in, so the
table, `sweep.csv` and `sweep.json` are the same for the same file and seeds on any
machine and any number of jobs (wall seconds aside). A seed whose checks miss the
scenario's `expect` is listed with the command that replays it (`simlog run FILE --seed
N`), which gives the same trace hash. Exit status: 0 when every seed met `expect`, 1
when some did not, 2 for a bad file or seed list.

Workers are separate processes (each run is single-threaded CPU work); `--jobs`
defaults to the machine's CPU count. The pool is this module's own; a cluster backend
(Dask) can take `run_seed` as its task, since it is a plain function of picklable
arguments.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from simlog.scenario.errors import ScenarioError as FileError
from simlog.scenario.load import load

INVALID_EXIT = 2
MAX_SEEDS = 1_000_000
_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:\.\.\s*(-?\d+)\s*)?$")


@dataclass(frozen=True, slots=True)
class SeedResult:
    """One seed's outcome: what the table and sweep.csv show."""

    seed: int
    expected_ok: bool
    mismatches: tuple[str, ...]
    trace_hash: str
    acked: int
    lost: int
    latency_p99_ms: float | None
    leader_elections: int
    sim_seconds: float
    wall_seconds: float
    error: str = ""


def parse_seeds(text: str) -> list[int]:
    """`1..100`, `3,7,9`, `1..10,20,30..32` -> sorted, without repeats."""
    seeds: set[int] = set()
    for part in text.split(","):
        m = _RANGE.match(part)
        if m is None:
            raise ValueError(f"expected seeds like 1..100 or 3,7,9, found {part.strip()!r}")
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if hi < lo:
            raise ValueError(f"expected a range low..high, found {part.strip()!r}")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS:,} seeds in one sweep")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def run_seed(path: str, seed: int, out_dir: str | None = None) -> SeedResult:
    """Run the scenario at `path` with `seed` (a pool task: plain arguments, plain
    result). With out_dir the run's results folder is written there."""
    from simlog.scenario.run import Run

    scenario = load(path).with_seed(seed)
    start = time.perf_counter()
    try:
        run = Run(scenario)
        run.execute()
        wall = time.perf_counter() - start
        outcome = run.judge(wall, Path(out_dir) if out_dir else None)
    except Exception as exc:  # a crash of the simulator is a result, not a lost seed
        return SeedResult(seed, False, (), "", 0, 0, None, 0, 0.0,
                          time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    s = outcome.summary
    return SeedResult(seed, outcome.expected_ok, tuple(outcome.mismatches),
                      outcome.trace_hash, int(s["acked"]), int(s["lost"]),
                      (s.get("latency_ms") or {}).get("p99"), int(s["leader_elections"]),
                      float(s["sim_seconds"]), wall)


def sweep(path: str, seeds: list[int], jobs: int, keep_dir: Path | None = None
          ) -> Iterator[SeedResult]:
    """Every seed's result as it finishes (in any order; callers sort)."""
    def out_for(seed: int) -> str | None:
        return str(keep_dir / f"seed-{seed}") if keep_dir is not None else None

    if jobs <= 1:
        for seed in seeds:
            yield run_seed(path, seed, out_for(seed))
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_seed, path, seed, out_for(seed)) for seed in seeds]
        for future in as_completed(futures):
            yield future.result()


def write_outputs(out: Path, file: str, results: list[SeedResult]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for r in results]
    with (out / "sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["seed"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "mismatches": " ".join(row["mismatches"])})
    failing = [r.seed for r in results if not r.expected_ok]
    summary: dict[str, Any] = {
        "scenario_file": file, "seeds": len(results), "expected_ok": not failing,
        "failing_seeds": failing,
        "checks_missed": {name: sum(1 for r in results if name in r.mismatches)
                          for name in sorted({m for r in results for m in r.mismatches})},
        "errors": {str(r.seed): r.error for r in results if r.error},
        "lost_total": sum(r.lost for r in results),
        "acked_total": sum(r.acked for r in results),
    }
    (out / "sweep.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


@click.command(name="sweep")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--seeds", "seed_text", required=True,
              help="Seeds to run: 1..100, 3,7,9, or both (1..10,20).")
@click.option("--jobs", type=int, default=None,
              help="Worker processes (default: the machine's CPU count).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for sweep.csv and sweep.json (default: results/NAME-sweep/).")
@click.option("--keep-runs", is_flag=True,
              help="Also write each seed's results folder (OUT/seed-N/).")
@click.option("--quiet", is_flag=True, help="No progress bar and no table.")
def sweep_command(file: str, seed_text: str, jobs: int | None, out_dir: str | None,
                  keep_runs: bool, quiet: bool) -> None:
    """Run the scenario FILE once per seed and report which seeds miss `expect`."""
    try:
        scenario = load(file)
        seeds = parse_seeds(seed_text)
    except FileError as err:
        click.echo(err.one_line(), err=True)
        sys.exit(INVALID_EXIT)
    except ValueError as err:
        click.echo(f"--seeds: {err}", err=True)
        sys.exit(INVALID_EXIT)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    out = Path(out_dir) if out_dir else Path("results") / f"{scenario.name}-sweep"
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    keep = out if keep_runs else None
    console = Console()
    results: list[SeedResult] = []
    with Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=quiet) as bar:
        task = bar.add_task(f"{scenario.name}: {len(seeds)} seeds", total=len(seeds))
        for result in sweep(file, seeds, jobs, keep):
            results.append(result)
            bar.advance(task)
    results.sort(key=lambda r: r.seed)
    write_outputs(out, file, results)
    failing = [r for r in results if not r.expected_ok]
    if not quiet and not failing:
        console.print(f"{scenario.name}: all {len(results)} seeds met expect "
                      f"(acked {sum(r.acked for r in results):,}, "
                      f"lost {sum(r.lost for r in results):,})")
        console.print(f"results: {out}")
    elif not quiet:
        table = Table(title=f"{scenario.name}: {len(results)} seeds, "
                            f"{len(results) - len(failing)} met expect")
        for col in ("seed", "missed", "acked", "lost", "p99 ms", "elections", "trace"):
            table.add_column(col)
        for r in failing[:20]:
            table.add_row(str(r.seed), r.error or " ".join(r.mismatches), str(r.acked),
                          str(r.lost), "" if r.latency_p99_ms is None
                          else f"{r.latency_p99_ms:,.1f}", str(r.leader_elections),
                          r.trace_hash[:12])
        console.print(table)
        console.print(f"results: {out}")
    for r in failing:
        click.echo(f"seed {r.seed} missed expect ({r.error or ', '.join(r.mismatches)}): "
                   f"simlog run {file} --seed {r.seed}", err=True)
    sys.exit(0 if not failing else 1)


__all__ = ["SeedResult", "parse_seeds", "run_seed", "sweep", "sweep_command"]
