"""simlog.testing: property fault tests for your own CI (see docs/testing.md).

    from hypothesis import given
    from simlog.testing import scenarios, schedules, check_property

    @given(scenarios(base="my_cluster.yaml",
                     schedules=schedules(kinds=["partition", "crash", "pause"],
                                         max_faults=4, undo=True)))
    def test_my_cluster_survives_faults(raw):
        check_property(raw)

Strategies (`simlog.testing.strategies`): `schedules`, `scenarios`, `merge_schedules`,
`to_yaml`, `as_raw`, `write_scenario`, `keep_on_failure`, and the kind lists `FAULT_KINDS`, `RUNNABLE_KINDS`,
`SAFE_KINDS`. Running (`simlog.testing.property`): `run_property`, `assert_expected`,
`check_property`, `failures_dir`. Hypothesis profiles for CI (`simlog.testing.profiles`):
`register_profiles`. Builders for hand-written histories and final states
(for testing checks): `simlog.testing.builders`.

Names are imported lazily, so `import simlog.testing.builders` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FAULT_KINDS": "strategies", "RUNNABLE_KINDS": "strategies", "SAFE_KINDS": "strategies",
    "schedules": "strategies", "scenarios": "strategies", "to_yaml": "strategies",
    "as_raw": "strategies", "write_scenario": "strategies", "keep_on_failure": "strategies",
    "merge_schedules": "strategies",
    "run_property": "property", "assert_expected": "property", "check_property": "property",
    "failures_dir": "property", "DEFAULT_FAILURES_DIR": "property",
    "register_profiles": "profiles",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simlog.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"simlog.testing.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
