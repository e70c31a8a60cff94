"""simlog.testing.strategies: every generated scenario is a valid, replayable file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.scenario.load import load, loads
from simlog.scenario.units import parse_time_us
from simlog.testing.strategies import (
    FAULT_KINDS,
    keep_on_failure,
    scenarios,
    schedules,
    to_yaml,
    write_scenario,
)


@settings(max_examples=max(15, settings.default.max_examples // 2))
@given(scenarios())
def test_every_generated_scenario_validates(raw):
    text = to_yaml(raw)
    scenario = loads(text, "generated.yaml")
    assert scenario.name == raw["name"] and scenario.seed == raw["seed"]
    assert [f.kind for f in scenario.faults] == [next(k for k in f if k != "at")
                                                 for f in raw["faults"]]
    assert [c.name for c in scenario.checks] == raw["checks"]


@settings(max_examples=max(18, settings.default.max_examples // 2))
@given(st.sampled_from(FAULT_KINDS).flatmap(
    lambda kind: st.tuples(st.just(kind), schedules(
        topics={"orders": 3}, producers=["p1"], members=["g-1"], kinds=[kind],
        max_faults=4))))
def test_schedules_of_each_single_kind_validate(kind_and_faults):
    kind, faults = kind_and_faults
    assert all(kind in f for f in faults)
    times = [parse_time_us(f["at"]) for f in faults]
    assert times == sorted(times) and all(0 <= t <= 60_000_000 for t in times)
    text = to_yaml({"name": "s", "duration": "60s", "topics": [
        {"name": "orders", "partitions": 3, "replication_factor": 3}],
        "workload": {"producers": [{"id": "p1", "topic": "orders", "rate": "max"}],
                     "consumers": [{"group": "g", "members": 1, "topics": ["orders"]}]},
        "faults": faults})
    assert len(loads(text).faults) == len(faults)


@given(st.data())
@settings(max_examples=1)
def test_unknown_kind_is_refused(data):
    with pytest.raises(ValueError, match="unknown fault kinds"):
        data.draw(schedules(kinds=["meteor"]))


@given(scenarios(kinds=["crash", "restart"], max_faults=3))
@settings(max_examples=3)
def test_keep_on_failure_writes_a_replayable_file(raw):
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(AssertionError), keep_on_failure(raw, tmp):
            raise AssertionError("the property failed")
        (path,) = Path(tmp).glob("*.yaml")
        assert path.read_text().startswith("# A failing example found by hypothesis")
        assert load(path).name == raw["name"]


def test_write_scenario_round_trips(tmp_path):
    raw = {"name": "a/b", "duration": "10s", "faults": [{"at": "1s", "isolate": "b1"},
                                                        {"at": "2s", "heal": "b1"}]}
    path = write_scenario(raw, tmp_path)
    assert path.name == "a_b.yaml"
    assert load(path).faults[1].op.undoes == 0
