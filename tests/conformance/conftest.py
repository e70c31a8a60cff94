"""The conformance harness: one cluster abstraction, two worlds.

A `Cluster` runs the replicated-log program (`simlog.examples.replicated_log`) on three
replicas ("n1" leader, "n2", "n3") plus a client node "c1", and offers what a test
needs and nothing world-specific:

    write(value)  read(start) -> (commit, values) | None   acked_values()
    crash(node, power_loss=False)  restart(node)  pause(node)  resume(node)
    slow_fsync(node, seconds)  disk_full(node, full)  append_to_log(node, data)
    set_clock(node, offset_us, drift)  degrade_link(src, dst, loss, duplicate)
    partition(groups)  heal()
    wait_until(cond, timeout_s) -> bool   sleep(s)   events(node, kind)   log(node)

- `SimCluster` drives `simlog.sim.World`: time is simulated, waits advance the world.
- `RealCluster` runs each replica as a `python -m realnet.node` process on 127.0.0.1
  ports the OS chose, and the client inside this process on an asyncio loop thread.
  Crash is SIGKILL, pause/resume SIGSTOP/SIGCONT, power loss SIGKILL + cutting files
  to their fsynced length. Every wait is bounded; teardown kills every process.

Timeouts are given in seconds of the world's own time: simulated in the sim, wall in
the real world. The `cluster` fixture is parametrized over both worlds; a test that
uses it runs twice and must hold in both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from realnet.disk import SYNCED_FILE
from simlog.examples.replicated_log import LOG_PATH, Client, RLConfig, decode_log, make_factory
from simlog.runtime import US_PER_S, Runtime

REPLICAS = ("n1", "n2", "n3")
CLIENT = "c1"
CONFIG = RLConfig(leader="n1", followers=("n2", "n3"))


class Cluster:
    """What the conformance tests see. Subclasses implement the world-specific parts."""

    replicas = REPLICAS
    leader = CONFIG.leader
    config = CONFIG
    name = "?"
    _reads = 0

    # -- world-specific ---------------------------------------------------------------
    def start(self) -> None: raise NotImplementedError
    def close(self) -> None: raise NotImplementedError
    def crash(self, node: str, power_loss: bool = False) -> None: raise NotImplementedError
    def restart(self, node: str) -> None: raise NotImplementedError
    def pause(self, node: str) -> None: raise NotImplementedError
    def resume(self, node: str) -> None: raise NotImplementedError
    def slow_fsync(self, node: str, seconds: float) -> None:
        """Make each of node's fsyncs take about `seconds` (0: back to normal)."""
        raise NotImplementedError
    def disk_full(self, node: str, full: bool = True) -> None: raise NotImplementedError
    def degrade_link(self, src: str, dst: str, loss: float = 0.0,
                     duplicate: float = 0.0) -> None:
        """Messages src -> dst (replicas only) are lost / duplicated with these
        probabilities; 0, 0 heals the link."""
        raise NotImplementedError

    def partition(self, groups: list[list[str]]) -> None:
        """Cut every link between nodes of different groups, both ways."""
        raise NotImplementedError

    def heal(self) -> None:
        """Restore every link cut by partition()."""
        raise NotImplementedError

    def set_clock(self, node: str, offset_us: int | None = None,
                  drift: float | None = None) -> None:
        """Skew node's clock: local = true + offset_us from now on; drift 0.5 = 50% fast."""
        raise NotImplementedError
    def append_to_log(self, node: str, data: bytes) -> None:
        """Write raw bytes at the end of a (crashed) node's log file: a torn write."""
        raise NotImplementedError
    def sleep(self, seconds: float) -> None: raise NotImplementedError
    def events(self, node: str, kind: str | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError
    def log_bytes(self, node: str) -> bytes:
        """The node's log file as it is now (page cache), b"" if missing."""
        raise NotImplementedError
    def in_client(self, fn: Callable[[Client], Any]) -> None:
        """Run fn(client) as an event of the client node."""
        raise NotImplementedError
    def client_state(self, fn: Callable[[Client], Any]) -> Any:
        """Read the client's state (outside its events, without changing it)."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------
    def wait_until(self, cond: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
        """Let the world run until cond() holds (True) or timeout_s passes (False)."""
        waited = 0.0
        while not cond():
            if waited >= timeout_s:
                return False
            self.sleep(step_s)
            waited += step_s
        return True

    def write(self, value: bytes) -> None:
        self.in_client(lambda c: c.write(value))

    def acked_values(self) -> dict[bytes, int]:
        """value -> log index, for every write the leader acknowledged."""
        return self.client_state(lambda c: {c.submitted[r]: i for r, i in c.acked.items()})

    def write_all(self, values: list[bytes], timeout_s: float = 5.0) -> bool:
        for v in values:
            self.write(v)
        return self.wait_until(lambda: set(values) <= set(self.acked_values()), timeout_s)

    def read(self, start: int = 0, timeout_s: float = 2.0) -> tuple[int, list[bytes]] | None:
        self._reads += 1
        req = -self._reads  # harness-chosen ids never clash with the client's own
        self.in_client(lambda c: c.read(start, req_id=req))
        if not self.wait_until(lambda: self.client_state(lambda c: req in c.reads), timeout_s):
            return None
        return self.client_state(lambda c: c.reads[req])

    def durable_bytes(self, node: str) -> bytes:
        """What a power loss now would leave of the node's log file."""
        raise NotImplementedError

    def log(self, node: str) -> list[bytes]:
        """The whole entries in the node's log file."""
        return decode_log(self.log_bytes(node))[0]

    def durable_log(self, node: str) -> list[bytes]:
        """The whole entries a power loss now would leave in the node's log."""
        return decode_log(self.durable_bytes(node))[0]


# ---------------------------------------------------------------------------
# Sim world


class _TeeRuntime:
    """Forwards everything to the sim runtime, copying emits into the harness's list."""

    def __init__(self, rt: Runtime, sink: list[dict[str, Any]]) -> None:
        self._rt = rt
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    def emit(self, kind: str, **fields: Any) -> None:
        self._sink.append({"t_us": self._rt.now(), "node": self._rt.node_id,
                           "kind": kind, **fields})
        self._rt.emit(kind, **fields)


class SimCluster(Cluster):
    name = "sim"

    def __init__(self, seed: int = 1) -> None:
        from simlog.sim import DiskParams, World

        # The real world's power-loss emulation keeps no torn prefix of unsynced
        # writes; the sim here does the same so both lose exactly what was unsynced.
        self.world = World(seed=seed, disk=DiskParams(torn_writes=False))
        self._events: list[dict[str, Any]] = []
        inner = make_factory(CONFIG)
        self.factory = lambda rt: inner(_TeeRuntime(rt, self._events))

    def start(self) -> None:
        for node in (*REPLICAS, CLIENT):
            self.world.add_node(node, self.factory)
        self.sleep(0.05)

    def close(self) -> None:
        pass

    def crash(self, node: str, power_loss: bool = False) -> None:
        self.world.crash(node, lose_unsynced=power_loss)

    def restart(self, node: str) -> None:
        self.world.restart(node)

    def pause(self, node: str) -> None:
        self.world.pause(node)

    def resume(self, node: str) -> None:
        self.world.resume(node)

    def slow_fsync(self, node: str, seconds: float) -> None:
        base_us = self.world.disk(node).params.fsync_latency_us
        self.world.slow_disk(node, max(1.0, seconds * US_PER_S / base_us))

    def disk_full(self, node: str, full: bool = True) -> None:
        self.world.disk_full(node, full=full)

    def append_to_log(self, node: str, data: bytes) -> None:
        self.world.disk(node).append(LOG_PATH, data)

    def set_clock(self, node: str, offset_us: int | None = None,
                  drift: float | None = None) -> None:
        self.world.set_clock(node, offset_us=offset_us, drift=drift)

    def degrade_link(self, src: str, dst: str, loss: float = 0.0,
                     duplicate: float = 0.0) -> None:
        self.world.degrade_link(src, dst, loss=loss, duplicate=duplicate)

    def partition(self, groups: list[list[str]]) -> None:
        self.world.partition(groups)

    def heal(self) -> None:
        self.world.heal()

    def sleep(self, seconds: float) -> None:
        self.world.run_for(round(seconds * US_PER_S))

    def events(self, node: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self._events
                if e["node"] == node and (kind is None or e["kind"] == kind)]

    def log_bytes(self, node: str) -> bytes:
        disk = self.world.disk(node)
        size = disk.size(LOG_PATH) if disk.exists(LOG_PATH) else 0
        return disk.read(LOG_PATH, 0, size) if size else b""

    def durable_bytes(self, node: str) -> bytes:
        return self.world.disk(node).durable_bytes(LOG_PATH) or b""

    def in_client(self, fn: Callable[[Client], Any]) -> None:
        self.world.call_in(CLIENT, fn)

    def client_state(self, fn: Callable[[Client], Any]) -> Any:
        return fn(self.world.node(CLIENT))


# ---------------------------------------------------------------------------
# Real world


class _LoopThread:
    """An asyncio loop on a daemon thread; `call(fn)` runs fn on it and returns."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="conformance-client-loop")
        self.thread.start()

    def run(self, coro, timeout_s: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Callable[[], Any], timeout_s: float = 5.0) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def go() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed back to the caller
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(go)
        return fut.result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5.0)
        if not self.thread.is_alive():
            self.loop.close()


class RealCluster(Cluster):
    name = "real"

    def __init__(self, root: Path, seed: int = 1) -> None:
        self.base = root
        self.root = root
        self.seed = seed
        self.book: dict[str, tuple[str, int]] = {}
        self.procs: dict = {}
        self._links: dict[str, dict[str, dict[str, float]]] = {}
        self.loop: _LoopThread | None = None
        self.client_host = None

    def start(self, attempts: int = 3) -> None:
        """Start on fresh OS-chosen ports; if another process grabs one of them between
        choosing and binding, start again on new ports in a fresh directory."""
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(self.base / f"attempt-{attempt}")
                return
            except (RuntimeError, OSError):
                self.close()
                if attempt == attempts:
                    raise

    def _start_once(self, root: Path) -> None:
        from realnet.host import NodeHost
        from realnet.procs import NodeProcess, free_ports

        self.root = root
        ports = free_ports(len(REPLICAS) + 1)
        self.book = {n: ("127.0.0.1", p) for n, p in zip((*REPLICAS, CLIENT), ports)}
        self.procs = {
            n: NodeProcess(n, self.book[n][1], root / n, self.book,
                           "simlog.examples.replicated_log:factory", seed=self.seed,
                           launcher="fork")
            for n in REPLICAS
        }
        self.loop = _LoopThread()
        self.client_host = NodeHost(CLIENT, make_factory(CONFIG), root / CLIENT,
                                    dict(self.book), port=self.book[CLIENT][1], seed=self.seed)
        self.loop.run(self.client_host.start())
        for p in self.procs.values():  # in parallel: no replica waits long for another
            p.spawn()
        for p in self.procs.values():
            p.wait_ready()

    def close(self) -> None:
        for p in self.procs.values():
            p.stop()
        if self.loop is not None:
            if self.client_host is not None:
                with contextlib.suppress(Exception):  # teardown must go on
                    self.loop.run(self.client_host.close(), timeout_s=5.0)
            self.loop.close()
        self.loop = None
        self.client_host = None

    def crash(self, node: str, power_loss: bool = False) -> None:
        if power_loss:
            self.procs[node].power_loss()
        else:
            self.procs[node].crash()

    def restart(self, node: str) -> None:
        self.procs[node].restart()

    def pause(self, node: str) -> None:
        self.procs[node].pause()

    def resume(self, node: str) -> None:
        self.procs[node].resume()

    def slow_fsync(self, node: str, seconds: float) -> None:
        self.procs[node].set_faults(fsync_delay_s=seconds)

    def disk_full(self, node: str, full: bool = True) -> None:
        self.procs[node].set_faults(disk_full=full)

    def degrade_link(self, src: str, dst: str, loss: float = 0.0,
                     duplicate: float = 0.0) -> None:
        links = self._links.setdefault(src, {})
        links.setdefault(dst, {}).update(loss=loss, duplicate=duplicate)
        self._push_links(src)

    def _push_links(self, src: str) -> None:
        links = self._links.get(src, {})
        if src in self.procs:
            self.procs[src].set_faults(links=links)
            return
        from realnet.transport import LinkFault  # the in-process client

        host = self.client_host
        assert self.loop is not None and host is not None
        faults = {dst: LinkFault(**spec) for dst, spec in links.items()}

        def apply() -> None:
            for dst in sorted(set(host.transport.links) | set(faults)):
                host.transport.set_link(dst, faults.get(dst))

        self.loop.call(apply)

    def partition(self, groups: list[list[str]]) -> None:
        where = {n: i for i, g in enumerate(groups) for n in g}
        for src in (*REPLICAS, CLIENT):
            for dst in (*REPLICAS, CLIENT):
                if src != dst and where.get(src, -1) != where.get(dst, -2):
                    self._links.setdefault(src, {}).setdefault(dst, {})["cut"] = True
            self._push_links(src)

    def heal(self) -> None:
        for src in (*REPLICAS, CLIENT):
            for spec in self._links.get(src, {}).values():
                spec.pop("cut", None)
            self._push_links(src)

    def set_clock(self, node: str, offset_us: int | None = None,
                  drift: float | None = None) -> None:
        faults = {k: v for k, v in (("clock_offset_us", offset_us), ("clock_drift", drift))
                  if v is not None}
        self.procs[node].set_faults(**faults)

    def append_to_log(self, node: str, data: bytes) -> None:
        assert not self.procs[node].running, "only while crashed"
        with open(self.root / node / "disk" / LOG_PATH, "ab") as f:
            f.write(data)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def events(self, node: str, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.root / node / "events.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line cut by SIGKILL mid-write
            if kind is None or e["kind"] == kind:
                out.append(e)
        return out

    def log_bytes(self, node: str) -> bytes:
        path = self.root / node / "disk" / LOG_PATH
        return path.read_bytes() if path.exists() else b""

    def durable_bytes(self, node: str) -> bytes:
        disk = self.root / node / "disk"
        try:
            synced = json.loads((disk / SYNCED_FILE).read_text()).get(LOG_PATH, 0)
        except (OSError, ValueError):
            synced = 0
        return self.log_bytes(node)[:synced]

    def in_client(self, fn: Callable[[Client], Any]) -> None:
        assert self.loop is not None and self.client_host is not None
        self.loop.call(lambda: self.client_host.call_in(fn))

    def client_state(self, fn: Callable[[Client], Any]) -> Any:
        assert self.loop is not None and self.client_host is not None
        return self.loop.call(lambda: fn(self.client_host.node))


# ---------------------------------------------------------------------------
# Fixtures


def _sim_available() -> bool:
    try:
        from simlog.sim import World  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=[
    pytest.param("sim", id="sim"),
    pytest.param("real", id="real", marks=[pytest.mark.realnet, pytest.mark.timeout(60)]),
])
def cluster(request, tmp_path: Path):
    """A started three-replica cluster plus client, in the sim or as real processes."""
    if request.param == "sim":
        if not _sim_available():
            pytest.skip("simlog.sim.World has not landed yet")
        c: Cluster = SimCluster()
    else:
        c = RealCluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.close()


@pytest.fixture
def make_sim_cluster():
    """SimCluster(seed) constructor, for sim-only tests (determinism)."""
    if not _sim_available():
        pytest.skip("simlog.sim.World has not landed yet")
    return SimCluster
