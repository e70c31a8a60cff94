"""The checks a scenario may list, their parameters, and how to run them.

A scenario's `checks:` items are names (`lost_writes`) or one-key mappings with
parameters (`{available: {max_unavailable: 10s}}`); the loader validates both against
this table. Check functions are imported on first use, so loading a scenario stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from simlog.scenario.schema import TimeUs


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AvailableParams(NoParams):
    max_unavailable_us: TimeUs = Field(30_000_000, ge=0, alias="max_unavailable")


class RebalancesParams(NoParams):
    max_rebalances: int = Field(1, ge=0, alias="max")


@dataclass(frozen=True, slots=True)
class CheckDef:
    name: str
    target: str  # "module:function", a pure function (history, state, **params)
    params: type[NoParams]
    doc: str

    def function(self) -> Callable[..., Any]:
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


def _def(name: str, module: str, doc: str, params: type[NoParams] = NoParams) -> CheckDef:
    return CheckDef(name, f"simlog.checks.{module}:{name}", params, doc)


CHECKS: Mapping[str, CheckDef] = {c.name: c for c in [
    _def("lost_writes", "writes", "a write acknowledged to its producer is missing from the "
         "final log (or a write reported failed is in it)"),
    _def("duplicates", "writes", "one produced message appears at two offsets"),
    _def("order", "writes", "two writes of one producer to one partition sit in the log in "
         "the other order"),
    _def("replicas_converge", "replicas", "in-sync replicas differ below the high watermark, "
         "or a committed prefix diverged at any time"),
    _def("poll_monotonic", "consumers", "a consumer, within one assignment, sees offsets go "
         "backwards or skip"),
    _def("group_exclusive", "consumers", "two members of a group own one partition at the "
         "same simulated instant"),
    _def("committed_offsets", "consumers", "a group's committed offset for a partition goes "
         "backwards"),
    _def("consumed_all", "consumers", "after settling, some group has not consumed every "
         "acknowledged write"),
    _def("rebalances", "rebalances", "a consumer group went through more than `max` "
         "rebalances (generations handing out an assignment; the first counts)",
         RebalancesParams),
    _def("available", "availability", "a partition had no leader, or no write succeeded, for "
         "longer than max_unavailable", AvailableParams),
]}

DEFAULT_CHECKS = ("lost_writes", "duplicates", "order", "replicas_converge")


def run_checks(checks: Any, history: Any, state: Any) -> dict[str, Any]:
    """Run a scenario's `checks` (CheckSpec items) on (history, final state), in listed
    order: name -> CheckResult."""
    out = {}
    for spec in checks:
        definition = CHECKS[spec.name]
        out[spec.name] = definition.function()(history, state, **spec.params.model_dump())
    return out


def expectation_mismatches(expect: Mapping[str, str], results: Mapping[str, Any]) -> list[str]:
    """Checks whose result differs from `expect` (name -> "pass" | "fail"), sorted; the
    run exits 0 when this is empty (SCENARIOS.md, "Running")."""
    return sorted(name for name, want in expect.items()
                  if name not in results or results[name].result != want)
