"""The final state of a run, as the checks read it; the runner fills it after settling.

Per partition: every replica's log as (offset, id, leader_epoch) records, the high
watermark, the ISR and the leader; for the whole run: the leader timeline (for
`available`), truncations that removed records (for `replicas_converge`'s "a committed
prefix diverged at any time"), final committed group offsets, and the facts about the
workload that some checks need (consumer groups and their topics, idempotent producers).

"The final log" of a partition, where checks compare the history with it, is its
committed log: the leader's records below the high watermark. With no leader after
settling, the in-sync replica with the most records stands in (ties: lowest node id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from simlog.scenario.selectors import TopicPartition


@dataclass(frozen=True, slots=True, order=True)
class Record:
    offset: int
    id: str | None          # the record's `id` header (None: not a workload record)
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class Replica:
    node: str
    records: tuple[Record, ...]   # in offset order; gaps allowed (compaction, retention)
    log_start_offset: int = 0
    log_end_offset: int | None = None  # None: last record's offset + 1

    @property
    def end(self) -> int:
        if self.log_end_offset is not None:
            return self.log_end_offset
        return self.records[-1].offset + 1 if self.records else self.log_start_offset


@dataclass(frozen=True, slots=True)
class PartitionState:
    partition: TopicPartition
    replicas: Mapping[str, Replica]   # node -> its log (assigned replicas that exist)
    leader: str | None
    leader_epoch: int
    high_watermark: int
    isr: tuple[str, ...]

    def final_log(self) -> tuple[Record, ...]:
        """The committed log: the leader's (or stand-in's) records below the HW."""
        source = self.reference_replica()
        if source is None:
            return ()
        return tuple(r for r in source.records if r.offset < self.high_watermark)

    def reference_replica(self) -> Replica | None:
        if self.leader is not None and self.leader in self.replicas:
            return self.replicas[self.leader]
        candidates = [self.replicas[n] for n in sorted(self.isr) if n in self.replicas]
        if not candidates:
            candidates = [self.replicas[n] for n in sorted(self.replicas)]
        if not candidates:
            return None
        return sorted(candidates, key=lambda r: (-r.end, r.node))[0]


@dataclass(frozen=True, slots=True)
class LeaderChange:
    """From `time_us` on, `partition` is led by `leader` (None: no leader)."""

    time_us: int
    partition: TopicPartition
    leader: str | None
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class Truncation:
    """A replica cut its log back to `to_offset` at `time_us`, when the partition's
    high watermark (as the leader had last announced it) was `high_watermark`."""

    time_us: int
    partition: TopicPartition
    node: str
    to_offset: int
    high_watermark: int


@dataclass(frozen=True)
class FinalState:
    partitions: Mapping[TopicPartition, PartitionState]
    start_us: int = 0
    end_us: int = 0                                  # when the run (with settling) ended
    leader_changes: tuple[LeaderChange, ...] = ()    # in time order; initial leaders too
    truncations: tuple[Truncation, ...] = ()
    committed_offsets: Mapping[tuple[str, TopicPartition], int] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group -> topics
    idempotent_producers: frozenset[str] = frozenset()

    def partition(self, topic: str, partition: int) -> PartitionState | None:
        return self.partitions.get(TopicPartition(topic, partition))

    def sorted_partitions(self) -> list[PartitionState]:
        return [self.partitions[tp] for tp in sorted(self.partitions)]
