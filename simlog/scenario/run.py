"""The run loop: scenario → world → workload and nemesis → settle → checks → results.

Phases, all in simulated time:
1. bootstrap: the quorum forms, brokers register, topics get leaders; that instant is
   the scenario's time 0 (`ScenarioCluster.bootstrap`).
2. workload: producers and consumers run from their `start` to their `stop` (or the
   scenario's `duration`); faults fire at their `at`; gauges are sampled every second.
3. settle: the producers stop; every fault is undone (heal, restart, resume, clocks and
   disks back); the run goes on until every partition has its full replica set in sync
   and every producer has answered every send (or `SETTLE_LIMIT_US` passes); then
   consumers drain until they reach the high watermark (or `DRAIN_LIMIT_US`), and with
   auto commit on each live member commits where it got, as Kafka's close() does.
4. judge: every replica's log is read; the checks judge (history, final state); the
   results folder is written.

Wall-clock time is read only to report `wall_seconds`; it never reaches the simulation.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.history import history_frames
from analysis.metrics import MetricsRecorder
from analysis.results import write_results
from analysis.summary import build_summary, group_lag_figures
from simlog.checks.history import HistoryRecorder
from simlog.checks.registry import CHECKS, expectation_mismatches, run_checks
from simlog.client.group_metrics import rebalance_stats
from simlog.scenario.cluster import ScenarioCluster
from simlog.scenario.final_state import collect
from simlog.scenario.model import Scenario
from simlog.scenario.nemesis import ClientHooks, Nemesis
from simlog.scenario.sampler import Sampler
from simlog.scenario.schema import ClientOp
from simlog.scenario.workload import ConsumerDriver, ProducerDriver

STEP_US = 1_000_000
SETTLE_STEP_US = 250_000
SETTLE_LIMIT_US = 120_000_000
DRAIN_LIMIT_US = 60_000_000
FINAL_COMMIT_LIMIT_US = 10_000_000   # members' closing commits get this long
# Young-generation GC every 20,000 allocations instead of 700: a run allocates millions
# of short-lived messages and tuples, and the default thresholds spent ~15% of the run
# loop collecting (bench/scale.py, measured alternating). GC never changes an outcome.
GC_THRESHOLDS = (20_000, 20, 50)

Progress = Callable[[int, int, str], None]  # (done_us, total_us, phase)


@dataclass
class RunOutcome:
    summary: dict[str, Any]
    out_dir: Path | None
    mismatches: list[str]
    trace_hash: str

    @property
    def expected_ok(self) -> bool:
        return not self.mismatches


class _Hooks(ClientHooks):
    def __init__(self, producers: list[ProducerDriver], consumers: list[ConsumerDriver]):
        self.producers = {p.spec.id: p for p in producers}
        self.members = {m: c for c in consumers for m in c.spec.members}

    def crashed(self, client: str) -> None:
        if client in self.producers:
            self.producers[client].client_crashed()
        elif client in self.members:
            self.members[client].client_crashed(client)

    def left(self, client: str) -> None:
        if client in self.producers:
            self.producers[client].client_left()
        elif client in self.members:
            self.members[client].client_left(client)

    def restarted(self, client: str) -> None:
        if client in self.producers:
            self.producers[client].client_restarted()
        elif client in self.members:
            self.members[client].client_restarted(client)


class Run:
    """One run of one scenario with one seed."""

    def __init__(self, scenario: Scenario, progress: Progress | None = None) -> None:
        self.scenario = scenario
        self.progress = progress or (lambda done, total, phase: None)
        self.cluster = ScenarioCluster(scenario)
        self.world = self.cluster.world
        self.history = HistoryRecorder()
        self.recorder = MetricsRecorder()
        self.producers: list[ProducerDriver] = []
        self.consumers: list[ConsumerDriver] = []
        self.nemesis: Nemesis | None = None
        self.settle_us = 0

    def execute(self) -> None:
        old = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            self._execute()
        finally:
            gc.set_threshold(*old)

    def _execute(self) -> None:
        scn = self.scenario
        Nemesis.check_supported(scn.faults)
        self.progress(0, scn.duration_us, "bootstrap")
        end_us = scn.duration_us
        # consumer drivers install their group consumers' factories before the clients
        # are added at the end of bootstrap
        self.consumers = [ConsumerDriver(self.cluster, g, self.history, end_us)
                          for g in scn.consumers]
        self.cluster.bootstrap()
        self.producers = [ProducerDriver(self.cluster, p, self.history, end_us)
                          for p in scn.producers]
        self.nemesis = Nemesis(self.cluster, _Hooks(self.producers, self.consumers))
        self.nemesis.schedule(scn.faults)
        for member in self._late_joiners():
            self.world.crash(member)  # not started yet: `client: {join: ...}` starts it
        for driver in [*self.producers, *self.consumers]:
            driver.start()
        sampler = Sampler(self.cluster, self.consumers, self.recorder)
        sampler.start()
        t0 = self.cluster.t0_us
        while self.cluster.rel_us() < end_us:
            self.world.run(until_us=min(t0 + end_us, self.world.now_us + STEP_US))
            self.progress(self.cluster.rel_us(), end_us, "workload")
        self._settle()
        sampler.sample()
        sampler.stopped = True

    def _late_joiners(self) -> list[str]:
        """Clients whose first client op is `join`: they are off until it fires."""
        first: dict[str, str] = {}
        for fault in self.scenario.faults:
            if isinstance(fault.op, ClientOp):
                action, client = fault.op.action
                first.setdefault(client, action)
        return sorted(c for c, action in first.items() if action == "join")

    def _settle(self) -> None:
        for p in self.producers:
            p.stop()
        assert self.nemesis is not None
        self.nemesis.settle()
        start = self.cluster.rel_us()
        limit = start + SETTLE_LIMIT_US
        while self.cluster.rel_us() < limit and not self._settled():
            self.world.run_for(SETTLE_STEP_US)
            self.progress(self.cluster.rel_us() - start, SETTLE_LIMIT_US, "settle")
        for c in self.consumers:
            c.drain()
        drain_limit = self.cluster.rel_us() + DRAIN_LIMIT_US
        while self.cluster.rel_us() < drain_limit and not self._drained():
            self.world.run_for(SETTLE_STEP_US)
        for c in self.consumers:
            c.stop()
            c.final_commit()
        commit_limit = self.cluster.rel_us() + FINAL_COMMIT_LIMIT_US
        self.world.run_for(SETTLE_STEP_US)
        while self.cluster.rel_us() < commit_limit and any(
                c.commits_open() for c in self.consumers):
            self.world.run_for(SETTLE_STEP_US)
        self.settle_us = self.cluster.rel_us() - start

    def _settled(self) -> bool:
        if any(p.pending for p in self.producers):
            return False
        for tp in self.cluster.partitions():
            reg = self.cluster.registration(tp)
            if reg is None or reg.leader < 0 or len(reg.isr) < len(reg.replicas):
                return False
        return True

    def _drained(self) -> bool:
        """Every partition of every group's topics is owned by a member whose position
        reached the partition's high watermark."""
        for c in self.consumers:
            positions = c.positions()
            for tp in self.cluster.partitions():
                if tp.topic not in c.spec.topics:
                    continue
                pos = positions.get((tp.topic, tp.partition))
                if pos is None:
                    return False
                reg = self.cluster.registration(tp)
                leader = None if reg is None or reg.leader < 0 else self.cluster.broker(
                    f"b{reg.leader}")
                part = None if leader is None else leader.rm.partition(
                    (tp.topic, tp.partition))
                if part is not None and pos < part.high_watermark:
                    return False
        return True

    # -- judging ----------------------------------------------------------------------------

    def judge(self, wall_seconds: float, out_dir: Path | None) -> RunOutcome:
        scn = self.scenario
        ops = self.history.finish(self.cluster.rel_us())
        events = self.world.events
        groups = {g.group: tuple(g.topics) for g in scn.consumers}
        idempotent = frozenset(p.id for p in scn.producers if p.idempotent)
        state = collect(self.cluster, events, groups, idempotent)
        results = run_checks(scn.checks, ops, state)
        lost_check = results.get("lost_writes") or CHECKS["lost_writes"].function()(ops, state)
        op_dicts = [_op_dict(op) for op in ops]
        frames = history_frames(op_dicts)
        sim_seconds = self.cluster.rel_us() / 1_000_000
        assert self.nemesis is not None
        faults = [r.report() for r in self.nemesis.records]
        summary = build_summary(
            scenario=scn.name, seed=scn.seed, trace_hash=self.world.trace_hash,
            checks={name: r.to_json() for name, r in results.items()}, history=frames,
            recorder=self.recorder, lost=int(lost_check.stats.get("lost", 0)),
            sim_seconds=sim_seconds, wall_seconds=wall_seconds, expect=dict(scn.expect),
            faults=faults, leader_changes=state.leader_changes)
        summary["groups"] = group_figures(rebalance_stats(ops), group_lag_figures(self.recorder))
        summary["settle_seconds"] = self.settle_us / 1_000_000
        summary["duration_seconds"] = scn.duration_us / 1_000_000
        mismatches = expectation_mismatches(scn.expect, results)
        summary["expected_ok"] = not mismatches
        if out_dir is not None:
            write_results(out_dir, summary, op_dicts, events,
                          self.recorder, self.nemesis.intervals(), frames=frames)
        return RunOutcome(summary, out_dir, mismatches, self.world.trace_hash)


def group_figures(stats: dict[str, Any], lags: dict[str, dict[str, Any]]
                  ) -> dict[str, dict[str, Any]]:
    """summary["groups"]: per group its rebalances and partition-unowned time (from the
    history) and its Kafka lag at the end and at its largest (`group_lag_figures`)."""
    out = {}
    for group in sorted(set(stats) | set(lags)):
        st = stats.get(group)
        out[group] = {"rebalances": st.rebalances if st is not None else 0,
                      "partition_unowned_ms": (round(st.total_unowned_us / 1000, 3)
                                               if st is not None else 0.0),
                      **lags.get(group, {})}
    return out


def _op_dict(op: Any) -> dict[str, Any]:
    return {"index": op.index, "time_us": op.time_us, "process": op.process,
            "type": op.type, "f": op.f, "value": op.value}


def run_scenario(scenario: Scenario, out_dir: str | Path | None = None,
                 progress: Progress | None = None) -> RunOutcome:
    """Run one scenario to a verdict; write the results folder if out_dir is given."""
    wall_start = time.perf_counter()
    run = Run(scenario, progress)
    run.execute()
    wall = time.perf_counter() - wall_start
    return run.judge(wall, Path(out_dir) if out_dir is not None else None)
