"""`client: {leave: X}` is Kafka's close(), not a crash: a group member commits, revokes
and sends LeaveGroup (the group rebalances at once, without waiting for its session to
expire; the group forms after Kafka's 3 s group.initial.rebalance.delay.ms); a producer stops sending and its process ends once every send is answered.
`join` brings the client back as a new process."""

from __future__ import annotations

import pytest

from simlog.scenario.load import loads
from simlog.scenario.run import Run

SCENARIO = """\
name: leave
seed: 3
duration: 14s
cluster: {brokers: 3, controllers: 3, config: {min.insync.replicas: 2,
          offsets.topic.num.partitions: 1}}
topics:
  - {name: orders, partitions: 4, replication_factor: 3}
workload:
  producers:
    - {id: p1, topic: orders, rate: 200/s, keys: {dist: uniform, n: 40}, value_size: 100B}
  consumers:
    - {group: g, members: 2, topics: [orders],
       config: {session.timeout.ms: 30000, heartbeat.interval.ms: 1000,
                auto.commit.interval.ms: 500}}
faults:
  - {at: 5s, client: {leave: g-2}}
  - {at: 6s, client: {leave: p1}}
  - {at: 9s, client: {join: p1}}
  - {at: 10s, client: {join: g-2}}
checks: [lost_writes, duplicates, poll_monotonic, consumed_all, group_exclusive,
         committed_offsets]
"""
S = 1_000_000


@pytest.fixture(scope="module")
def run() -> Run:
    r = Run(loads(SCENARIO, "leave.yaml"))
    r.execute()
    r.outcome = r.judge(0.0, None)
    return r


def ops(r: Run, process: str, f: str, kind: str | None = None) -> list:
    return [op for op in r.history.history
            if op.process == process and op.f == f and (kind is None or op.type == kind)]


def test_a_member_that_leaves_commits_revokes_and_the_others_take_over_at_once(run) -> None:
    assert run.outcome.mismatches == [], run.outcome.summary["checks"]
    (invoke,) = ops(run, "g-2", "leave", "invoke")
    (done,) = ops(run, "g-2", "leave", "ok")
    assert 5 * S <= invoke.time_us <= done.time_us < 6 * S
    assert ops(run, "g-2", "crash") == []
    revoked = [op for op in ops(run, "g-2", "revoke", "ok") if op.value["reason"] == "close"]
    assert revoked and revoked[0].time_us <= done.time_us
    closing_commits = [op for op in ops(run, "g-2", "commit", "ok")
                       if invoke.time_us <= op.time_us <= done.time_us]
    assert closing_commits  # auto commit on: close commits first
    # LeaveGroup: g-1 owns all four partitions long before a 30 s session could expire
    took_over = [op for op in ops(run, "g-1", "assign", "ok")
                 if op.time_us > done.time_us and len(op.value["partitions"]) == 4]
    assert took_over and took_over[0].time_us < done.time_us + 5 * S
    # nothing polled by g-2 between leaving and joining again
    rejoin = ops(run, "g-2", "assign", "ok")[-1].time_us
    assert all(not op.value or not op.value.get("records") for op in ops(run, "g-2", "poll")
               if done.time_us < op.time_us < rejoin)
    assert rejoin > 10 * S and ops(run, "g-2", "assign", "ok")[-1].value["partitions"]


def test_a_producer_that_leaves_sends_nothing_until_it_joins_and_loses_nothing(run) -> None:
    (invoke,) = ops(run, "p1", "leave", "invoke")
    (done,) = ops(run, "p1", "leave", "ok")
    sends = ops(run, "p1", "send", "invoke")
    before = [op for op in sends if op.time_us < invoke.time_us]
    gap = [op for op in sends if invoke.time_us <= op.time_us < 9 * S]
    after = [op for op in sends if op.time_us >= 9 * S]
    assert before and after and gap == []
    assert invoke.time_us <= done.time_us < invoke.time_us + 2 * S
    answered = {op.value["id"]: op.type for op in run.history.history
                if op.process == "p1" and op.f == "send" and op.type != "invoke"}
    assert all(answered[op.value["id"]] == "ok" for op in before)
