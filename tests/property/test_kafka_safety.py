"""Issue 5's property: a 3-broker RF=3 cluster with acks=all, min.insync.replicas=2,
unclean election off and the idempotent producer, through random partitions, crashes
(no power loss), pauses and restarts, loses no acknowledged write, writes no duplicate,
keeps each producer's order, and its replicas converge (checks lost_writes, duplicates,
order, replicas_converge, all expected to pass).

Each example runs the whole cluster for 15 s simulated (~5-15 s wall here). Default (ci
profile): derandomised, one hand-picked example and 3 drawn ones (~45 s).
SIMLOG_HYPOTHESIS_PROFILE=long: 40 random examples here, and the slow variant (more
fault kinds, controllers too, 20 s) 10 (~4 min) / 150 examples.
A failing example is written to ./simlog-failures/ (or $SIMLOG_FAILURES_DIR) as a
scenario file; the assertion message says `simlog run FILE` to replay it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings

from simlog.testing import check_property, scenarios, schedules
from simlog.testing.strategies import as_raw

BASE = Path(__file__).with_name("base_issue5.yaml")
LONG = os.environ.get("SIMLOG_HYPOTHESIS_PROFILE") == "long"

# Partitions, isolations, crashes, pauses and their undoing, on brokers only.
ISSUE5_SCHEDULES = schedules(
    kinds=["partition", "isolate", "crash", "pause", "restart", "resume", "heal"],
    nodes="brokers", power_loss=False, undo=True, min_faults=1, max_faults=4, start="1s")

# The same promise under a wider nemesis: one-way cuts, clock jumps, slow disks, lossy
# links, and controllers as targets too.
WIDE_SCHEDULES = schedules(
    kinds=["partition", "isolate", "cut", "crash", "pause", "restart", "resume", "heal",
           "clock", "slow_disk", "link"],
    nodes="servers", power_loss=False, undo=True, min_faults=1, max_faults=6, start="1s")


# Always run, before the drawn ones: the old leader isolated with its followers' links cut,
# healed; another leader crashed and restarted; a follower paused (a GC pause).
HANDPICKED = as_raw(BASE) | {"seed": 5, "faults": [
    {"at": "2s", "isolate": "leader(orders/0)"},
    {"at": "4s", "crash": "leader(orders/1)"},
    {"at": "7s", "heal": "leader(orders/0)"},
    {"at": "8s", "restart": "brokers"},
    {"at": "9s", "pause": {"node": "b2", "for": "3s"}}]}


@pytest.mark.timeout(1800)  # a failure shrinks by re-running whole clusters
@settings(max_examples=40 if LONG else 3)
@given(scenarios(base=BASE, schedules=ISSUE5_SCHEDULES))
@example(HANDPICKED)
def test_acks_all_survives_partitions_crashes_pauses(raw):
    check_property(raw)


@pytest.mark.slow
@pytest.mark.timeout(7200)
@settings(max_examples=150 if LONG else 10)
@given(scenarios(base=BASE, schedules=WIDE_SCHEDULES, duration="20s"))
def test_acks_all_survives_a_wide_nemesis(raw):
    check_property(raw)
