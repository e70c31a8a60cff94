"""`simlog report DIR`: print a results folder's summary table again, and optionally
redraw its plots from metrics.csv (after a change to the plots, or for an old run)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--plots", "redraw", is_flag=True, help="Redraw plots/*.png from metrics.csv.")
def report(results_dir: Path, redraw: bool) -> None:
    """Print the summary of the run whose results are in RESULTS_DIR."""
    from rich.console import Console

    from analysis.load import load_run
    from analysis.plots import write_plots
    from analysis.summary import render

    if not (results_dir / "summary.json").exists():
        raise click.ClickException(f"{results_dir}: no summary.json; not a results folder")
    run = load_run(results_dir)
    render(run.summary, Console())
    if redraw:
        paths = write_plots(results_dir / "plots", run.metrics, run.summary.get("faults", []),
                            end_s=run.summary.get("sim_seconds") or None)
        click.echo(f"plots: {', '.join(str(path) for path in paths)}")
