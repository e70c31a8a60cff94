"""A tiny node program for transport tests and smoke runs: answers pings with pongs.

`python -m realnet.node --factory realnet.echo:EchoNode ...` runs it as a process.
It remembers the pong sequence numbers it received (in order) so an in-process test
can check delivery and order; `RNBoom` makes its handler raise, to show a handler
error does not kill the node.
"""

from __future__ import annotations

from simlog.runtime import Message, NodeBase, Runtime


class RNPing(Message, frozen=True):
    seq: int
    payload: bytes = b""


class RNPong(Message, frozen=True):
    seq: int
    payload_len: int = 0


class RNBoom(Message, frozen=True):
    why: str = ""


class EchoNode(NodeBase):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.pongs: list[tuple[str, int]] = []
        self.pings = 0

    def start(self) -> None:
        self.rt.emit("started")

    def on_message(self, src: str, msg: Message) -> None:
        if isinstance(msg, RNPing):
            self.pings += 1
            self.rt.send(src, RNPong(seq=msg.seq, payload_len=len(msg.payload)))
        elif isinstance(msg, RNPong):
            self.pongs.append((src, msg.seq))
        elif isinstance(msg, RNBoom):
            raise RuntimeError(f"boom: {msg.why}")
