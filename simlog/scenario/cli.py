"""`simlog validate FILE`: load and check a scenario file without running it.

Prints `OK` and a one-line summary (exit 0), or the one-line error naming file, line, key
and what was expected (exit 2, as `simlog run` does for an invalid file). Never a
traceback for bad input.
"""

from __future__ import annotations

import sys

import click

from simlog.scenario.errors import ScenarioError
from simlog.scenario.load import load

INVALID_EXIT = 2


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a scenario FILE: schema, units, references, Kafka configs and checks."""
    try:
        scenario = load(file)
    except ScenarioError as err:
        click.echo(err.one_line(), err=True)
        sys.exit(INVALID_EXIT)
    click.echo(f"OK {scenario.summary()}")
