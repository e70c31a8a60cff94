"""Which partitions a consumer reads and where it stands in each (Kafka's
SubscriptionState).

Each assigned partition moves through states:

    INITIALIZING --(committed offset | reset needed)--> AWAIT_RESET --ListOffsets--> FETCHING
    FETCHING --(leader epoch grew, KIP-320)--> AWAIT_VALIDATION --OffsetsForLeaderEpoch-->
        FETCHING (same position, or moved back to the leader's end of our epoch on truncation)
    FETCHING --OFFSET_OUT_OF_RANGE--> AWAIT_RESET (or FAILED under auto.offset.reset=none)

A position is (offset, offset_epoch, current_leader_epoch): the next offset to read,
the leader epoch of the record before it (what KIP-320 validates against the new
leader), and the leader epoch the fetcher believes current (sent as
current_leader_epoch so a stale leader answers FENCED_LEADER_EPOCH).

`assign` keeps the position of partitions that stay assigned, so a group client can
hand over a new assignment without losing progress.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from simlog.client.metadata import TopicPartition

INITIALIZING = "initializing"
AWAIT_RESET = "await_reset"
AWAIT_VALIDATION = "await_validation"
FETCHING = "fetching"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FetchPosition:
    offset: int
    offset_epoch: int = -1
    current_leader_epoch: int = -1


@dataclass(slots=True)
class PartitionState:
    state: str = INITIALIZING
    position: FetchPosition | None = None
    reset_strategy: str | None = None
    paused: bool = False
    next_attempt_us: int = 0
    request_in_flight: bool = False
    high_watermark: int = -1
    log_start_offset: int = -1
    last_stable_offset: int = -1
    error: str = ""


class SubscriptionState:
    def __init__(self, default_reset: str) -> None:
        self.default_reset = default_reset
        # Kept in sorted key order (only `assign` inserts), so scans need no sort.
        self.assignment: dict[TopicPartition, PartitionState] = {}

    def assign(self, tps: Iterable[TopicPartition]) -> list[TopicPartition]:
        """Replace the assignment; returns the partitions that were removed."""
        wanted = sorted(set(tps))
        removed = sorted(set(self.assignment) - set(wanted))
        self.assignment = {tp: self.assignment.get(tp) or PartitionState() for tp in wanted}
        return removed

    def partitions(self) -> list[TopicPartition]:
        return list(self.assignment)

    def get(self, tp: TopicPartition) -> PartitionState | None:
        return self.assignment.get(tp)

    def seek(self, tp: TopicPartition, offset: int, offset_epoch: int = -1,
             current_leader_epoch: int = -1) -> None:
        """Set the position; with an offset epoch it is validated first (KIP-320)."""
        s = self.assignment[tp]
        s.position = FetchPosition(offset, offset_epoch, current_leader_epoch)
        s.state = AWAIT_VALIDATION if offset_epoch >= 0 else FETCHING
        s.reset_strategy = None
        s.error = ""

    def request_reset(self, tp: TopicPartition, strategy: str | None = None) -> bool:
        """Ask for a reset with strategy (default auto.offset.reset). False, and the
        partition FAILED, when the strategy is `none`."""
        s = self.assignment[tp]
        strategy = strategy or self.default_reset
        if strategy == "none":
            s.state = FAILED
            s.error = "no offset and auto.offset.reset=none"
            return False
        s.state = AWAIT_RESET
        s.reset_strategy = strategy
        s.next_attempt_us = 0
        return True

    def fetchable(self) -> list[TopicPartition]:
        return [tp for tp, s in self.assignment.items() if s.state == FETCHING and not s.paused]

    def in_state(self, state: str) -> list[TopicPartition]:
        return [tp for tp, s in self.assignment.items() if s.state == state]


__all__ = [
    "AWAIT_RESET",
    "AWAIT_VALIDATION",
    "FAILED",
    "FETCHING",
    "INITIALIZING",
    "FetchPosition",
    "PartitionState",
    "SubscriptionState",
]
