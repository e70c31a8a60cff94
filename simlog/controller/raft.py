"""KRaft-style Raft (KIP-595 with KIP-996 pre-vote): one replica of the metadata quorum.

Theory of operation. Voters elect a leader per epoch; the leader appends records and
followers *pull* them with QuorumFetch (KRaft's design: the fetch offset doubles as the
acknowledgement, and observers such as brokers follow the same way without voting).
The leader's high watermark is the largest offset a majority of voters have persisted,
counted only once it covers an entry of the leader's own epoch (its LeaderChangeRecord),
so nothing from an older epoch is committed by counting alone.

Roles (`become_<role>`):
- unattached: knows an epoch, no leader; a voter campaigns after its election timeout.
- follower: fetches from the leader; a voter that has not fetched successfully for
  controller.quorum.fetch.timeout.ms turns prospective.
- prospective (KIP-996): asks for *pre-votes* without touching its epoch; only when a
  majority would vote for it does it become a candidate. Voters refuse pre-votes while
  they hear from a leader, so a replica coming back from a partition cannot bump the
  epoch and disrupt a healthy quorum.
- candidate: epoch + 1, votes for itself (persisted first), asks for votes.
- leader: appends a LeaderChangeRecord, announces itself with BeginQuorumEpoch, answers
  fetches (long-polled up to 500 ms), advances the high watermark. Check-quorum: if
  fewer than a majority (itself included) fetched within 1.5 × fetch timeout, it
  resigns (EndQuorumEpoch) so that a leader cut off from the quorum stops acting.

Safety rules kept here: epoch, vote and leader are persisted (quorum-state, fsynced)
before any message that depends on them is sent; a follower's fetch offset only ever
counts entries it has fsynced; a voter grants at most one vote per epoch, and only to a
candidate whose log is at least as up to date (last epoch, then end offset); followers
truncate a diverging suffix by epoch (end offset for epoch), never below what they were
told is committed by a leader that validated their log.

The host (ControllerNode, a broker in combined mode, or MetadataFollower) forwards
messages via `on_message` and receives committed entries through a `RaftListener`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from simlog.controller.config import QuorumConfig
from simlog.controller.log import QuorumState, QuorumStateStore, RaftLog, SnapshotStore
from simlog.controller.records import LeaderChangeRecord, LogEntry, MetadataRecord
from simlog.protocol.errors import Errors
from simlog.protocol.quorum import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    DescribeQuorumRequest,
    DescribeQuorumResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    QuorumFetchRequest,
    QuorumFetchResponse,
    QuorumFetchSnapshotRequest,
    QuorumFetchSnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from simlog.runtime import DiskError, Message, Runtime, Timer

UNATTACHED = "unattached"
FOLLOWER = "follower"
PROSPECTIVE = "prospective"
CANDIDATE = "candidate"
LEADER = "leader"


class RaftListener(Protocol):
    """What the replicated state machine implements."""

    def handle_commit(self, entries: tuple[LogEntry, ...]) -> None:
        """Committed entries, in offset order, each exactly once per incarnation."""
        ...

    def handle_snapshot(self, end_offset: int, epoch: int, records: list) -> None:
        """Replace the state with a snapshot covering every offset below end_offset."""
        ...

    def handle_leader_change(self, leader_id: str | None, epoch: int) -> None:
        """The known leader or epoch changed (leader_id None: unknown)."""
        ...


@dataclass(slots=True)
class _Progress:
    end_offset: int = 0
    last_fetch_us: int = -1
    fetched: bool = False  # fetched in this epoch (no need to resend BeginQuorumEpoch)


class KafkaRaftClient:
    """One replica (voter or observer) of the metadata quorum."""

    def __init__(self, rt: Runtime, config: QuorumConfig, listener: RaftListener) -> None:
        self.rt = rt
        self.cfg = config
        self.listener = listener
        self.node_id = rt.node_id
        self.voters = tuple(sorted(config.voters))
        self.is_voter = self.node_id in self.voters
        self.majority = len(self.voters) // 2 + 1
        self.log = RaftLog(rt.disk, self._on_flushed, self._disk_failed)
        self.state_store = QuorumStateStore(rt.disk, self._disk_failed)
        self.snapshots = SnapshotStore(rt.disk, self._disk_failed)
        self.role = UNATTACHED
        self.epoch = 0
        self.voted_for: str | None = None
        self.leader_id: str | None = None
        self.high_watermark = 0
        self.applied_offset = 0  # next offset to hand to the listener
        self.halted = False
        self._snapshot: tuple[int, int, list] | None = None  # latest durable snapshot
        self._snapshot_inflight = False
        self._timer: Timer | None = None  # election / fetch timeout of the current role
        self._check_quorum_timer: Timer | None = None
        self._fetch_timer: Timer | None = None  # request timeout of the in-flight fetch
        self._fetch_target: str | None = None
        self._fetch_inflight = False
        self._fetch_blocked = False  # waiting for a snapshot download
        self._fetch_correlation = 0
        self._in_fetch_response = False  # become_* must not fetch while one is handled
        self._last_leader_contact_us = -1
        self._bootstrap_index = 0
        self._votes: set[str] = set()
        self._refetched = False  # this pre-vote round already retried the leader
        self._progress: dict[str, _Progress] = {}
        self._parked: dict[str, tuple[QuorumFetchRequest, Timer]] = {}
        self._epoch_start_offset = 0
        self._handlers: dict[type, Callable[[str, Message], None]] = {
            VoteRequest: self.on_vote_request,
            VoteResponse: self.on_vote_response,
            BeginQuorumEpochRequest: self.on_begin_quorum_epoch_request,
            BeginQuorumEpochResponse: self.on_begin_quorum_epoch_response,
            EndQuorumEpochRequest: self.on_end_quorum_epoch_request,
            EndQuorumEpochResponse: self.on_end_quorum_epoch_response,
            QuorumFetchRequest: self.on_quorum_fetch_request,
            QuorumFetchResponse: self.on_quorum_fetch_response,
            QuorumFetchSnapshotRequest: self.on_quorum_fetch_snapshot_request,
            QuorumFetchSnapshotResponse: self.on_quorum_fetch_snapshot_response,
            DescribeQuorumRequest: self.on_describe_quorum_request,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Recover snapshot, log and quorum state from disk; take up a role."""
        self.state_store.cleanup()
        self.snapshots.cleanup()
        snap = self.snapshots.latest()
        start_offset, start_epoch = 0, 0
        if snap is not None:
            self._snapshot = snap
            start_offset, start_epoch = snap[0], snap[1]
            self.listener.handle_snapshot(snap[0], snap[1], snap[2])
        self.log.recover(start_offset, start_epoch)
        self.high_watermark = start_offset
        self.applied_offset = start_offset
        state = self.state_store.read()
        self.epoch = max(state.epoch, self.log.last_epoch)
        self.voted_for = state.voted_for if state.epoch == self.epoch else None
        leader = state.leader_id if state.epoch == self.epoch else None
        self.rt.emit("raft_recovered", epoch=self.epoch, log_start=self.log.start_offset,
                     log_end=self.log.end_offset)
        # entries that survived in the page cache may not be durable yet
        self.log.flush()
        if leader is not None and leader != self.node_id:
            self.become_follower(self.epoch, leader)
        else:
            self.become_unattached(self.epoch)

    def on_message(self, src: str, msg: Message) -> bool:
        """Handle a quorum message; False if msg is not one (the host handles it)."""
        handler = self._handlers.get(type(msg))
        if handler is None:
            return False
        if not self.halted:
            handler(src, msg)
        return True

    @property
    def is_leader(self) -> bool:
        return self.role == LEADER

    # ------------------------------------------------------------------ leader API

    def append(self, records: list[MetadataRecord]) -> int | None:
        """Leader only: append records in this epoch. Returns the offset of the last one
        (committed once high_watermark > it), or None when not the leader."""
        if self.role != LEADER or self.halted or not records:
            return None
        base = self.log.end_offset
        entries = [LogEntry(offset=base + i, epoch=self.epoch, record=r)
                   for i, r in enumerate(records)]
        if not self.log.append(entries):
            return None
        self.log.flush()
        self._complete_parked_fetches()
        return entries[-1].offset

    def create_snapshot(self, end_offset: int, records: list) -> bool:
        """Persist a snapshot of the state machine covering offsets below end_offset
        (<= high watermark); then drop that log prefix. False if refused."""
        if (self._snapshot_inflight or end_offset > self.high_watermark
                or end_offset <= self.log.start_offset or self.halted):
            return False
        epoch = self.log.epoch_at(end_offset - 1)
        self._snapshot_inflight = True

        def done() -> None:
            self._snapshot_inflight = False
            self._snapshot = (end_offset, epoch, records)
            if end_offset > self.log.start_offset:
                self.log.drop_prefix(end_offset, epoch)
            self.rt.emit("raft_snapshot", end_offset=end_offset, epoch=epoch)

        self.snapshots.write(end_offset, epoch, records, done)
        return True

    # ------------------------------------------------------------------ persistence

    def _persist(self, then: Callable[[], None] | None = None) -> None:
        self.state_store.write(QuorumState(epoch=self.epoch, voted_for=self.voted_for,
                                           leader_id=self.leader_id), then)

    def _disk_failed(self, what: str, err: DiskError) -> None:
        if self.halted:
            return
        self.halted = True
        self._cancel_all()
        self.rt.emit("raft_disk_error", what=what, error=str(err))
        self.rt.halt(f"metadata log {what} failed: {err}")

    # ------------------------------------------------------------------ timers

    def _cancel_all(self) -> None:
        for t in (self._timer, self._check_quorum_timer, self._fetch_timer):
            if t is not None:
                t.cancel()
        self._timer = self._check_quorum_timer = self._fetch_timer = None
        self._fetch_inflight = False
        for _req, timer in self._parked.values():
            timer.cancel()
        self._parked.clear()

    def _arm(self, delay_us: int, fn: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.rt.set_timer(max(0, delay_us), fn)

    def _election_delay_us(self) -> int:
        t = self.cfg.election_timeout_us
        return t + self.rt.random.randrange(t)

    def _backoff_us(self) -> int:
        return self.rt.random.randrange(self.cfg.election_backoff_max_us + 1)

    # ------------------------------------------------------------------ transitions

    def _set_leader(self, leader: str | None) -> None:
        if leader != self.leader_id:
            self.leader_id = leader
            self.listener.handle_leader_change(leader, self.epoch)

    def become_unattached(self, epoch: int, delay_us: int | None = None) -> None:
        self._leave_leader()
        self.role = UNATTACHED
        self.epoch = epoch
        self._set_leader(None)
        if self.is_voter:
            self._arm(self._election_delay_us() if delay_us is None else delay_us,
                      self.become_prospective)
        else:
            self._timer = None
            if not self._in_fetch_response:
                self._send_fetch()

    def become_follower(self, epoch: int, leader: str) -> None:
        self._leave_leader()
        self.role = FOLLOWER
        self.epoch = epoch
        self._set_leader(leader)
        self._last_leader_contact_us = self.rt.now()
        if self.is_voter:
            self._arm(self.cfg.fetch_timeout_us, self._on_fetch_timeout)
        else:
            self._arm(self.cfg.fetch_timeout_us, self._on_observer_fetch_timeout)
        if self._fetch_target != leader:
            self._abandon_fetch()
        if not self._in_fetch_response:
            self._send_fetch()

    def become_prospective(self) -> None:
        """Pre-vote round: no epoch change, nothing persisted."""
        if not self.is_voter or self.halted:
            return
        self._leave_leader()
        self.role = PROSPECTIVE
        self._votes = {self.node_id}
        self._refetched = False
        self.rt.emit("raft_prospective", epoch=self.epoch)
        self._send_fetch()  # keep fetching from a known leader: an answer ends the round
        self._arm(self._election_delay_us(), self._on_election_timeout)
        if len(self._votes) >= self.majority:
            self.become_candidate()
            return
        req = VoteRequest(candidate_id=self.node_id, candidate_epoch=self.epoch + 1,
                          last_offset_epoch=self.log.last_epoch,
                          last_offset=self.log.end_offset, pre_vote=True)
        for voter in self.voters:
            if voter != self.node_id:
                self.rt.send(voter, req)

    def become_candidate(self) -> None:
        self._leave_leader()
        self.role = CANDIDATE
        self.epoch += 1
        self.voted_for = self.node_id
        self._set_leader(None)
        self._votes = {self.node_id}
        epoch = self.epoch
        self.rt.emit("raft_candidate", epoch=epoch)
        self._arm(self._election_delay_us(), self._on_election_timeout)

        def ask() -> None:
            if self.role != CANDIDATE or self.epoch != epoch:
                return
            if len(self._votes) >= self.majority:
                self.become_leader()
                return
            req = VoteRequest(candidate_id=self.node_id, candidate_epoch=epoch,
                              last_offset_epoch=self.log.last_epoch,
                              last_offset=self.log.end_offset)
            for voter in self.voters:
                if voter != self.node_id:
                    self.rt.send(voter, req)

        self._persist(ask)

    def become_leader(self) -> None:
        self.role = LEADER
        self._abandon_fetch()
        now = self.rt.now()
        self._progress = {r: _Progress(end_offset=0, last_fetch_us=now)
                          for r in self.voters if r != self.node_id}
        self.leader_id = self.node_id
        self._persist()
        self._epoch_start_offset = self.log.end_offset
        self.rt.emit("raft_leader_elected", epoch=self.epoch, leader=self.node_id,
                     log_end=self.log.end_offset)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.append([LeaderChangeRecord(leader_id=self.node_id, leader_epoch=self.epoch,
                                        voters=self.voters)])
        self.listener.handle_leader_change(self.node_id, self.epoch)
        self._begin_quorum_epoch(only_silent=False)
        self._check_quorum_timer = self.rt.set_timer(self._check_quorum_interval_us(),
                                                     self._on_check_quorum)
        self._maybe_advance_high_watermark()

    def _leave_leader(self) -> None:
        if self.role != LEADER:
            return
        if self._check_quorum_timer is not None:
            self._check_quorum_timer.cancel()
            self._check_quorum_timer = None
        parked = sorted(self._parked)
        for replica in parked:
            _req, timer = self._parked.pop(replica)
            timer.cancel()
        self._progress = {}
        self.rt.emit("raft_leader_resigned", epoch=self.epoch, leader=self.node_id)

    def _step_to_epoch(self, epoch: int, leader: str | None) -> None:
        """Move to a newer epoch (no vote in it yet); the caller persists."""
        self._leave_leader()
        self.epoch = epoch
        self.voted_for = None
        self.leader_id = None
        if leader is not None and leader != self.node_id:
            self.become_follower(epoch, leader)
        else:
            self.become_unattached(epoch)

    def _observe_epoch(self, epoch: int, leader: str | None) -> bool:
        """React to the epoch/leader a peer reported. False if the peer is stale."""
        if epoch < self.epoch:
            return False
        if epoch > self.epoch:
            self._step_to_epoch(epoch, leader)
            self._persist()
            return True
        if (leader is not None and leader != self.node_id and self.leader_id is None
                and self.role != LEADER):
            self.become_follower(epoch, leader)
            self._persist()
        return True

    # ------------------------------------------------------------------ timeouts

    def _on_fetch_timeout(self) -> None:
        self._timer = None
        if self.role == FOLLOWER:
            self.rt.emit("raft_fetch_timeout", epoch=self.epoch, leader=self.leader_id)
            self.become_prospective()

    def _on_observer_fetch_timeout(self) -> None:
        self._timer = None
        if self.role == FOLLOWER:
            self.become_unattached(self.epoch)

    def _on_election_timeout(self) -> None:
        self._timer = None
        if self.role in (PROSPECTIVE, CANDIDATE):
            self._arm(self._backoff_us(), self.become_prospective)

    def _check_quorum_interval_us(self) -> int:
        return max(1, self.cfg.fetch_timeout_us // 2)

    def _on_check_quorum(self) -> None:
        self._check_quorum_timer = None
        if self.role != LEADER:
            return
        now = self.rt.now()
        window_us = self.cfg.fetch_timeout_us * 3 // 2
        alive = 1 + sum(1 for r in sorted(self._progress)
                        if r in self.voters and now - self._progress[r].last_fetch_us
                        <= window_us)
        if alive < self.majority:
            self.rt.emit("raft_check_quorum_failed", epoch=self.epoch, alive=alive)
            self.resign()
            return
        self._begin_quorum_epoch(only_silent=True)
        self._check_quorum_timer = self.rt.set_timer(self._check_quorum_interval_us(),
                                                     self._on_check_quorum)

    def resign(self) -> None:
        """Leader steps down in its epoch (it keeps its vote; it cannot lead again in this
        epoch) and tells the voters, so they elect a successor without waiting."""
        if self.role != LEADER:
            return
        req = EndQuorumEpochRequest(leader_id=self.node_id, leader_epoch=self.epoch)
        for voter in self.voters:
            if voter != self.node_id:
                self.rt.send(voter, req)
        self.become_unattached(self.epoch)

    def _begin_quorum_epoch(self, only_silent: bool) -> None:
        req = BeginQuorumEpochRequest(leader_id=self.node_id, leader_epoch=self.epoch)
        for voter in self.voters:
            if voter == self.node_id:
                continue
            p = self._progress.get(voter)
            if only_silent and p is not None and p.fetched:
                continue
            self.rt.send(voter, req)

    # ------------------------------------------------------------------ votes

    def _log_up_to_date(self, last_epoch: int, end_offset: int) -> bool:
        return (last_epoch, end_offset) >= (self.log.last_epoch, self.log.end_offset)

    def _heard_from_leader_recently(self) -> bool:
        if self.role == LEADER:
            return True
        return (self.role in (FOLLOWER, PROSPECTIVE) and self.leader_id is not None
                and self.rt.now() - self._last_leader_contact_us < self.cfg.fetch_timeout_us)

    def on_vote_request(self, src: str, req: VoteRequest) -> None:
        if req.candidate_id not in self.voters or not self.is_voter:
            self.rt.send(src, VoteResponse(error_code=Errors.INCONSISTENT_VOTER_SET,
                                           leader_id=self.leader_id, leader_epoch=self.epoch,
                                           vote_granted=False, pre_vote=req.pre_vote,
                                           candidate_epoch=req.candidate_epoch))
            return
        if req.pre_vote:
            granted = (req.candidate_epoch > self.epoch
                       and not self._heard_from_leader_recently()
                       and self._log_up_to_date(req.last_offset_epoch, req.last_offset))
            self.rt.send(src, VoteResponse(leader_id=self.leader_id, leader_epoch=self.epoch,
                                           vote_granted=granted, pre_vote=True,
                                           candidate_epoch=req.candidate_epoch))
            return
        if req.candidate_epoch < self.epoch:
            self.rt.send(src, VoteResponse(error_code=Errors.FENCED_LEADER_EPOCH,
                                           leader_id=self.leader_id, leader_epoch=self.epoch,
                                           vote_granted=False,
                                           candidate_epoch=req.candidate_epoch))
            return
        changed = False
        if req.candidate_epoch > self.epoch:
            self._step_to_epoch(req.candidate_epoch, None)
            changed = True
        granted = (self.role != LEADER and self.leader_id is None
                   and self.voted_for in (None, req.candidate_id)
                   and self._log_up_to_date(req.last_offset_epoch, req.last_offset))
        if granted and self.voted_for is None:
            self.voted_for = req.candidate_id
            changed = True
        if granted and self.role == UNATTACHED:
            self._arm(self._election_delay_us(), self.become_prospective)
        resp = VoteResponse(leader_id=self.leader_id, leader_epoch=self.epoch,
                            vote_granted=granted, candidate_epoch=req.candidate_epoch)
        if changed:
            self._persist(lambda: self.rt.send(src, resp))
        else:
            self.rt.send(src, resp)

    def on_vote_response(self, src: str, resp: VoteResponse) -> None:
        if resp.leader_epoch > self.epoch:
            self._observe_epoch(resp.leader_epoch, resp.leader_id)
            return
        if (resp.leader_id is not None and resp.leader_epoch == self.epoch
                and self.leader_id is None and resp.leader_id != self.node_id
                and self.role in (PROSPECTIVE, CANDIDATE, UNATTACHED)):
            self._observe_epoch(resp.leader_epoch, resp.leader_id)
            return
        if not resp.vote_granted:
            if (resp.pre_vote and self.role == PROSPECTIVE and resp.leader_epoch == self.epoch
                    and resp.leader_id is not None and resp.leader_id == self.leader_id
                    and not self._refetched):
                self._refetched = True
                # a voter still hears from our leader: retry the fetch now rather than
                # after the request timeout (we may just have been cut off from it)
                self._abandon_fetch()
                self._send_fetch()
            return
        if resp.pre_vote:
            if self.role == PROSPECTIVE and resp.candidate_epoch == self.epoch + 1:
                self._votes.add(src)
                if len(self._votes) >= self.majority:
                    self.become_candidate()
        elif self.role == CANDIDATE and resp.candidate_epoch == self.epoch:
            self._votes.add(src)
            if len(self._votes) >= self.majority:
                self.become_leader()

    # ------------------------------------------------------------------ epochs

    def on_begin_quorum_epoch_request(self, src: str, req: BeginQuorumEpochRequest) -> None:
        if req.leader_epoch < self.epoch:
            self.rt.send(src, BeginQuorumEpochResponse(error_code=Errors.FENCED_LEADER_EPOCH,
                                                       leader_id=self.leader_id,
                                                       leader_epoch=self.epoch))
            return
        self._observe_epoch(req.leader_epoch, req.leader_id)
        if self.role != FOLLOWER or self.leader_id != req.leader_id:
            self.become_follower(req.leader_epoch, req.leader_id)
            self._persist()
        self.rt.send(src, BeginQuorumEpochResponse(leader_id=self.leader_id,
                                                   leader_epoch=self.epoch))

    def on_begin_quorum_epoch_response(self, src: str, resp: BeginQuorumEpochResponse) -> None:
        if resp.leader_epoch > self.epoch:
            self._observe_epoch(resp.leader_epoch, resp.leader_id)

    def on_end_quorum_epoch_request(self, src: str, req: EndQuorumEpochRequest) -> None:
        if req.leader_epoch > self.epoch:
            self._observe_epoch(req.leader_epoch, None)
        elif (req.leader_epoch == self.epoch and self.leader_id == req.leader_id
              and self.role == FOLLOWER):
            # the leader resigned: campaign soon, without waiting for the fetch timeout
            self.rt.emit("raft_leader_resigned_seen", epoch=self.epoch, leader=req.leader_id)
            self.become_unattached(self.epoch, delay_us=self._backoff_us())
        self.rt.send(src, EndQuorumEpochResponse(leader_id=self.leader_id,
                                                 leader_epoch=self.epoch))

    def on_end_quorum_epoch_response(self, src: str, resp: EndQuorumEpochResponse) -> None:
        if resp.leader_epoch > self.epoch:
            self._observe_epoch(resp.leader_epoch, resp.leader_id)

    # ------------------------------------------------------------------ fetch: leader

    def _fetch_response(self, correlation_id: int = 0, **fields) -> QuorumFetchResponse:
        return QuorumFetchResponse(correlation_id=correlation_id, leader_id=self.leader_id,
                                   leader_epoch=self.epoch,
                                   high_watermark=self.high_watermark,
                                   log_start_offset=self.log.start_offset, **fields)

    def on_quorum_fetch_request(self, src: str, req: QuorumFetchRequest) -> None:
        cid = req.correlation_id
        if self.role != LEADER:
            self.rt.send(src, self._fetch_response(cid, error_code=Errors.NOT_LEADER_OR_FOLLOWER))
            return
        if req.current_leader_epoch < self.epoch:
            self.rt.send(src, self._fetch_response(cid, error_code=Errors.FENCED_LEADER_EPOCH))
            return
        if req.current_leader_epoch > self.epoch:
            self.rt.send(src, self._fetch_response(cid, error_code=Errors.UNKNOWN_LEADER_EPOCH))
            return
        problem = self._validate_fetch(cid, req.fetch_offset, req.last_fetched_epoch)
        if problem is not None:
            self.rt.send(src, problem)
            return
        p = self._progress.get(src)
        if p is None:
            p = self._progress[src] = _Progress()
        p.end_offset = req.fetch_offset
        p.last_fetch_us = self.rt.now()
        p.fetched = True
        old = self._parked.pop(src, None)
        if old is not None:
            old[1].cancel()
        self._maybe_advance_high_watermark()
        if req.fetch_offset < self.log.end_offset:
            self.rt.send(src, self._fetch_response(
                cid, entries=self.log.read(req.fetch_offset,
                                      min(req.max_records, self.cfg.fetch_max_records))))
            return
        wait_us = min(req.max_wait_ms * 1_000, self.cfg.fetch_max_wait_us)
        timer = self.rt.set_timer(wait_us, lambda: self._complete_parked(src))
        self._parked[src] = (req, timer)

    def _validate_fetch(self, cid: int, fetch_offset: int,
                        last_epoch: int) -> QuorumFetchResponse | None:
        snap = self._snapshot
        if fetch_offset < self.log.start_offset or fetch_offset > self.log.end_offset:
            if fetch_offset > self.log.end_offset:
                found = self.log.end_offset_for_epoch(last_epoch)
                if found is not None:
                    return self._fetch_response(cid, diverging_epoch=found[0],
                                                diverging_end_offset=found[1])
            if snap is not None:
                return self._fetch_response(cid, snapshot_end_offset=snap[0],
                                            snapshot_epoch=snap[1])
            return self._fetch_response(cid, diverging_epoch=0, diverging_end_offset=0)
        if fetch_offset == 0:
            return None
        found = self.log.end_offset_for_epoch(last_epoch)
        if found is None:
            if snap is not None:
                return self._fetch_response(cid, snapshot_end_offset=snap[0],
                                            snapshot_epoch=snap[1])
            return self._fetch_response(cid, diverging_epoch=0, diverging_end_offset=0)
        epoch, end = found
        if epoch == last_epoch and fetch_offset <= end:
            return None
        below_log = end < self.log.start_offset or (end == self.log.start_offset
                                                    and epoch != self.log.start_epoch)
        if below_log and snap is not None:
            return self._fetch_response(cid, snapshot_end_offset=snap[0], snapshot_epoch=snap[1])
        return self._fetch_response(cid, diverging_epoch=epoch, diverging_end_offset=end)

    def _complete_parked(self, replica: str) -> None:
        got = self._parked.pop(replica, None)
        if got is None or self.role != LEADER:
            return
        req, timer = got
        timer.cancel()
        self.rt.send(replica, self._fetch_response(
            req.correlation_id, entries=self.log.read(req.fetch_offset,
                                  min(req.max_records, self.cfg.fetch_max_records))))

    def _complete_parked_fetches(self) -> None:
        for replica in sorted(self._parked):
            self._complete_parked(replica)

    def _maybe_advance_high_watermark(self) -> None:
        if self.role != LEADER:
            return
        ends = [self.log.flushed_end]
        ends.extend(self._progress[v].end_offset if v in self._progress else 0
                    for v in self.voters if v != self.node_id)
        ends.sort(reverse=True)
        candidate = ends[self.majority - 1]
        if candidate > self.high_watermark and candidate > self._epoch_start_offset:
            self.high_watermark = candidate
            self._deliver_committed()
            self._complete_parked_fetches()

    def _on_flushed(self) -> None:
        if self.role == LEADER:
            self._maybe_advance_high_watermark()
        elif not self._fetch_inflight:
            self._send_fetch()

    # ------------------------------------------------------------------ fetch: follower

    def _abandon_fetch(self) -> None:
        if self._fetch_timer is not None:
            self._fetch_timer.cancel()
            self._fetch_timer = None
        self._fetch_inflight = False
        self._fetch_target = None

    def _fetch_destination(self) -> str | None:
        if self.role == LEADER:
            return None
        if self.leader_id is not None and self.leader_id != self.node_id:
            return self.leader_id
        if self.is_voter:
            return None  # voters wait for BeginQuorumEpoch or an election
        others = [v for v in self.voters if v != self.node_id]
        target = others[self._bootstrap_index % len(others)]
        return target

    def _send_fetch(self) -> None:
        if self.halted or self._fetch_inflight or self._fetch_blocked:
            return
        target = self._fetch_destination()
        if target is None:
            return
        if self.log.flushed_end < self.log.end_offset:
            self.log.flush()
            return  # the flush completion sends the fetch: never ack unsynced entries
        self._fetch_target = target
        self._fetch_inflight = True
        self._fetch_correlation += 1
        self.rt.send(target, QuorumFetchRequest(
            correlation_id=self._fetch_correlation, replica_id=self.node_id,
            current_leader_epoch=self.epoch,
            fetch_offset=self.log.end_offset, last_fetched_epoch=self.log.last_epoch,
            max_wait_ms=self.cfg.fetch_max_wait_us // 1_000,
            max_records=self.cfg.fetch_max_records))
        if self._fetch_timer is not None:
            self._fetch_timer.cancel()
        self._fetch_timer = self.rt.set_timer(
            self.cfg.request_timeout_us + self.cfg.fetch_max_wait_us,
            self._on_fetch_request_timeout)

    def _on_fetch_request_timeout(self) -> None:
        self._fetch_timer = None
        self._fetch_inflight = False
        if self.leader_id is None:
            self._bootstrap_index += 1
        self._send_fetch()

    def _retry_fetch_later(self) -> None:
        if self._fetch_timer is not None:
            self._fetch_timer.cancel()
        self._fetch_inflight = True  # hold the slot until the backoff ends

        def retry() -> None:
            self._fetch_timer = None
            self._fetch_inflight = False
            self._send_fetch()

        self._fetch_timer = self.rt.set_timer(self.cfg.retry_backoff_us, retry)

    def on_quorum_fetch_response(self, src: str, resp: QuorumFetchResponse) -> None:
        self._in_fetch_response = True
        try:
            self._handle_fetch_response(src, resp)
        finally:
            self._in_fetch_response = False


    def _handle_fetch_response(self, src: str, resp: QuorumFetchResponse) -> None:
        if (src != self._fetch_target or not self._fetch_inflight or self.role == LEADER
                or resp.correlation_id != self._fetch_correlation):
            if resp.leader_epoch > self.epoch:
                self._observe_epoch(resp.leader_epoch, resp.leader_id)
            return
        if self._fetch_timer is not None:
            self._fetch_timer.cancel()
            self._fetch_timer = None
        self._fetch_inflight = False
        self._fetch_target = None
        if resp.leader_epoch > self.epoch or (resp.leader_epoch == self.epoch
                                              and resp.leader_id is not None
                                              and self.leader_id is None):
            self._observe_epoch(resp.leader_epoch, resp.leader_id)
        if resp.error_code != Errors.NONE:
            if resp.leader_id is None or resp.leader_id == src:
                self._bootstrap_index += 1
                if self.leader_id == src and resp.leader_epoch >= self.epoch:
                    self._set_leader(None)
            self._retry_fetch_later()
            return
        if resp.leader_epoch != self.epoch or resp.leader_id != src:
            self._retry_fetch_later()
            return
        # a successful fetch from the leader of our epoch
        self._last_leader_contact_us = self.rt.now()
        if self.role != FOLLOWER:
            self.become_follower(self.epoch, src)
        elif self._timer is not None:
            self._arm(self.cfg.fetch_timeout_us, self._on_fetch_timeout if self.is_voter
                      else self._on_observer_fetch_timeout)
        if resp.snapshot_end_offset >= 0:
            self._fetch_blocked = True
            self.rt.send(src, QuorumFetchSnapshotRequest(
                replica_id=self.node_id, current_leader_epoch=self.epoch,
                snapshot_end_offset=resp.snapshot_end_offset,
                snapshot_epoch=resp.snapshot_epoch))
            self._fetch_timer = self.rt.set_timer(self.cfg.request_timeout_us,
                                                  self._on_snapshot_timeout)
            return
        if resp.diverging_end_offset >= 0:
            if self._truncate_diverging(resp.diverging_epoch, resp.diverging_end_offset):
                self._send_fetch()
            else:
                self._retry_fetch_later()
            return
        if resp.entries:
            if resp.entries[0].offset != self.log.end_offset:
                self._send_fetch()
                return
            if not self.log.append(resp.entries):
                return
        self._advance_follower_hw(resp.high_watermark)
        self._send_fetch()

    def _truncate_diverging(self, epoch: int, end_offset: int) -> bool:
        """Cut the log where it stops matching the leader's; False if nothing to cut."""
        mine = self.log.end_offset_for_epoch(epoch)
        target = end_offset if mine is None else min(end_offset, mine[1])
        target = max(target, self.log.start_offset)
        if target >= self.log.end_offset:
            return False
        if target < self.applied_offset:
            # never expected: the leader validated our log up to what it committed
            self.rt.emit("raft_truncate_below_commit", target=target,
                         applied=self.applied_offset)
        self.rt.emit("raft_truncate", epoch=self.epoch, to_offset=target,
                     from_offset=self.log.end_offset)
        self.log.truncate_to(target)
        self.high_watermark = min(self.high_watermark, max(target, self.applied_offset))
        return True

    def _advance_follower_hw(self, leader_hw: int) -> None:
        hw = min(leader_hw, self.log.end_offset)
        if hw > self.high_watermark:
            self.high_watermark = hw
            self._deliver_committed()

    def _on_snapshot_timeout(self) -> None:
        self._fetch_timer = None
        self._fetch_blocked = False
        self._send_fetch()

    def on_quorum_fetch_snapshot_request(self, src: str, req: QuorumFetchSnapshotRequest) -> None:
        snap = self._snapshot
        if self.role != LEADER or snap is None or (snap[0], snap[1]) != (
                req.snapshot_end_offset, req.snapshot_epoch):
            code = Errors.NOT_LEADER_OR_FOLLOWER if self.role != LEADER \
                else Errors.SNAPSHOT_NOT_FOUND
            self.rt.send(src, QuorumFetchSnapshotResponse(
                error_code=code, leader_id=self.leader_id, leader_epoch=self.epoch))
            return
        self.rt.send(src, QuorumFetchSnapshotResponse(
            leader_id=self.leader_id, leader_epoch=self.epoch, snapshot_end_offset=snap[0],
            snapshot_epoch=snap[1], records=tuple(snap[2])))

    def on_quorum_fetch_snapshot_response(self, src: str,
                                          resp: QuorumFetchSnapshotResponse) -> None:
        if not self._fetch_blocked:
            return
        if self._fetch_timer is not None:
            self._fetch_timer.cancel()
            self._fetch_timer = None
        if resp.error_code != Errors.NONE:
            self._fetch_blocked = False
            self._observe_epoch(resp.leader_epoch, resp.leader_id)
            self._retry_fetch_later()
            return
        end, epoch, records = resp.snapshot_end_offset, resp.snapshot_epoch, list(resp.records)

        def installed() -> None:
            self._fetch_blocked = False
            self._snapshot = (end, epoch, records)
            self.log.reset(end, epoch)
            self.high_watermark = max(self.high_watermark, end)
            self.applied_offset = end
            self.listener.handle_snapshot(end, epoch, records)
            self.rt.emit("raft_snapshot_loaded", end_offset=end, epoch=epoch)
            self._send_fetch()

        self.snapshots.write(end, epoch, records, installed)

    # ------------------------------------------------------------------ commit

    def _deliver_committed(self) -> None:
        hw = min(self.high_watermark, self.log.end_offset)
        if self.applied_offset >= hw:
            return
        entries = self.log.read(self.applied_offset, hw - self.applied_offset)
        self.applied_offset = hw
        self.listener.handle_commit(entries)

    # ------------------------------------------------------------------ describe

    def on_describe_quorum_request(self, src: str, req: DescribeQuorumRequest) -> None:
        self.rt.send(src, DescribeQuorumResponse(
            correlation_id=req.correlation_id,
            error_code=Errors.NONE if self.role == LEADER else Errors.NOT_LEADER_OR_FOLLOWER,
            leader_id=self.leader_id, leader_epoch=self.epoch,
            high_watermark=self.high_watermark, voters=self.voters))


__all__ = ["CANDIDATE", "FOLLOWER", "LEADER", "PROSPECTIVE", "UNATTACHED",
           "KafkaRaftClient", "RaftListener"]
