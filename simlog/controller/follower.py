"""MetadataFollower: follow the metadata log and keep the MetadataImage up to date.

What a broker embeds (and what a controller is built on): a `KafkaRaftClient` (a voter
if this node is in controller.quorum.voters, an observer otherwise) whose committed
entries are replayed into `image`. After each replay, every `on_delta(image, delta)`
callback runs, in registration order, with the delta of that batch; a broker reacts to
`delta.local_changes(broker_id)` (become leader / follower of partitions).

Embedding (a broker node):
    self.metadata = MetadataFollower(rt, quorum_config, on_delta=self._on_metadata)
    def start(self): ...; self.metadata.start()
    def on_message(self, src, msg):
        if self.metadata.on_message(src, msg): return
        ...
The image only ever holds *committed* metadata; `controller_id` is the node id of the
Raft leader (the active controller), or None while unknown.

Snapshots: every `snapshot_interval_records` applied entries the follower snapshots its
image (records that rebuild it) so the log stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable

from simlog.controller.config import QuorumConfig
from simlog.controller.image import MetadataDelta, MetadataImage
from simlog.controller.raft import KafkaRaftClient
from simlog.controller.records import LogEntry
from simlog.runtime import Message, Runtime

DeltaCallback = Callable[[MetadataImage, MetadataDelta], None]
CommitCallback = Callable[[tuple[LogEntry, ...], MetadataDelta], None]
LeaderCallback = Callable[[str | None, int], None]


def diff_images(old: MetadataImage, new: MetadataImage) -> MetadataDelta:
    """The delta that turns old into new (used when a snapshot replaces the image)."""
    delta = MetadataDelta(offset=new.offset)
    for b in sorted(set(old.brokers) | set(new.brokers)):
        before, after = old.brokers.get(b), new.brokers.get(b)
        if before != after:
            delta.brokers[b] = (before, after)
    old_parts = {(p.topic, p.partition): p for p in old.partitions()}
    new_parts = {(p.topic, p.partition): p for p in new.partitions()}
    for tp in sorted(set(old_parts) | set(new_parts)):
        before, after = old_parts.get(tp), new_parts.get(tp)
        if before != after:
            delta.partitions[tp] = (before, after)
    delta.created_topics = sorted(set(new.topics) - set(old.topics))
    delta.deleted_topics = sorted(set(old.topics) - set(new.topics))
    return delta


class MetadataFollower:
    """A replica of the metadata log plus the image it builds (see module docstring)."""

    def __init__(self, rt: Runtime, quorum: QuorumConfig,
                 on_delta: DeltaCallback | None = None) -> None:
        self.rt = rt
        self.quorum = quorum
        self.image = MetadataImage()
        self._delta_callbacks: list[DeltaCallback] = [on_delta] if on_delta else []
        self._commit_callbacks: list[CommitCallback] = []
        self._leader_callbacks: list[LeaderCallback] = []
        self.raft = KafkaRaftClient(rt, quorum, self)

    # -- host API ------------------------------------------------------------------

    def start(self) -> None:
        self.raft.start()

    def on_message(self, src: str, msg: Message) -> bool:
        """True if msg was a quorum message (handled here)."""
        return self.raft.on_message(src, msg)

    def add_delta_listener(self, fn: DeltaCallback) -> None:
        self._delta_callbacks.append(fn)

    def add_commit_listener(self, fn: CommitCallback) -> None:
        self._commit_callbacks.append(fn)

    def add_leader_listener(self, fn: LeaderCallback) -> None:
        self._leader_callbacks.append(fn)

    @property
    def controller_id(self) -> str | None:
        """Node id of the active controller (the Raft leader), None while unknown."""
        return self.raft.leader_id

    @property
    def metadata_offset(self) -> int:
        """The highest applied metadata offset (-1 before any): sent in heartbeats."""
        return self.image.offset

    # -- RaftListener --------------------------------------------------------------

    def handle_commit(self, entries: tuple[LogEntry, ...]) -> None:
        delta = self.image.apply(entries)
        for fn in self._commit_callbacks:
            fn(entries, delta)
        for fn in self._delta_callbacks:
            fn(self.image, delta)
        self._maybe_snapshot()

    def handle_snapshot(self, end_offset: int, epoch: int, records: list) -> None:
        old = self.image
        self.image = MetadataImage.from_records(records, offset=end_offset - 1, epoch=epoch,
                                                quorum_leader=old.quorum_leader)
        delta = diff_images(old, self.image)
        for fn in self._commit_callbacks:
            fn((), delta)
        for fn in self._delta_callbacks:
            fn(self.image, delta)

    def handle_leader_change(self, leader_id: str | None, epoch: int) -> None:
        for fn in self._leader_callbacks:
            fn(leader_id, epoch)

    def _maybe_snapshot(self) -> None:
        interval = self.quorum.snapshot_interval_records
        end = self.image.offset + 1
        if interval > 0 and end - self.raft.log.start_offset >= interval:
            self.raft.create_snapshot(end, self.image.to_records())


__all__ = ["MetadataFollower", "diff_images"]
