"""A small example node program for tests, the demo and the benchmark.

Each node keeps a counter, persisted as 12-byte records (CRC-32C + value) appended to
`counter.log`. Every `interval_us` it increments the counter, appends it (and, with
`fsync`, fsyncs it), and sends an `ExampleHeartbeat(seq, counter)` to every peer.
On a heartbeat it remembers each peer's highest counter and counts heartbeats that
arrive out of order or twice (seq not above the last one seen from that peer's
current boot). On
start it recovers its counter from the log, skipping records whose checksum fails
(and counting them: that is how corruption shows).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

import crc32c

from simlog.runtime import DiskError, Message, NodeBase, NodeFactory, Runtime

if TYPE_CHECKING:
    from simlog.sim.world import World

LOG = "counter.log"
RECORD = struct.Struct(">IQ")


class ExampleHeartbeat(Message, frozen=True, tag=True, kw_only=True):
    boot: int  # random per incarnation: seq restarts at 1 with each boot
    seq: int
    counter: int


def encode_record(value: int) -> bytes:
    body = value.to_bytes(8, "big")
    return RECORD.pack(crc32c.crc32c(body), value)


class CounterNode(NodeBase):
    def __init__(self, rt: Runtime, peers: Sequence[str], interval_us: int = 100_000,
                 fsync: bool = False, keep_arrivals: bool = False) -> None:
        super().__init__(rt)
        self.peers = sorted(p for p in peers if p != rt.node_id)
        self.interval_us = interval_us
        self.fsync = fsync
        self.keep_arrivals = keep_arrivals
        self.counter = 0
        self.synced_counter = 0
        self.seq = 0
        self.recovered = 0
        self.corrupt_records = 0
        self.write_errors = 0
        self.received: dict[str, int] = {}
        self.last_seq: dict[str, int] = {}
        self.last_boot: dict[str, int] = {}
        self.boot = 0
        self.out_of_order: dict[str, int] = {}
        self.peer_counter: dict[str, int] = {}
        self.arrivals: list[tuple[str, int, int]] = []  # (src, seq, local time)
        self.timer = None

    def start(self) -> None:
        self.boot = self.rt.random.getrandbits(32)
        self.recover()
        self.rt.emit("recovered", counter=self.counter, corrupt=self.corrupt_records)
        self.timer = self.rt.set_timer(self.interval_us, self.tick)

    def recover(self) -> None:
        disk = self.rt.disk
        size = disk.size(LOG)
        if isinstance(size, DiskError):
            return
        data = disk.read(LOG, 0, size)
        assert not isinstance(data, DiskError)
        for pos in range(0, len(data) - RECORD.size + 1, RECORD.size):
            crc, value = RECORD.unpack_from(data, pos)
            if crc32c.crc32c(value.to_bytes(8, "big")) != crc:
                self.corrupt_records += 1
                continue
            self.counter = max(self.counter, value)
        self.recovered = self.counter
        self.synced_counter = self.counter

    def tick(self) -> None:
        value = self.counter + 1
        pos = self.rt.disk.append(LOG, encode_record(value))
        if isinstance(pos, DiskError):
            self.write_errors += 1
            self.rt.emit("write_failed", error=pos.kind)
        else:
            self.counter = value
            if self.fsync:
                self.rt.disk.fsync(LOG, lambda err, v=value: self.on_synced(v, err))
        self.seq += 1
        for peer in self.peers:
            self.rt.send(peer, ExampleHeartbeat(boot=self.boot, seq=self.seq,
                                                     counter=self.counter))
        self.timer = self.rt.set_timer(self.interval_us, self.tick)

    def on_synced(self, value: int, err: DiskError | None) -> None:
        if err is None:
            self.synced_counter = max(self.synced_counter, value)

    def on_message(self, src: str, msg: Message) -> None:
        if isinstance(msg, ExampleHeartbeat):
            self.on_heartbeat(src, msg)

    def on_heartbeat(self, src: str, msg: ExampleHeartbeat) -> None:
        self.received[src] = self.received.get(src, 0) + 1
        if msg.boot != self.last_boot.get(src):
            self.last_boot[src] = msg.boot
            self.last_seq[src] = 0
        if msg.seq <= self.last_seq.get(src, 0):
            self.out_of_order[src] = self.out_of_order.get(src, 0) + 1
        else:
            self.last_seq[src] = msg.seq
        if msg.counter > self.peer_counter.get(src, -1):
            self.peer_counter[src] = msg.counter
        if self.keep_arrivals:
            self.arrivals.append((src, msg.seq, self.rt.now()))


def counter_factory(peers: Sequence[str], **kw: object) -> NodeFactory:
    """factory(rt) -> CounterNode for World.add_node."""
    def build(rt: Runtime) -> CounterNode:
        return CounterNode(rt, peers, **kw)  # type: ignore[arg-type]
    return build


def scripted_run(seed: int, duration_us: int = 3_000_000, record_events: bool = False,
                 **params: object) -> World:
    """The demo's story on three counter nodes n1..n3: n1 is partitioned away at 0.5 s
    and healed at 1.2 s; n2 crashes at 1.5 s (power loss: unsynced counter records are
    lost) and restarts at 2 s; n3's clock runs 1% fast. Returns the world after
    duration_us of simulated time."""
    from simlog.sim.world import World  # here, so the node program needs no world

    ids = ["n1", "n2", "n3"]
    w = World(seed, record_events=record_events, **params)  # type: ignore[arg-type]
    for n in ids:
        w.add_node(n, counter_factory(ids, interval_us=50_000, fsync=True))
    w.set_clock("n3", drift=0.01)
    w.call_later(500_000, lambda: w.partition([["n1"], ["n2", "n3"]]))
    w.call_later(1_200_000, w.heal)
    w.call_later(1_500_000, lambda: w.crash("n2", lose_unsynced=True))
    w.call_later(2_000_000, lambda: w.restart("n2"))
    w.run(duration_us)
    return w
