"""Fetch (API key 1): consumers read and followers replicate.

Fields are those of Kafka's FetchRequest/FetchResponse v11 (WIRE.md), plus what the
replication and KIP-320 logic needs from later versions: `last_fetched_epoch` on the
request and `diverging_epoch` / `current_leader` on the response (v12+, KIP-595-style
follower truncation), and `correlation_id` from the header.

Fetch sessions (KIP-227, v7+): followers use incremental fetch sessions, consumers do
not (`session_id` 0, `session_epoch` -1: a full, sessionless fetch every time, as
WIRE.md's clients). `simlog.broker.fetch_session` holds both halves; in short:
- (`session_id`, `session_epoch`) = (0, -1): sessionless full fetch; (0, 0): full fetch
  asking for a new session; (id, 0): full fetch closing session id and asking for a
  new one; (id, n > 0): incremental fetch n of session id.
- An incremental request lists only partitions that are new to the session or whose
  fetch parameters changed, and `forgotten_topics_data` names those leaving it; the
  leader reads every partition of the session, as last described.
- A response's `session_id` is the session it created or continued (0: none); an
  incremental response holds only the partitions with something new (records, a
  changed high watermark, last stable offset or log start offset, an error, a
  diverging epoch): a partition left out has nothing new.
- Top-level `error_code` FETCH_SESSION_ID_NOT_FOUND / INVALID_FETCH_SESSION_EPOCH (with
  no partitions) tell the fetcher to start over with a full fetch.

Invariants:
- `replica_id` is -1 for a consumer and the follower's broker id for a follower; only a
  follower's fetch moves the leader's view of that follower's log end offset.
- `current_leader_epoch` (-1 = unknown, skip the check) lets the broker answer
  FENCED_LEADER_EPOCH (the fetcher's epoch is older) or UNKNOWN_LEADER_EPOCH (newer).
- `records` holds whole v2 batches as stored (maybe ending in a partial batch, which
  clients drop); at least one whole batch is returned even above the byte limits.
- `high_watermark` bounds what consumers may read; `last_stable_offset` equals it when
  no transaction is open.
"""

from __future__ import annotations

import msgspec

from simlog.protocol.errors import Errors
from simlog.runtime import Message

#: replica_id of a consumer (FetchRequest.CONSUMER_REPLICA_ID).
CONSUMER_REPLICA_ID = -1
#: Isolation levels.
READ_UNCOMMITTED = 0
READ_COMMITTED = 1

_FRAME_OVERHEAD = 40
_TOPIC_OVERHEAD = 8
_PARTITION_OVERHEAD = 48


class FetchPartition(msgspec.Struct, frozen=True, kw_only=True):
    partition: int
    fetch_offset: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    log_start_offset: int = -1
    partition_max_bytes: int = 1_048_576


class FetchTopic(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    partitions: tuple[FetchPartition, ...]


class ForgottenTopic(msgspec.Struct, frozen=True, kw_only=True):
    """FetchRequest's ForgottenTopicsData (v7+): partitions an incremental fetch drops
    from its session."""

    topic: str
    partitions: tuple[int, ...]


class FetchRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    replica_id: int = CONSUMER_REPLICA_ID
    max_wait_ms: int = 500
    min_bytes: int = 1
    max_bytes: int = 52_428_800
    isolation_level: int = READ_UNCOMMITTED
    session_id: int = 0
    session_epoch: int = -1
    topics: tuple[FetchTopic, ...] = ()
    forgotten_topics_data: tuple[ForgottenTopic, ...] = ()
    rack_id: str = ""


class FetchEpochEndOffset(msgspec.Struct, frozen=True, kw_only=True):
    """FetchResponse's DivergingEpoch: the largest epoch <= the fetcher's
    last_fetched_epoch on the leader and where it ends; the fetcher truncates to
    min(end_offset, its own end of that epoch)."""

    epoch: int = -1
    end_offset: int = -1


class FetchLeaderIdAndEpoch(msgspec.Struct, frozen=True, kw_only=True):
    """The leader as this broker knows it, sent with NOT_LEADER_OR_FOLLOWER and
    FENCED_LEADER_EPOCH so the client can skip a metadata round trip."""

    leader_id: int = -1
    leader_epoch: int = -1


class AbortedTransaction(msgspec.Struct, frozen=True, kw_only=True):
    producer_id: int
    first_offset: int


class FetchPartitionResponse(msgspec.Struct, frozen=True, kw_only=True):
    partition_index: int
    error_code: Errors = Errors.NONE
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    diverging_epoch: FetchEpochEndOffset | None = None
    current_leader: FetchLeaderIdAndEpoch | None = None
    aborted_transactions: tuple[AbortedTransaction, ...] | None = None
    preferred_read_replica: int = -1
    records: bytes = b""


class FetchTopicResponse(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    partitions: tuple[FetchPartitionResponse, ...]


class FetchResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    error_code: Errors = Errors.NONE
    throttle_time_ms: int = 0
    session_id: int = 0
    responses: tuple[FetchTopicResponse, ...] = ()

    def wire_size(self) -> int:
        """Record bytes dominate; the rest is a close estimate (cheap, no encoding) over
        the partitions present: an incremental response that leaves quiet partitions out
        costs that much less on the wire, as in Kafka."""
        size = _FRAME_OVERHEAD
        for topic in self.responses:
            size += _TOPIC_OVERHEAD + len(topic.topic)
            for part in topic.partitions:
                size += _PARTITION_OVERHEAD + len(part.records)
                if part.aborted_transactions:
                    size += 16 * len(part.aborted_transactions)
        return size


__all__ = [
    "CONSUMER_REPLICA_ID",
    "READ_COMMITTED",
    "READ_UNCOMMITTED",
    "AbortedTransaction",
    "FetchEpochEndOffset",
    "FetchLeaderIdAndEpoch",
    "FetchPartition",
    "FetchPartitionResponse",
    "FetchRequest",
    "FetchResponse",
    "FetchTopic",
    "FetchTopicResponse",
    "ForgottenTopic",
]
