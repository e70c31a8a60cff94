"""`AsyncioRuntime`: `simlog.runtime.Runtime` for one node incarnation on an asyncio loop.

The real-world twin of the simulation's per-node runtime (aioquic's adapter in spirit:
the node decides, this host arms `loop.call_at` and does the I/O).

- Clock: `now()` is the monotonic clock in integer µs, plus `clock_offset_us`, with
  the time elapsed since the runtime started scaled by `1 + clock_drift` (skew as the
  simulation has it). Timers run on the node's clock: a delay of d node-µs fires
  after d / (1 + drift) real µs.
- Chance: `random` is a `random.Random` seeded from SHA-256 of (seed, "node", node id).
- Events: message deliveries, timer firings and fsync completions all run on the loop
  through `_dispatch`, one at a time, never re-entrantly.
- Handler errors: an exception escaping a handler is logged with the node id and
  emitted as a `handler_error` event; the node keeps running (its state is whatever
  the handler left). With `halt_on_error=True` the node halts instead. Log-and-continue
  is the default because a test cluster should show the error, not hang on a dead node.
- After `halt` (or `kill`, the host's crash) the incarnation is dead: its timers,
  pending fsync callbacks and deliveries are dropped, sends do nothing.
- `charge_cpu` is a no-op: real CPU is real.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TextIO

from simlog.runtime import Disk, DiskError, FsyncCallback, Message, Node

log = logging.getLogger("realnet.runtime")


def seeded_random(seed: int | str, stream: str, node_id: str) -> random.Random:
    """A Random seeded from SHA-256 of (seed, stream, node id), never `hash()`."""
    digest = hashlib.sha256(f"{seed}\0{stream}\0{node_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class AsyncioTimer:
    """Handle of one node timer (a `loop.call_at` handle)."""

    __slots__ = ("_handle", "_owner")

    def __init__(self, owner: AsyncioRuntime) -> None:
        self._owner = owner
        self._handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._owner._timers.discard(self)

    @property
    def active(self) -> bool:
        return self._handle is not None


class IncarnationDisk:
    """The node's view of its disk: every call goes to the real disk, but fsync
    completions are delivered through the runtime, so a dead incarnation never sees
    them and handler errors are caught."""

    def __init__(self, disk: Disk, rt: AsyncioRuntime) -> None:
        self._disk = disk
        self._rt = rt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._disk, name)

    def fsync(self, path: str, on_done: FsyncCallback) -> None:
        rt = self._rt

        def done(err: DiskError | None) -> None:
            rt._dispatch(on_done, err)

        self._disk.fsync(path, done)


class AsyncioRuntime:
    """One node incarnation's runtime. See the module docstring."""

    def __init__(
        self,
        node_id: str,
        disk: Disk,
        send: Callable[[str, Message], object],
        *,
        disconnect: Callable[[str], object] | None = None,
        seed: int | str = 0,
        clock_offset_us: int = 0,
        clock_drift: float = 0.0,
        event_log: TextIO | None = None,
        on_halt: Callable[[str], None] | None = None,
        halt_on_error: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if clock_drift <= -1.0:
            raise ValueError("clock_drift must be > -1")
        self._node_id = node_id
        self._send = send
        self._disconnect = disconnect
        self._disk = IncarnationDisk(disk, self)
        self._random = seeded_random(seed, "node", node_id)
        self._loop = loop or asyncio.get_running_loop()
        self._event_log = event_log
        self._on_halt = on_halt
        self.halt_on_error = halt_on_error
        self._timers: set[AsyncioTimer] = set()
        self._node: Node | None = None
        self.alive = True
        self.halt_reason: str | None = None
        self.handler_errors = 0
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._mono0_ns = time.monotonic_ns()
        self._base_us = self._mono0_ns // 1000 + clock_offset_us
        self._drift = clock_drift

    # -- host side -----------------------------------------------------------------

    def attach(self, node: Node) -> None:
        self._node = node

    def start_node(self) -> None:
        """Call node.start() as this incarnation's first event."""
        if self._node is not None:
            self._dispatch(self._node.start)

    def deliver(self, src: str, msg: Message) -> None:
        """A message from src arrived: run the node's handler now (on the loop)."""
        if self._node is not None:
            self._dispatch(self._node.on_message, src, msg)

    def call_in(self, fn: Callable[[Node], object]) -> None:
        """Run fn(node) as an event of this node (how tests and workloads drive it)."""
        if self._node is not None:
            self._dispatch(fn, self._node)

    def kill(self) -> None:
        """The host's crash: the incarnation stops at once, without events."""
        self.alive = False
        for t in list(self._timers):
            t.cancel()

    def set_clock(self, offset_us: int | None = None, drift: float | None = None) -> None:
        """Re-skew the clock from now on (now() stays continuous unless offset given)."""
        current = self.now()
        self._mono0_ns = time.monotonic_ns()
        self._base_us = current
        if offset_us is not None:
            self._base_us = self._mono0_ns // 1000 + offset_us
        if drift is not None:
            if drift <= -1.0:
                raise ValueError("clock_drift must be > -1")
            self._drift = drift

    def _dispatch(self, fn: Callable[..., object], *args: Any) -> None:
        if not self.alive:
            return
        try:
            fn(*args)
        except Exception as exc:
            self.handler_errors += 1
            name = getattr(fn, "__qualname__", repr(fn))
            log.exception("node %s: handler %s failed", self._node_id, name)
            self.emit("handler_error", handler=name, error=repr(exc))
            if self.halt_on_error:
                self.halt(f"handler error: {exc!r}")

    # -- Runtime interface -----------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def disk(self) -> Disk:
        return self._disk  # type: ignore[return-value]

    @property
    def random(self) -> random.Random:
        return self._random

    def now(self) -> int:
        elapsed_us = (time.monotonic_ns() - self._mono0_ns) // 1000
        if self._drift:
            elapsed_us = int(elapsed_us * (1.0 + self._drift))
        return self._base_us + elapsed_us

    def set_timer(self, delay_us: int, callback: Callable[[], None]) -> AsyncioTimer:
        timer = AsyncioTimer(self)
        if not self.alive:
            return timer
        delay_s = max(0, delay_us) / 1e6 / (1.0 + self._drift)

        def fire() -> None:
            timer._handle = None
            self._timers.discard(timer)
            self._dispatch(callback)

        timer._handle = self._loop.call_at(self._loop.time() + delay_s, fire)
        self._timers.add(timer)
        return timer

    def send(self, dst: str, msg: Message) -> None:
        if not self.alive:
            return
        if dst == self._node_id:
            self._loop.call_soon(self.deliver, dst, msg)
            return
        self._send(dst, msg)

    def charge_cpu(self, cost_us: int) -> None:
        pass

    def disconnect(self, peer: str) -> None:
        if self.alive and self._disconnect is not None:
            self._disconnect(peer)

    def emit(self, kind: str, **fields: Any) -> None:
        record = {"t_us": self.now(), "node": self._node_id, "kind": kind, **fields}
        if self._event_log is not None:
            self._event_log.write(json.dumps(record, default=repr) + "\n")
            self._event_log.flush()
        for listener in self.listeners:
            listener(record)

    def halt(self, reason: str) -> None:
        if not self.alive:
            return
        self.emit("halt", reason=reason)
        self.halt_reason = reason
        self.kill()
        if self._on_halt is not None:
            self._loop.call_soon(self._on_halt, reason)
