"""The interface the protocol core sees: the whole world, as far as a node knows.

Every node of simlog (broker, controller voter, client) is a state machine written
against this module and nothing else that touches the outside. Two hosts implement it:
`simlog.sim` (a deterministic SimPy world with faults) and `realnet` (asyncio, TCP,
real files). Rules this interface exists to keep (see docs/architecture.md):

- The core does no I/O. It never imports simpy, asyncio, socket, time, random,
  threading, nor opens files. A test scans the core packages for this.
- Nodes are driven by events: a message arrived, a timer fired, an fsync completed.
  A handler reacts by sending messages, setting timers and using its disk, then
  returns. No handler blocks, sleeps or waits.
- Time is an integer count of microseconds of the node's *own* clock (the simulation
  may skew and drift it). Chance comes only from `Runtime.random`, seeded by the host
  from the run seed and the node id.
- Page-cache disk calls are plain synchronous calls returning values; their cost is
  charged by the host as busy time. `fsync` completes later, as an event. Disk faults
  (no space, I/O error) are returned values, never exceptions.

Lifecycle (host side): the host builds a node with `factory(runtime)`, then calls
`node.start()`. A crash discards the node object with its timers and queued events;
a restart builds a *fresh* node object over the same disk, which must recover from it.
Pause/resume is invisible to the node except that its clock jumps.
"""

from __future__ import annotations

from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import msgspec

US_PER_MS = 1_000
US_PER_S = 1_000_000

T = TypeVar("T")

# ---------------------------------------------------------------------------
# Messages


class Message(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Base of every message exchanged between nodes.

    Subclasses are immutable, typed, and encodable by `simlog.protocol.codec` (msgpack,
    tagged by class name; never pickle). Their byte size is what the simulated network
    charges for; a subclass carrying bulk payloads may override `wire_size` with a
    cheaper exact or estimated figure.
    """

    registry: ClassVar[dict[str, type[Message]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__name__
        other = Message.registry.get(name)
        if other is not None and other is not cls:
            raise TypeError(f"two message types named {name}: {other.__module__}, {cls.__module__}")
        Message.registry[name] = cls

    def wire_size(self) -> int:
        """Bytes this message occupies on the wire (msgpack encoding + 4-byte frame)."""
        return len(_size_encoder.encode(self)) + 4


_size_encoder = msgspec.msgpack.Encoder()


class ConnectionReset(Message, frozen=True, tag=True, kw_only=True):
    """Delivered by the host (never sent by a node) to a node whose connection to
    `peer` broke: a message it sent reached `peer` while the peer's *process* was not
    running but its machine was up (the peer's kernel answered with a TCP RST/FIN),
    or, in the real world, its socket to `peer` closed or failed. `src` of the
    delivery is `peer`.

    An unreachable machine (network partition, isolation, power off) stays silent:
    its loss is only noticed by timeouts. A node may fail its in-flight requests to
    `peer` at once as retriable (Kafka's disconnect handling: NETWORK_EXCEPTION,
    then a metadata refresh and a retry), and must assume nothing about whether the
    requests it sent earlier were processed. Nodes that do not care may ignore it.
    """

    peer: str


# ---------------------------------------------------------------------------
# Disk


@dataclass(frozen=True, slots=True)
class DiskError:
    """A failed disk call. Returned, never raised: the core must decide what it means.

    kind is one of NO_SPACE (disk full), IO_ERROR (the device failed the call),
    NOT_FOUND (no such file), EXISTS (rename target clash where forbidden).
    """

    kind: str
    path: str
    detail: str = ""

    NO_SPACE: ClassVar[str] = "no_space"
    IO_ERROR: ClassVar[str] = "io_error"
    NOT_FOUND: ClassVar[str] = "not_found"
    EXISTS: ClassVar[str] = "exists"

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.kind} on {self.path}{extra}"


@dataclass(frozen=True, slots=True)
class FileSlice:
    """A byte range of a file, as the storage layer hands it out for a fetch.

    In the simulation it is read from the page cache; in the real world the socket
    layer sends it with `os.sendfile` without copying it through Python.
    """

    path: str
    position: int
    length: int


FsyncCallback = Callable[["DiskError | None"], None]


@runtime_checkable
class Disk(Protocol):
    """A node's private disk: flat files named by '/'-separated relative paths.

    Directories are implicit in paths ("orders-0/00000000000000000000.log"). All calls
    except `fsync` act on the page cache at once: written bytes are readable at once
    and survive a process crash, but only fsynced bytes survive a power loss.
    Metadata calls (create by first write, truncate, rename, delete) are durable when
    they return, as on a journalled file system; file *contents* are durable only up to
    the last completed fsync of that file.
    """

    def append(self, path: str, data: bytes) -> int | DiskError:
        """Append to path (created if missing). Returns the position written at."""
        ...

    def pwrite(self, path: str, offset: int, data: bytes) -> DiskError | None:
        """Write data at offset (extending the file with zeros if offset > size)."""
        ...

    def read(self, path: str, offset: int, length: int) -> bytes | DiskError:
        """Read up to length bytes at offset; shorter at end of file."""
        ...

    def size(self, path: str) -> int | DiskError: ...

    def exists(self, path: str) -> bool: ...

    def truncate(self, path: str, length: int) -> DiskError | None:
        """Cut the file to length bytes (never grows it)."""
        ...

    def rename(self, src: str, dst: str) -> DiskError | None:
        """Atomically rename src to dst, replacing dst if it exists."""
        ...

    def delete(self, path: str) -> DiskError | None: ...

    def list(self, prefix: str = "") -> list[str]:
        """Every file path starting with prefix, sorted."""
        ...

    def fsync(self, path: str, on_done: FsyncCallback) -> None:
        """Make path's contents durable; on_done(None | DiskError) runs later as an event
        of this node (never re-entrantly inside this call)."""
        ...


# ---------------------------------------------------------------------------
# Timers, chance


@runtime_checkable
class Timer(Protocol):
    """A handle for a pending timer."""

    def cancel(self) -> None:
        """Stop the timer; a no-op if it fired or was cancelled already."""
        ...

    @property
    def active(self) -> bool:
        """True until the timer fires or is cancelled."""
        ...


class Rng(Protocol):
    """The subset of `random.Random` a node may use. The host seeds it from the run
    seed and the node id, so draws are reproducible and independent between nodes."""

    def random(self) -> float: ...

    def randint(self, a: int, b: int) -> int: ...

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int: ...

    def uniform(self, a: float, b: float) -> float: ...

    def expovariate(self, lambd: float) -> float: ...

    def getrandbits(self, k: int) -> int: ...

    def choice(self, seq: Sequence[T]) -> T: ...

    def shuffle(self, x: MutableSequence[Any]) -> None: ...


# ---------------------------------------------------------------------------
# Runtime and Node


@runtime_checkable
class Runtime(Protocol):
    """What a host gives one node. One instance per node incarnation."""

    @property
    def node_id(self) -> str:
        """This node's id: "b1", "c2", "p1", "analytics-3"."""
        ...

    @property
    def disk(self) -> Disk:
        """This node's disk; the same files across crashes and restarts."""
        ...

    @property
    def random(self) -> Rng: ...

    def now(self) -> int:
        """Microseconds on this node's own clock (may be offset or drift in the sim)."""
        ...

    def set_timer(self, delay_us: int, callback: Callable[[], None]) -> Timer:
        """Run callback after delay_us microseconds of this node's clock."""
        ...

    def send(self, dst: str, msg: Message) -> None:
        """Send msg to node dst. Fire and forget: it may be delayed, dropped,
        duplicated (if the link is set so) or lost with a crashed peer. Messages on one
        link arrive in the order sent unless the link reorders. A message that
        reaches a peer whose process is down (machine up) comes back as a
        `ConnectionReset` from that peer."""
        ...

    def disconnect(self, peer: str) -> None:
        """Close this node's connection to peer, as Kafka's NetworkClient does when a
        request times out. What was already sent may still arrive (a closed socket's
        kernel finishes its sends), but nothing sent later waits behind it (the next
        send opens a new connection), and what peer sent on the old one is discarded."""
        ...

    def charge_cpu(self, cost_us: int) -> None:
        """Account cost_us microseconds of CPU work to this node beyond the host's
        per-event cost (e.g. per-byte CRC checks), so a busy node queues its events."""
        ...

    def emit(self, kind: str, **fields: Any) -> None:
        """Record an observable event (leader elected, ISR changed, ...) in the trace
        and the run's event log. Must not influence behaviour. Field values must be
        JSON-able scalars, lists or dicts with str keys."""
        ...

    def halt(self, reason: str) -> None:
        """Stop this node as a process exit would (Kafka halts on fatal disk errors,
        and after a controlled shutdown). Its disk stays; the host may restart it."""
        ...


@runtime_checkable
class Node(Protocol):
    """What the core implements for each kind of node; built by `factory(runtime)`."""

    def start(self) -> None:
        """Called once per incarnation, after construction: recover from disk, arm
        timers, send first messages."""
        ...

    def on_message(self, src: str, msg: Message) -> None:
        """A message from node src arrived."""
        ...


NodeFactory = Callable[[Runtime], Node]


class NodeBase:
    """Convenience base for nodes: keeps the runtime, and a graceful-stop hook.

    `shutdown()` is what the host calls for a clean stop (SIGTERM, a rolling restart):
    the default halts at once; a broker overrides it to run a controlled shutdown and
    call `rt.halt` when done.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @property
    def node_id(self) -> str:
        return self.rt.node_id

    def start(self) -> None:  # pragma: no cover - overridden
        pass

    def on_message(self, src: str, msg: Message) -> None:  # pragma: no cover
        raise NotImplementedError(type(msg).__name__)

    def shutdown(self) -> None:
        self.rt.halt("shutdown")


def ms_to_us(ms: int | float) -> int:
    """Kafka configs are in ms; the core counts µs. Rounds to the nearest µs."""
    return round(ms * US_PER_MS)
