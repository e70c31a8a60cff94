"""Test support: a probe node that records what reaches it and sends on request.

`ProbeNode` keeps every arrival as (src, seq, local time µs, true time µs), every
`ConnectionReset` as (peer, true time µs) and every timer firing; tests drive it through `world.call_in(node_id, fn)` or `probe_send`.
Used by tests/sim and usable by anyone testing against the World.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simlog.runtime import ConnectionReset, Message, NodeBase, Runtime


class SimProbe(Message, frozen=True, tag=True, kw_only=True):
    seq: int
    pad: bytes = b""


class ProbeNode(NodeBase):
    def __init__(self, rt: Runtime, on_start: Callable[[ProbeNode], None] | None = None,
                 cpu_per_message_us: int = 0) -> None:
        super().__init__(rt)
        self.arrivals: list[tuple[str, int, int, int]] = []
        self.resets: list[tuple[str, int]] = []
        self.fired: list[tuple[str, int]] = []
        self.started = False
        self.on_start = on_start
        self.cpu_per_message_us = cpu_per_message_us
        self.fsynced: list[Any] = []

    def start(self) -> None:
        self.started = True
        if self.on_start is not None:
            self.on_start(self)

    def on_message(self, src: str, msg: Message) -> None:
        world_now = getattr(self.rt, "_host").env.now  # noqa: B009 - test support only
        if isinstance(msg, ConnectionReset):
            assert msg.peer == src
            self.resets.append((src, world_now))
            return
        assert isinstance(msg, SimProbe)
        if self.cpu_per_message_us:
            self.rt.charge_cpu(self.cpu_per_message_us)
        self.arrivals.append((src, msg.seq, self.rt.now(), world_now))

    def timer(self, name: str, delay_us: int) -> Any:
        def fire() -> None:
            self.fired.append((name, self.rt.now()))
        fire.__name__ = f"fire_{name}"
        return self.rt.set_timer(delay_us, fire)

    def seqs_from(self, src: str) -> list[int]:
        return [seq for s, seq, _, _ in self.arrivals if s == src]


def probe_send(world: Any, src: str, dst: str, count: int, seq: int = 0,
               pad: bytes = b"") -> None:
    """Have src send count probes (seq, seq+1, ...) to dst, now, in one handler."""
    def go(node: ProbeNode) -> None:
        for i in range(count):
            node.rt.send(dst, SimProbe(seq=seq + i, pad=pad))
    world.call_in(src, go)
