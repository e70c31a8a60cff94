"""The client's view of the cluster: brokers, partition counts, leaders and epochs.

Learned with Metadata requests, refreshed when an error says it is stale (NOT_LEADER_
OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH, a timeout) and every
`metadata.max.age.ms`. As in Kafka since KIP-320, a partition's leader is only
replaced by information with an equal or newer leader epoch, so a response from a
lagging broker cannot move the client back to a deposed leader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from simlog.client.network import RequestTracker
from simlog.protocol.errors import Errors
from simlog.protocol.metadata import MetadataRequest, MetadataResponse
from simlog.runtime import Message, Runtime

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    leader_id: int
    leader_epoch: int
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()


class Metadata:
    """Cluster metadata plus the logic that keeps it fresh. The owner calls
    `maybe_update()` from its work loop and `next_deadline_us()` to know when."""

    def __init__(self, rt: Runtime, tracker: RequestTracker, bootstrap: Iterable[str],
                 retry_backoff_us: int, max_age_us: int,
                 on_update: Callable[[], None]) -> None:
        self.rt = rt
        self.tracker = tracker
        self.bootstrap = tuple(sorted(bootstrap))
        self.retry_backoff_us = retry_backoff_us
        self.max_age_us = max_age_us
        self.on_update = on_update
        self.brokers: dict[int, str] = {}
        self.partition_counts: dict[str, int] = {}
        self.partitions: dict[TopicPartition, PartitionInfo] = {}
        self.topic_errors: dict[str, Errors] = {}
        self.topics: set[str] = set()
        self.updates = 0
        self._need_update = False  # nothing to ask until a topic is of interest
        self._in_flight = False
        self._last_attempt_us: int | None = None
        self._last_success_us: int | None = None
        self._rotation = 0

    # --- queries -------------------------------------------------------------
    def leader(self, tp: TopicPartition) -> PartitionInfo | None:
        info = self.partitions.get(tp)
        if info is None or info.leader_id < 0 or info.leader_id not in self.brokers:
            return None
        return info

    def leader_host(self, tp: TopicPartition) -> str | None:
        info = self.leader(tp)
        return None if info is None else self.brokers[info.leader_id]

    def available_partitions(self, topic: str) -> list[int]:
        n = self.partition_counts.get(topic, 0)
        return [p for p in range(n) if self.leader((topic, p)) is not None]

    def hosts(self) -> list[str]:
        return sorted(set(self.brokers.values())) or list(self.bootstrap)

    def hint_leader(self, tp: TopicPartition, leader_id: int, leader_epoch: int) -> bool:
        """A broker named the current leader in an error answer (KIP-951's
        CurrentLeader). Taken only if its epoch is newer and the broker is known, so
        the client can retry at once; True if the leader changed."""
        old = self.partitions.get(tp)
        if old is None or leader_epoch <= old.leader_epoch or leader_id not in self.brokers:
            return False
        self.partitions[tp] = PartitionInfo(leader_id, leader_epoch, old.replicas, old.isr)
        return True

    # --- refresh -------------------------------------------------------------
    def add_topics(self, topics: Iterable[str]) -> None:
        new = set(topics) - self.topics
        if new:
            # As Kafka's requestUpdateForNewTopics: ask at once, skipping the backoff.
            self.topics |= new
            self._need_update = True
            self._last_attempt_us = None

    def request_update(self) -> None:
        """Ask for a refresh (after the backoff). The owner's loop is told once, so a
        request from outside any event still arms its timer."""
        if not self._need_update:
            self._need_update = True
            self.on_update()

    def next_deadline_us(self) -> int | None:
        if self._in_flight:
            return None
        if self._need_update:
            if self._last_attempt_us is None:
                return self.rt.now()
            return self._last_attempt_us + self.retry_backoff_us
        if self._last_success_us is not None:
            return self._last_success_us + self.max_age_us
        return None

    def maybe_update(self) -> None:
        deadline = self.next_deadline_us()
        if deadline is None or deadline > self.rt.now():
            return
        host = self._least_loaded()
        self._last_attempt_us = self.rt.now()
        if host is None:
            return
        self._in_flight = True
        req = MetadataRequest(correlation_id=self.tracker.next_correlation_id(),
                              topics=tuple(sorted(self.topics)),
                              allow_auto_topic_creation=False)
        self.tracker.send(host, req, lambda resp: self._on_response(host, resp))

    def _least_loaded(self) -> str | None:
        self._rotation += 1
        return self.tracker.least_loaded(self.hosts(), self._rotation)

    def _on_response(self, host: str, resp: Message | None) -> None:
        self._in_flight = False
        if not isinstance(resp, MetadataResponse):
            self._need_update = True
        else:
            self._apply(resp)
        self.on_update()

    def _apply(self, resp: MetadataResponse) -> None:
        self._last_success_us = self.rt.now()
        self.updates += 1
        if resp.brokers:
            self.brokers = {b.node_id: b.host for b in resp.brokers}
        need = False
        for topic in resp.topics:
            if topic.error_code != Errors.NONE:
                self.topic_errors[topic.name] = topic.error_code
                need = need or topic.error_code.retriable
                continue
            self.topic_errors.pop(topic.name, None)
            self.partition_counts[topic.name] = len(topic.partitions)
            for p in topic.partitions:
                tp = (topic.name, p.partition_index)
                old = self.partitions.get(tp)
                if old is not None and p.leader_epoch < old.leader_epoch:
                    need = True  # a stale broker answered; ask again later
                    continue
                leader = p.leader_id if p.error_code in (Errors.NONE,
                                                         Errors.REPLICA_NOT_AVAILABLE) else -1
                self.partitions[tp] = PartitionInfo(leader, p.leader_epoch,
                                                    tuple(p.replica_nodes), tuple(p.isr_nodes))
                if leader < 0:
                    need = True
        self._need_update = need


__all__ = ["Metadata", "PartitionInfo", "TopicPartition"]
