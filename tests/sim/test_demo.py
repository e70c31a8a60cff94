"""`simlog demo` runs the scripted story and prints its reproducible trace hash."""

from __future__ import annotations

from click.testing import CliRunner

from simlog.cli import cli
from simlog.sim.example import scripted_run


def test_demo_prints_summary_and_reproducible_hash() -> None:
    result = CliRunner().invoke(cli, ["demo", "--seed", "5", "--duration", "2.5"])
    assert result.exit_code == 0, result.output
    assert scripted_run(5, duration_us=2_500_000).trace_hash in result.output
    for word in ("partition", "heal", "crash", "restart", "messages dropped"):
        assert word in result.output
