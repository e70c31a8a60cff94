"""A bare Raft node for tests: a KafkaRaftClient whose state machine records commits."""

from __future__ import annotations

from simlog.controller.config import QuorumConfig
from simlog.controller.raft import KafkaRaftClient
from simlog.controller.records import LogEntry, NoOpRecord, TopicRecord
from simlog.runtime import Message, NodeBase, Runtime


class RecordingListener:
    def __init__(self) -> None:
        self.committed: list[LogEntry] = []
        self.snapshot_end = 0
        self.leader_changes: list[tuple[str | None, int]] = []

    def handle_commit(self, entries):
        if self.committed and entries:
            assert entries[0].offset == self.committed[-1].offset + 1
        self.committed.extend(entries)

    def handle_snapshot(self, end_offset, epoch, records):
        self.committed = []
        self.snapshot_end = end_offset

    def handle_leader_change(self, leader_id, epoch):
        self.leader_changes.append((leader_id, epoch))


class RaftNode(NodeBase):
    def __init__(self, rt: Runtime, config: QuorumConfig) -> None:
        super().__init__(rt)
        self.listener = RecordingListener()
        self.raft = KafkaRaftClient(rt, config, self.listener)

    def start(self) -> None:
        self.raft.start()

    def on_message(self, src: str, msg: Message) -> None:
        assert self.raft.on_message(src, msg), type(msg).__name__

    def propose(self, name: str) -> int | None:
        return self.raft.append([TopicRecord(name=name, topic_id=name)])

    def noop(self) -> int | None:
        return self.raft.append([NoOpRecord()])


def raft_factory(voters, **overrides):
    config = QuorumConfig(voters=tuple(voters), **overrides)
    return lambda rt: RaftNode(rt, config)


def leaders(cluster):
    return sorted(n for n, node in cluster.nodes.items() if node.raft.is_leader)


def committed_names(node):
    return [e.record.name for e in node.listener.committed if isinstance(e.record, TopicRecord)]
