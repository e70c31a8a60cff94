"""The pieces fit the way the runner will use them: load a scenario, resolve its fault
selectors against a cluster view, record a history, fill a FinalState, judge it."""

from __future__ import annotations

import random
from pathlib import Path

from simlog.checks.history import HistoryRecorder, pairs, read_jsonl, write_jsonl
from simlog.checks.registry import expectation_mismatches, run_checks
from simlog.checks.state import FinalState, LeaderChange
from simlog.scenario.load import load
from simlog.scenario.selectors import TopicPartition, resolve
from simlog.testing.builders import partition

SCENARIO = Path(__file__).parent.parent / "scenario" / "data" / "contract_example.yaml"


class View:
    """What the runner's world would answer."""

    def __init__(self, scenario):
        self.s = scenario

    def brokers(self):
        return self.s.cluster.brokers

    def controllers(self):
        return self.s.cluster.controllers or self.s.cluster.brokers

    def clients(self):
        return self.s.clients

    def leader_of(self, tp):
        return "b2" if tp == TopicPartition("orders", 0) else "b1"

    def active_controller(self):
        return "c1"


def test_split_brain_flow(tmp_path):
    s = load(SCENARIO)
    rng = random.Random(s.seed)
    resolved = [(f.kind, resolve(f.op.node, View(s), rng)) for f in s.faults
                if hasattr(f.op, "node")]
    assert resolved == [("isolate", ("b2",))]

    rec = HistoryRecorder()
    tp = TopicPartition("orders", 0)
    for n in range(3):
        value = {"id": f"p1-{n}", "topic": "orders", "partition": 0}
        rec.invoke(n * 10, "p1", "send", value)
        rec.ok(n * 10 + 5, "p1", "send", {**value, "offset": n})
    rec.invoke(40, "p1", "send", {"id": "p1-3", "topic": "orders", "partition": 0})
    history = rec.finish(s.duration_us)          # p1-3 never completed: info
    write_jsonl(history, tmp_path / "history.jsonl")
    history = read_jsonl(tmp_path / "history.jsonl")
    assert [p.type for p in pairs(history)] == ["ok", "ok", "ok", "info"]

    logs = {"b1": ["p1-0", "p1-1", "p1-2"], "b2": ["p1-0", "p1-1", "p1-2", "p1-3"],
            "b3": ["p1-0", "p1-1", "p1-2"]}
    state = FinalState(
        partitions={tp: partition("orders/0", logs, leader="b2", hw=3)},
        end_us=s.duration_us,
        leader_changes=(LeaderChange(0, tp, "b2"),),
        idempotent_producers=frozenset(p.id for p in s.producers if p.idempotent))
    results = run_checks(s.checks, history, state)
    assert {n: r.result for n, r in results.items()} == dict.fromkeys(
        ["lost_writes", "duplicates", "order", "replicas_converge"], "pass")
    assert expectation_mismatches(s.expect, results) == []
