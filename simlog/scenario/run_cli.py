"""`simlog run FILE.yaml`: run a scenario, print the summary, write the results folder.

Exit status (SCENARIOS.md): 0 when every check matches `expect`, 1 when one does not,
2 when the file is not a valid scenario (one line naming file, line and key).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from simlog.scenario.errors import ScenarioError as FileError
from simlog.scenario.load import load

INVALID_EXIT = 2


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Results folder (default: results/NAME-SEED/).")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.option("--export-disks", type=click.Path(file_okay=False), default=None,
              help="Write every node's final disk as real files into this folder.")
def run(file: str, seed: int | None, out_dir: str | None, quiet: bool,
        export_disks: str | None) -> None:
    """Run the scenario FILE and judge it with its checks."""
    try:
        scenario = load(file)
    except FileError as err:
        click.echo(err.one_line(), err=True)
        sys.exit(INVALID_EXIT)
    # Imported after validation so `simlog run bad.yaml` answers fast.
    from analysis.summary import render
    from simlog.scenario.cluster import ScenarioError
    from simlog.scenario.export import export_disks as write_disks

    if seed is not None:
        scenario = scenario.with_seed(seed)
    out = Path(out_dir) if out_dir else Path("results") / f"{scenario.name}-{scenario.seed}"
    console = Console(stderr=False)
    try:
        outcome = _run(scenario, out, quiet, console)
    except ScenarioError as err:
        click.echo(f"{file}: {err}", err=True)
        sys.exit(INVALID_EXIT)
    if export_disks:
        write_disks(outcome[1].world, Path(export_disks))
    result = outcome[0]
    if not quiet:
        render(result.summary, console)
        console.print(f"results: {out}")
    for name in result.mismatches:
        want = scenario.expect.get(name)
        got = result.summary["checks"].get(name, {}).get("result", "missing")
        click.echo(f"expectation not met: {name} expected {want}, got {got}", err=True)
    sys.exit(0 if result.expected_ok else 1)


def _run(scenario, out: Path, quiet: bool, console: Console):
    from simlog.scenario.run import Run

    wall_start = time.perf_counter()
    if quiet:
        run_ = Run(scenario)
        run_.execute()
    else:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.fields[sim]}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(scenario.name, total=scenario.duration_us, sim="")

            def progress(done_us: int, total_us: int, phase: str) -> None:
                bar.update(task, completed=min(done_us, total_us), total=total_us,
                           description=f"{scenario.name}: {phase}",
                           sim=f"{done_us / 1e6:.1f}s / {total_us / 1e6:.0f}s sim")
            run_ = Run(scenario, progress)
            run_.execute()
    wall = time.perf_counter() - wall_start
    return run_.judge(wall, out), run_.cluster
