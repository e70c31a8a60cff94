"""A synthetic run for the analysis tests: producers with many sends in flight, known
invoke times and latencies, some failed or unknown sends; a consumer that is assigned
partitions, polls and commits; gauges a run loop would sample; faults.

The ground truth (`truth`) is kept apart from the history, so tests can recompute every
figure independently of the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from analysis.metrics import MetricsRecorder

US_PER_S = 1_000_000


@dataclass
class SyntheticRun:
    history: list[dict]
    truth: list[dict]  # one per send: invoke_us, complete_us, type, topic, partition, id
    recorder: MetricsRecorder
    faults: list[dict]
    events: list[dict] = field(default_factory=list)
    duration_us: int = 0


def make_run(seed: int = 7, duration_s: int = 8, rate_per_s: int = 300) -> SyntheticRun:
    """History of two producers sending at about rate_per_s each for duration_s seconds."""
    rng = np.random.default_rng(seed)
    entries: list[tuple[int, int, dict]] = []  # (time_us, tie-break, op without index)
    truth = []
    order = 0
    for producer in ("p1", "p2"):
        n = rate_per_s * duration_s
        invoke_us = np.sort(rng.integers(0, duration_s * US_PER_S - 200_000, size=n))
        latency_us = rng.lognormal(mean=8.0, sigma=0.8, size=n).astype(np.int64) + 100
        kinds = rng.choice(["ok", "fail", "info"], size=n, p=[0.9, 0.06, 0.04])
        partitions = rng.integers(0, 3, size=n)
        next_offset = {0: 0, 1: 0, 2: 0}
        for seq in range(n):
            t0, t1 = int(invoke_us[seq]), int(invoke_us[seq] + latency_us[seq])
            partition, kind = int(partitions[seq]), str(kinds[seq])
            msg_id = f"{producer}-{seq}"
            invoke = {"process": producer, "type": "invoke", "f": "send",
                      "value": {"id": msg_id, "topic": "orders", "partition": partition,
                                "key": f"k{seq % 17}"}}
            done = {"id": msg_id, "topic": "orders", "partition": partition}
            if kind == "ok":
                done["offset"] = next_offset[partition]
                next_offset[partition] += 1
            entries.append((t0, order, invoke))
            entries.append((t1, order + 1, {"process": producer, "type": kind, "f": "send",
                                            "value": done}))
            order += 2
            truth.append({"invoke_us": t0, "complete_us": t1, "type": kind, "id": msg_id,
                          "topic": "orders", "partition": partition})
    # one consumer: assign, then alternate poll and commit, one op at a time
    t_us = 50_000
    ops = [("assign", {"group": "analytics", "generation": 1,
                       "partitions": ["orders/2", "orders/0", "orders/1"]},
            {"group": "analytics", "generation": 1,
             "partitions": ["orders/2", "orders/0", "orders/1"]})]
    for n_poll in range(12):
        records = [{"topic": "orders", "partition": n_poll % 3, "offset": n_poll // 3 * 2 + k,
                    "id": f"p1-{n_poll * 2 + k}"} for k in range(2)]
        ops.append(("poll", {}, {"records": records}))
        ops.append(("commit", {"group": "analytics", "offsets": {f"orders/{n_poll % 3}": 5}},
                    {"group": "analytics", "offsets": {f"orders/{n_poll % 3}": 5}}))
    for f, invoke_value, ok_value in ops:
        entries.append((t_us, order, {"process": "analytics-1", "type": "invoke", "f": f,
                                      "value": invoke_value}))
        t_us += 20_000
        entries.append((t_us, order + 1, {"process": "analytics-1", "type": "ok", "f": f,
                                          "value": ok_value}))
        t_us += 250_000
        order += 2
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    history = [{"index": index, "time_us": time_us, **op}
               for index, (time_us, _, op) in enumerate(entries)]
    history = [{name: op[name] for name in ("index", "time_us", "process", "type", "f",
                                            "value")} for op in history]

    recorder = MetricsRecorder()
    for second in range(duration_s + 1):
        t = second * US_PER_S
        leaderless = second in (3, 4)
        for partition in range(3):
            recorder.sample(t, "partition", f"orders/{partition}",
                            leader=None if leaderless and partition == 0 else 1 + partition,
                            isr_size=2 if 3 <= second <= 5 else 3, high_watermark=100 * second,
                            log_end_offset=100 * second + 3, under_replicated=3 <= second <= 5)
        for node in ("b1", "b2", "b3"):
            recorder.sample(t, "node", node, bytes_on_disk=4096 * second,
                            up=not (node == "b1" and 3 <= second < 6))
        recorder.sample(t, "group", "analytics",
                        lag={f"orders/{p}": (second * 10 + p) % 37 for p in range(3)})
        recorder.sample(t, "cluster", "cluster", leader_elections=0 if second < 3 else 2)
    faults = [
        {"start_us": 3 * US_PER_S, "end_us": 6 * US_PER_S, "label": "isolate leader(orders/0)",
         "op": "isolate", "targets": ["b1"]},
        {"start_us": 5_500_000, "end_us": None, "label": "pause b3", "op": "pause",
         "targets": ["b3"]},
    ]
    events = [{"time_us": 3 * US_PER_S, "kind": "isolate", "node": "b1"},
              {"time_us": 3_200_000, "kind": "leader_elected", "partition": "orders/0",
               "leader": 2, "epoch": 1}]
    return SyntheticRun(history=history, truth=truth, recorder=recorder, faults=faults,
                        events=events, duration_us=duration_s * US_PER_S)


@pytest.fixture(scope="session")
def run() -> SyntheticRun:
    """One synthetic run shared by the tests that only read it (none may change it)."""
    return make_run()


@pytest.fixture(scope="session")
def run_factory():
    return make_run
