"""simlog.testing as a public API: generated scenarios validate, schedules respect their
arguments and shrink to small schedules, a missed expectation writes a replayable file
that reproduces the run (same trace hash), through the API and through `simlog run`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from simlog.scenario.load import load, loads
from simlog.scenario.run import RunOutcome
from simlog.scenario.units import parse_time_us
from simlog.testing import (
    RUNNABLE_KINDS,
    SAFE_KINDS,
    assert_expected,
    check_property,
    run_property,
    scenarios,
    schedules,
    to_yaml,
)
from simlog.testing.strategies import as_raw

BASE = Path(__file__).with_name("base_issue5.yaml")
NODE = re.compile(r"\b([bc][0-9]+|p[0-9]+|g-[0-9]+)\b")


def _named_nodes(faults):
    return set(NODE.findall(json.dumps(faults)))


@settings(max_examples=60)
@given(scenarios(base=BASE, schedules=schedules(kinds=RUNNABLE_KINDS, undo=True,
                                                max_faults=6)))
def test_scenarios_around_a_base_always_validate(raw):
    scenario = loads(to_yaml(raw), "generated.yaml")
    base = as_raw(BASE)
    assert scenario.name == base["name"] and scenario.seed == raw["seed"]
    assert {k: v for k, v in raw.items() if k not in ("seed", "faults")} == {
        k: v for k, v in base.items() if k not in ("seed", "faults")}
    times = [f.at_us for f in scenario.faults]
    assert times == sorted(times) and all(0 <= t <= 15_000_000 for t in times)


@settings(max_examples=60)
@given(scenarios(base=BASE, schedules=schedules(kinds=SAFE_KINDS, nodes="brokers",
                                                power_loss=False, undo=True,
                                                start="2s", max_faults=5)))
def test_schedule_arguments_are_respected(raw):
    faults = raw["faults"]
    assert len(loads(to_yaml(raw)).faults) == len(faults)
    assert all(next(k for k in f if k != "at") in SAFE_KINDS for f in faults)
    assert all(parse_time_us(f["at"]) >= 2_000_000 for f in faults)
    assert "lose_unsynced" not in json.dumps(faults)
    assert _named_nodes(faults) <= {"b1", "b2", "b3"}  # no controller, no client


@settings(max_examples=40)
@given(st.data(), st.integers(1, 6))
def test_unbound_schedules_take_the_base_shape(data, brokers):
    base = as_raw(BASE) | {"cluster": {"brokers": brokers, "controllers": 1}}
    base["topics"] = [{"name": "orders", "partitions": 2, "replication_factor": 1}]
    raw = data.draw(scenarios(base=base, duration="5s", schedules=schedules(
        kinds=["crash", "isolate", "clock", "slow_disk"], max_faults=6, duration="60s")))
    assert raw["duration"] == "5s"
    assert all(parse_time_us(f["at"]) <= 5_000_000 for f in raw["faults"])
    named = _named_nodes(raw["faults"])
    assert {n for n in named if n[0] == "b"} <= {f"b{i}" for i in range(1, brokers + 1)}
    assert {n for n in named if n[0] == "c"} <= {"c1"}
    loads(to_yaml(raw))


@settings(max_examples=40)
@given(schedules(kinds=["crash", "pause", "partition", "isolate", "clock"], undo=True,
                 nodes="brokers", power_loss=False, max_faults=4, duration="30s"))
def test_undo_follows_its_fault(faults):
    opened = {"crash": 0, "pause": 0, "link": 0}
    for f in faults:
        kind = next(k for k in f if k != "at")
        if kind == "crash":
            opened["crash"] += 1
        elif kind == "pause" and not (isinstance(f[kind], dict) and "for" in f[kind]):
            opened["pause"] += 1
        elif kind in ("partition", "isolate"):
            opened["link"] += 1
        elif kind == "restart":
            assert opened["crash"] > 0
        elif kind == "resume":
            assert opened["pause"] > 0
        elif kind == "heal":
            assert opened["link"] > 0
    assert loads(to_yaml({"name": "s", "duration": "30s", "faults": faults}))


def test_schedules_shrink_to_one_early_simple_fault():
    strategy = schedules(kinds=["pause", "crash", "isolate"], nodes="brokers", undo=True,
                         power_loss=False, max_faults=6, start="1s", duration="20s")
    found = find(strategy, lambda faults: any("crash" in f for f in faults),
                 settings=settings(database=None, max_examples=500))
    assert found == [{"at": "1s", "crash": "b1"}]


def test_unknown_scope_and_kind_are_refused():
    with pytest.raises(ValueError, match="unknown fault kinds"):
        scenarios(base=BASE, schedules=schedules(kinds=["meteor"]))
    with pytest.raises(ValueError, match="unknown nodes scope"):
        find(schedules(nodes="everything", min_faults=1), lambda f: True)
    with pytest.raises(ValueError, match="needs base"):
        scenarios(schedules=schedules())


# -- client faults and merged schedules ---------------------------------------------------

GROUPS_BASE = Path(__file__).with_name("base_groups.yaml")
GROUP_MEMBERS = {f"{g}-{i}" for g in ("analytics", "billing") for i in (1, 2, 3)}


def _client_ops(faults):
    return [next(iter(f["client"].items())) for f in faults if "client" in f]


@settings(max_examples=60)
@given(st.booleans().flatmap(lambda undo: scenarios(
    base=GROUPS_BASE, schedules=schedules(
        kinds=["client", "crash", "isolate", "restart"], nodes="brokers",
        clients="members", undo=undo, max_faults=8))))
def test_client_ops_are_drawn_in_a_valid_order(raw):
    assert len(loads(to_yaml(raw)).faults) == len(raw["faults"])
    state: dict[str, str] = {}  # member -> "up" / "crash" / "leave"
    for action, client in _client_ops(raw["faults"]):
        assert client in GROUP_MEMBERS  # clients="members": never the producer
        now = state.get(client, "up")
        if action in ("crash", "leave"):
            assert now == "up", (client, action, now)
            state[client] = action
        else:  # restart answers a crash, join a leave; a first op is never a join
            assert now == ("crash" if action == "restart" else "leave"), (client, action)
            state[client] = "up"


@settings(max_examples=40)
@given(schedules(kinds=["client"], members=["g-1", "g-2"], producers=["p1"], undo=True,
                 max_faults=5, duration="30s"))
def test_client_faults_are_undone_by_their_pair(faults):
    ops = _client_ops(faults)
    for i, (action, client) in enumerate(ops):
        later = [a for a, c in ops[i + 1:] if c == client]
        if action in ("crash", "leave") and later:
            assert later[0] == {"crash": "restart", "leave": "join"}[action]


def test_client_faults_shrink_to_one_crash_of_the_first_member():
    found = find(schedules(kinds=["client"], members=["g-1", "g-2"], clients="members",
                           undo=True, start="1s", duration="10s"),
                 lambda faults: len(faults) > 0,
                 settings=settings(database=None, max_examples=200))
    assert found == [{"at": "1s", "client": {"crash": "g-1"}}]


@settings(max_examples=40)
@given(scenarios(base=GROUPS_BASE, schedules=[
    schedules(kinds=["client"], clients="members", min_faults=1, max_faults=2, undo=True),
    schedules(kinds=["pause", "isolate"], nodes=["analytics-1", "b1"], min_faults=1,
              max_faults=2, undo=True)]))
def test_a_list_of_schedules_is_merged_in_time_order(raw):
    faults = raw["faults"]
    times = [parse_time_us(f["at"]) for f in faults]
    assert times == sorted(times)
    kinds = {next(k for k in f if k != "at") for f in faults}
    assert "client" in kinds and kinds & {"pause", "isolate"}
    assert kinds <= {"client", "pause", "resume", "isolate", "heal"}
    assert len(loads(to_yaml(raw)).faults) == len(faults)


def test_unknown_clients_scope_is_refused():
    with pytest.raises(ValueError, match="unknown clients scope"):
        schedules(kinds=["client"], clients="consumers")


# -- failures are written as replayable files ------------------------------------------

SHORT = as_raw(BASE) | {"name": "meant-to-miss", "duration": "4s", "seed": 11,
                        "faults": [{"at": "1s", "pause": {"node": "b2", "for": "1s"}}],
                        "checks": ["lost_writes", "duplicates"],
                        "expect": {"lost_writes": "fail"}}


@pytest.fixture(scope="module")
def missed(tmp_path_factory):
    """One run of a scenario whose `expect` is wrong on purpose, and its failure file."""
    folder = tmp_path_factory.mktemp("failures")
    outcome = run_property(SHORT)
    with pytest.raises(AssertionError) as err:
        assert_expected(SHORT, outcome, failures_dir=folder)
    return outcome, str(err.value), folder


def test_a_miss_writes_a_file_named_in_the_message(missed):
    outcome, message, folder = missed
    assert outcome.mismatches == ["lost_writes"]
    (path,) = folder.glob("*.yaml")
    assert path.name.startswith("meant-to-miss-seed11-")
    assert f"failing scenario written to {path}" in message
    assert f"replay: simlog run {path}" in message
    assert "lost_writes: expected fail, got pass" in message
    text = path.read_text()
    assert text.startswith("# A failing simlog property example: lost_writes missed")
    assert f"trace hash {outcome.trace_hash}" in text
    assert f"# replay: simlog run {path}" in text


def test_the_file_replays_the_same_run(missed):
    outcome, _, folder = missed
    (path,) = folder.glob("*.yaml")
    scenario = load(path)
    assert scenario.seed == 11 and scenario.expect["lost_writes"] == "fail"
    again = run_property(scenario)  # a loaded Scenario is accepted too
    assert again.trace_hash == outcome.trace_hash
    assert again.mismatches == outcome.mismatches


def test_the_replay_command_reproduces_it(missed, tmp_path):
    outcome, _, folder = missed
    (path,) = folder.glob("*.yaml")
    simlog = Path(sys.executable).with_name("simlog")
    done = subprocess.run([str(simlog), "run", str(path), "--quiet", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1, done.stderr
    assert "expectation not met: lost_writes" in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["trace_hash"] == outcome.trace_hash and summary["seed"] == 11


def test_a_run_that_meets_its_expectations_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMLOG_FAILURES_DIR", str(tmp_path))
    raw = SHORT | {"name": "meets", "expect": {}, "faults": []}
    outcome = check_property(raw)
    assert outcome.expected_ok and outcome.summary["acked"] > 0
    assert not list(tmp_path.iterdir())


def _fake_miss() -> RunOutcome:
    summary = {"checks": {"lost_writes": {"result": "fail", "witnesses": [
        {"id": f"p1-{i}", "offset": i} for i in range(5)]}}}
    return RunOutcome(summary, None, ["lost_writes"], "0" * 32)


def test_only_the_final_hypothesis_example_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMLOG_FAILURES_DIR", str(tmp_path))
    calls = []

    @settings(max_examples=30, database=None, derandomize=True)
    @given(st.integers(0, 1000))
    def prop(seed):
        calls.append(seed)
        if seed >= 10:
            assert_expected(SHORT | {"seed": seed, "expect": {}}, _fake_miss())

    with pytest.raises(AssertionError, match="replay: simlog run"):
        prop()
    assert len(calls) > 2  # hypothesis searched and shrank...
    files = list(tmp_path.glob("*.yaml"))
    assert [f.name.split("-")[3] for f in files] == ["seed10"]  # ...one file: the shrunk
    text = files[0].read_text()
    assert "lost_writes: expected pass, got fail; first witnesses:" in text
    assert '"p1-2"' in text and '"p1-3"' not in text and "(+2 more)" in text


def test_register_profiles_reads_the_environment(monkeypatch):
    from hypothesis import settings as hsettings

    from simlog.testing import register_profiles

    before = hsettings._current_profile
    try:
        monkeypatch.setenv("SIMLOG_HYPOTHESIS_PROFILE", "long")
        assert register_profiles(long_examples=77) == "simlog-long"
        assert hsettings.default.max_examples == 77 and not hsettings.default.derandomize
        monkeypatch.delenv("SIMLOG_HYPOTHESIS_PROFILE")
        assert register_profiles(ci_examples=3) == "simlog-ci"
        assert hsettings.default.max_examples == 3 and hsettings.default.derandomize
        assert hsettings.default.deadline is None and hsettings.default.database is None
    finally:
        hsettings.load_profile(before)
