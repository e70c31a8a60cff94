"""A small deterministic cluster for replication tests, without the sim World.

Brokers are ReplicaManagers over FakeLogs (which survive crashes, like a disk); a fake
controller keeps each partition's leader, ISR and epochs, answers AlterPartition with
Kafka's epoch checks and pushes every change to the brokers as a message; a client
node sends Produce/Fetch and keeps the answers. One event heap orders everything by
(time, sequence), so a test is a script of steps and `run_for` calls.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from simlog.broker.config import BrokerConfig
from simlog.broker.replica_manager import PartitionState, ReplicaManager
from simlog.broker.storage_adapter import StorageReplicaLog
from simlog.protocol.controller import (
    AlterPartitionRequest,
    AlterPartitionResponse,
    AlterPartitionResponsePartition,
    AlterPartitionResponseTopic,
)
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import FetchPartition, FetchRequest, FetchResponse, FetchTopic
from simlog.protocol.list_offsets import ListOffsetsRequest
from simlog.protocol.offsets_for_leader_epoch import OffsetsForLeaderEpochRequest
from simlog.protocol.produce import (
    ProducePartitionData,
    ProduceRequest,
    ProduceResponse,
    ProduceTopicData,
)
from simlog.records import Record, build_batch, parse_batches
from simlog.runtime import Message
from simlog.sim.disk import SimDisk
from simlog.storage.config import LogConfig
from simlog.storage.log import PartitionLog

from .fakes import FakeLog, batch_bytes

LATENCY_US = 500


class Loop:
    def __init__(self) -> None:
        self.now_us = 0
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def at(self, delay_us: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (self.now_us + delay_us, next(self._seq), fn))

    def run_for(self, delay_us: int) -> None:
        end = self.now_us + delay_us
        while self._heap and self._heap[0][0] <= end:
            t, _, fn = heapq.heappop(self._heap)
            self.now_us = t
            fn()
        self.now_us = end


class LoopTimer:
    def __init__(self) -> None:
        self._active = True

    def cancel(self) -> None:
        self._active = False

    @property
    def active(self) -> bool:
        return self._active


class NodeRuntime:
    """One incarnation of one node: its timers die with it."""

    def __init__(self, cluster: Cluster, node_id: str) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.alive = True
        self.cpu_us = 0
        self.random = random.Random(node_id)  # fetch session ids
        self.clock_offset_us = 0  # a skewed clock: local = loop time + offset

    def now(self) -> int:
        return self.cluster.loop.now_us + self.clock_offset_us

    def set_timer(self, delay_us: int, callback: Callable[[], None]) -> LoopTimer:
        t = LoopTimer()

        def fire() -> None:
            if t.active and self.alive:
                t._active = False
                callback()

        self.cluster.loop.at(delay_us, fire)
        return t

    def send(self, dst: str, msg: Message) -> None:
        if self.alive:
            self.cluster.deliver(self.node_id, dst, msg)

    def charge_cpu(self, cost_us: int) -> None:
        self.cpu_us += cost_us

    def emit(self, kind: str, **fields: Any) -> None:
        self.cluster.events.append((self.cluster.loop.now_us, self.node_id, kind, fields))

    def halt(self, reason: str) -> None:
        self.alive = False

    def disconnect(self, peer: str) -> None:
        pass


class Host:
    def __init__(self, cluster: Cluster, broker_id: int) -> None:
        self.cluster = cluster
        self.broker_id = broker_id
        self.rt: NodeRuntime | None = None

    def open_log(self, topic: str, partition: int, topic_config: Any) -> Any:
        key = (self.broker_id, topic, partition)
        if self.cluster.storage == "fake":
            return self.cluster.disks.setdefault(key, FakeLog())
        disk = self.cluster.sim_disks.setdefault(self.broker_id,
                                                 SimDisk(_DiskHost(self.cluster.loop)))
        plog = PartitionLog.open(disk, f"{topic}-{partition}", LogConfig(),
                                 now_us=self.cluster.loop.now_us, topic=topic,
                                 partition=partition)
        assert not isinstance(plog, str)
        flush = LogConfig.from_kafka(self.cluster.topic_config).flush_messages
        adapter = StorageReplicaLog(plog, lambda: self.cluster.loop.now_us,  # type: ignore[arg-type]
                                    lambda detail: None, flush_messages=flush)
        self.cluster.disks[key] = adapter  # type: ignore[assignment]
        return adapter

    def send_to_controller(self, msg: Message) -> None:
        assert self.rt is not None
        self.rt.send("ctl", msg)

    def broker_host(self, broker_id: int) -> str | None:
        return f"b{broker_id}"

    def broker_epoch(self) -> int:
        return 1

    def broker_eligible(self, broker_id: int) -> bool:
        return broker_id not in self.cluster.down


@dataclass
class Client:
    responses: dict[int, Message] = field(default_factory=dict)


class _DiskHost:
    """SimDisk's host over the harness loop (disk costs are not modelled here)."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def now_us(self) -> int:
        return self.loop.now_us

    def charge(self, cost_us: int) -> None:
        pass

    def schedule(self, delay_us: int, fn: Callable[[], None]) -> None:
        self.loop.at(delay_us, fn)

    def trace(self, kind: str, *fields: Any) -> None:
        pass


class Cluster:
    def __init__(self, brokers: int = 3, settings: dict[str, Any] | None = None,
                 topic_config: dict[str, Any] | None = None, storage: str = "fake") -> None:
        self.loop = Loop()
        self.storage = storage
        self.sim_disks: dict[int, SimDisk] = {}
        self.settings = dict(settings or {})
        self.topic_config = dict(topic_config or {})
        self.broker_ids = list(range(1, brokers + 1))
        self.disks: dict[tuple[int, str, int], FakeLog] = {}
        self.rms: dict[int, ReplicaManager] = {}
        self.rts: dict[str, NodeRuntime] = {}
        self.down: set[int] = set()
        self.cuts: set[tuple[str, str]] = set()
        self.state: dict[tuple[str, int], PartitionState] = {}
        self.events: list[tuple[int, str, str, dict]] = []
        self.client = Client()
        self._cid = itertools.count(1_000_000)
        for b in self.broker_ids:
            self._boot(b)

    # -- plumbing -----------------------------------------------------------------

    def _boot(self, b: int) -> None:
        rt = NodeRuntime(self, f"b{b}")
        host = Host(self, b)
        host.rt = rt
        cfg = BrokerConfig.from_kafka(b, self.settings)
        rm = ReplicaManager(rt, cfg, host)  # type: ignore[arg-type]
        rm.set_topic_config("t", self.topic_config)
        self.rms[b], self.rts[f"b{b}"] = rm, rt
        rm.start()
        for st in sorted(self.state.values(), key=lambda s: (s.topic, s.partition)):
            self._push_to(b, st)

    def deliver(self, src: str, dst: str, msg: Message) -> None:
        if (src, dst) in self.cuts:
            return

        def arrive() -> None:
            if (src, dst) in self.cuts:
                return
            if dst == "ctl":
                self._controller_on(src, msg)
            elif dst == "client":
                self.client.responses[msg.correlation_id] = msg  # type: ignore[attr-defined]
            else:
                rt = self.rts.get(dst)
                if rt is not None and rt.alive:
                    self._broker_on(int(dst[1:]), src, msg)

        self.loop.at(LATENCY_US, arrive)

    def _broker_on(self, b: int, src: str, msg: Message) -> None:
        rm = self.rms[b]
        if isinstance(msg, ProduceRequest):
            rm.handle_produce(src, msg)
        elif isinstance(msg, FetchRequest):
            rm.handle_fetch(src, msg)
        elif isinstance(msg, ListOffsetsRequest):
            rm.handle_list_offsets(src, msg)
        elif isinstance(msg, OffsetsForLeaderEpochRequest):
            rm.handle_offsets_for_leader_epoch(src, msg)
        elif isinstance(msg, _PushState):
            rm.apply_partition_state(msg.state)
        else:
            rm.on_response(msg)

    # -- controller ----------------------------------------------------------------

    def _controller_on(self, src: str, msg: Message) -> None:
        if not isinstance(msg, AlterPartitionRequest):
            return
        topics = []
        for t in msg.topics:
            parts = []
            for rp in t.partitions:
                tp = (t.topic_name, rp.partition_index)
                st = self.state[tp]
                if rp.leader_epoch != st.leader_epoch or st.leader != msg.broker_id:
                    parts.append(AlterPartitionResponsePartition(
                        partition_index=tp[1], error_code=Errors.FENCED_LEADER_EPOCH))
                    continue
                if rp.partition_epoch != st.partition_epoch:
                    parts.append(AlterPartitionResponsePartition(
                        partition_index=tp[1], error_code=Errors.INVALID_UPDATE_VERSION))
                    continue
                new = replace(st, isr=tuple(sorted(rp.new_isr)),
                              partition_epoch=st.partition_epoch + 1)
                self.set_state(new)
                parts.append(AlterPartitionResponsePartition(
                    partition_index=tp[1], leader_id=new.leader, leader_epoch=new.leader_epoch,
                    isr=new.isr, partition_epoch=new.partition_epoch))
            topics.append(AlterPartitionResponseTopic(topic_name=t.topic_name,
                                                      partitions=tuple(parts)))
        self.deliver("ctl", src, AlterPartitionResponse(correlation_id=msg.correlation_id,
                                                        topics=tuple(topics)))

    def set_state(self, st: PartitionState) -> None:
        self.state[(st.topic, st.partition)] = st
        for b in self.broker_ids:
            self._push_to(b, st)

    def _push_to(self, b: int, st: PartitionState) -> None:
        self.deliver("ctl", f"b{b}", _PushState(state=st))

    def create(self, replicas: tuple[int, ...] = (1, 2, 3), leader: int = 1) -> None:
        self.set_state(PartitionState("t", 0, replicas, tuple(sorted(replicas)), leader, 0, 0))

    def elect(self, leader: int, unclean: bool = False) -> bool:
        """Move leadership (new leader epoch); refuses an out-of-sync leader unless unclean."""
        st = self.state[("t", 0)]
        if leader not in st.isr and not unclean:
            return False
        isr = tuple(b for b in st.isr if b not in self.down) if leader in st.isr else (leader,)
        self.set_state(replace(st, leader=leader, leader_epoch=st.leader_epoch + 1,
                               partition_epoch=st.partition_epoch + 1, isr=isr))
        return True

    def fence(self, b: int) -> None:
        """The controller notices b is gone: out of the ISR; a new ISR leader if it led."""
        st = self.state[("t", 0)]
        isr = tuple(r for r in st.isr if r != b) or st.isr
        leader = st.leader
        if st.leader == b:
            candidates = [r for r in isr if r != b and r not in self.down]
            leader = candidates[0] if candidates else -1
        if isr == st.isr and leader == st.leader:
            return
        self.set_state(replace(st, isr=isr if leader != -1 else st.isr, leader=leader,
                               leader_epoch=st.leader_epoch + (leader != st.leader),
                               partition_epoch=st.partition_epoch + 1))

    # -- faults ----------------------------------------------------------------------

    def crash(self, b: int) -> None:
        self.rts[f"b{b}"].alive = False
        self.down.add(b)

    def restart(self, b: int) -> None:
        self.down.discard(b)
        self._boot(b)

    def isolate(self, node: str, keep: tuple[str, ...] = ()) -> None:
        for other in ["ctl", "client", *[f"b{b}" for b in self.broker_ids]]:
            if other != node and other not in keep:
                self.cuts.add((node, other))
                self.cuts.add((other, node))

    def heal(self) -> None:
        self.cuts.clear()

    # -- client ------------------------------------------------------------------------

    def produce(self, payload: str, acks: int = -1, to: int | None = None,
                timeout_ms: int = 30_000, **batch: Any) -> int:
        cid = next(self._cid)
        leader = to if to is not None else self.state[("t", 0)].leader
        req = ProduceRequest(correlation_id=cid, acks=acks, timeout_ms=timeout_ms,
                             topic_data=(ProduceTopicData(name="t", partition_data=(
                                 ProducePartitionData(index=0,
                                                      records=self._records(payload,
                                                                            **batch)),)),))
        self.deliver("client", f"b{leader}", req)
        return cid

    def _records(self, payload: str, producer_id: int = -1, producer_epoch: int = -1,
                 base_sequence: int = -1) -> bytes:
        if self.storage == "fake":
            return batch_bytes(payload=payload, producer_id=producer_id,
                               producer_epoch=producer_epoch, base_sequence=base_sequence)
        return build_batch([Record(key=None, value=payload.encode(), timestamp=1)],
                           producer_id=producer_id, producer_epoch=producer_epoch,
                           base_sequence=base_sequence)

    def payloads(self, b: int) -> list[str]:
        log = self.disks[(b, "t", 0)]
        if isinstance(log, FakeLog):
            return log.payloads()
        out = []
        for batch in log.plog.batches(0):  # type: ignore[attr-defined]
            for r in batch.records():
                out.append(r.value.decode())
        return out

    def fetched_payloads(self, cid: int) -> list[str]:
        resp = self.fetched(cid)
        assert resp is not None
        records = resp.responses[0].partitions[0].records
        if not records:
            return []
        if self.storage == "fake":
            return [d["p"] for d in json.loads(records)]
        batches, _ = parse_batches(records)
        return [r.value.decode() for b in batches for r in b.records()]

    def fetch(self, offset: int, to: int | None = None, max_wait_ms: int = 0,
              min_bytes: int = 1, current_leader_epoch: int = -1) -> int:
        cid = next(self._cid)
        leader = to if to is not None else self.state[("t", 0)].leader
        self.deliver("client", f"b{leader}", FetchRequest(
            correlation_id=cid, max_wait_ms=max_wait_ms, min_bytes=min_bytes,
            topics=(FetchTopic(topic="t", partitions=(FetchPartition(
                partition=0, fetch_offset=offset,
                current_leader_epoch=current_leader_epoch),)),)))
        return cid

    def result(self, cid: int) -> tuple[Errors, int] | None:
        """(error, base offset) of a produce, None while unanswered."""
        r = self.client.responses.get(cid)
        if r is None:
            return None
        assert isinstance(r, ProduceResponse)
        pr = r.responses[0].partition_responses[0]
        return pr.error_code, pr.base_offset

    def fetched(self, cid: int) -> FetchResponse | None:
        r = self.client.responses.get(cid)
        return r if isinstance(r, FetchResponse) else None

    def run_for(self, delay_us: int) -> None:
        self.loop.run_for(delay_us)

    def log(self, b: int) -> FakeLog:
        return self.disks[(b, "t", 0)]

    def partition(self, b: int):
        return self.rms[b].partition(("t", 0))

    def event_kinds(self, kind: str) -> list[tuple[int, str, dict]]:
        return [(t, n, f) for t, n, k, f in self.events if k == kind]


class _PushState(Message, frozen=True, kw_only=True):
    """The fake controller's metadata push (a stand-in for following the metadata log)."""

    state: Any
