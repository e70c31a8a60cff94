"""Consumer-group lag in a real run: `lag[topic/p]` is Kafka's lag (the high watermark
minus the group's committed offset, the whole high watermark before any commit, for
owned and unowned partitions alike), `position_lag[topic/p]` is the high watermark minus
the owner's position, and sampling them changes nothing in the simulation.

Three groups read the same topic: `fast` auto-commits every 100 ms, `slow` every 2 s and
joins at 2 s, `manual` never commits (enable.auto.commit: false)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.load import load_run
from analysis.plots import lag_series
from simlog.scenario.load import loads
from simlog.scenario.run import Run, run_scenario
from simlog.scenario.sampler import Sampler

SCENARIO = """\
name: group-lag
seed: 3
duration: 6s
cluster: {brokers: 3, controllers: 0,
          config: {offsets.topic.num.partitions: 1, group.initial.rebalance.delay.ms: 0}}
topics:
  - {name: orders, partitions: 2, replication_factor: 3}
workload:
  producers:
    - {id: p1, topic: orders, rate: 200/s, keys: {dist: uniform, n: 10}, value_size: 50B,
       config: {acks: all}}
  consumers:
    - {group: fast, members: 1, topics: [orders], config: {auto.commit.interval.ms: 100}}
    - {group: slow, members: 1, topics: [orders], start: 2s,
       config: {auto.commit.interval.ms: 2000}}
    - {group: manual, members: 1, topics: [orders], config: {enable.auto.commit: false}}
checks: [lost_writes, consumed_all, committed_offsets]
"""
PARTITIONS = ("orders/0", "orders/1")


@pytest.fixture(scope="module")
def lag_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("group-lag")
    outcome = run_scenario(loads(SCENARIO), out)
    assert outcome.expected_ok, outcome.summary["checks"]
    return outcome, load_run(out)


def gauges(metrics: pd.DataFrame, kind: str, entity: str, metric: str) -> pd.Series:
    """time_s -> value of one gauge."""
    rows = metrics[(metrics["kind"] == kind) & (metrics["entity"] == entity)
                   & (metrics["metric"] == metric)]
    return rows.set_index("time_s")["value"].dropna()


def group_samples(metrics: pd.DataFrame, group: str) -> list[float]:
    rows = metrics[(metrics["kind"] == "group") & (metrics["entity"] == group)
                   & metrics["metric"].str.startswith("lag[")]
    return sorted(set(rows["time_s"]))


def test_lag_is_high_watermark_minus_committed_at_every_sample(lag_run) -> None:
    _, run = lag_run
    metrics = run.metrics
    for group in ("fast", "slow", "manual"):
        samples = group_samples(metrics, group)
        assert len(samples) >= 6, (group, samples)  # every second, and after settling
        for p in PARTITIONS:
            lag = gauges(metrics, "group", group, f"lag[{p}]")
            hw = gauges(metrics, "partition", p, "high_watermark")
            committed = gauges(metrics, "group", group, f"committed_offset[{p}]")
            # owned or not, at every sample where the partition's high watermark is known
            # (at 0 s a new leader may not have created its replica yet)
            assert list(lag.index) == [t for t in samples if t in hw.index], (group, p)
            assert len(lag) >= len(samples) - 1, (group, p)
            for t, value in lag.items():
                assert value == hw[t] - committed.get(t, 0), (group, p, t)


def test_committed_offsets_in_metrics_are_the_group_s_commits(lag_run) -> None:
    """A sampled committed offset is one the group's member sent, and no older than the
    last commit already acknowledged: it is what the coordinator holds."""
    _, run = lag_run
    history = run.history
    commits = history[history["f"] == "commit"]
    for group in ("fast", "slow"):
        for p in PARTITIONS:
            committed = gauges(run.metrics, "group", group, f"committed_offset[{p}]")
            assert len(committed) >= 2, (group, p)
            for t, value in committed.items():
                t_us = round(t * 1_000_000)
                mine = commits[commits["value"].map(
                    lambda v, g=group, p=p: v.get("group") == g and p in v.get("offsets", {}))]
                sent = mine[(mine["type"] == "invoke") & (mine["time_us"] <= t_us)]
                acked = mine[(mine["type"] == "ok") & (mine["time_us"] <= t_us)]
                assert value in {v["offsets"][p] for v in sent["value"]}, (group, p, t)
                if len(acked):
                    assert value >= max(v["offsets"][p] for v in acked["value"]), (group, p, t)


def test_never_committed_or_unowned_partitions_lag_by_the_whole_log(lag_run) -> None:
    _, run = lag_run
    metrics = run.metrics
    for p in PARTITIONS:
        hw = gauges(metrics, "partition", p, "high_watermark")
        # `manual` owns the partitions and reads them, but never commits
        manual = gauges(metrics, "group", "manual", f"lag[{p}]")
        assert gauges(metrics, "group", "manual", f"committed_offset[{p}]").empty
        assert (manual == hw[manual.index]).all(), p
        assert manual.iloc[-1] > 0
        # `slow` has neither joined nor committed before 2 s: no position, all lag
        slow = gauges(metrics, "group", "slow", f"lag[{p}]")
        before = [t for t in slow.index if t < 2.0]
        assert before and all(slow[t] == hw[t] for t in before), p
        position = gauges(metrics, "group", "slow", f"position_lag[{p}]")
        assert not [t for t in position.index if t < 2.0]
    # ... and some of it is real lag (a partition's HW may still be 0 at 1 s: a follower
    # whose first fetch beat the leader's metadata backs off replica.fetch.backoff.ms)
    last = max(t for t in gauges(metrics, "group", "slow", f"lag[{PARTITIONS[0]}]").index
               if t < 2.0)
    assert sum(gauges(metrics, "group", "slow", f"lag[{p}]")[last] for p in PARTITIONS) > 0


def test_position_lag_is_what_members_fetched_and_drains_to_zero(lag_run) -> None:
    _, run = lag_run
    metrics = run.metrics
    for group in ("fast", "slow", "manual"):
        for p in PARTITIONS:
            position = gauges(metrics, "group", group, f"position_lag[{p}]")
            lag = gauges(metrics, "group", group, f"lag[{p}]")
            assert position.iloc[-1] == 0, (group, p)  # drained to the high watermark
            shared = position.index.intersection(lag.index)
            # committing trails fetching: Kafka's lag is never below the position lag
            assert (lag[shared] >= position[shared]).all(), (group, p)
    # with a 2 s commit interval the two differ clearly at some sample
    slow_gap = max(gauges(metrics, "group", "slow", f"lag[{p}]").max()
                   - gauges(metrics, "group", "slow", f"position_lag[{p}]").max()
                   for p in PARTITIONS)
    assert slow_gap > 50


def test_final_lag_in_the_summary(lag_run) -> None:
    """`fast` auto-commits every 100 ms while it polls, so its final lag is at most what
    it read since its last auto-commit: 0 if it still polled (drained) after reaching the
    end, else up to ~100 ms of writes (the drain polls only members not yet at the high
    watermark when the workload ends); `manual` never commits, so its final lag is the
    whole log; `slow` commits every 2 s, so whatever it read since its last auto-commit
    may still be lag at the end (a true Kafka figure)."""
    outcome, run = lag_run
    metrics = run.metrics
    groups = outcome.summary["groups"]
    final_hw = {p: gauges(metrics, "partition", p, "high_watermark").iloc[-1]
                for p in PARTITIONS}
    # 200 writes/s over 2 partitions: ~100 ms of them, with slack for a commit in flight
    assert 0 <= groups["fast"]["final_lag_total"] <= 40
    assert set(groups["fast"]["final_lag"]) == set(PARTITIONS)
    assert groups["fast"]["final_lag_total"] == sum(groups["fast"]["final_lag"].values())
    assert groups["manual"]["final_lag"] == {p: int(final_hw[p]) for p in PARTITIONS}
    assert groups["manual"]["final_lag_total"] == sum(final_hw.values())
    assert groups["manual"]["max_lag_total"] == groups["manual"]["final_lag_total"]
    for name, group in groups.items():
        totals = gauges(metrics, "group", name, "lag_total")
        assert group["max_lag_total"] == totals.max(), name
        assert group["final_lag_total"] == totals.iloc[-1], name
        assert gauges(metrics, "group", name, "lag_total[orders]").equals(totals), name
        assert {"rebalances", "partition_unowned_ms"} <= set(group), name
    lags = metrics[(metrics["kind"] == "group") & metrics["metric"].str.startswith("lag[")]
    assert outcome.summary["max_consumer_lag"] == lags["value"].max()
    assert run.summary["groups"] == groups  # summary.json holds the same


def test_sampling_group_lag_does_not_change_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    short = SCENARIO.replace("duration: 6s", "duration: 3s")

    def trace(no_group_sampling: bool) -> str:
        with monkeypatch.context() as patch:
            if no_group_sampling:
                patch.setattr(Sampler, "_sample_group", lambda self, t, driver, hws: None)
            run = Run(loads(short))
            run.execute()
            return run.world.trace_hash

    assert trace(no_group_sampling=False) == trace(no_group_sampling=True)


def test_lag_plot_draws_kafka_lag(lag_run) -> None:
    _, run = lag_run
    series = lag_series(run.metrics)
    assert sorted(series) == sorted(f"{g} {p}" for g in ("fast", "manual", "slow")
                                    for p in PARTITIONS)
    manual = series["manual orders/0"]
    assert (manual == gauges(run.metrics, "group", "manual", "lag[orders/0]")).all()
