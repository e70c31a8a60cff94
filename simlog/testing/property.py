"""Run a scenario inside a property test and turn a miss into a replayable file.

    from simlog.testing import check_property, run_property, assert_expected

    outcome = run_property(raw)            # RunOutcome: .summary, .mismatches, .trace_hash
    assert_expected(raw, outcome)          # raises AssertionError if a check missed
    check_property(raw)                    # both at once; returns the outcome

`raw` is a raw scenario dict (what `simlog.testing.scenarios` draws), YAML text, a path to
a scenario file, or a loaded `Scenario` whose source file is readable. It is always run
as the exact YAML text (`to_yaml`) that a failure file would hold, so the file replays the
same run: same scenario, same seed, same trace hash.

On a miss, `assert_expected` writes the scenario to FAILURES_DIR/NAME-seedSEED-HASH.yaml
(FAILURES_DIR: the `failures_dir` argument, else $SIMLOG_FAILURES_DIR, else
`./simlog-failures/`) with a comment naming the failed checks, their first witnesses, the
trace hash and the replay command, and raises an AssertionError whose message gives the
path and `simlog run PATH`. Inside hypothesis, only the final (shrunk) example is written;
the examples hypothesis tries while shrinking fail with a short message and no file.
Nothing here reads the wall clock or draws unseeded randomness into a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis.control import current_build_context, currently_in_test_context, note

from simlog.scenario.load import loads
from simlog.scenario.model import Scenario
from simlog.scenario.run import RunOutcome, run_scenario
from simlog.testing.strategies import as_raw, to_yaml

DEFAULT_FAILURES_DIR = "simlog-failures"
FAILURES_ENV = "SIMLOG_FAILURES_DIR"
_WITNESSES_SHOWN = 3
_WITNESS_CHARS = 300

ScenarioLike = Mapping[str, Any] | str | Path | Scenario


def scenario_text(scenario: ScenarioLike) -> tuple[dict[str, Any], str]:
    """(raw dict, the YAML text that is run and written) for any accepted input."""
    if isinstance(scenario, Scenario):
        source = Path(scenario.source)
        if not scenario.source or not source.is_file():
            raise ValueError(f"scenario {scenario.name!r} has no readable source file "
                             f"({scenario.source!r}); pass the raw dict or YAML text")
        raw = as_raw(source)
        raw["seed"] = scenario.seed
    else:
        raw = as_raw(scenario)
    return raw, to_yaml(raw)


def run_property(scenario: ScenarioLike, out_dir: str | Path | None = None) -> RunOutcome:
    """Run the scenario once (no results folder unless `out_dir`) and return the outcome.
    A scenario that does not load raises `simlog.scenario.errors.ScenarioError`."""
    raw, text = scenario_text(scenario)
    loaded = loads(text, f"{raw.get('name', 'scenario')}.yaml")
    return run_scenario(loaded, out_dir=out_dir)


def failures_dir(directory: str | Path | None = None) -> Path:
    """Where failing scenarios go: the argument, $SIMLOG_FAILURES_DIR, ./simlog-failures."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get(FAILURES_ENV) or DEFAULT_FAILURES_DIR)


def describe_misses(outcome: RunOutcome, expect: Mapping[str, str] | None = None) -> list[str]:
    """One line per missed expectation: check, expected, got, first witnesses."""
    lines = []
    checks = outcome.summary.get("checks", {})
    want = expect if expect is not None else outcome.summary.get("expect") or {}
    for name in outcome.mismatches:
        result = checks.get(name, {})
        got = result.get("result", "missing")
        expected = want.get(name, "fail" if got == "pass" else "pass")
        witnesses = result.get("witnesses") or []
        shown = json.dumps(witnesses[:_WITNESSES_SHOWN], sort_keys=True, default=str)
        if len(shown) > _WITNESS_CHARS:
            shown = shown[:_WITNESS_CHARS] + "..."
        more = f" (+{len(witnesses) - _WITNESSES_SHOWN} more)" if len(
            witnesses) > _WITNESSES_SHOWN else ""
        lines.append(f"{name}: expected {expected}, got {got}; first witnesses: "
                     f"{shown}{more}")
    return lines


def _expect_of(text: str) -> dict[str, str] | None:
    try:
        return dict(loads(text).expect)
    except Exception:
        return None


def _final_example() -> bool:
    """False while hypothesis is still searching or shrinking (no file for those)."""
    if not currently_in_test_context():
        return True
    return bool(current_build_context().is_final)


def write_failure(raw: Mapping[str, Any], text: str, outcome: RunOutcome,
                  directory: str | Path | None = None) -> Path:
    """Write the failing scenario with its comment; returns the path."""
    folder = failures_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(raw.get("name", "scenario")))
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    path = folder / f"{name}-seed{raw.get('seed', 0)}-{digest}.yaml"
    header = [f"A failing simlog property example: {', '.join(outcome.mismatches)} "
              "missed the expectation.",
              *describe_misses(outcome, _expect_of(text)),
              f"seed {raw.get('seed', 0)}, trace hash {outcome.trace_hash}",
              f"replay: simlog run {path}"]
    comment = "".join(f"# {line}\n" for line in header)
    path.write_text(comment + text, encoding="utf-8")
    return path


def assert_expected(scenario: ScenarioLike, outcome: RunOutcome,
                    failures_dir: str | Path | None = None) -> None:
    """Raise AssertionError if `outcome` missed the scenario's expectations, after writing
    the scenario as a replayable file (see the module doc)."""
    if outcome.expected_ok:
        return
    raw, text = scenario_text(scenario)
    misses = describe_misses(outcome, _expect_of(text))
    if not _final_example():
        raise AssertionError(f"expectations not met: {', '.join(outcome.mismatches)}")
    path = write_failure(raw, text, outcome, failures_dir)
    if currently_in_test_context():
        note(f"failing scenario written to {path}")
    raise AssertionError(
        f"scenario {raw.get('name')!r} (seed {raw.get('seed', 0)}) missed its expectations:\n"
        + "".join(f"  {line}\n" for line in misses)
        + f"failing scenario written to {path}\nreplay: simlog run {path}")


def check_property(scenario: ScenarioLike, failures_dir: str | Path | None = None
                   ) -> RunOutcome:
    """`run_property` then `assert_expected`; returns the outcome when it met them."""
    outcome = run_property(scenario)
    assert_expected(scenario, outcome, failures_dir)
    return outcome
