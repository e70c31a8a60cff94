"""Incremental fetch sessions (KIP-227), the leader's half: Kafka's FetchSession.scala
(CachedPartition, FetchSession, FetchSessionCache, FetchManager.newContext and the four
fetch contexts). The follower's half is `FetchSessionHandler` in `replica_fetcher.py`.

A follower that fetched every partition it follows from a leader in every request, and
got every one back, pays per partition and per round trip even for idle partitions.
With a session the leader remembers, per partition, the fetch parameters last asked
(offset, max bytes, leader epochs, the fetcher's log start) and what it last answered
(high watermark, last stable offset, log start offset); then
- a request names its session by (`session_id`, `session_epoch`), see
  `simlog.protocol.fetch`; a full fetch with epoch 0 (INITIAL) creates a session (an id
  drawn from the node's seeded rng, never 0) once it is answered, and the answer's
  `session_id` tells the fetcher; a full fetch naming a session closes it first;
  epoch -1 (FINAL) is a sessionless fetch (consumers), as before sessions;
- an incremental fetch (the session's id and its expected epoch) lists only partitions
  new to the session or whose parameters changed, and forgets others
  (`forgotten_topics_data`); the leader reads *every* session partition with its cached
  parameters (so each refreshes the follower's fetch state, as a full fetch did) and
  answers only those with something new: records, a changed high watermark / last
  stable offset / log start offset, an error (which also resets the cached high
  watermark, so the partition is answered again once the error is gone), a diverging
  epoch. A partition left out of the answer has nothing new for the follower.
- a wrong epoch answers INVALID_FETCH_SESSION_EPOCH, an unknown id
  FETCH_SESSION_ID_NOT_FOUND (top-level error, no partitions); the fetcher starts over
  with a full fetch. The epoch is advanced when the request is accepted and checked
  again when it is answered (a duplicate in between makes the answer an epoch error).
- an incremental fetch that leaves the session empty closes it (sessionless answer,
  `session_id` 0).

Sessions live in memory: a restarted broker has none. The cache holds at most
`max.incremental.fetch.session.cache.slots` (1000) sessions; a new one evicts, as
Kafka's tryEvict, a session unused for 120 s, else the least valuable evictable one by
(privileged, size, id) if that is not more valuable than the new one (followers'
sessions are privileged; a session becomes evictable by followers at once if it is a
consumer's, and by anyone once older than 120 s), else it is not created (answer
`session_id` 0: the fetcher keeps sending full fetches).

Determinism: partitions of a session are read and answered sorted by (topic,
partition), as everything else here (Kafka keeps insertion order and moves partitions
that returned data to the end for fairness under response.max.bytes; simlog never
rotated and does not start now). Session ids come from the node's rng only when a
session is created.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simlog.broker.delayed import FetchSpec
from simlog.broker.partition import NO_EPOCH, Partition, ReadOutcome, ReplicaState
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import FetchPartition, FetchRequest
from simlog.runtime import Rng, ms_to_us

if TYPE_CHECKING:
    from simlog.broker.delayed import DelayedFetch

TopicPartition = tuple[str, int]
PartitionLookup = Callable[[TopicPartition], "Partition | None"]

#: FetchMetadata.INVALID_SESSION_ID: no session.
INVALID_SESSION_ID = 0
#: FetchMetadata.INITIAL_EPOCH: a full fetch that asks for a new session.
INITIAL_EPOCH = 0
#: FetchMetadata.FINAL_EPOCH: a full fetch that wants no session (sessionless).
FINAL_EPOCH = -1
_MAX_EPOCH = (1 << 31) - 1
#: Kafka's max.incremental.fetch.session.cache.slots default.
DEFAULT_CACHE_SLOTS = 1000
#: KafkaServer.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS (not configurable in Kafka).
EVICTION_US = ms_to_us(120_000)


def next_epoch(epoch: int) -> int:
    """FetchMetadata.nextEpoch: sessionless stays sessionless; wraps to 1, never 0."""
    if epoch < 0:
        return FINAL_EPOCH
    if epoch == _MAX_EPOCH:
        return 1
    return epoch + 1


def spec_of(fp: FetchPartition) -> FetchSpec:
    return FetchSpec(fp.fetch_offset, fp.partition_max_bytes, fp.current_leader_epoch,
                     fp.last_fetched_epoch)


@dataclass(slots=True)
class CachedPartition:
    """One partition of a session: the fetch parameters the follower last asked for
    (`spec`, its log start) and what the leader last answered for it (-1: nothing yet,
    or an error since, so the next read is answered whatever it holds)."""

    spec: FetchSpec
    fetcher_log_start_offset: int = -1
    high_watermark: int = -1
    last_stable_offset: int = -1
    local_log_start_offset: int = -1
    # the partition's leader epoch when it was last parked (a long poll begun while it
    # was parked compares a later epoch with this one)
    park_epoch: int = NO_EPOCH

    def update_request(self, fp: FetchPartition) -> None:
        self.spec = spec_of(fp)
        self.fetcher_log_start_offset = fp.log_start_offset

    def must_respond(self, r: ReadOutcome) -> bool:
        """CachedPartition.maybeUpdateResponseData: whether this read has anything new
        for the follower; records what is answered."""
        must = r.diverging_epoch is not None or r.size_bytes > 0
        hw = r.high_watermark
        if hw != self.high_watermark:
            must = True
            self.high_watermark = hw
        lso = hw  # no transactions: a response's last stable offset is its HW
        if lso != self.last_stable_offset:
            must = True
            self.last_stable_offset = lso
        if r.log_start_offset != self.local_log_start_offset:
            must = True
            self.local_log_start_offset = r.log_start_offset
        if r.error is not Errors.NONE:
            # answered, and answered again once the error is gone
            self.high_watermark = -1
            must = True
        return must


def quiet_state(p: Partition | None, cached: CachedPartition,
                replica_id: int) -> ReplicaState | None:
    """The follower's state if a fetch of this session partition would change nothing
    but that state's fetch times and answer nothing: p leads, in the epoch the session
    asked for; the follower is in the ISR, at the log end, as the leader last saw it
    (log_end_offset == last_fetch_leader_leo == the log end), with the log's latest
    epoch; the session answered the current HW and log start. Else None."""
    if p is None or p.leader_id != p.local_broker_id or replica_id < 0:
        return None
    spec = cached.spec
    epoch = spec.current_leader_epoch
    if epoch != NO_EPOCH and epoch != p.leader_epoch:
        return None
    st = p.remotes.get(replica_id)
    if st is None or replica_id not in p.isr:
        return None
    log = p.log
    leo = log.log_end_offset
    if spec.fetch_offset != leo or st.log_end_offset != leo or st.last_fetch_leader_leo != leo:
        return None
    if spec.last_fetched_epoch != NO_EPOCH and spec.last_fetched_epoch != log.latest_epoch():
        return None
    hw = p.high_watermark
    if (cached.high_watermark != hw or cached.last_stable_offset != hw
            or cached.local_log_start_offset != log.log_start_offset):
        return None
    return st


@dataclass(slots=True)
class FetchSession:
    id: int
    privileged: bool  # created by a follower
    partitions: dict[TopicPartition, CachedPartition]
    creation_us: int
    last_used_us: int
    epoch: int  # the epoch the next incremental request must carry
    order: list[TopicPartition] = field(default_factory=list)
    # where the cache filed it at its last touch (FetchSessionCache.touch)
    cached_size: int = -1
    evictable_by_privileged: bool = False
    evictable_by_all: bool = False
    # -- parking (module docstring, "Reading only what changed") --
    replica_id: int = -1  # the follower fetching in it (-1: a consumer: nothing parks)
    lookup: PartitionLookup | None = None  # the leader's partitions (None: nothing parks)
    dirty: set[TopicPartition] = field(default_factory=set)  # read at the next fetch
    loops: int = 0  # reads of the session so far (an incremental fetch reads it once,
    #                 or twice if it waits: when it arrives and when it is answered)
    read_us: int = 0  # the time of the latest read, prev_read_us of the one before
    prev_read_us: int = 0
    cursor: TopicPartition | tuple[()] | None = None  # where a read in progress is
    todo: list[TopicPartition] | None = None  # what a read in progress reads, sorted
    waiter: DelayedFetch | None = None  # the session's long poll, while it waits
    closed: bool = False

    def __post_init__(self) -> None:
        self.order = sorted(self.partitions)
        self.dirty = set(self.partitions)

    def update(self, requested: Iterable[tuple[TopicPartition, FetchPartition]],
               forgotten: Iterable[TopicPartition]) -> None:
        """FetchSession.update: add or update the listed partitions, then drop the
        forgotten ones."""
        changed = False
        for tp, fp in requested:
            cached = self.partitions.get(tp)
            if cached is None:
                self.partitions[tp] = CachedPartition(spec_of(fp), fp.log_start_offset)
                self.dirty.add(tp)
                changed = True
            else:
                self._unpark(tp)
                cached.update_request(fp)
        for tp in forgotten:
            if tp in self.partitions:
                self._unpark(tp)
                del self.partitions[tp]
                self.dirty.discard(tp)
                changed = True
        if changed:
            self.order = sorted(self.partitions)

    def specs(self) -> dict[TopicPartition, FetchSpec]:
        parts = self.partitions
        return {tp: parts[tp].spec for tp in self.order}

    # ------------------------------------------------------------------ parking

    def begin_read(self, now_us: int) -> list[TopicPartition]:
        """A read of the session starts: the partitions to read, sorted (the caller
        sets `cursor` to each as it reads it; `mark_dirty` adds later ones meanwhile).
        Parked partitions count as read now, at their place in that order."""
        if self.todo is not None:  # pragma: no cover - one read at a time
            raise RuntimeError(f"fetch session {self.id} read while being read")
        if self.loops and now_us < self.read_us:
            # the node's clock stepped back: a parked state's caught-up time is the
            # latest of its fetch times, not the last; apply them all before going on
            self.release_all()
        self.loops += 1
        self.prev_read_us, self.read_us = self.read_us, now_us
        self.cursor = ()  # before every partition
        todo = self.todo = sorted(self.dirty)
        return todo

    def end_read(self) -> None:
        self.cursor = None
        self.todo = None

    def virtual_read_us(self, tp: TopicPartition, since_loop: int) -> int | None:
        """The time of this session's latest read of parked partition tp after read
        number since_loop (None: none since), counting a read in progress only once it
        got past tp."""
        k = self.loops
        cursor = self.cursor
        if cursor is not None and not tp < cursor:
            k -= 1
        if k <= since_loop:
            return None
        return self.read_us if k == self.loops else self.prev_read_us

    def release(self, tp: TopicPartition, st: ReplicaState) -> None:
        """st (parked here) leaves parking: apply the fetches that skipped it (a fetch at
        the leader's log end: caught up as of that fetch) and read tp again next time."""
        t = self.virtual_read_us(tp, st.park_loop)
        if t is not None:
            if t > st.last_caught_up_time_us:
                st.last_caught_up_time_us = t
            st.last_fetch_time_us = t
        st.parked = None
        self.mark_dirty(tp)

    def mark_dirty(self, tp: TopicPartition) -> None:
        """tp is read at the next read of the session (or later in the one in progress,
        if that has not got there yet), and a waiting long poll watches it."""
        if tp in self.dirty or tp not in self.partitions:
            return
        self.dirty.add(tp)
        todo = self.todo
        if todo is not None and tp > self.cursor:  # type: ignore[operator]
            insort(todo, tp)
        w = self.waiter
        if w is not None and not w.completed:
            w.watch(tp)

    def _unpark(self, tp: TopicPartition) -> None:
        if tp in self.dirty:
            return
        p = self.lookup(tp) if self.lookup is not None else None
        st = p.remotes.get(self.replica_id) if p is not None else None
        if st is not None and st.parked is self:
            self.release(tp, st)
        else:
            self.mark_dirty(tp)

    def park_quiet(self, tps: Iterable[TopicPartition]) -> None:
        """After an answer: park every partition of tps (just read and answered) that
        has nothing new for the follower until it changes (`quiet_state`)."""
        lookup = self.lookup
        if lookup is None or self.replica_id < 0 or self.closed or not PARKING:
            return
        parts = self.partitions
        dirty = self.dirty
        replica_id = self.replica_id
        for tp in tps:
            cached = parts.get(tp)
            if cached is None or tp not in dirty:
                continue
            p = lookup(tp)
            st = quiet_state(p, cached, replica_id)
            if st is None:
                continue
            other = st.parked
            if other is not None and other is not self:
                other.release(tp, st)
            st.parked = self
            st.park_loop = self.loops
            cached.park_epoch = p.leader_epoch  # type: ignore[union-attr]
            dirty.discard(tp)

    def release_all(self) -> None:
        """Every parked partition leaves parking (it is read at the next read)."""
        for tp in sorted(self.partitions):  # (rare: closing, a clock step back)
            self._unpark(tp)

    def detach_waiter(self) -> None:
        """The session is about to change under its waiting long poll (closed, or a
        request accepted meanwhile): the poll takes its own copy of the session's
        partitions and watches all of them, as before parking existed."""
        w = self.waiter
        self.waiter = None
        if w is not None and not w.completed:
            w.pin()

    def close(self) -> None:
        self.detach_waiter()
        self.release_all()
        self.closed = True

    def check_parked(self) -> None:
        """Debug check (VERIFY_PARKING): every partition not to be read is parked here
        and still has nothing new."""
        lookup = self.lookup
        for tp in self.order:
            if tp in self.dirty:
                continue
            assert lookup is not None, tp
            p = lookup(tp)
            cached = self.partitions[tp]
            st = quiet_state(p, cached, self.replica_id)
            assert st is not None and st.parked is self, (self.id, tp)
            assert p is not None and cached.park_epoch == p.leader_epoch, (self.id, tp)


#: Debug switch for tests: check at every read of a session that each partition it
#: skips is parked and has nothing new (`FetchSession.check_parked`, O(partitions)).
VERIFY_PARKING = False
#: Switch for tests: False parks nothing, so every fetch reads every session
#: partition, as before parking (the same run must give the same trace either way).
PARKING = True


class FetchContext:
    """What the replica manager reads for one request, and how it answers (Kafka's
    FetchContext). `error` set: answer that error alone."""

    error = Errors.NONE
    session_id = INVALID_SESSION_ID
    #: set by the replica manager: the time of its latest read for this context
    read_us: int | None = None

    def specs(self) -> dict[TopicPartition, FetchSpec]:
        return {}

    @property
    def session(self) -> FetchSession | None:
        """The session whose changed partitions alone are read (an incremental fetch);
        None: read every partition of specs()."""
        return None

    def finish(self, results: Mapping[TopicPartition, ReadOutcome]
               ) -> tuple[Errors, int, list[TopicPartition]]:
        """(top-level error, session id, partitions to answer, in order) once the
        partitions were read; updates the session with what is answered."""
        raise NotImplementedError  # pragma: no cover


class SessionErrorContext(FetchContext):
    """The request named a session that does not exist or a wrong epoch."""

    def __init__(self, error: Errors) -> None:
        self.error = error

    def finish(self, results: Mapping[TopicPartition, ReadOutcome]
               ) -> tuple[Errors, int, list[TopicPartition]]:
        return self.error, INVALID_SESSION_ID, []


class SessionlessFetchContext(FetchContext):
    """A full fetch without a session (epoch -1): every partition, every time."""

    def __init__(self, requested: dict[TopicPartition, FetchPartition]) -> None:
        self.requested = requested

    def specs(self) -> dict[TopicPartition, FetchSpec]:
        return {tp: spec_of(fp) for tp, fp in self.requested.items()}

    def finish(self, results: Mapping[TopicPartition, ReadOutcome]
               ) -> tuple[Errors, int, list[TopicPartition]]:
        return Errors.NONE, INVALID_SESSION_ID, list(results)


class FullFetchContext(SessionlessFetchContext):
    """A full fetch asking for a session: every partition is answered, and the session
    is created from what was asked and answered (if the cache has room)."""

    def __init__(self, cache: FetchSessionCache, requested: dict[TopicPartition, FetchPartition],
                 privileged: bool, replica_id: int = -1) -> None:
        super().__init__(requested)
        self.cache = cache
        self.privileged = privileged
        self.replica_id = replica_id

    def finish(self, results: Mapping[TopicPartition, ReadOutcome]
               ) -> tuple[Errors, int, list[TopicPartition]]:
        def partitions() -> dict[TopicPartition, CachedPartition]:
            out = {}
            for tp, r in results.items():
                fp = self.requested[tp]
                cached = CachedPartition(spec_of(fp), fp.log_start_offset)
                cached.must_respond(r)
                out[tp] = cached
            return out

        sid = self.cache.maybe_create_session(self.privileged, len(results), partitions,
                                              self.replica_id, self.read_us)
        session = self.cache.get(sid)
        if session is not None:
            session.park_quiet(results)
        return Errors.NONE, sid, list(results)


class IncrementalFetchContext(FetchContext):
    """An accepted incremental fetch: reads the session partitions that may have
    something new (every one not parked), answers the ones that have."""

    def __init__(self, session: FetchSession, request_epoch: int) -> None:
        self._session = session
        self.request_epoch = request_epoch
        self.session_id = session.id

    @property
    def session(self) -> FetchSession:
        return self._session

    def specs(self) -> dict[TopicPartition, FetchSpec]:
        return self._session.specs()

    def finish(self, results: Mapping[TopicPartition, ReadOutcome]
               ) -> tuple[Errors, int, list[TopicPartition]]:
        s = self._session
        if s.epoch != next_epoch(self.request_epoch):
            # another request of this session was accepted since (a duplicate)
            return Errors.INVALID_FETCH_SESSION_EPOCH, s.id, []
        parts = s.partitions
        answer = []
        for tp, r in results.items():
            cached = parts.get(tp)
            if cached is None or cached.must_respond(r):
                answer.append(tp)
        s.park_quiet(results)
        return Errors.NONE, s.id, answer


def requested_partitions(req: FetchRequest) -> dict[TopicPartition, FetchPartition]:
    return {(t.topic, fp.partition): fp for t in req.topics for fp in t.partitions}


def forgotten_partitions(req: FetchRequest) -> list[TopicPartition]:
    return [(f.topic, p) for f in req.forgotten_topics_data for p in f.partitions]


class FetchSessionCache:
    """A broker's fetch sessions (FetchSessionCache + FetchManager.newContext)."""

    def __init__(self, rng: Callable[[], Rng], now_us: Callable[[], int],
                 max_entries: int = DEFAULT_CACHE_SLOTS,
                 eviction_us: int = EVICTION_US,
                 lookup: PartitionLookup | None = None) -> None:
        self._rng = rng
        self._now_us = now_us
        self.max_entries = max_entries
        self.eviction_us = eviction_us
        # the leader's partitions, for parking (None: sessions park nothing)
        self.lookup = lookup
        self.sessions: dict[int, FetchSession] = {}
        self.evictions = 0

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    # ------------------------------------------------------------------ contexts

    def new_context(self, req: FetchRequest, privileged: bool) -> FetchContext:
        """FetchManager.newContext for one request."""
        sid, epoch = req.session_id, req.session_epoch
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if sid != INVALID_SESSION_ID:
                self.remove(sid)  # a full fetch closes the session it names
            requested = requested_partitions(req)
            if epoch == FINAL_EPOCH:
                return SessionlessFetchContext(requested)
            return FullFetchContext(self, requested, privileged, req.replica_id)
        session = self.sessions.get(sid)
        if session is None:
            return SessionErrorContext(Errors.FETCH_SESSION_ID_NOT_FOUND)
        if session.epoch != epoch:
            return SessionErrorContext(Errors.INVALID_FETCH_SESSION_EPOCH)
        requested = requested_partitions(req)
        # (a long poll of this session still waiting: a duplicate; it keeps what it had)
        session.detach_waiter()
        if req.replica_id != session.replica_id:  # (never: one follower per session)
            session.release_all()
            session.replica_id = req.replica_id
        session.update(requested.items(), forgotten_partitions(req))
        if not session.partitions:
            self.remove(sid)  # nothing left: closed, answered without a session
            return SessionlessFetchContext(requested)
        self.touch(session)
        session.epoch = next_epoch(session.epoch)
        return IncrementalFetchContext(session, epoch)

    # ------------------------------------------------------------------ the cache

    def _new_id(self) -> int:
        rng = self._rng()
        while True:
            sid = rng.randint(1, _MAX_EPOCH - 1)  # Kafka: nextInt(1, Int.MaxValue)
            if sid not in self.sessions:
                return sid

    def maybe_create_session(self, privileged: bool, size: int,
                             partitions: Callable[[], dict[TopicPartition, CachedPartition]],
                             replica_id: int = -1, read_us: int | None = None) -> int:
        """A new session's id, or INVALID_SESSION_ID when the cache has no room.
        read_us: when the partitions were read (now if None)."""
        now = self._now_us()
        if len(self.sessions) >= self.max_entries and not self.try_evict(privileged, size, now):
            return INVALID_SESSION_ID
        session = FetchSession(self._new_id(), privileged, partitions(), now, now,
                               next_epoch(INITIAL_EPOCH), replica_id=replica_id,
                               lookup=self.lookup)
        session.read_us = session.prev_read_us = now if read_us is None else read_us
        self.sessions[session.id] = session
        self.touch(session)
        return session.id

    def try_evict(self, privileged: bool, size: int, now_us: int) -> bool:
        """Make room for a new session of `size` partitions: evict the least recently
        used session if it is stale, else the least valuable evictable one unless the
        new one is worth less (FetchSessionCache.tryEvict)."""
        if not self.sessions:
            return False
        lru = min(self.sessions.values(), key=lambda s: (s.last_used_us, s.id))
        if now_us - lru.last_used_us > self.eviction_us:
            self.remove(lru.id)
            self.evictions += 1
            return True
        candidates = [s for s in self.sessions.values()
                      if (s.evictable_by_privileged if privileged else s.evictable_by_all)]
        if not candidates:
            return False
        victim = min(candidates, key=lambda s: (s.privileged, s.cached_size, s.id))
        if (privileged, size, 0) < (victim.privileged, victim.cached_size, victim.id):
            return False
        self.remove(victim.id)
        self.evictions += 1
        return True

    def touch(self, session: FetchSession) -> None:
        """Mark the session used now and file it as evictable or not."""
        now = self._now_us()
        session.last_used_us = now
        session.cached_size = len(session.partitions)
        old = now - session.creation_us > self.eviction_us
        session.evictable_by_privileged = not session.privileged or old
        session.evictable_by_all = old

    def remove(self, session_id: int) -> FetchSession | None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            session.close()
        return session


__all__ = [
    "DEFAULT_CACHE_SLOTS",
    "EVICTION_US",
    "FINAL_EPOCH",
    "INITIAL_EPOCH",
    "INVALID_SESSION_ID",
    "PARKING",
    "VERIFY_PARKING",
    "CachedPartition",
    "FetchContext",
    "FetchSession",
    "FetchSessionCache",
    "FullFetchContext",
    "IncrementalFetchContext",
    "SessionErrorContext",
    "SessionlessFetchContext",
    "next_epoch",
    "quiet_state",
]
