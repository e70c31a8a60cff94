"""Raft RPCs of the KRaft controller quorum (KIP-595, pre-vote from KIP-996).

Vote, BeginQuorumEpoch and EndQuorumEpoch mirror Kafka's APIs of those names (keys 52,
53, 54). KRaft replicates the metadata log with the ordinary Fetch API (key 1) and
FetchSnapshot (key 59); here they are `QuorumFetchRequest`/`QuorumFetchResponse` and
`QuorumFetchSnapshotRequest`/`QuorumFetchSnapshotResponse`, because message class names
are unique across `simlog.protocol` (the codec tags by class name) and the partition
Fetch of the data plane already owns `FetchRequest`. The real world's wire codec maps
both onto Fetch for the `__cluster_metadata` partition.

Replica ids are runtime node ids (str: "c1", or "b1" in combined mode); Kafka's are
int32 node ids, a mapping for the wire codec. Every response carries the responder's
`leader_epoch` and `leader_id` (None = unknown) so a stale replica learns of a newer
epoch from any answer, as in KIP-595.
"""

from __future__ import annotations

from simlog.controller.records import AnyRecord, LogEntry
from simlog.protocol.errors import Errors
from simlog.runtime import Message


class VoteRequest(Message, frozen=True, kw_only=True):
    """Ask for a vote in candidate_epoch. pre_vote (KIP-996): a dry run that changes no
    state on the voter; a prospective candidate only bumps its epoch after a majority
    would grant it a vote, so a replica cut off from the quorum cannot inflate epochs."""

    candidate_id: str
    candidate_epoch: int
    last_offset_epoch: int
    last_offset: int  # end offset (next offset) of the candidate's log
    pre_vote: bool = False


class VoteResponse(Message, frozen=True, kw_only=True):
    error_code: Errors = Errors.NONE
    leader_id: str | None = None
    leader_epoch: int
    vote_granted: bool
    pre_vote: bool = False
    candidate_epoch: int = -1  # echo, so a late answer to an older round is recognised


class BeginQuorumEpochRequest(Message, frozen=True, kw_only=True):
    """A new leader announces itself to the voters (they start fetching from it)."""

    leader_id: str
    leader_epoch: int


class BeginQuorumEpochResponse(Message, frozen=True, kw_only=True):
    error_code: Errors = Errors.NONE
    leader_id: str | None = None
    leader_epoch: int


class EndQuorumEpochRequest(Message, frozen=True, kw_only=True):
    """A leader resigns (check-quorum failure or shutdown): voters may start an election
    at once instead of waiting for the fetch timeout."""

    leader_id: str
    leader_epoch: int
    preferred_successors: tuple[str, ...] = ()


class EndQuorumEpochResponse(Message, frozen=True, kw_only=True):
    error_code: Errors = Errors.NONE
    leader_id: str | None = None
    leader_epoch: int


class QuorumFetchRequest(Message, frozen=True, kw_only=True):
    """A follower or observer fetches the metadata log (Kafka: Fetch on __cluster_metadata).

    fetch_offset is the follower's log end offset *as persisted*: the leader counts it as
    the follower's acknowledgement of every entry below it. last_fetched_epoch is the
    epoch of the entry at fetch_offset - 1, for divergence detection."""

    correlation_id: int = 0  # echoed: a late or duplicated answer is recognised
    replica_id: str
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    max_wait_ms: int = 500
    max_records: int = 1000


class QuorumFetchResponse(Message, frozen=True, kw_only=True):
    """Entries from fetch_offset, or how to repair the follower's log:
    diverging_epoch/diverging_end_offset (truncate there, refetch), or snapshot_end_offset
    /snapshot_epoch (the entries were snapshotted away: fetch that snapshot)."""

    correlation_id: int = 0
    error_code: Errors = Errors.NONE
    leader_id: str | None = None
    leader_epoch: int
    high_watermark: int = -1
    log_start_offset: int = 0
    entries: tuple[LogEntry, ...] = ()
    diverging_epoch: int = -1
    diverging_end_offset: int = -1
    snapshot_end_offset: int = -1
    snapshot_epoch: int = -1

    def wire_size(self) -> int:
        # Entries dominate; a fixed estimate per entry keeps the simulated cost honest
        # without encoding every response twice.
        return 64 + 96 * len(self.entries)


class QuorumFetchSnapshotRequest(Message, frozen=True, kw_only=True):
    replica_id: str
    current_leader_epoch: int
    snapshot_end_offset: int
    snapshot_epoch: int


class QuorumFetchSnapshotResponse(Message, frozen=True, kw_only=True):
    """A whole snapshot in one answer (metadata snapshots are small here; Kafka streams
    them in position-addressed chunks)."""

    error_code: Errors = Errors.NONE
    leader_id: str | None = None
    leader_epoch: int
    snapshot_end_offset: int = -1
    snapshot_epoch: int = -1
    records: tuple[AnyRecord, ...] = ()

    def wire_size(self) -> int:
        return 64 + 96 * len(self.records)


class DescribeQuorumRequest(Message, frozen=True, kw_only=True):
    correlation_id: int = 0


class DescribeQuorumResponse(Message, frozen=True, kw_only=True):
    correlation_id: int = 0
    error_code: Errors = Errors.NONE
    leader_id: str | None = None
    leader_epoch: int = -1
    high_watermark: int = -1
    voters: tuple[str, ...] = ()


__all__ = [
    "BeginQuorumEpochRequest",
    "BeginQuorumEpochResponse",
    "DescribeQuorumRequest",
    "DescribeQuorumResponse",
    "EndQuorumEpochRequest",
    "EndQuorumEpochResponse",
    "QuorumFetchRequest",
    "QuorumFetchResponse",
    "QuorumFetchSnapshotRequest",
    "QuorumFetchSnapshotResponse",
    "VoteRequest",
    "VoteResponse",
]
