"""The `simlog` command. Each subcommand lives in the module that owns it and is
imported only when invoked, so `simlog --help` stays fast."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click.Command. Add one line per new subcommand.
COMMANDS: dict[str, str] = {
    "validate": "simlog.scenario.cli:validate",
    "demo": "simlog.sim.demo:demo",
    "run": "simlog.scenario.run_cli:run",
    "sweep": "simlog.scenario.sweep:sweep_command",
    "report": "analysis.cli:report",
    "dump-log": "simlog.tools.dump_log:dump_log",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup)
@click.version_option(package_name="simlog")
def cli() -> None:
    """Deterministic simulation and research testbed for Kafka-like distributed logs."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
