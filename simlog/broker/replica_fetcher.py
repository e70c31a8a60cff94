"""The follower side: one fetcher per leader broker pulls that leader's partitions
(Kafka's ReplicaFetcherThread, as an event-driven state machine).

Loop: send one Fetch (replica.fetch.wait.max.ms, replica.fetch.min.bytes,
replica.fetch.max.bytes per partition, replica.fetch.response.max.bytes in all) for
every partition it follows from this leader (in its fetch session, see below), at each
partition's log end offset, with the leader epoch it believes current; on the response,
append what came, adopt the leader's high watermark (capped by the local log end), and
fetch again at once (the leader's long poll paces the loop), or, when an append forced a
flush (flush.messages), once that fsync completed, so the leader never counts a
follower's records toward the HW before they are durable.

Fetch sessions (KIP-227; `FetchSessionHandler` below, the leader's side in
`fetch_session.py`): the first fetch to a leader is full and opens a session; later ones
are incremental: they list only partitions new to the session or whose fetch offset,
epochs, log start or max bytes changed, and forget the ones not fetched now (removed,
backing off, awaiting the leader's log end; with nothing left to fetch, a forget-only
fetch closes the session). A partition absent from a response has nothing new (its HW
is unchanged). Whether a response still applies to a partition is judged against what
the leader read for it: the session's parameters as of the request (its fetch offset
and leader epoch), listed in it or not. FETCH_SESSION_ID_NOT_FOUND (a restarted leader)
starts over without a session, INVALID_FETCH_SESSION_EPOCH or a timed-out request (a new
connection) closes the session with the next, full, fetch; either way at once.

One fetch is in flight per leader (Kafka's one ReplicaFetcherThread per source broker,
blocked in its request): partitions added meanwhile wait for it. A fetch that a network
cut holds is answered after the heal, when TCP retransmits it (the simulated network's
default transport); a fetch unanswered for replica.socket.timeout.ms (30 s, counted from
when it was sent) is given up and the connection closed, as Kafka's fetcher
NetworkClient does, and the next fetch goes on a new connection. (Over a datagram
network a fetch lost to a cut waits that long.) Errors back off
replica.fetch.backoff.ms.

Truncation, so that no replica keeps a suffix the leader does not have:
- leader-epoch mode (default; KIP-101/279, the KIP-320 fetch form): each fetch names the
  epoch of the last local batch (`last_fetched_epoch`); when the leader answers with a
  diverging epoch (E, end) the follower cuts its log to min(end, its own end of E), or to
  its own end of the largest local epoch <= E when it lacks E, and fetches again (which
  repeats the check until the logs agree).
- high-watermark mode (`simlog.follower.truncation: high-watermark`, before Kafka 0.11):
  on becoming follower the replica manager cuts the log to the local HW; fetches carry
  no epoch, so nothing else is detected. That is what loses or forks committed data in
  KIP-101's two scenarios.
- either mode: a fetch offset past the leader's log end (OFFSET_OUT_OF_RANGE) asks the
  leader's log end (ListOffsets as replica) and truncates to it; one below the leader's
  log start restarts the log empty at the leader's log start.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from heapq import heappop, heappush
from typing import TYPE_CHECKING

from simlog.broker.config import TRUNCATION_HIGH_WATERMARK
from simlog.broker.fetch_session import (
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INVALID_SESSION_ID,
    next_epoch,
)
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import (
    FetchPartition,
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopic,
    ForgottenTopic,
)
from simlog.protocol.list_offsets import (
    LATEST_TIMESTAMP,
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from simlog.runtime import Message, Timer

if TYPE_CHECKING:
    from simlog.broker.partition import Partition
    from simlog.broker.replica_manager import ReplicaManager

TopicPartition = tuple[str, int]
UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


@dataclass(slots=True)
class FetchState:
    leader_epoch: int
    delayed_until_us: int = 0
    awaiting_leader_end: bool = False


@dataclass(frozen=True, slots=True)
class SessionFetch:
    """One request's worth of session data (FetchSessionHandler.FetchRequestData)."""

    session_id: int
    session_epoch: int
    to_send: dict[TopicPartition, FetchPartition]  # listed in the request
    to_forget: list[TopicPartition]
    # every partition of the session after this request, as the leader will read it
    # (a copy, from `build` only; `build_changes` leaves it None: see handler.partitions)
    session: dict[TopicPartition, FetchPartition] | None = None


class FetchSessionHandler:
    """The follower's half of a KIP-227 session with one leader (Kafka's
    FetchSessionHandler): what the leader's session holds, and the (id, epoch) of the
    next request. See `simlog.broker.fetch_session` for the protocol.

    `build(wanted)` turns the partitions to fetch now into a request: all of them in a
    full fetch (no session yet, or after an error), else only the ones new to the
    session or whose FetchPartition changed (offset, epochs, log start, max bytes),
    forgetting the ones not wanted any more. None: nothing to send. The session as
    built is what the leader will hold once it accepts the request.
    `handle_response` / `handle_error` move (id, epoch) on as Kafka does: a full
    response naming a session starts incremental fetches at epoch 1, each accepted
    incremental response advances the epoch, FETCH_SESSION_ID_NOT_FOUND starts over
    without a session, any other failure (an epoch error, a response naming partitions
    outside the session, a lost or timed-out request) closes the session with the next
    full fetch (id, 0)."""

    def __init__(self) -> None:
        self.session_id = INVALID_SESSION_ID
        self.epoch = INITIAL_EPOCH
        self.partitions: dict[TopicPartition, FetchPartition] = {}

    @property
    def is_full(self) -> bool:
        return self.epoch in (INITIAL_EPOCH, FINAL_EPOCH)

    def build(self, wanted: dict[TopicPartition, FetchPartition]) -> SessionFetch | None:
        data = self.build_changes(wanted, wanted.keys() | self.partitions.keys())
        return None if data is None else replace(data, session=dict(self.partitions))

    def build_changes(self, wanted: Mapping[TopicPartition, FetchPartition],
                      changed: Collection[TopicPartition]) -> SessionFetch | None:
        """`build`, told which partitions may differ between `wanted` and the session
        (every other one must be the same in both): an incremental fetch costs
        O(changed), a full one O(wanted). After it the session is `wanted`."""
        if self.is_full:
            ordered = {tp: wanted[tp] for tp in sorted(wanted)}
            self.partitions = dict(ordered)
            if not ordered:
                return None
            return SessionFetch(self.session_id, self.epoch, ordered, [])
        session = self.partitions
        forget = []
        send = {}
        for tp in sorted(changed):
            fp = wanted.get(tp)
            if fp is None:
                if tp in session:
                    del session[tp]
                    forget.append(tp)
            elif session.get(tp) != fp:
                send[tp] = fp
                session[tp] = fp
        if not session and not forget:
            return None
        return SessionFetch(self.session_id, self.epoch, send, forget)

    def handle_response(self, resp: FetchResponse) -> bool:
        """True if the response's partitions may be processed."""
        if resp.error_code is not Errors.NONE:
            if resp.error_code is Errors.FETCH_SESSION_ID_NOT_FOUND:
                self.session_id, self.epoch = INVALID_SESSION_ID, INITIAL_EPOCH
            else:
                self.epoch = INITIAL_EPOCH  # close it, ask for a new one
            return False
        answered = {(t.topic, r.partition_index) for t in resp.responses for r in t.partitions}
        if self.is_full:
            if answered != set(self.partitions):
                self.session_id, self.epoch = INVALID_SESSION_ID, INITIAL_EPOCH
                return False
            self.session_id = resp.session_id
            self.epoch = (INITIAL_EPOCH if resp.session_id == INVALID_SESSION_ID
                          else next_epoch(INITIAL_EPOCH))
            return True
        if not answered <= self.partitions.keys():
            self.epoch = INITIAL_EPOCH
            return False
        if resp.session_id == INVALID_SESSION_ID:  # the leader closed the session
            self.session_id, self.epoch = INVALID_SESSION_ID, INITIAL_EPOCH
        else:
            self.epoch = next_epoch(self.epoch)
        return True

    def handle_error(self) -> None:
        """The request failed (timed out): close the session with the next fetch."""
        self.epoch = INITIAL_EPOCH


#: Debug switch for tests: at every fetch, rebuild the fetch data from every partition
#: as before change tracking and check it is what the tracked sets give (O(partitions)).
VERIFY_FETCH_DATA = False


class ReplicaFetcher:
    """Change tracking (what keeps a fetch O(partitions that changed)): `_wanted` holds
    the FetchPartition of every partition ready to fetch (not backing off, not awaiting
    the leader's log end), `_held` those whose forced flush holds the next fetch, and a
    partition is looked at again only once marked dirty: added or removed, its log
    moved (`Partition.fetch_changed` through the replica manager: appends,
    truncations, log start, settings), a flush of it completed, a response answered
    it, its backoff began or (`_backoffs`, a heap of the backoffs seen by _refresh)
    ended, or it started or stopped
    awaiting the leader's log end. `_unsent` keeps the dirty ones until the session
    next lists or forgets them (`FetchSessionHandler.build_changes`)."""

    def __init__(self, rm: ReplicaManager, leader_id: int) -> None:
        self.rm = rm
        self.rt = rm.rt
        self.config = rm.config
        self.leader_id = leader_id
        self.states: dict[TopicPartition, FetchState] = {}
        self._inflight: int | None = None
        self._inflight_host = ""
        self._inflight_timer: Timer | None = None
        self._wake_timer: Timer | None = None
        self._stopped = False
        self.session = FetchSessionHandler()
        self._wanted: dict[TopicPartition, FetchPartition] = {}
        self._held: set[TopicPartition] = set()
        self._dirty: set[TopicPartition] = set()
        self._unsent: set[TopicPartition] = set()
        self._backoffs: list[tuple[int, TopicPartition]] = []

    # ------------------------------------------------------------------ membership

    def add_partition(self, tp: TopicPartition, leader_epoch: int) -> None:
        self.states[tp] = FetchState(leader_epoch)
        self._dirty.add(tp)
        self._maybe_fetch()

    def remove_partition(self, tp: TopicPartition) -> None:
        if self.states.pop(tp, None) is not None:
            self._dirty.add(tp)

    def mark_dirty(self, tp: TopicPartition) -> None:
        """tp's fetch data or readiness may have changed: look at it before the next
        fetch."""
        if tp in self.states:
            self._dirty.add(tp)

    def shutdown(self) -> None:
        self._stopped = True
        for t in (self._inflight_timer, self._wake_timer):
            if t is not None:
                t.cancel()
        if self._inflight is not None:
            self.rm.forget_response(self._inflight)
            self._inflight = None

    # ------------------------------------------------------------------ fetch loop

    def _backoff(self, tp: TopicPartition, st: FetchState, until_us: int) -> None:
        st.delayed_until_us = until_us
        self._dirty.add(tp)  # (_refresh files it in _backoffs)

    def _fetch_partition(self, tp: TopicPartition, p: Partition,
                         st: FetchState) -> FetchPartition:
        log = p.log
        last_epoch = UNDEFINED_EPOCH
        if p.settings.follower_truncation != TRUNCATION_HIGH_WATERMARK:
            latest = log.latest_epoch()
            last_epoch = latest if latest is not None else UNDEFINED_EPOCH
        return FetchPartition(
            partition=tp[1], fetch_offset=log.log_end_offset,
            current_leader_epoch=st.leader_epoch, last_fetched_epoch=last_epoch,
            log_start_offset=log.log_start_offset,
            partition_max_bytes=self.config.replica_fetch_max_bytes)

    def _refresh(self, now_us: int) -> bool:
        """Bring `_wanted` and `_held` up to date (O(dirty + held + backoffs ended)).
        False while a forced flush is pending on any partition: Kafka's follower
        flushes inside Log.append, so its next fetch (which reports its log end to the
        leader) waits for the fsync: so does ours."""
        states = self.states
        dirty = self._dirty
        heap = self._backoffs
        while heap and heap[0][0] <= now_us:
            until, tp = heappop(heap)
            st = states.get(tp)
            if st is not None and st.delayed_until_us == until:
                dirty.add(tp)
        partitions = self.rm.partitions
        held = self._held
        if dirty:
            wanted = self._wanted
            unsent = self._unsent
            # (each partition only updates its own entries: the order cannot matter)
            for tp in dirty:
                st = states.get(tp)
                p = partitions.get(tp)
                if st is None or p is None:
                    if wanted.pop(tp, None) is not None:
                        unsent.add(tp)
                    held.discard(tp)
                    continue
                log = p.log
                if log.flush_in_flight and log.committable_end_offset < log.log_end_offset:
                    held.add(tp)
                else:
                    held.discard(tp)
                until = st.delayed_until_us
                if until <= now_us and not st.awaiting_leader_end:
                    fp = self._fetch_partition(tp, p, st)
                    if wanted.get(tp) != fp:
                        wanted[tp] = fp
                        unsent.add(tp)
                    continue
                if until > now_us:
                    # looked at again once the backoff ends (also the initial 0 of a
                    # node whose clock reads below 0)
                    heappush(heap, (until, tp))
                if wanted.pop(tp, None) is not None:
                    unsent.add(tp)
            dirty.clear()
        if held:
            for tp in sorted(held):
                p = partitions.get(tp)
                log = p.log if p is not None else None
                if (log is None or tp not in states or not log.flush_in_flight
                        or log.committable_end_offset >= log.log_end_offset):
                    held.discard(tp)
        if VERIFY_FETCH_DATA:
            self._verify(now_us)
        return not held

    def _verify(self, now_us: int) -> None:
        """VERIFY_FETCH_DATA: the tracked sets are what a pass over every partition
        gives (the pass this class did at every fetch before tracking changes)."""
        partitions = self.rm.partitions
        hold = False
        ready = {}
        for tp in sorted(self.states):
            p = partitions.get(tp)
            if p is None:
                continue
            log = p.log
            if log.flush_in_flight and log.committable_end_offset < log.log_end_offset:
                hold = True
            st = self.states[tp]
            if st.delayed_until_us <= now_us and not st.awaiting_leader_end:
                ready[tp] = self._fetch_partition(tp, p, st)
        assert hold == bool(self._held), (hold, self._held)
        assert ready == self._wanted, (ready, self._wanted)

    def wake(self) -> None:
        """A forced flush completed somewhere: fetch if nothing else holds us."""
        self._maybe_fetch()

    def _maybe_fetch(self) -> None:
        if self._stopped or self._inflight is not None:
            return
        now = self.rt.now()
        if not self._refresh(now):
            return  # a flush's completion wakes us
        wanted = self._wanted
        if not wanted and (self.session.is_full or not self.session.partitions):
            self._arm_wake(now)  # nothing to fetch, nothing to forget
            return
        # (nothing ready but a session holding partitions: forget them, as Kafka's
        # fetcher does; the leader closes the emptied session)
        host = self.rm.host.broker_host(self.leader_id)
        if host is None:
            until = now + self.config.replica_fetch_backoff_us
            for tp in sorted(wanted):
                self._backoff(tp, self.states[tp], until)
            self._arm_wake(now)
            return
        data = self.session.build_changes(wanted, self._unsent)
        self._unsent = set()
        if data is None:  # pragma: no cover - excluded above
            self._arm_wake(now)
            return
        by_topic: dict[str, list[FetchPartition]] = {}
        for tp, fp in data.to_send.items():
            by_topic.setdefault(tp[0], []).append(fp)
        forget: dict[str, list[int]] = {}
        for tp in data.to_forget:
            forget.setdefault(tp[0], []).append(tp[1])
        cid = self.rm.next_correlation_id()
        req = FetchRequest(
            correlation_id=cid, replica_id=self.rm.broker_id,
            max_wait_ms=self.config.replica_fetch_wait_max_us // 1000,
            min_bytes=self.config.replica_fetch_min_bytes,
            max_bytes=self.config.replica_fetch_response_max_bytes,
            session_id=data.session_id, session_epoch=data.session_epoch,
            topics=tuple(FetchTopic(topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
            forgotten_topics_data=tuple(ForgottenTopic(topic=t, partitions=tuple(ps))
                                        for t, ps in forget.items()))
        self._inflight = cid
        self._inflight_host = host
        self.rm.expect_response(cid, lambda msg: self._on_fetch_response(cid, msg))
        self._inflight_timer = self.rt.set_timer(self.config.replica_socket_timeout_us,
                                                 lambda: self._on_timeout(cid))
        self.rt.charge_cpu(self.config.request_cost_us(0))
        self.rt.send(host, req)

    def _arm_wake(self, now_us: int) -> None:
        pending = [st.delayed_until_us for st in self.states.values()
                   if st.delayed_until_us > now_us and not st.awaiting_leader_end]
        if not pending or (self._wake_timer is not None and self._wake_timer.active):
            return
        self._wake_timer = self.rt.set_timer(min(pending) - now_us, self._wake)

    def _wake(self) -> None:
        self._wake_timer = None
        self._maybe_fetch()

    def connection_reset(self, host: str) -> None:
        """The leader's process is gone (its kernel reset our connection): the fetch in
        flight to it fails now, as Kafka's fetcher sees a disconnect, and every
        partition backs off replica.fetch.backoff.ms before it is fetched again (over a
        new connection and session) unless metadata names another leader first."""
        if self._inflight is None or self._inflight_host != host:
            return
        self.rm.forget_response(self._inflight)
        if self._inflight_timer is not None:
            self._inflight_timer.cancel()
            self._inflight_timer = None
        self._inflight = None
        self.session.handle_error()
        self.rt.emit("fetch_connection_reset", leader=self.leader_id)
        now = self.rt.now()
        until = now + self.config.replica_fetch_backoff_us
        for tp in sorted(self.states):
            st = self.states[tp]
            self._backoff(tp, st, max(st.delayed_until_us, until))
        self._arm_wake(now)

    def _on_timeout(self, cid: int) -> None:
        if self._inflight != cid:
            return
        self.rm.forget_response(cid)
        self.rt.disconnect(self._inflight_host)
        self._inflight = None
        self._inflight_timer = None
        self.session.handle_error()  # a new connection: start the session over
        self._maybe_fetch()

    def _on_fetch_response(self, cid: int, msg: Message) -> None:
        if self._inflight != cid:
            return
        self._inflight = None
        if self._inflight_timer is not None:
            self._inflight_timer.cancel()
            self._inflight_timer = None
        if not isinstance(msg, FetchResponse):
            return
        if not self.session.handle_response(msg):
            if msg.error_code is not Errors.NONE:
                self.rt.emit("fetch_session_error", leader=self.leader_id,
                             error=msg.error_code.name, session_id=msg.session_id)
            self.rt.charge_cpu(self.config.request_cost_us(0))
            self._maybe_fetch()  # a full fetch, at once
            return
        now = self.rt.now()
        nbytes = 0
        # what the leader read: every session partition as the request left the session
        # (the session does not change while a fetch is in flight)
        sent = self.session.partitions
        # a partition of the session left out of the answer has nothing new
        for t in msg.responses:
            for r in t.partitions:
                tp = (t.topic, r.partition_index)
                st = self.states.get(tp)
                p = self.rm.partition(tp)
                fp = sent.get(tp)
                if st is None or p is None or fp is None:
                    continue
                if fp.current_leader_epoch != st.leader_epoch or fp.fetch_offset != p.log_end_offset:
                    continue  # the partition moved on since this fetch was sent
                nbytes += len(r.records)
                self._dirty.add(tp)
                self._process(tp, p, st, r, now)
        self.rt.charge_cpu(self.config.request_cost_us(nbytes))
        self._maybe_fetch()

    # ------------------------------------------------------------------ one partition

    def _process(self, tp: TopicPartition, p: Partition, st: FetchState,
                 r: FetchPartitionResponse, now_us: int) -> None:
        err = r.error_code
        if err is Errors.NONE:
            if r.diverging_epoch is not None:
                self._truncate_on_divergence(p, r.diverging_epoch.epoch,
                                             r.diverging_epoch.end_offset)
                return
            if r.records:
                p.append_as_follower(r.records)
            p.update_follower_hw(r.high_watermark)
            if r.log_start_offset > p.log.log_start_offset:
                # the leader's retention or DeleteRecords moved its start: follow it
                p.follow_log_start(r.log_start_offset)
            return
        if err is Errors.OFFSET_OUT_OF_RANGE:
            if p.log_end_offset < r.log_start_offset:
                p.truncate_fully_and_start_at(r.log_start_offset, reason="below_leader_start")
            else:
                self._ask_leader_end(tp, p, st)
            return
        # NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC...: metadata
        # will tell us more; retry after the backoff meanwhile.
        self._backoff(tp, st, now_us + self.config.replica_fetch_backoff_us)

    def _truncate_on_divergence(self, p: Partition, leader_epoch: int, leader_end: int) -> None:
        """Kafka's AbstractFetcherThread.getOffsetTruncationState."""
        leo = p.log_end_offset
        if leader_end == UNDEFINED_OFFSET:
            target = min(p.high_watermark, leo)
        elif leader_epoch == UNDEFINED_EPOCH:
            target = min(leader_end, leo)
        else:
            mine = p.log.end_offset_for_epoch(leader_epoch)
            if mine is None:
                target = min(leader_end, leo)
            elif mine[0] != leader_epoch:
                target = mine[1]  # we lack the leader's epoch: step back, ask again
            else:
                target = min(leader_end, mine[1])
        p.truncate_to(target, reason="diverging_epoch")

    def _ask_leader_end(self, tp: TopicPartition, p: Partition, st: FetchState) -> None:
        host = self.rm.host.broker_host(self.leader_id)
        if host is None:
            self._backoff(tp, st, self.rt.now() + self.config.replica_fetch_backoff_us)
            return
        st.awaiting_leader_end = True
        self._dirty.add(tp)
        cid = self.rm.next_correlation_id()
        epoch = st.leader_epoch

        def done(msg: Message) -> None:
            timer.cancel()
            st2 = self.states.get(tp)
            if st2 is not st:
                return
            st.awaiting_leader_end = False
            self._dirty.add(tp)
            part = self.rm.partition(tp)
            if isinstance(msg, ListOffsetsResponse) and part is not None:
                for t in msg.topics:
                    for lp in t.partitions:
                        if (t.name, lp.partition_index) == tp and lp.error_code is Errors.NONE:
                            if lp.offset < part.log_end_offset:
                                part.truncate_to(lp.offset, reason="leader_end_offset")
                        elif (t.name, lp.partition_index) == tp:
                            self._backoff(tp, st,
                                          self.rt.now() + self.config.replica_fetch_backoff_us)
            self._maybe_fetch()

        def expire() -> None:
            self.rm.forget_response(cid)
            if self.states.get(tp) is st:
                st.awaiting_leader_end = False
                self._dirty.add(tp)
                self._maybe_fetch()

        self.rm.expect_response(cid, done)
        timer = self.rt.set_timer(self.config.replica_socket_timeout_us, expire)
        self.rt.send(host, ListOffsetsRequest(
            correlation_id=cid, replica_id=self.rm.broker_id,
            topics=(ListOffsetsTopic(name=tp[0], partitions=(ListOffsetsPartition(
                partition_index=tp[1], timestamp=LATEST_TIMESTAMP,
                current_leader_epoch=epoch),)),)))
