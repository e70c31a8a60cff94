"""Node-to-node TCP transport of the real world: framed msgpack messages, fire and forget.

Wire format, per TCP connection (one direction only: the connecting node sends, the
accepting node receives):
    frame  := length (4 bytes, big-endian, unsigned) || payload (length bytes)
    first frame: msgpack `Hello{node_id, version}` naming the sender;
    every later frame: one `simlog.protocol.codec`-encoded `Message` (never pickle).

Invariants and choices:
- One outbound connection per peer, opened lazily on the first send, reopened after it
  breaks with exponential backoff (bounded, jittered by a seeded `random.Random`).
- Fire and forget, like the simulated network: a message to an unknown, unreachable or
  backing-off peer is dropped and counted; while a connection attempt is in flight at
  most `max_pending` frames wait for it; a peer that does not read (SIGSTOPped) gets at
  most `max_buffer_bytes` buffered, then messages are dropped. Messages on one
  connection arrive in the order sent. Frames sent during one loop tick are written
  with one `write` call at the end of the tick (fewer syscalls, same order).
- A frame that does not decode (unknown type, bad fields) is logged, counted and
  skipped: the frame boundary is known, so the connection and the node survive. A
  frame longer than `max_frame_bytes` or a bad hello closes the connection.
- Received messages go to `on_message(src, msg)` on the loop, one at a time.
- Link faults (ARCHITECTURE rule 7: latency, duplication and reorder belong in the real
  transport) are applied by the sender per destination (`set_link`): a one-way `cut`,
  `loss` and `duplicate` probabilities drawn from the seeded rng, and a `delay_s` plus
  uniform `jitter_s` (jitter reorders). A `cut` holds what is sent (at most
  `max_pending` frames, then drops) and sends it, in order, when the link heals, as TCP
  retransmits through a partition and as the simulated network's default transport
  does. Partitions of whole hosts belong in network namespaces; `cut` is the cheap
  in-process stand-in for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from simlog.protocol import codec
from simlog.runtime import Message

log = logging.getLogger("realnet.transport")

WIRE_VERSION = 1
_LEN = struct.Struct(">I")


class Hello(msgspec.Struct, frozen=True, tag="simlog-hello"):
    """First frame on every connection: who is sending."""

    node_id: str
    version: int = WIRE_VERSION


_hello_encoder = msgspec.msgpack.Encoder()
_hello_decoder = msgspec.msgpack.Decoder(Hello)


def frame(payload: bytes) -> bytes:
    """One length-prefixed frame."""
    return _LEN.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, max_frame_bytes: int) -> bytes:
    """Read one frame's payload; raises ValueError if it is too long, IncompleteReadError
    at end of stream."""
    (length,) = _LEN.unpack(await reader.readexactly(4))
    if length > max_frame_bytes:
        raise ValueError(f"frame of {length} bytes exceeds {max_frame_bytes}")
    return await reader.readexactly(length)


@dataclass
class TransportStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0
    bad_frames: int = 0
    connects: int = 0
    connect_failures: int = 0


@dataclass(frozen=True)
class LinkFault:
    """How this node's link to one destination misbehaves (all off by default)."""

    cut: bool = False
    loss: float = 0.0
    duplicate: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0


@dataclass
class _Peer:
    node_id: str
    writer: asyncio.StreamWriter | None = None
    connecting: asyncio.Task[None] | None = None
    pending: list[bytes] = field(default_factory=list)
    outbuf: list[bytes] = field(default_factory=list)  # frames awaiting this tick's flush
    outbuf_bytes: int = 0
    next_attempt: float = 0.0
    backoff_s: float = 0.0


class Transport:
    """Sends and receives framed messages for one node. See the module docstring."""

    def __init__(
        self,
        node_id: str,
        peers: dict[str, tuple[str, int]],
        on_message: Callable[[str, Message], None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rng: random.Random | None = None,
        max_frame_bytes: int = 64 << 20,
        max_pending: int = 1024,
        max_buffer_bytes: int = 8 << 20,
        backoff_min_s: float = 0.01,
        backoff_max_s: float = 0.2,
        connect_timeout_s: float = 1.0,
        read_chunk_bytes: int = 256 << 10,
    ) -> None:
        self.node_id = node_id
        self.peers = peers  # shared, mutable address book: node id -> (host, port)
        self.on_message = on_message
        self.host, self.port = host, port
        self.rng = rng or random.Random(0)
        self.max_frame_bytes = max_frame_bytes
        self.max_pending = max_pending
        self.max_buffer_bytes = max_buffer_bytes
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.read_chunk_bytes = read_chunk_bytes
        self.stats = TransportStats()
        self._out: dict[str, _Peer] = {}
        self.links: dict[str, LinkFault] = {}
        self._held: dict[str, list[bytes]] = {}  # frames a cut holds, per destination
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._inbound: set[asyncio.StreamWriter] = set()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port=0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self._closed = True
        if self._server is not None:
            self._server.close()
        for peer in self._out.values():
            if peer.writer is not None:
                peer.writer.close()
                peer.writer = None
        for w in list(self._inbound):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def _spawn(self, coro) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- sending -------------------------------------------------------------------

    def set_link(self, dst: str, fault: LinkFault | None) -> None:
        """Degrade (or with None heal) this node's link to dst; a healed cut sends what
        it held, in order."""
        if fault is None or fault == LinkFault():
            self.links.pop(dst, None)
        else:
            self.links[dst] = fault
        if not self.links.get(dst, LinkFault()).cut:
            for data in self._held.pop(dst, []):
                self._send_frame(dst, data)

    def send(self, dst: str, msg: Message) -> bool:
        """Queue msg for dst; False if it was dropped."""
        if self._closed or dst not in self.peers:
            self.stats.dropped += 1
            return False
        data = frame(codec.encode(msg))
        fault = self.links.get(dst)
        if fault is None:
            return self._send_frame(dst, data)
        if fault.cut:
            held = self._held.setdefault(dst, [])
            if len(held) >= self.max_pending:
                self.stats.dropped += 1
                return False
            held.append(data)
            return True
        if fault.loss and self.rng.random() < fault.loss:
            self.stats.dropped += 1
            return False
        copies = 2 if fault.duplicate and self.rng.random() < fault.duplicate else 1
        for _ in range(copies):
            delay_s = fault.delay_s + (fault.jitter_s * self.rng.random() if fault.jitter_s else 0)
            if delay_s > 0:
                asyncio.get_running_loop().call_later(delay_s, self._send_frame, dst, data)
            else:
                self._send_frame(dst, data)
        return True

    def _send_frame(self, dst: str, data: bytes) -> bool:
        if self._closed:
            self.stats.dropped += 1
            return False
        peer = self._out.get(dst)
        if peer is None:
            peer = self._out[dst] = _Peer(dst)
        w = peer.writer
        if w is not None and not w.is_closing():
            if w.transport.get_write_buffer_size() + peer.outbuf_bytes > self.max_buffer_bytes:
                self.stats.dropped += 1
                return False
            # Coalesce: frames sent in one loop tick leave in one write (one syscall).
            if not peer.outbuf:
                asyncio.get_running_loop().call_soon(self._flush, peer, w)
            peer.outbuf.append(data)
            peer.outbuf_bytes += len(data)
            self.stats.sent += 1
            return True
        peer.writer = None
        if peer.connecting is None:
            if asyncio.get_running_loop().time() < peer.next_attempt:
                self.stats.dropped += 1
                return False
            peer.connecting = self._spawn(self._connect(peer))
        if len(peer.pending) >= self.max_pending:
            self.stats.dropped += 1
            return False
        peer.pending.append(data)
        return True

    def disconnect(self, dst: str) -> None:
        """Close the connection to dst (what was written still goes out first: a
        graceful close); the next send to dst connects again."""
        peer = self._out.get(dst)
        if peer is None or peer.writer is None:
            return
        w, peer.writer = peer.writer, None
        if peer.outbuf:
            self._flush(peer, w)
        w.close()

    def _flush(self, peer: _Peer, writer: asyncio.StreamWriter) -> None:
        frames, peer.outbuf, peer.outbuf_bytes = peer.outbuf, [], 0
        if not writer.is_closing():
            writer.write(b"".join(frames))

    async def _connect(self, peer: _Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port = self.peers[peer.node_id]
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.connect_timeout_s)
        except (TimeoutError, OSError, KeyError) as exc:
            self.stats.connect_failures += 1
            self.stats.dropped += len(peer.pending)
            peer.pending.clear()
            peer.backoff_s = min(self.backoff_max_s,
                                 max(self.backoff_min_s, peer.backoff_s * 2))
            peer.next_attempt = loop.time() + peer.backoff_s * (0.5 + self.rng.random())
            log.debug("%s: connect to %s failed: %r", self.node_id, peer.node_id, exc)
            return
        finally:
            peer.connecting = None
        writer.write(frame(_hello_encoder.encode(Hello(self.node_id))))
        for data in peer.pending:
            writer.write(data)
        self.stats.sent += len(peer.pending)
        peer.pending.clear()
        peer.writer = writer
        peer.backoff_s = 0.0
        self.stats.connects += 1
        self._spawn(self._watch(peer, reader, writer))

    async def _watch(self, peer: _Peer, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """The receiver never writes back, so EOF here means the peer went away."""
        try:
            with contextlib.suppress(OSError):
                await reader.read(1)
        finally:
            if peer.writer is writer:
                peer.writer = None
            writer.close()

    # -- receiving -----------------------------------------------------------------

    def _deliver_frames(self, src: str, buf: bytearray) -> int:
        """Decode and deliver every whole frame at the start of buf; returns the bytes
        used. Reading in chunks and cutting frames here costs far less than two
        `readexactly` awaits per message."""
        pos, end = 0, len(buf)
        with memoryview(buf) as view:
            while end - pos >= 4 and not self._closed:
                (length,) = _LEN.unpack_from(view, pos)
                if length > self.max_frame_bytes:
                    raise ValueError(f"frame of {length} bytes exceeds {self.max_frame_bytes}")
                if end - pos - 4 < length:
                    break
                payload = view[pos + 4:pos + 4 + length]
                pos += 4 + length
                try:
                    msg = codec.decode(payload)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    self.stats.bad_frames += 1
                    log.warning("%s: dropped undecodable frame from %s: %s",
                                self.node_id, src, exc)
                    continue
                finally:
                    payload.release()
                self.stats.received += 1
                self.on_message(src, msg)
        return pos

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._inbound.add(writer)
        src = "?"
        try:
            hello = _hello_decoder.decode(
                await asyncio.wait_for(read_frame(reader, 4096), 5.0))
            if hello.version != WIRE_VERSION:
                raise ValueError(f"wire version {hello.version} != {WIRE_VERSION}")
            src = hello.node_id
            buf = bytearray()
            while not self._closed:
                data = await reader.read(self.read_chunk_bytes)
                if not data:
                    break
                buf += data
                used = self._deliver_frames(src, buf)
                del buf[:used]
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # close() cancels handlers; end normally, since asyncio's stream callback
            # would otherwise log the cancellation of a server task as an error.
            pass
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.stats.bad_frames += 1
            log.warning("%s: closing connection from %s: %s", self.node_id, src, exc)
        finally:
            self._inbound.discard(writer)
            writer.close()
