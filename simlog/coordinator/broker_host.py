"""`CoordinatorHost` over a BrokerNode: what the wiring into the broker needs.

    from simlog.coordinator import GroupCoordinator, GroupCoordinatorConfig, BrokerCoordinatorHost
    # BrokerNode.__init__, after self.rm exists:
    self.group_coordinator = GroupCoordinator(
        rt, GroupCoordinatorConfig.from_kafka(config.extra), BrokerCoordinatorHost(self))
    # BrokerNode.on_message, before the produce/fetch dispatch:
    if self.group_coordinator.on_message(src, msg):
        return

The adapter reads the broker's metadata image (who leads which `__consumer_offsets`
partition) and its replica manager (is this replica the leader, at which epoch;
append with acks=all and a callback when the high watermark passes; read the local log).
It appends through the replica manager's own produce path (`_append_one` and a
DelayedProduce in the produce purgatory), so coordinator writes replicate, count toward
the HW and time out exactly as a producer's acks=all writes do. A public
`ReplicaManager.append_records(tp, records, acks, timeout_us, on_done)` (Kafka's
appendRecords with origin=Coordinator) would replace the two private uses here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from simlog.coordinator.records import OFFSETS_TOPIC
from simlog.protocol.controller import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from simlog.protocol.errors import Errors

READ_CHUNK_BYTES = 1 << 20


class BrokerCoordinatorHost:
    def __init__(self, broker: Any) -> None:
        """broker: a BrokerNode (duck-typed: `.metadata.image`, `.rm`, `.rt`,
        `.send_to_controller`)."""
        self.broker = broker

    def offsets_partition_count(self) -> int | None:
        t = self.broker.metadata.image.topic(OFFSETS_TOPIC)
        return len(t.partitions) if t is not None and t.partitions else None

    def partition_leader(self, partition: int) -> tuple[int, str] | None:
        image = self.broker.metadata.image
        reg = image.partition(OFFSETS_TOPIC, partition)
        if reg is None or reg.leader < 0:
            return None
        b = image.broker(reg.leader)
        if b is None or b.fenced:
            return None
        return reg.leader, b.host

    def leader_epoch(self, partition: int) -> int | None:
        p = self.broker.rm.leader_partition((OFFSETS_TOPIC, partition))
        return None if p is None else p.leader_epoch

    def append(self, partition: int, records: bytes, timeout_us: int,
               on_done: Callable[[Errors], None]) -> None:
        from simlog.broker.delayed import DelayedProduce

        rm = self.broker.rm
        tp = (OFFSETS_TOPIC, partition)
        st = rm._append_one(tp, records, -1)
        if st.error is not Errors.NONE:
            on_done(st.error)
            return
        st.acks_pending = True
        op = DelayedProduce(timeout_us, {tp: st}, rm.leader_partition,
                            lambda sts: on_done(sts[tp].error), all_replicas=True)
        rm.produce_purgatory.try_complete_else_watch(op, [tp])

    def read(self, partition: int) -> list[bytes]:
        p = self.broker.rm.partition((OFFSETS_TOPIC, partition))
        if p is None:
            return []
        log = p.log
        out: list[bytes] = []
        offset, end = log.log_start_offset, log.log_end_offset
        while offset < end:
            data = log.read(offset, READ_CHUNK_BYTES, end)
            if not isinstance(data, bytes) or not data:
                break
            out.append(data)
            nxt = _next_offset(data)
            if nxt <= offset:
                break
            offset = nxt
        return out

    def create_offsets_topic(self, partitions: int, replication_factor: int,
                             configs: Mapping[str, str]) -> None:
        rf = replication_factor
        n_brokers = len(self.broker.metadata.image.brokers)
        if n_brokers and rf > n_brokers:
            rf = n_brokers  # Kafka refuses; a small sim cluster would never get a topic
        self.broker.send_to_controller(CreateTopicsRequest(topics=(CreatableTopic(
            name=OFFSETS_TOPIC, num_partitions=partitions, replication_factor=rf,
            configs=tuple(CreatableTopicConfig(name=k, value=v)
                          for k, v in sorted(configs.items()))),)))


def _next_offset(data: bytes) -> int:
    from simlog.records import iter_batches

    nxt = -1
    for b in iter_batches(data, validate=False):
        if not hasattr(b, "next_offset"):
            break
        nxt = b.next_offset
    return nxt


__all__ = ["BrokerCoordinatorHost"]
