"""One node's process in the world: its inbox, busy time, clock, lifecycle and runtime.

Protocol nodes are plain state machines, not SimPy processes: the world schedules
callbacks, and every callback aimed at a node goes through `NodeHost.arrive`, which
runs it at once or queues it in the node's inbox. Invariants:

- Events of one node run one at a time, in arrival order (ties broken by the world's
  schedule order), never re-entrantly.
- A handler starting at time t is charged `per_event_us` (+ per KiB received), then
  whatever it charges itself (`rt.charge_cpu`, page-cache costs); the node is busy
  until t + cost and queues what arrives meanwhile. Messages it sends depart at
  t + the cost charged so far; timers count from there too.
- While paused, events wait in the inbox (nothing is lost) and run in order at resume.
- A crash (or `rt.halt`) discards the node object, its inbox and its timers and bumps
  the incarnation: timers, fsync callbacks and messages addressed to the old
  incarnation are dropped when they come due. The disk (page cache included) stays.
- One `SimRuntime` per incarnation; once its incarnation is over it does nothing
  (a halted node's later sends vanish, as they would after process exit).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

import msgspec

from simlog.runtime import Message, Node, NodeFactory
from simlog.sim.clock import NodeClock
from simlog.sim.disk import SimDisk
from simlog.sim.network import SER_TABLE as _SER_TABLE
from simlog.sim.params import QUANTILE_BITS

_QB = QUANTILE_BITS

if TYPE_CHECKING:
    from simlog.sim.network import Link
    from simlog.sim.world import World

# Message.wire_size inlined for classes that keep the default (saves a Python call on
# the hottest path); must match runtime.Message.wire_size.
_DEFAULT_WIRE_SIZE = Message.wire_size
_encode_into = msgspec.msgpack.Encoder().encode_into
_buf = bytearray(256)  # scratch for sizing (the world is single-threaded)


class SimTimer:
    """A pending node timer (implements `runtime.Timer`)."""

    __slots__ = ("_active", "callback", "incarnation")

    def __init__(self, callback: Callable[[], None], incarnation: int) -> None:
        self.callback = callback
        self.incarnation = incarnation
        self._active = True

    def cancel(self) -> None:
        self._active = False

    @property
    def active(self) -> bool:
        return self._active


class SimRuntime:
    """What one incarnation of a node sees (implements `runtime.Runtime`). When the
    incarnation ends, the host turns the object into an `_EndedRuntime` (its class
    is swapped), whose calls do nothing: no liveness check on the hot path."""

    __slots__ = ("_host", "_incarnation")

    def __init__(self, host: NodeHost, incarnation: int) -> None:
        self._host = host
        self._incarnation = incarnation

    @property
    def node_id(self) -> str:
        return self._host.node_id

    @property
    def disk(self) -> SimDisk:
        return self._host.disk

    @property
    def random(self) -> random.Random:
        return self._host.rng

    @property
    def alive(self) -> bool:
        return True

    def now(self) -> int:
        host = self._host
        t = host.cursor_us if host.in_handler else host.env._now
        clock = host.clock
        return t + clock.shift_us if not clock.drift_ppb else clock.local(t)

    def set_timer(self, delay_us: int, callback: Callable[[], None]) -> SimTimer:
        host = self._host
        timer = SimTimer(callback, self._incarnation)
        delay_us = int(delay_us)  # a float must never reach the schedule
        if delay_us < 0:
            delay_us = 0
        elif host.clock.drift_ppb:
            delay_us = host.clock.to_global_delay(delay_us)
        heappush(host.queue, ((host.cursor_us if host.in_handler else host.env._now)
                              + delay_us, 1, next(host.eid), host.timer_entry, timer))
        return timer

    def send(self, dst: str, msg: Message) -> None:
        host = self._host
        link = host.out_links.get(dst)  # only links that are not cut nor quirky
        depart = host.cursor_us if host.in_handler else host.env._now
        if link is None:
            host.net_send(host.node_id, dst, msg, depart, host.net_rng)
            return
        link.sent += 1
        # Fast path of Network.send for a working link without loss, duplication or
        # reorder (same draws in the same order, so the same outcome).
        if type(msg).wire_size is _DEFAULT_WIRE_SIZE:
            _encode_into(msg, _buf)
            size = len(_buf) + 4
        else:
            size = msg.wire_size()
        ser = link.ser
        if ser is not None:
            free = link.free_us
            if depart < free:
                depart = free
            depart += (ser[size] if size < _SER_TABLE
                       else -(-size * 1_000_000 // link.bandwidth_bytes_per_s))
            link.free_us = depart
        table = link.table
        arrival = depart + (link.median_us if table is None else table[link.getbits(_QB)])
        if arrival < link.last_arrival_us:
            arrival = link.last_arrival_us
        link.last_arrival_us = arrival
        heappush(link.queue, (arrival, 1, next(link.eid), link.deliver_entry, link.gen, msg,
                              size))

    def charge_cpu(self, cost_us: int) -> None:
        self._host.charge(int(cost_us))

    def emit(self, kind: str, **fields: Any) -> None:
        self._host.trace("emit", kind, tuple(sorted(fields.items())))

    def halt(self, reason: str) -> None:
        self._host.stop("halt", reason)

    def disconnect(self, peer: str) -> None:
        host = self._host
        host.trace("disconnect", peer)
        host.world.network.disconnect(host.node_id, peer)


class _EndedRuntime(SimRuntime):
    """A SimRuntime whose incarnation is over (crash, halt): a process that exited
    sends nothing, sets no timer, emits nothing."""

    __slots__ = ()

    @property
    def alive(self) -> bool:
        return False

    def set_timer(self, delay_us: int, callback: Callable[[], None]) -> SimTimer:
        timer = SimTimer(callback, self._incarnation)
        timer._active = False
        return timer

    def send(self, dst: str, msg: Message) -> None:
        pass

    def charge_cpu(self, cost_us: int) -> None:
        pass

    def emit(self, kind: str, **fields: Any) -> None:
        pass

    def halt(self, reason: str) -> None:
        pass

    def disconnect(self, peer: str) -> None:
        pass


class NodeHost:
    """The world's side of one node id, across all its incarnations."""

    def __init__(self, world: World, node_id: str, factory: NodeFactory, disk: SimDisk,
                 rng: random.Random, net_rng: random.Random) -> None:
        self.world = world
        self.env = world.env
        self.at = world._at
        self.queue = world._queue
        self.eid = world._eid
        self.timer_entry = self._timer_entry
        self.net_send = world.network.send
        self.trace_append = world.trace.append
        self.per_event_us = world.cpu.per_event_us
        self.per_kib_us = world.cpu.per_kib_us
        self.node_id = node_id
        self.out_links: dict[str, Link] = {}  # dst -> link, filled by Network.link
        self.in_links: list[Link] = []  # links to this node, filled by Network.link
        self.factory = factory
        self.disk = disk
        self.rng = rng
        self.net_rng = net_rng
        self.clock = NodeClock()
        self.incarnation = 0
        self.node: Node | None = None
        self.rt: SimRuntime | None = None
        self.inbox: deque[tuple[Callable[[Any], None], Any]] = deque()
        self.busy_until_us = 0
        self.cursor_us = 0
        self.in_handler = False
        self.paused = False
        self.powered_off = False  # crash(lose_unsynced=True) until restart: no resets
        self._drain_due = False
        self.events_handled = 0
        self.extra_busy_us = 0  # CPU charged beyond per_event_us (see busy_total_us)
        self.crashes = 0
        self.lost_events = 0

    # ------------------------------------------------------------------ lifecycle

    def boot(self) -> None:
        """Build a fresh node over the same disk; its start() runs as its first event."""
        self.incarnation += 1
        self.rt = SimRuntime(self, self.incarnation)
        self.paused = False
        self.powered_off = False
        self.busy_until_us = self.env._now
        self.node = self.factory(self.rt)
        for link in self.in_links:
            link.bump()
        self.trace("boot", self.incarnation)
        self.arrive(self._do_start, None)

    def stop(self, kind: str, reason: str = "") -> None:
        """End the current incarnation (crash, halt): drop the node, inbox and timers."""
        if self.node is None:
            return
        self.trace(kind, reason, len(self.inbox))  # inbox events lost with the process
        self.lost_events += len(self.inbox)
        self.incarnation += 1
        self.node = None
        if self.rt is not None:
            self.rt.__class__ = _EndedRuntime
        self.rt = None
        for link in self.in_links:
            link.bump()
        self.inbox.clear()
        self.paused = False
        self._drain_due = False
        self.crashes += 1
        if not self.powered_off:
            self.world.network.close_connections(self.node_id, self.world.now_us)

    def pause(self) -> None:
        if self.node is not None and not self.paused:
            self.paused = True
            self.trace("pause")

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.trace("resume")
            self._schedule_drain()

    # ------------------------------------------------------------------ events

    def arrive(self, fn: Callable[[Any], None], arg: Any) -> None:
        """An event of this node came due: run it now or queue it."""
        if self.node is None:
            return
        if self.paused or self.inbox or self.busy_until_us > self.env._now:
            self.inbox.append((fn, arg))
            self._schedule_drain()
            return
        self._run(fn, arg)

    def _schedule_drain(self) -> None:
        if not self._drain_due and not self.paused and self.inbox:
            self._drain_due = True
            now = self.env._now
            self.at(self.busy_until_us if self.busy_until_us > now else now,
                    self._drain, self.incarnation)

    def _drain(self, incarnation: int) -> None:
        if incarnation != self.incarnation:
            return  # scheduled for an incarnation that has ended
        self._drain_due = False
        if self.paused or self.node is None or not self.inbox:
            return
        if self.busy_until_us > self.env._now:
            self._schedule_drain()
            return
        fn, arg = self.inbox.popleft()
        self._run(fn, arg)
        self._schedule_drain()

    def _run(self, fn: Callable[[Any], None], arg: Any) -> None:
        now = self.env._now
        self.cursor_us = now + self.per_event_us
        self.in_handler = True
        try:
            fn(arg)
        finally:
            self.in_handler = False
            self.events_handled += 1
            self.busy_until_us = self.cursor_us

    @property
    def busy_total_us(self) -> int:
        """CPU time the node was charged: per_event_us per handled event + the rest."""
        return self.events_handled * self.per_event_us + self.extra_busy_us

    def charge(self, cost_us: int) -> None:
        """Add CPU time: inside a handler it delays what the handler does next."""
        self.extra_busy_us += cost_us
        if self.in_handler:
            self.cursor_us += cost_us
        else:
            now = self.env._now
            self.busy_until_us = max(self.busy_until_us, now) + cost_us

    def _do_start(self, _: Any) -> None:
        self.trace("start")
        self.node.start()  # type: ignore[union-attr]

    def deliver(self, src: str, msg: Message, size: int) -> None:
        """A message arrived (the network checked link and incarnation). The common
        case, an idle node, is `arrive` + `_run` + `do_deliver` inlined."""
        now = self.env._now
        if self.paused or self.inbox or self.busy_until_us > now:
            self.arrive(self.do_deliver, (src, msg, size))
            return
        cursor = now + self.per_event_us
        if self.per_kib_us:
            kib_us = size * self.per_kib_us // 1024
            cursor += kib_us
            self.extra_busy_us += kib_us
        self.cursor_us = cursor
        self.in_handler = True
        self.trace_append((now, self.node_id, "deliver", src, type(msg).__name__, size))
        try:
            self.node.on_message(src, msg)  # type: ignore[union-attr]
        finally:
            self.in_handler = False
            self.events_handled += 1
            self.busy_until_us = self.cursor_us

    def do_deliver(self, arg: tuple[str, Message, int]) -> None:
        src, msg, size = arg
        if self.per_kib_us:
            kib_us = size * self.per_kib_us // 1024
            self.cursor_us += kib_us
            self.extra_busy_us += kib_us
        self.trace_append((self.env._now, self.node_id, "deliver", src, type(msg).__name__,
                           size))
        self.node.on_message(src, msg)  # type: ignore[union-attr]

    def _timer_entry(self, e: tuple[Any, ...]) -> None:
        """Heap entry (due, prio, id, fn, timer) of a node timer came due. The idle-node
        case is `arrive` + `_run` + `_do_timer` inlined."""
        timer = e[4]
        if not timer._active or timer.incarnation != self.incarnation:
            return
        now = e[0]
        if self.paused or self.inbox or self.busy_until_us > now:
            self.arrive(self._do_timer, timer)
            return
        timer._active = False
        cb = timer.callback
        self.cursor_us = now + self.per_event_us
        self.in_handler = True
        self.trace_append((now, self.node_id, "timer", getattr(cb, "__name__", "")))
        try:
            cb()
        finally:
            self.in_handler = False
            self.events_handled += 1
            self.busy_until_us = self.cursor_us

    def _do_timer(self, timer: SimTimer) -> None:
        if not timer._active:
            return  # cancelled while queued
        timer._active = False
        cb = timer.callback
        self.trace_append((self.env._now, self.node_id, "timer", getattr(cb, "__name__", "")))
        cb()

    def _do_call(self, fn: Callable[[], None]) -> None:
        fn()

    def _do_call_node(self, fn: Callable[[Node], None]) -> None:
        self.trace("call")
        fn(self.node)  # type: ignore[arg-type]

    def call_in(self, fn: Callable[[Node], None]) -> None:
        self.arrive(self._do_call_node, fn)

    def _callback_due(self, arg: tuple[int, Callable[[], None]]) -> None:
        incarnation, fn = arg
        if incarnation == self.incarnation:
            self.arrive(self._do_call, fn)

    # ------------------------------------------------------------------ disk host

    def now_us(self) -> int:
        return self.cursor_us if self.in_handler else self.env._now

    def schedule(self, delay_us: int, fn: Callable[[], None]) -> None:
        """Run fn later as an event of this incarnation (dropped if it ends first)."""
        self.at(self.now_us() + max(0, delay_us), self._callback_due,
                       (self.incarnation, fn))

    def trace(self, kind: str, *fields: Any) -> None:
        self.trace_append((self.env._now, self.node_id, kind, *fields))
