"""A tiny deterministic world for client tests: event loop, runtimes, fake brokers.

`Loop` runs timers and message deliveries in (time, sequence) order. `FakeCluster`
keeps one authoritative log per partition (replication is instantaneous) with a
leader and leader epoch per partition; `FakeBroker` nodes answer Metadata, Produce,
Fetch, ListOffsets, OffsetsForLeaderEpoch and InitProducerId from it, as a leader
would (NOT_LEADER_OR_FOLLOWER when not the leader, FENCED/UNKNOWN_LEADER_EPOCH,
idempotent dedupe of the last five batches, OUT_OF_ORDER_SEQUENCE_NUMBER on gaps).
Tests inject faults with `cluster.produce_errors`, `broker.silent` (no responses),
`net.cut(a, b)` and by moving leaders or truncating logs by hand.

Two backends run the same tests: `World(backend="sim")` (the default) puts every node
in a `simlog.sim.World` (SimPy clock, link latency and bandwidth, per-node random
streams); `World(backend="loop")` uses the minimal `Loop` here, with a fixed latency.
Either way `net.log` records every message a node sent (a runtime spy), for assertions.
"""

from __future__ import annotations

import heapq
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simlog.protocol.errors import Errors
from simlog.protocol.fetch import (
    FetchEpochEndOffset,
    FetchLeaderIdAndEpoch,
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopicResponse,
)
from simlog.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from simlog.protocol.list_offsets import (
    EARLIEST_TIMESTAMP,
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)
from simlog.protocol.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from simlog.protocol.offsets_for_leader_epoch import (
    EpochEndOffset,
    OffsetForLeaderTopicResult,
    OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse,
)
from simlog.protocol.produce import (
    ProduceLeaderIdAndEpoch,
    ProducePartitionResponse,
    ProduceRequest,
    ProduceResponse,
    ProduceTopicResponse,
)
from simlog.records import RecordBatch, parse_batches, patch_offset_and_epoch
from simlog.runtime import Message, NodeBase, Runtime
from simlog.sim import LatencyDist, NetworkParams
from simlog.sim import World as SimWorld


class Loop:
    def __init__(self) -> None:
        self.now = 0
        self._q: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, t: int, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._q, (t, self._seq, fn))

    def run(self, until: int) -> None:
        while self._q and self._q[0][0] <= until:
            t, _, fn = heapq.heappop(self._q)
            self.now = t
            fn()
        self.now = max(self.now, until)

    def run_for(self, delay_us: int) -> None:
        self.run(self.now + delay_us)


class FakeTimer:
    def __init__(self) -> None:
        self._active = True

    def cancel(self) -> None:
        self._active = False

    @property
    def active(self) -> bool:
        return self._active


class Net:
    def __init__(self, loop: Loop, latency_us: int = 500) -> None:
        self.loop = loop
        self.latency_us = latency_us
        self.nodes: dict[str, Any] = {}
        self.cuts: set[tuple[str, str]] = set()
        self.log: list[tuple[int, str, str, Message]] = []

    def cut(self, a: str, b: str) -> None:
        self.cuts |= {(a, b), (b, a)}

    def heal(self) -> None:
        self.cuts.clear()

    def deliver(self, src: str, dst: str, msg: Message) -> None:
        self.log.append((self.loop.now, src, dst, msg))
        if (src, dst) in self.cuts:
            return

        def arrive() -> None:
            node = self.nodes.get(dst)
            if node is not None and (src, dst) not in self.cuts:
                node.on_message(src, msg)

        self.loop.at(self.loop.now + self.latency_us, arrive)

    def sent(self, kind: type, src: str | None = None) -> list[Message]:
        return [m for _, s, _, m in self.log if isinstance(m, kind) and (src is None or s == src)]


class FakeRuntime:
    def __init__(self, node_id: str, loop: Loop, net: Net, seed: int = 1) -> None:
        self._id = node_id
        self.loop = loop
        self.net = net
        self._random = random.Random(f"{seed}/{node_id}")
        self.cpu_us = 0
        self.events: list[dict[str, Any]] = []

    @property
    def node_id(self) -> str:
        return self._id

    @property
    def disk(self) -> Any:
        raise NotImplementedError

    @property
    def random(self) -> random.Random:
        return self._random

    def now(self) -> int:
        return self.loop.now

    def set_timer(self, delay_us: int, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()

        def fire() -> None:
            if timer.active:
                timer._active = False
                callback()

        self.loop.at(self.loop.now + max(0, delay_us), fire)
        return timer

    def send(self, dst: str, msg: Message) -> None:
        self.net.deliver(self._id, dst, msg)

    def charge_cpu(self, cost_us: int) -> None:
        self.cpu_us += cost_us

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, **fields})

    def halt(self, reason: str) -> None:
        self.net.nodes.pop(self._id, None)

    def disconnect(self, peer: str) -> None:
        pass  # this fake network has no connections (nothing is ever held)


@dataclass
class PartitionState:
    leader: int
    epoch: int = 0
    batches: list[bytes] = field(default_factory=list)  # stored, offsets patched
    epoch_starts: list[tuple[int, int]] = field(default_factory=list)  # (epoch, start)
    log_start: int = 0
    # producer id -> recent (first_seq, last_seq, base_offset), newest last
    producers: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    producer_epochs: dict[int, int] = field(default_factory=dict)

    @property
    def end_offset(self) -> int:
        if not self.batches:
            return self.log_start
        return RecordBatch(self.batches[-1]).next_offset

    def new_epoch(self, leader: int) -> None:
        self.leader = leader
        self.epoch += 1

    def append(self, data: bytes) -> int:
        base = self.end_offset
        if not self.epoch_starts or self.epoch_starts[-1][0] != self.epoch:
            self.epoch_starts.append((self.epoch, base))
        self.batches.append(patch_offset_and_epoch(data, base, self.epoch))
        return base

    def truncate_to(self, offset: int) -> None:
        self.batches = [b for b in self.batches if RecordBatch(b).last_offset < offset]
        self.epoch_starts = [(e, s) for e, s in self.epoch_starts if s < offset]

    def end_of_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= epoch, its end offset), or (-1, -1)."""
        best = -1
        for i, (e, _start) in enumerate(self.epoch_starts):
            if e <= epoch:
                best = i
        if best < 0:
            return -1, -1
        e = self.epoch_starts[best][0]
        if best + 1 < len(self.epoch_starts):
            return e, self.epoch_starts[best + 1][1]
        return e, self.end_offset

    def records(self) -> list[tuple[int, bytes | None, dict[str, bytes | None]]]:
        out = []
        for b in self.batches:
            recs = RecordBatch(b).records()
            assert not isinstance(recs, Exception)
            for r in recs:  # type: ignore[union-attr]
                out.append((r.offset, r.value, dict(r.headers)))
        return out


class FakeCluster:
    def __init__(self, world: World, brokers: int = 3) -> None:
        self.broker_ids = list(range(1, brokers + 1))
        self.topics: dict[str, int] = {}
        self.parts: dict[tuple[str, int], PartitionState] = {}
        self.produce_errors: dict[tuple[str, int], list[Errors]] = {}
        self.next_producer_id = 1000
        # When set, Metadata answers show these leaders (epoch -1): stale metadata.
        self.frozen_leaders: dict[tuple[str, int], int] | None = None
        self.refuse_bumps = False  # InitProducerId with an id: INVALID_PRODUCER_EPOCH
        self.leader_hints = True  # CurrentLeader in NOT_LEADER / FENCED answers (KIP-951)
        self.brokers: dict[int, FakeBroker] = {}
        for bid in self.broker_ids:
            self.brokers[bid] = world.add_node(
                f"b{bid}", lambda rt, bid=bid: FakeBroker(rt, self, bid))

    def create_topic(self, name: str, partitions: int, leader: int | None = None) -> None:
        self.topics[name] = partitions
        for p in range(partitions):
            lead = leader if leader is not None else self.broker_ids[p % len(self.broker_ids)]
            self.parts[(name, p)] = PartitionState(leader=lead)

    def move_leader(self, tp: tuple[str, int], leader: int) -> None:
        self.parts[tp].new_epoch(leader)


class FakeBroker(NodeBase):
    def __init__(self, rt: Any, cluster: FakeCluster, broker_id: int) -> None:
        super().__init__(rt)
        self.cluster = cluster
        self.broker_id = broker_id
        self.silent = False  # receive, maybe append, never answer
        self._fetch_src = ""
        self.received: list[Message] = []

    def on_message(self, src: str, msg: Message) -> None:
        self.received.append(msg)
        self._fetch_src = src
        handler = getattr(self, "on_" + type(msg).__name__)
        resp = handler(msg)
        if resp is not None and not self.silent:
            self.rt.send(src, resp)

    # --- handlers ------------------------------------------------------------
    def on_MetadataRequest(self, req: MetadataRequest) -> MetadataResponse:
        c = self.cluster
        names = sorted(c.topics) if req.topics is None else list(req.topics)
        topics = []
        for name in names:
            if name not in c.topics:
                topics.append(MetadataResponseTopic(name=name,
                                                    error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            view = c.frozen_leaders or {}
            parts = tuple(
                MetadataResponsePartition(partition_index=p,
                                          leader_id=view.get((name, p), c.parts[(name, p)].leader),
                                          leader_epoch=c.parts[(name, p)].epoch
                                          if (name, p) not in view else -1,
                                          replica_nodes=tuple(c.broker_ids),
                                          isr_nodes=tuple(c.broker_ids))
                for p in range(c.topics[name]))
            topics.append(MetadataResponseTopic(name=name, partitions=parts))
        return MetadataResponse(
            correlation_id=req.correlation_id, cluster_id="fake", controller_id=1,
            brokers=tuple(MetadataResponseBroker(node_id=b, host=f"b{b}") for b in c.broker_ids),
            topics=tuple(topics))

    def on_InitProducerIdRequest(self, req: InitProducerIdRequest) -> InitProducerIdResponse:
        if req.producer_id >= 0 and self.cluster.refuse_bumps:
            return InitProducerIdResponse(correlation_id=req.correlation_id,
                                          error_code=Errors.INVALID_PRODUCER_EPOCH)
        if req.producer_id >= 0:
            return InitProducerIdResponse(correlation_id=req.correlation_id,
                                          producer_id=req.producer_id,
                                          producer_epoch=req.producer_epoch + 1)
        self.cluster.next_producer_id += 1
        return InitProducerIdResponse(correlation_id=req.correlation_id,
                                      producer_id=self.cluster.next_producer_id, producer_epoch=0)

    def on_ProduceRequest(self, req: ProduceRequest) -> ProduceResponse | None:
        out = []
        for topic in req.topic_data:
            parts = []
            for pd in topic.partition_data:
                parts.append(self._produce_one((topic.name, pd.index), pd.records))
            out.append(ProduceTopicResponse(name=topic.name, partition_responses=tuple(parts)))
        if req.acks == 0:
            return None
        return ProduceResponse(correlation_id=req.correlation_id, responses=tuple(out))

    def _produce_one(self, tp: tuple[str, int], data: bytes) -> ProducePartitionResponse:
        c = self.cluster
        part = c.parts.get(tp)
        if part is None:
            return ProducePartitionResponse(index=tp[1],
                                            error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION)
        if part.leader != self.broker_id:
            return ProducePartitionResponse(
                index=tp[1], error_code=Errors.NOT_LEADER_OR_FOLLOWER,
                current_leader=ProduceLeaderIdAndEpoch(leader_id=part.leader,
                                                       leader_epoch=part.epoch)
                if c.leader_hints else None)
        injected = c.produce_errors.get(tp)
        if injected:
            err = injected.pop(0)
            if err in (Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, Errors.REQUEST_TIMED_OUT):
                # Appended (producer state included), then the acks wait failed.
                done = self._append(part, tp, data)
                if done.error_code != Errors.NONE:
                    return done
            return ProducePartitionResponse(index=tp[1], error_code=err)
        return self._append(part, tp, data)

    def _append(self, part: PartitionState, tp: tuple[str, int],
                data: bytes) -> ProducePartitionResponse:
        batches, error = parse_batches(data)
        assert error is None and len(batches) == 1, error
        b = batches[0]
        if b.producer_id >= 0:
            epoch = part.producer_epochs.get(b.producer_id, -1)
            if b.producer_epoch < epoch:
                return ProducePartitionResponse(index=tp[1],
                                                error_code=Errors.INVALID_PRODUCER_EPOCH)
            if b.producer_epoch > epoch:
                part.producer_epochs[b.producer_id] = b.producer_epoch
                part.producers[b.producer_id] = []
                if b.base_sequence != 0:
                    return ProducePartitionResponse(
                        index=tp[1], error_code=Errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
            recent = part.producers.setdefault(b.producer_id, [])
            for first, last, base in recent:
                if first == b.base_sequence and last == b.last_sequence:
                    return ProducePartitionResponse(index=tp[1], base_offset=base)
            expected = recent[-1][1] + 1 if recent else 0
            if b.base_sequence != expected:
                return ProducePartitionResponse(index=tp[1],
                                                error_code=Errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
            base = part.append(data)
            recent.append((b.base_sequence, b.last_sequence, base))
            del recent[:-5]
            return ProducePartitionResponse(index=tp[1], base_offset=base)
        return ProducePartitionResponse(index=tp[1], base_offset=part.append(data))

    def _check_epoch(self, part: PartitionState, current: int) -> Errors:
        if part.leader != self.broker_id:
            return Errors.NOT_LEADER_OR_FOLLOWER
        if current >= 0 and current < part.epoch:
            return Errors.FENCED_LEADER_EPOCH
        if current > part.epoch:
            return Errors.UNKNOWN_LEADER_EPOCH
        return Errors.NONE

    def on_FetchRequest(self, req: FetchRequest) -> FetchResponse:
        topics = []
        for t in req.topics:
            parts = []
            for fp in t.partitions:
                part = self.cluster.parts[(t.topic, fp.partition)]
                err = self._check_epoch(part, fp.current_leader_epoch)
                if err != Errors.NONE:
                    parts.append(FetchPartitionResponse(
                        partition_index=fp.partition, error_code=err,
                        current_leader=FetchLeaderIdAndEpoch(leader_id=part.leader,
                                                             leader_epoch=part.epoch)
                        if self.cluster.leader_hints else None))
                    continue
                if fp.last_fetched_epoch >= 0:
                    epoch, end = part.end_of_epoch(fp.last_fetched_epoch)
                    if epoch < fp.last_fetched_epoch or end < fp.fetch_offset:
                        parts.append(FetchPartitionResponse(
                            partition_index=fp.partition, high_watermark=part.end_offset,
                            diverging_epoch=FetchEpochEndOffset(epoch=epoch, end_offset=end)))
                        continue
                if not part.log_start <= fp.fetch_offset <= part.end_offset:
                    parts.append(FetchPartitionResponse(partition_index=fp.partition,
                                                        error_code=Errors.OFFSET_OUT_OF_RANGE))
                    continue
                wanted = [b for b in part.batches if RecordBatch(b).last_offset >= fp.fetch_offset]
                # As a segment read: cut at the byte limit (maybe mid-batch), but always
                # at least the first whole batch.
                data = b"".join(wanted)
                data = data[:max(fp.partition_max_bytes, len(wanted[0]) if wanted else 0)]
                parts.append(FetchPartitionResponse(
                    partition_index=fp.partition, high_watermark=part.end_offset,
                    last_stable_offset=part.end_offset, log_start_offset=part.log_start,
                    records=data))
            topics.append(FetchTopicResponse(topic=t.topic, partitions=tuple(parts)))
        resp = FetchResponse(correlation_id=req.correlation_id, responses=tuple(topics))
        empty = all(not p.records and p.error_code == Errors.NONE and p.diverging_epoch is None
                    for t in topics for p in t.partitions)
        if empty and req.max_wait_ms > 0:
            # A crude long poll: an empty answer waits a little (not the full
            # max_wait_ms, and without waking on new data), so consumers do not spin.
            src = self._fetch_src
            self.rt.set_timer(EMPTY_FETCH_DELAY_US,
                              lambda: None if self.silent else self.rt.send(src, resp))
            return None
        return resp

    def on_ListOffsetsRequest(self, req: ListOffsetsRequest) -> ListOffsetsResponse:
        topics = []
        for t in req.topics:
            parts = []
            for lp in t.partitions:
                part = self.cluster.parts[(t.name, lp.partition_index)]
                err = self._check_epoch(part, lp.current_leader_epoch)
                offset = part.log_start if lp.timestamp == EARLIEST_TIMESTAMP else part.end_offset
                parts.append(ListOffsetsPartitionResponse(
                    partition_index=lp.partition_index, error_code=err,
                    offset=offset if err == Errors.NONE else -1, leader_epoch=part.epoch))
            topics.append(ListOffsetsTopicResponse(name=t.name, partitions=tuple(parts)))
        return ListOffsetsResponse(correlation_id=req.correlation_id, topics=tuple(topics))

    def on_OffsetsForLeaderEpochRequest(
            self, req: OffsetsForLeaderEpochRequest) -> OffsetsForLeaderEpochResponse:
        topics = []
        for t in req.topics:
            parts = []
            for p in t.partitions:
                part = self.cluster.parts[(t.topic, p.partition)]
                err = self._check_epoch(part, p.current_leader_epoch)
                if err != Errors.NONE:
                    parts.append(EpochEndOffset(partition=p.partition, error_code=err))
                    continue
                epoch, end = part.end_of_epoch(p.leader_epoch)
                parts.append(EpochEndOffset(partition=p.partition, leader_epoch=epoch,
                                            end_offset=end))
            topics.append(OffsetForLeaderTopicResult(topic=t.topic, partitions=tuple(parts)))
        return OffsetsForLeaderEpochResponse(correlation_id=req.correlation_id,
                                             topics=tuple(topics))


BACKEND = os.environ.get("SIMLOG_CLIENT_TEST_BACKEND", "sim")
EMPTY_FETCH_DELAY_US = 10_000


class SpyRuntime:
    """A sim runtime that also logs every send into `Net.log` and sums CPU charges."""

    def __init__(self, rt: Runtime, net: Net, world: SimWorld) -> None:
        self._rt = rt
        self._net = net
        self._world = world
        self.cpu_us = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    @property
    def node_id(self) -> str:
        return self._rt.node_id

    @property
    def random(self) -> Any:
        return self._rt.random

    def send(self, dst: str, msg: Message) -> None:
        self._net.log.append((self._world.now_us, self._rt.node_id, dst, msg))
        self._rt.send(dst, msg)

    def charge_cpu(self, cost_us: int) -> None:
        self.cpu_us += cost_us
        self._rt.charge_cpu(cost_us)


class _SimCuts:
    """`Net.cut`/`heal` on the sim World: both directions."""

    def __init__(self, world: SimWorld, net: Net) -> None:
        self.world = world
        self.net = net

    def cut(self, a: str, b: str) -> None:
        self.world.cut([a], [b])
        self.world.cut([b], [a])

    def heal(self) -> None:
        self.world.heal()


class World:
    """Fake brokers + client nodes on one of two backends (see module docstring)."""

    def __init__(self, brokers: int = 3, latency_us: int = 500, backend: str = BACKEND,
                 seed: int = 1) -> None:
        self.backend = backend
        self.loop = Loop()
        self.net = Net(self.loop, latency_us)
        self.sim: SimWorld | None = None
        if backend == "sim":
            self.sim = SimWorld(seed=seed, network=NetworkParams(
                latency=LatencyDist(median_us=latency_us, p99_us=4 * latency_us)))
            cuts = _SimCuts(self.sim, self.net)
            self.net.cut = cuts.cut  # type: ignore[method-assign]
            self.net.heal = cuts.heal  # type: ignore[method-assign]
        self.cluster = FakeCluster(self, brokers)

    def add_node(self, node_id: str, factory: Callable[[Any], Any]) -> Any:
        if self.sim is not None:
            sim, net = self.sim, self.net
            node = sim.add_node(node_id, lambda rt: factory(SpyRuntime(rt, net, sim)))
            sim.run_for(0)  # let start() run, as the loop backend does at once
            return node
        rt = FakeRuntime(node_id, self.loop, self.net)
        node = factory(rt)
        self.net.nodes[node_id] = node
        node.start()
        return node

    add_client = add_node

    def run_for(self, delay_us: int) -> None:
        if self.sim is not None:
            self.sim.run_for(delay_us)
        else:
            self.loop.run_for(delay_us)

    @property
    def now(self) -> int:
        return self.sim.now_us if self.sim is not None else self.loop.now
