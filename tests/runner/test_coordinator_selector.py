"""`coordinator(group)` selects the broker coordinating a consumer group when the fault
fires: the leader of the group's `__consumer_offsets` partition."""

from __future__ import annotations

from simlog.coordinator import partition_for
from simlog.scenario.final_state import _fields
from simlog.scenario.load import loads
from simlog.scenario.run import Run

SCENARIO = """\
name: crash-the-coordinator
seed: 11
duration: 14s
cluster: {brokers: 3, controllers: 3, config: {min.insync.replicas: 2,
          offsets.topic.num.partitions: 3}}
topics:
  - {name: orders, partitions: 3, replication_factor: 3}
workload:
  producers:
    - {id: p1, topic: orders, rate: 100/s, keys: {dist: uniform, n: 30}, value_size: 100B}
  consumers:
    - {group: analytics, members: 2, topics: [orders],
       config: {session.timeout.ms: 10000, heartbeat.interval.ms: 1000}}
faults:
  - {at: 6s, crash: coordinator(analytics)}
  - {at: 10s, restart: brokers}
checks: [lost_writes, duplicates, consumed_all, group_exclusive, committed_offsets]
"""


def test_crash_coordinator_of_a_group_hits_its_coordinator_and_the_group_moves() -> None:
    run = Run(loads(SCENARIO, "crash.yaml"))
    run.execute()
    outcome = run.judge(0.0, None)
    assert outcome.mismatches == [], outcome.summary["checks"]
    (fault,) = [r for r in run.nemesis.records if r.kind == "crash"]
    (target,) = fault.targets
    part = partition_for("analytics", 3)
    loads_ = [(e["time_us"] - run.cluster.t0_us, e["node"]) for e in run.world.events
              if (f := _fields(e)) and f["_kind"] == "coordinator_loaded"
              and f["partition"] == part]
    before = [node for t, node in loads_ if t < fault.start_us]
    after = [node for t, node in loads_ if t > fault.start_us]
    assert before and before[-1] == target   # it was the group's coordinator
    assert after and after[0] != target       # another broker took the group over
