"""A small replicated log: the conformance program that runs unchanged in both worlds.

Roles are fixed by node id (`RLConfig`): one leader (default "n1"), followers ("n2",
"n3"), and any other id is a client. It obeys the core rules: it imports only
`simlog.runtime` (and zlib for checksums) and reacts to events.

Theory of operation
- Disk: every node keeps one file, `rl/log`, of frames `len u32 | crc32 u32 | value`.
  `start()` recovers it: it reads every whole, checksummed frame and cuts off a torn
  or corrupt tail (emitting `log_truncated`), then fsyncs what it kept before
  treating any of it as durable.
- Writes: a client sends `RLWrite` to the leader, which appends the value and fsyncs
  (group commit: one fsync in flight per node, the next covers everything since).
  Only *durable* leader entries are replicated, so no follower ever holds an entry the
  leader could lose in a power loss, and every log is a prefix of the leader's.
- Followers append entries strictly in index order, fsync, and answer `RLAck` with
  their durable and written counts. The leader's commit is the highest count that a
  majority (leader included) holds durably; a client write is answered `RLWriteOk`
  once its index is below the commit. Commit never goes down.
- Catch-up: the leader starts sending to a follower only after hearing its counts, keeps
  at most `window` unacknowledged entries in flight per follower, and rewinds to the
  follower's written count when the follower asks (`resend`: a gap in indexes, a
  restart, or no progress while behind across a heartbeat).
- Heartbeat: every `heartbeat_us` the leader sends `RLHeartbeat`; followers answer with
  an `RLAck` (so a restarted leader relearns their counts). A follower that hears
  nothing from the leader for `leader_timeout_us` emits `leader_suspected` (once per
  silence) and `leader_back` when it hears it again.
- Reads: `RLRead(start)` is answered by the leader with the committed values from
  `start` (at most `max_read`).
- Bounds: at most `window` entries in flight per follower, `max_read` values per read,
  `max_waiting` unanswered writes (later ones are refused unanswered, `write_refused`).
- A disk error is fatal, as in Kafka: the node emits `disk_error` and halts.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from simlog.runtime import US_PER_MS, DiskError, Message, NodeBase, Runtime

LOG_PATH = "rl/log"
_HEADER_BYTES = 8


# ---------------------------------------------------------------------------
# Messages


class RLWrite(Message, frozen=True):
    req_id: int
    value: bytes


class RLWriteOk(Message, frozen=True):
    req_id: int
    index: int


class RLRead(Message, frozen=True):
    req_id: int
    start: int = 0


class RLReadOk(Message, frozen=True):
    req_id: int
    commit: int
    start: int
    values: list[bytes]


class RLAppend(Message, frozen=True):
    index: int
    value: bytes


class RLAck(Message, frozen=True):
    durable: int
    have: int
    resend: bool = False


class RLHeartbeat(Message, frozen=True):
    length: int
    commit: int


@dataclass(frozen=True)
class RLConfig:
    leader: str = "n1"
    followers: tuple[str, ...] = ("n2", "n3")
    heartbeat_us: int = 50 * US_PER_MS
    leader_timeout_us: int = 400 * US_PER_MS
    window: int = 256
    max_read: int = 1000
    max_waiting: int = 10_000  # unanswered client writes the leader holds; more: refused

    @property
    def replicas(self) -> tuple[str, ...]:
        return (self.leader, *self.followers)

    @property
    def majority(self) -> int:
        return len(self.replicas) // 2 + 1


# ---------------------------------------------------------------------------
# The log file


def encode_entry(value: bytes) -> bytes:
    return (len(value).to_bytes(4, "big") + zlib.crc32(value).to_bytes(4, "big") + value)


def decode_log(data: bytes) -> tuple[list[bytes], int]:
    """Whole, checksummed entries from the start of data, and the byte length they span."""
    entries: list[bytes] = []
    pos = 0
    while pos + _HEADER_BYTES <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        crc = int.from_bytes(data[pos + 4:pos + 8], "big")
        end = pos + _HEADER_BYTES + length
        if end > len(data):
            break
        value = data[pos + _HEADER_BYTES:end]
        if zlib.crc32(value) != crc:
            break
        entries.append(value)
        pos = end
    return entries, pos


class Replica(NodeBase):
    """What leader and followers share: the log on disk and group-committed fsync."""

    def __init__(self, rt: Runtime, config: RLConfig) -> None:
        super().__init__(rt)
        self.config = config
        self.entries: list[bytes] = []
        self.durable = 0  # entries covered by a completed fsync
        self._fsync_in_flight = False
        self._fsync_again = False
        self.failed = False

    def recover(self) -> None:
        disk = self.rt.disk
        size = disk.size(LOG_PATH) if disk.exists(LOG_PATH) else 0
        if isinstance(size, DiskError):
            return self.fail(size)
        data = disk.read(LOG_PATH, 0, size) if size else b""
        if isinstance(data, DiskError):
            return self.fail(data)
        self.entries, good = decode_log(data)
        if good < size:
            self.rt.emit("log_truncated", bytes_before=size, bytes_after=good)
            err = disk.truncate(LOG_PATH, good)
            if err is not None:
                return self.fail(err)
        self.rt.emit("recovered", entries=len(self.entries))
        self.sync()

    def append(self, value: bytes) -> bool:
        pos = self.rt.disk.append(LOG_PATH, encode_entry(value))
        if isinstance(pos, DiskError):
            self.fail(pos)
            return False
        self.entries.append(value)
        self.sync()
        return True

    def sync(self) -> None:
        """Group commit: one fsync in flight; the next one covers all later appends."""
        if self.failed:
            return
        if self._fsync_in_flight:
            self._fsync_again = True
            return
        target = len(self.entries)
        if target == 0:
            self.on_durable()
            return
        self._fsync_in_flight = True
        self.rt.disk.fsync(LOG_PATH, lambda err: self._synced(target, err))

    def _synced(self, target: int, err: DiskError | None) -> None:
        self._fsync_in_flight = False
        if err is not None:
            return self.fail(err)
        self.durable = max(self.durable, target)
        if self._fsync_again:
            self._fsync_again = False
            self.sync()
        self.on_durable()

    def on_durable(self) -> None:
        """Called whenever `durable` may have advanced."""

    def fail(self, err: DiskError) -> None:
        self.failed = True
        self.rt.emit("disk_error", error=str(err))
        self.rt.halt(f"disk error: {err}")


class Leader(Replica):
    def __init__(self, rt: Runtime, config: RLConfig) -> None:
        super().__init__(rt, config)
        self.commit = 0
        self.match: dict[str, int] = {f: 0 for f in config.followers}
        self.next_index: dict[str, int | None] = {f: None for f in config.followers}
        self.waiting: list[tuple[int, str, int]] = []  # (index, client, req_id), by index

    def start(self) -> None:
        self.rt.emit("started", role="leader")
        self.recover()
        self._heartbeat()

    def _heartbeat(self) -> None:
        for f in self.config.followers:
            self.rt.send(f, RLHeartbeat(length=self.durable, commit=self.commit))
        self.rt.set_timer(self.config.heartbeat_us, self._heartbeat)

    def on_message(self, src: str, msg: Message) -> None:
        if isinstance(msg, RLWrite):
            if len(self.waiting) >= self.config.max_waiting:
                self.rt.emit("write_refused", waiting=len(self.waiting))
                return
            index = len(self.entries)
            if self.append(msg.value):
                self.waiting.append((index, src, msg.req_id))
        elif isinstance(msg, RLAck):
            self.on_ack(src, msg)
        elif isinstance(msg, RLRead):
            end = min(self.commit, msg.start + self.config.max_read)
            values = self.entries[msg.start:end] if msg.start < end else []
            self.rt.send(src, RLReadOk(req_id=msg.req_id, commit=self.commit,
                                       start=msg.start, values=values))

    def on_ack(self, src: str, ack: RLAck) -> None:
        if src not in self.match:
            return
        self.match[src] = ack.durable
        nxt = self.next_index[src]
        if nxt is None or ack.resend or ack.have > nxt:
            self.next_index[src] = min(ack.have, len(self.entries))
        self.advance_commit()
        self.pump(src)

    def on_durable(self) -> None:
        self.advance_commit()
        for f in self.config.followers:
            self.pump(f)

    def pump(self, follower: str) -> None:
        """Send durable entries the follower lacks, at most `window` beyond its ack."""
        nxt = self.next_index[follower]
        if nxt is None:
            return
        limit = min(self.durable, self.match[follower] + self.config.window)
        while nxt < limit:
            self.rt.send(follower, RLAppend(index=nxt, value=self.entries[nxt]))
            nxt += 1
        self.next_index[follower] = nxt

    def advance_commit(self) -> None:
        counts = sorted([self.durable, *self.match.values()], reverse=True)
        candidate = min(counts[self.config.majority - 1], self.durable)
        if candidate <= self.commit:
            return
        self.commit = candidate
        done = 0
        for index, client, req_id in self.waiting:
            if index >= self.commit:
                break
            self.rt.send(client, RLWriteOk(req_id=req_id, index=index))
            done += 1
        del self.waiting[:done]


class Follower(Replica):
    def __init__(self, rt: Runtime, config: RLConfig) -> None:
        super().__init__(rt, config)
        self.last_heard_us = 0
        self.suspected = False
        self._have_at_last_heartbeat = -1
        self._nacked_at: int | None = None
        self._announced = False

    def start(self) -> None:
        self.rt.emit("started", role="follower")
        self.last_heard_us = self.rt.now()
        self.recover()
        self._check_leader()

    def _check_leader(self) -> None:
        silent_us = self.rt.now() - self.last_heard_us
        if silent_us >= self.config.leader_timeout_us and not self.suspected:
            self.suspected = True
            self.rt.emit("leader_suspected", leader=self.config.leader, silent_us=silent_us)
        self.rt.set_timer(self.config.heartbeat_us, self._check_leader)

    def _heard_leader(self) -> None:
        now = self.rt.now()
        if self.suspected:
            self.suspected = False
            self.rt.emit("leader_back", leader=self.config.leader,
                         silent_us=now - self.last_heard_us)
        self.last_heard_us = now

    def on_message(self, src: str, msg: Message) -> None:
        if src != self.config.leader:
            return
        self._heard_leader()
        if isinstance(msg, RLAppend):
            self.on_append(msg)
        elif isinstance(msg, RLHeartbeat):
            have = len(self.entries)
            stuck = msg.length > have and have == self._have_at_last_heartbeat
            self._have_at_last_heartbeat = have
            self.ack(resend=stuck)

    def on_append(self, msg: RLAppend) -> None:
        have = len(self.entries)
        if msg.index == have:
            self._nacked_at = None
            self.append(msg.value)
        elif msg.index > have and self._nacked_at != have:
            self._nacked_at = have  # ask once per gap; heartbeats retry later
            self.ack(resend=True)

    def on_durable(self) -> None:
        # The first ack after recovery asks the leader to rewind to our log's end.
        self.ack(resend=not self._announced)
        self._announced = True

    def ack(self, resend: bool = False) -> None:
        self.rt.send(self.config.leader,
                     RLAck(durable=self.durable, have=len(self.entries), resend=resend))


class Client(NodeBase):
    """Drives the cluster for tests: `write` and `read` return a request id; answers
    land in `acked` (req_id -> index) and `reads` (req_id -> (commit, values))."""

    def __init__(self, rt: Runtime, config: RLConfig) -> None:
        super().__init__(rt)
        self.config = config
        self.next_req = 0
        self.submitted: dict[int, bytes] = {}
        self.acked: dict[int, int] = {}
        self.reads: dict[int, tuple[int, list[bytes]]] = {}

    def start(self) -> None:
        self.rt.emit("started", role="client")

    def write(self, value: bytes) -> int:
        self.next_req += 1
        self.submitted[self.next_req] = value
        self.rt.send(self.config.leader, RLWrite(req_id=self.next_req, value=value))
        return self.next_req

    def read(self, start: int = 0, req_id: int | None = None) -> int:
        """Ask the leader for committed values from start; a caller may pick req_id
        (outside the range `write` uses) to find the answer in `reads` later."""
        if req_id is None:
            self.next_req += 1
            req_id = self.next_req
        self.rt.send(self.config.leader, RLRead(req_id=req_id, start=start))
        return req_id

    def on_message(self, src: str, msg: Message) -> None:
        if isinstance(msg, RLWriteOk):
            self.acked[msg.req_id] = msg.index
        elif isinstance(msg, RLReadOk):
            self.reads[msg.req_id] = (msg.commit, list(msg.values))


def make_factory(config: RLConfig | None = None) -> Callable[[Runtime], NodeBase]:
    """factory(rt) building the role that rt.node_id has in config."""
    cfg = config or RLConfig()

    def build(rt: Runtime) -> NodeBase:
        if rt.node_id == cfg.leader:
            return Leader(rt, cfg)
        if rt.node_id in cfg.followers:
            return Follower(rt, cfg)
        return Client(rt, cfg)

    return build


factory = make_factory()
