"""Read the cluster's final state for the checks, after settling.

Every assigned replica's log is read from its broker (all brokers are running again
after settling) as (offset, id header, batch leader epoch) records; the leader, ISR and
leader epoch come from the controller's metadata image, the high watermark from the
leader. The run's event log gives the leader timeline (`partition_change` emitted by
the active controller) and the truncations brokers made (`truncate`).
"""

from __future__ import annotations

from typing import Any

from simlog.checks.state import (
    FinalState,
    LeaderChange,
    PartitionState,
    Record,
    Replica,
    Truncation,
)
from simlog.records.batch import RecordBatch
from simlog.scenario.cluster import ScenarioCluster
from simlog.scenario.selectors import TopicPartition


def replica_records(cluster: ScenarioCluster, node: str, tp: TopicPartition) -> Replica | None:
    broker = cluster.broker(node)
    if broker is None:
        return None
    part = broker.rm.partition((tp.topic, tp.partition))
    if part is None:
        return None
    plog = part.log.plog
    records: list[Record] = []
    for batch in plog.batches(plog.log_start_offset):
        if not isinstance(batch, RecordBatch):
            break  # a corrupt batch ends what this replica can serve
        if batch.is_control:
            continue
        decoded = batch.records()
        if not isinstance(decoded, list):
            break
        for rec in decoded:
            records.append(Record(rec.offset, header_id(rec.headers),
                                  batch.partition_leader_epoch))
    return Replica(node=node, records=tuple(records), log_start_offset=plog.log_start_offset,
                   log_end_offset=plog.log_end_offset)


def header_id(headers: Any) -> str | None:
    for key, value in headers:
        if key == "id" and value is not None:
            return value.decode("utf-8", "replace")
    return None


def collect(cluster: ScenarioCluster, events: list[dict[str, Any]], groups: dict[str, tuple],
            idempotent: frozenset[str]) -> FinalState:
    partitions: dict[TopicPartition, PartitionState] = {}
    for tp in cluster.partitions():
        reg = cluster.registration(tp)
        if reg is None:
            continue
        replicas = {}
        for broker_id in sorted(reg.replicas):
            node = f"b{broker_id}"
            replica = replica_records(cluster, node, tp)
            if replica is not None:
                replicas[node] = replica
        leader = f"b{reg.leader}" if reg.leader >= 0 else None
        hw = 0
        if leader is not None and cluster.broker(leader) is not None:
            part = cluster.broker(leader).rm.partition((tp.topic, tp.partition))
            hw = part.high_watermark if part is not None else 0
        elif replicas:
            hw = max(_hw_of(cluster, node, tp) for node in replicas)
        partitions[tp] = PartitionState(
            partition=tp, replicas=replicas, leader=leader, leader_epoch=reg.leader_epoch,
            high_watermark=hw, isr=tuple(f"b{b}" for b in sorted(reg.isr)))
    return FinalState(partitions=partitions, start_us=0, end_us=cluster.rel_us(),
                      leader_changes=leader_changes(cluster, events),
                      truncations=truncations(cluster, events), groups=groups,
                      committed_offsets=committed_offsets(cluster, groups),
                      idempotent_producers=idempotent)


def committed_offsets(cluster: ScenarioCluster,
                      groups: dict[str, tuple]) -> dict[tuple[str, TopicPartition], int]:
    """Each group's committed offsets as its coordinator holds them after settling (a
    coordinator that lost its `__consumer_offsets` partition drops its groups, so the
    first broker, in id order, that describes the group is its coordinator)."""
    out: dict[tuple[str, TopicPartition], int] = {}
    for group in sorted(groups):
        for node in cluster.view.brokers():
            broker = cluster.broker(node)
            described = None if broker is None else broker.group_coordinator.describe(group)
            if described is None:
                continue
            for name, offset in sorted(described["offsets"].items()):
                topic, _, num = name.rpartition("/")
                out[(group, TopicPartition(topic, int(num)))] = offset
            break
    return out


def _hw_of(cluster: ScenarioCluster, node: str, tp: TopicPartition) -> int:
    broker = cluster.broker(node)
    part = None if broker is None else broker.rm.partition((tp.topic, tp.partition))
    return 0 if part is None else part.high_watermark


def _fields(event: dict[str, Any]) -> dict[str, Any] | None:
    """An `emit` event's fields as a dict (the trace keeps [kind, ((name, value), ...)])."""
    if event.get("kind") != "emit":
        return None
    raw = event.get("fields")
    if isinstance(raw, (list, tuple)) and len(raw) >= 2:
        return {"_kind": raw[0], **dict(raw[1])}
    return None


def leader_changes(cluster: ScenarioCluster, events: list[dict[str, Any]]) -> tuple:
    """Leader changes in time order, one per (partition, leader epoch), scenario time."""
    seen: set[tuple[str, int, int]] = set()
    out: list[LeaderChange] = []
    for event in events:
        f = _fields(event)
        if f is None or f["_kind"] != "partition_change":
            continue
        epoch = int(f.get("leader_epoch", -1))
        key = (str(f["topic"]), int(f["partition"]), epoch)
        if key in seen:
            continue
        seen.add(key)
        leader = f.get("leader", -1)
        out.append(LeaderChange(time_us=max(0, event["time_us"] - cluster.t0_us),
                                partition=TopicPartition(key[0], key[1]),
                                leader=f"b{leader}" if leader is not None and leader >= 0
                                else None, leader_epoch=epoch))
    return tuple(out)


def truncations(cluster: ScenarioCluster, events: list[dict[str, Any]]) -> tuple:
    """Every truncation a broker made, with the high watermark it must not cut below.

    That bound is the highest HW announced by a leader of an epoch no later than the
    epoch the truncating replica's records come from (the epoch it was in before the
    change that made it truncate). A later epoch's HW does not count: the new leader's
    records at those offsets may differ from this replica's, which were then never
    committed (an old leader dropping its uncommitted suffix is not a divergence)."""
    out: list[Truncation] = []
    hw_by_epoch: dict[str, dict[int, int]] = {}        # partition -> epoch -> max HW
    epochs_seen: dict[tuple[str, str], list[int]] = {}  # (node, partition) -> epochs
    for event in events:
        f = _fields(event)
        if f is None:
            continue
        kind, name = f["_kind"], str(f.get("partition", ""))
        if kind == "hw":
            per = hw_by_epoch.setdefault(name, {})
            epoch = int(f.get("leader_epoch", -1))
            per[epoch] = max(per.get(epoch, 0), int(f["high_watermark"]))
        elif kind in ("become_leader", "become_follower"):
            seen = epochs_seen.setdefault((str(event.get("node")), name), [])
            epoch = int(f.get("leader_epoch", -1))
            if not seen or seen[-1] != epoch:
                seen.append(epoch)
        elif kind == "truncate":
            node = str(event.get("node"))
            seen = epochs_seen.get((node, name), [])
            content_epoch = seen[-2] if len(seen) >= 2 else (seen[-1] if seen else -1)
            bound = max((hw for epoch, hw in hw_by_epoch.get(name, {}).items()
                         if epoch <= content_epoch), default=0)
            topic, _, num = name.rpartition("-")
            out.append(Truncation(time_us=max(0, event["time_us"] - cluster.t0_us),
                                  partition=TopicPartition(topic, int(num)), node=node,
                                  to_offset=int(f["to_offset"]), high_watermark=bound))
    return tuple(out)
