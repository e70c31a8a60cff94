"""FinalState <-> JSON, so a run's final state can be saved beside history.jsonl and the
checks re-run offline (as Jepsen re-analyses a stored history).

Layout (keys sorted where order is free, so the same state gives the same bytes):
    {"start_us", "end_us",
     "partitions": {"orders/0": {"leader", "leader_epoch", "high_watermark", "isr",
                                 "replicas": {"b1": {"log_start_offset", "log_end_offset",
                                                     "records": [[offset, id, epoch], ...]}}}},
     "leader_changes": [[time_us, "orders/0", leader, epoch], ...],
     "truncations": [[time_us, "orders/0", node, to_offset, high_watermark], ...],
     "committed_offsets": {"group": {"orders/0": 812}},
     "groups": {"group": ["orders"]}, "idempotent_producers": ["p1"]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simlog.checks.state import (
    FinalState,
    LeaderChange,
    PartitionState,
    Record,
    Replica,
    Truncation,
)
from simlog.scenario.selectors import TopicPartition, parse_partition


def to_dict(state: FinalState) -> dict[str, Any]:
    committed: dict[str, dict[str, int]] = {}
    for (group, tp), offset in sorted(state.committed_offsets.items()):
        committed.setdefault(group, {})[str(tp)] = offset
    return {
        "start_us": state.start_us,
        "end_us": state.end_us,
        "partitions": {str(ps.partition): {
            "leader": ps.leader, "leader_epoch": ps.leader_epoch,
            "high_watermark": ps.high_watermark, "isr": list(ps.isr),
            "replicas": {node: {"log_start_offset": r.log_start_offset,
                                "log_end_offset": r.log_end_offset,
                                "records": [[x.offset, x.id, x.leader_epoch]
                                            for x in r.records]}
                         for node, r in sorted(ps.replicas.items())},
        } for ps in state.sorted_partitions()},
        "leader_changes": [[c.time_us, str(c.partition), c.leader, c.leader_epoch]
                           for c in state.leader_changes],
        "truncations": [[t.time_us, str(t.partition), t.node, t.to_offset, t.high_watermark]
                        for t in state.truncations],
        "committed_offsets": committed,
        "groups": {g: list(ts) for g, ts in sorted(state.groups.items())},
        "idempotent_producers": sorted(state.idempotent_producers),
    }


def from_dict(d: dict[str, Any]) -> FinalState:
    partitions: dict[TopicPartition, PartitionState] = {}
    for name, p in d.get("partitions", {}).items():
        tp = parse_partition(name)
        replicas = {node: Replica(node, tuple(Record(*rec) for rec in r["records"]),
                                  r.get("log_start_offset", 0), r.get("log_end_offset"))
                    for node, r in p["replicas"].items()}
        partitions[tp] = PartitionState(tp, replicas, p["leader"], p["leader_epoch"],
                                        p["high_watermark"], tuple(p["isr"]))
    return FinalState(
        partitions=partitions,
        start_us=d.get("start_us", 0),
        end_us=d.get("end_us", 0),
        leader_changes=tuple(LeaderChange(t, parse_partition(tp), leader, epoch)
                             for t, tp, leader, epoch in d.get("leader_changes", [])),
        truncations=tuple(Truncation(t, parse_partition(tp), node, to, hw)
                          for t, tp, node, to, hw in d.get("truncations", [])),
        committed_offsets={(g, parse_partition(tp)): off
                           for g, offs in d.get("committed_offsets", {}).items()
                           for tp, off in offs.items()},
        groups={g: tuple(ts) for g, ts in d.get("groups", {}).items()},
        idempotent_producers=frozenset(d.get("idempotent_producers", [])),
    )


def write_json(state: FinalState, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(state), indent=1) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> FinalState:
    return from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
