"""`NodeHost`: runs one node on the asyncio loop — its listener, disk, runtime, node.

Data directory layout (stable across restarts, so a restart recovers):
    data_dir/disk/         the node's `RealDisk` root (what `rt.disk` sees)
    data_dir/events.jsonl  `rt.emit` events, one JSON object a line, appended
    data_dir/faults.json   injected faults (optional; see `apply_faults`), re-read on
                           start and whenever `reload_faults()` runs (SIGUSR1)

The host keeps the transport and the disk across node incarnations: `crash_node()`
kills the current incarnation (timers, queued callbacks and deliveries dropped, as in
the simulation), `start_node()` builds a fresh node with `factory(rt)` over the same
disk and calls `start()`. Real crashes are process deaths (see `realnet.node`); the
in-process ones exist for tests and for hosting a client node inside a test process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, TextIO

from realnet.disk import RealDisk
from realnet.runtime import AsyncioRuntime, seeded_random
from realnet.transport import LinkFault, Transport
from simlog.runtime import Message, Node, NodeFactory

log = logging.getLogger("realnet.host")


class NodeHost:
    """One node on this loop. `peers` is the shared address book (id -> (host, port))
    and may be updated while running (the transport reads it at each connect)."""

    def __init__(
        self,
        node_id: str,
        factory: NodeFactory,
        data_dir: str | os.PathLike[str],
        peers: dict[str, tuple[str, int]],
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int | str = 0,
        clock_offset_us: int = 0,
        clock_drift: float = 0.0,
        halt_on_error: bool = False,
        transport_options: dict[str, Any] | None = None,
    ) -> None:
        self.node_id = node_id
        self.factory = factory
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.peers = peers
        self.seed = seed
        self.clock_offset_us = clock_offset_us
        self.clock_drift = clock_drift
        self.halt_on_error = halt_on_error
        self.disk = RealDisk(self.data_dir / "disk")
        self.transport = Transport(
            node_id, peers, self._on_message, host=host, port=port,
            rng=seeded_random(seed, "network", node_id), **(transport_options or {}))
        self.runtime: AsyncioRuntime | None = None
        self.node: Node | None = None
        self.incarnation = 0
        self.halted: asyncio.Event | None = None
        self._event_log: TextIO | None = None

    @property
    def port(self) -> int:
        return self.transport.port

    async def start(self) -> int:
        """Listen, then start the first incarnation. Returns the bound port."""
        self.halted = asyncio.Event()
        self._event_log = open(self.data_dir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        port = await self.transport.start()
        self.peers.setdefault(self.node_id, (self.transport.host, port))
        self.reload_faults()
        self.start_node()
        return port

    def reload_faults(self) -> None:
        """Apply data_dir/faults.json if present (a missing file changes nothing)."""
        try:
            faults = json.loads((self.data_dir / "faults.json").read_text())
        except (OSError, ValueError):
            return
        self.apply_faults(faults)

    def apply_faults(self, faults: dict[str, Any]) -> None:
        """Injected faults, the real-world side of the simulation's: keys
        `disk_full` (bool), `fsync_delay_s` (float), `clock_offset_us` (int, the node's
        clock = monotonic + offset), `clock_drift` (float), `links` ({dst: {cut, loss,
        duplicate, delay_s, jitter_s}}: the whole set of degraded outgoing links; a
        link not named is healed). Absent keys are unchanged.
        Logs a `host_faults` line (with the file's `seq`) in the event log."""
        if "disk_full" in faults:
            self.disk.set_full(bool(faults["disk_full"]))
        if "fsync_delay_s" in faults:
            self.disk.set_fsync_delay(float(faults["fsync_delay_s"]))
        if "links" in faults:
            links = {dst: LinkFault(**spec) for dst, spec in sorted(faults["links"].items())}
            for dst in sorted(set(self.transport.links) | set(links)):
                self.transport.set_link(dst, links.get(dst))
        offset, drift = faults.get("clock_offset_us"), faults.get("clock_drift")
        if offset is not None:
            self.clock_offset_us = int(offset)
        if drift is not None:
            self.clock_drift = float(drift)
        if self.runtime is not None and (offset is not None or drift is not None):
            self.runtime.set_clock(offset_us=None if offset is None else int(offset),
                                   drift=None if drift is None else float(drift))
        if self._event_log is not None:
            record = {"node": self.node_id, "kind": "host_faults", **faults}
            self._event_log.write(json.dumps(record) + "\n")
            self._event_log.flush()

    def start_node(self) -> None:
        """Build a fresh incarnation over the same disk and call its start()."""
        if self.runtime is not None and self.runtime.alive:
            raise RuntimeError(f"{self.node_id} is running")
        assert self.halted is not None, "call start() first"
        self.halted.clear()
        self.incarnation += 1
        rt = AsyncioRuntime(
            self.node_id, self.disk, self.transport.send,
            disconnect=self.transport.disconnect, seed=self.seed,
            clock_offset_us=self.clock_offset_us, clock_drift=self.clock_drift,
            event_log=self._event_log, on_halt=self._on_halt,
            halt_on_error=self.halt_on_error)
        self.runtime = rt
        try:
            self.node = self.factory(rt)
        except Exception:
            log.exception("node %s: factory failed", self.node_id)
            rt.kill()
            self.halted.set()
            raise
        rt.attach(self.node)
        rt.start_node()

    def crash_node(self) -> None:
        """Kill the current incarnation in-process (no events, no graceful stop)."""
        if self.runtime is not None:
            self.runtime.kill()
        self.node = None

    def call_in(self, fn) -> None:
        """Run fn(node) as an event of the current incarnation (dropped if dead)."""
        if self.runtime is not None:
            self.runtime.call_in(fn)

    def shutdown_node(self) -> None:
        """Graceful stop: node.shutdown() if it has one (NodeBase), else halt."""
        rt, node = self.runtime, self.node
        if rt is None or not rt.alive:
            return
        if node is not None and hasattr(node, "shutdown"):
            rt._dispatch(node.shutdown)
        else:
            rt.halt("shutdown")

    async def close(self) -> None:
        self.crash_node()
        await self.transport.close()
        if self._event_log is not None:
            self._event_log.close()
            self._event_log = None

    def _on_message(self, src: str, msg: Message) -> None:
        rt = self.runtime
        if rt is not None:
            rt.deliver(src, msg)

    def _on_halt(self, reason: str) -> None:
        log.info("node %s halted: %s", self.node_id, reason)
        self.node = None
        if self.halted is not None:
            self.halted.set()
