"""An in-memory deterministic world for controller tests (etcd rafttest-style).

`Cluster` runs nodes built against `simlog.runtime` with a manual clock, an event heap
(time, sequence) so ties break deterministically, a network with fixed latency that can
`cut`, `isolate`, `partition` and `heal`, and per-node in-memory disks whose contents
survive crashes (unsynced bytes are lost only with `crash(..., lose_unsynced=True)`).
Every `rt.emit` is recorded in `cluster.events` as a dict with `node`, `time_us`, `kind`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from typing import Any

from simlog.runtime import DiskError, Message


class FakeDisk:
    def __init__(self, cluster: Cluster, node_id: str, fsync_us: int) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.fsync_us = fsync_us
        self.files: dict[str, bytearray] = {}
        self.synced: dict[str, int] = {}

    def append(self, path: str, data: bytes) -> int | DiskError:
        f = self.files.setdefault(path, bytearray())
        self.synced.setdefault(path, 0)
        pos = len(f)
        f.extend(data)
        return pos

    def pwrite(self, path: str, offset: int, data: bytes) -> DiskError | None:
        f = self.files.setdefault(path, bytearray())
        self.synced.setdefault(path, 0)
        if offset > len(f):
            f.extend(b"\0" * (offset - len(f)))
        f[offset:offset + len(data)] = data
        return None

    def read(self, path: str, offset: int, length: int) -> bytes | DiskError:
        if path not in self.files:
            return DiskError(DiskError.NOT_FOUND, path)
        return bytes(self.files[path][offset:offset + length])

    def size(self, path: str) -> int | DiskError:
        if path not in self.files:
            return DiskError(DiskError.NOT_FOUND, path)
        return len(self.files[path])

    def exists(self, path: str) -> bool:
        return path in self.files

    def truncate(self, path: str, length: int) -> DiskError | None:
        if path not in self.files:
            return DiskError(DiskError.NOT_FOUND, path)
        del self.files[path][length:]
        self.synced[path] = min(self.synced[path], length)
        return None

    def rename(self, src: str, dst: str) -> DiskError | None:
        if src not in self.files:
            return DiskError(DiskError.NOT_FOUND, src)
        self.files[dst] = self.files.pop(src)
        self.synced[dst] = self.synced.pop(src)
        return None

    def delete(self, path: str) -> DiskError | None:
        if path not in self.files:
            return DiskError(DiskError.NOT_FOUND, path)
        del self.files[path]
        del self.synced[path]
        return None

    def list(self, prefix: str = "") -> list[str]:
        return sorted(p for p in self.files if p.startswith(prefix))

    def fsync(self, path: str, on_done: Callable[[DiskError | None], None]) -> None:
        length = len(self.files[path]) if path in self.files else None

        def done() -> None:
            if path not in self.files:
                on_done(DiskError(DiskError.NOT_FOUND, path))
                return
            if length is not None:
                self.synced[path] = max(self.synced[path], min(length, len(self.files[path])))
            on_done(None)

        self.cluster._schedule_node(self.node_id, self.fsync_us, done)

    def power_loss(self) -> None:
        for path in list(self.files):
            del self.files[path][self.synced[path]:]


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def active(self) -> bool:
        return not (self.cancelled or self.fired)


class FakeRuntime:
    def __init__(self, cluster: Cluster, node_id: str) -> None:
        self.cluster = cluster
        self._node_id = node_id
        seed = hashlib.sha256(f"{cluster.seed}/{node_id}/{cluster.incarnation[node_id]}"
                              .encode()).digest()
        self._random = random.Random(int.from_bytes(seed[:8], "big"))

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def disk(self) -> FakeDisk:
        return self.cluster.disks[self._node_id]

    @property
    def random(self) -> random.Random:
        return self._random

    def now(self) -> int:
        return self.cluster.now_us

    def set_timer(self, delay_us: int, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()

        def fire() -> None:
            if timer.cancelled:
                return
            timer.fired = True
            callback()

        self.cluster._schedule_node(self._node_id, delay_us, fire)
        return timer

    def send(self, dst: str, msg: Message) -> None:
        self.cluster._send(self._node_id, dst, msg)

    def charge_cpu(self, cost_us: int) -> None:
        pass

    def emit(self, kind: str, **fields: Any) -> None:
        self.cluster.events.append({"time_us": self.cluster.now_us, "node": self._node_id,
                                    "kind": kind, **fields})

    def halt(self, reason: str) -> None:
        self.cluster.events.append({"time_us": self.cluster.now_us, "node": self._node_id,
                                    "kind": "halt", "reason": reason})
        self.cluster.crash(self._node_id)


class Cluster:
    """Nodes, a clock, a network and disks. Drive it with `run_for(us)`."""

    def __init__(self, seed: int = 1, latency_us: int = 1_000, fsync_us: int = 2_000,
                 jitter_us: int = 0) -> None:
        self.seed = seed
        self.latency_us = latency_us
        self.jitter_us = jitter_us
        self._net_rng = random.Random(seed)
        self._link_last_us: dict[tuple[str, str], int] = {}
        self.fsync_us = fsync_us
        self.now_us = 0
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.factories: dict[str, Callable[[FakeRuntime], Any]] = {}
        self.nodes: dict[str, Any] = {}
        self.disks: dict[str, FakeDisk] = {}
        self.incarnation: dict[str, int] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.events: list[dict[str, Any]] = []
        self.delivered = 0
        self.drop_filter: Callable[[str, str, Message], bool] | None = None

    # -- scheduling ----------------------------------------------------------------

    def call_later(self, delay_us: int, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self.now_us + max(0, delay_us), self._seq, fn))

    def _schedule_node(self, node_id: str, delay_us: int, fn: Callable[[], None]) -> None:
        inc = self.incarnation[node_id]

        def run() -> None:
            if self.incarnation[node_id] == inc and node_id in self.nodes:
                fn()

        self.call_later(delay_us, run)

    def run_until(self, until_us: int) -> None:
        while self._heap and self._heap[0][0] <= until_us:
            t, _seq, fn = heapq.heappop(self._heap)
            self.now_us = t
            fn()
        self.now_us = max(self.now_us, until_us)

    def run_for(self, delay_us: int) -> None:
        self.run_until(self.now_us + delay_us)

    def run_until_true(self, predicate: Callable[[], bool], limit_us: int,
                       step_us: int = 10_000) -> bool:
        deadline = self.now_us + limit_us
        while self.now_us < deadline:
            if predicate():
                return True
            self.run_for(step_us)
        return predicate()

    # -- nodes ---------------------------------------------------------------------

    def add(self, node_id: str, factory: Callable[[FakeRuntime], Any]) -> Any:
        self.factories[node_id] = factory
        self.disks.setdefault(node_id, FakeDisk(self, node_id, self.fsync_us))
        self.incarnation.setdefault(node_id, 0)
        return self._boot(node_id)

    def _boot(self, node_id: str) -> Any:
        self.incarnation[node_id] += 1
        node = self.factories[node_id](FakeRuntime(self, node_id))
        self.nodes[node_id] = node
        node.start()
        return node

    def crash(self, node_id: str, lose_unsynced: bool = False) -> None:
        if node_id not in self.nodes:
            return
        del self.nodes[node_id]
        self.incarnation[node_id] += 1
        if lose_unsynced:
            self.disks[node_id].power_loss()

    def restart(self, node_id: str) -> Any:
        if node_id in self.nodes:
            return self.nodes[node_id]
        return self._boot(node_id)

    def node(self, node_id: str) -> Any:
        return self.nodes.get(node_id)

    # -- network -------------------------------------------------------------------

    def _send(self, src: str, dst: str, msg: Message) -> None:
        if (src, dst) in self.blocked:
            return
        if self.drop_filter is not None and self.drop_filter(src, dst, msg):
            return

        def deliver() -> None:
            if (src, dst) in self.blocked:
                return
            node = self.nodes.get(dst)
            if node is not None:
                self.delivered += 1
                node.on_message(src, msg)

        if dst in self.incarnation:
            delay = self.latency_us
            if self.jitter_us:
                delay += self._net_rng.randrange(self.jitter_us)
            at = max(self.now_us + delay, self._link_last_us.get((src, dst), 0))
            self._link_last_us[(src, dst)] = at  # links stay FIFO
            self.call_later(at - self.now_us, deliver)

    def cut(self, a: str, b: str) -> None:
        self.blocked.add((a, b))
        self.blocked.add((b, a))

    def isolate(self, node_id: str) -> None:
        for other in sorted(self.incarnation):
            if other != node_id:
                self.cut(node_id, other)

    def partition(self, groups: list[list[str]]) -> None:
        for i, g in enumerate(groups):
            for h in groups[i + 1:]:
                for a in g:
                    for b in h:
                        self.cut(a, b)

    def heal(self) -> None:
        self.blocked.clear()

    # -- events --------------------------------------------------------------------

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]
