"""Position resets (ListOffsets) and KIP-320 position validation (OffsetsForLeaderEpoch).

Reset: `auto.offset.reset` earliest / latest (or a seek_to_beginning / end) asks each
partition's leader for its log start offset or high watermark.

Validation: after the leader epoch of a partition grows, the consumer asks the new
leader where the epoch of its last consumed record ended. If that end offset is below
the position, the log the consumer read was truncated under it (an unclean election,
or data that never reached the new leader): the consumer moves back to the end
offset when a reset policy exists, as Kafka does, or fails the partition under
`auto.offset.reset=none` (LogTruncationException). A Fetch that carries the epoch of
the last fetched record may be answered with a diverging epoch instead (Fetch v12+,
what a Kafka 4 consumer sends); it is judged the same way. Either way it is recorded
in `truncations` and the trace, so a run can show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simlog.client.metadata import Metadata, TopicPartition
from simlog.client.network import RequestTracker
from simlog.client.subscription import (
    AWAIT_RESET,
    AWAIT_VALIDATION,
    FAILED,
    FETCHING,
    FetchPosition,
    SubscriptionState,
)
from simlog.protocol.errors import Errors
from simlog.protocol.list_offsets import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
)
from simlog.protocol.offsets_for_leader_epoch import (
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
    OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse,
)
from simlog.runtime import Message, Runtime


@dataclass(frozen=True, slots=True)
class Truncation:
    """A detected divergence: the consumer had read up to `position` in
    `offset_epoch`, but the leader's log ends that epoch at `end_offset`."""

    tp: TopicPartition
    position: int
    offset_epoch: int
    end_offset: int
    end_epoch: int
    time_us: int


class OffsetFetcher:
    def __init__(self, rt: Runtime, tracker: RequestTracker, metadata: Metadata,
                 subs: SubscriptionState, isolation_level: int, retry_backoff_us: int,
                 on_error: Callable[[TopicPartition, str], None]) -> None:
        self.rt = rt
        self.tracker = tracker
        self.metadata = metadata
        self.subs = subs
        self.isolation_level = isolation_level
        self.retry_backoff_us = retry_backoff_us
        self.on_error = on_error
        self.truncations: list[Truncation] = []

    def run(self) -> int | None:
        """Send due resets and validations; returns the next retry deadline."""
        deadline: int | None = None
        for state, send in ((AWAIT_RESET, self._send_resets),
                            (AWAIT_VALIDATION, self._send_validations)):
            by_host: dict[str, list[TopicPartition]] = {}
            for tp in self.subs.in_state(state):
                s = self.subs.assignment[tp]
                if s.request_in_flight:
                    continue
                if s.next_attempt_us > self.rt.now():
                    deadline = s.next_attempt_us if deadline is None else min(
                        deadline, s.next_attempt_us)
                    continue
                host = self.metadata.leader_host(tp)
                if host is None:
                    self.metadata.request_update()
                    continue
                by_host.setdefault(host, []).append(tp)
            for host in sorted(by_host):
                if not self.tracker.ready(host):  # reset: wait for the reconnect
                    retry_at = self.tracker.retry_at(host)
                    if retry_at is not None:
                        deadline = retry_at if deadline is None else min(deadline, retry_at)
                    continue
                send(host, by_host[host])
        return deadline

    def _leader_epoch(self, tp: TopicPartition) -> int:
        info = self.metadata.leader(tp)
        return -1 if info is None else info.leader_epoch

    def _backoff(self, tp: TopicPartition, err: Errors | None) -> None:
        s = self.subs.get(tp)
        if s is None:
            return
        s.next_attempt_us = self.rt.now() + self.retry_backoff_us
        if err is None or err.invalidates_metadata:
            self.metadata.request_update()

    # --- resets ----------------------------------------------------------------
    def _send_resets(self, host: str, tps: list[TopicPartition]) -> None:
        by_topic: dict[str, list[ListOffsetsPartition]] = {}
        for tp in tps:
            s = self.subs.assignment[tp]
            s.request_in_flight = True
            ts = EARLIEST_TIMESTAMP if s.reset_strategy == "earliest" else LATEST_TIMESTAMP
            by_topic.setdefault(tp[0], []).append(ListOffsetsPartition(
                partition_index=tp[1], timestamp=ts,
                current_leader_epoch=self._leader_epoch(tp)))
        req = ListOffsetsRequest(
            correlation_id=self.tracker.next_correlation_id(),
            isolation_level=self.isolation_level,
            topics=tuple(ListOffsetsTopic(name=t, partitions=tuple(by_topic[t]))
                         for t in sorted(by_topic)))
        self.tracker.send(host, req, lambda resp: self._on_reset(tps, resp))

    def _on_reset(self, tps: list[TopicPartition], resp: Message | None) -> None:
        answers = {}
        if isinstance(resp, ListOffsetsResponse):
            for t in resp.topics:
                for p in t.partitions:
                    answers[(t.name, p.partition_index)] = p
        for tp in tps:
            s = self.subs.get(tp)
            if s is None:
                continue
            s.request_in_flight = False
            if s.state != AWAIT_RESET:
                continue  # a seek overtook the reset
            p = answers.get(tp)
            if p is None or p.error_code != Errors.NONE:
                self._backoff(tp, None if p is None else p.error_code)
                continue
            s.position = FetchPosition(p.offset, p.leader_epoch, self._leader_epoch(tp))
            s.state = FETCHING
            s.reset_strategy = None
            self.rt.emit("consumer_reset", topic=tp[0], partition=tp[1], offset=p.offset)

    # --- validation (KIP-320) ------------------------------------------------
    def _send_validations(self, host: str, tps: list[TopicPartition]) -> None:
        by_topic: dict[str, list[OffsetForLeaderPartition]] = {}
        sent: list[tuple[TopicPartition, FetchPosition]] = []
        for tp in tps:
            s = self.subs.assignment[tp]
            pos = s.position
            if pos is None or pos.offset_epoch < 0:
                s.state = FETCHING  # nothing to validate against
                continue
            current = max(self._leader_epoch(tp), pos.current_leader_epoch)
            pos = FetchPosition(pos.offset, pos.offset_epoch, current)
            s.position = pos
            s.request_in_flight = True
            sent.append((tp, pos))
            by_topic.setdefault(tp[0], []).append(OffsetForLeaderPartition(
                partition=tp[1], leader_epoch=pos.offset_epoch, current_leader_epoch=current))
        if not sent:
            return
        req = OffsetsForLeaderEpochRequest(
            correlation_id=self.tracker.next_correlation_id(),
            topics=tuple(OffsetForLeaderTopic(topic=t, partitions=tuple(by_topic[t]))
                         for t in sorted(by_topic)))
        self.tracker.send(host, req, lambda resp: self._on_validation(sent, resp))

    def _on_validation(self, sent: list[tuple[TopicPartition, FetchPosition]],
                       resp: Message | None) -> None:
        answers = {}
        if isinstance(resp, OffsetsForLeaderEpochResponse):
            for t in resp.topics:
                for p in t.partitions:
                    answers[(t.topic, p.partition)] = p
        for tp, pos in sent:
            s = self.subs.get(tp)
            if s is None:
                continue
            s.request_in_flight = False
            if s.state != AWAIT_VALIDATION or s.position != pos:
                continue
            p = answers.get(tp)
            if p is None or p.error_code != Errors.NONE:
                self._backoff(tp, None if p is None else p.error_code)
                continue
            if p.end_offset < 0 or p.leader_epoch < 0:
                self._no_common_epoch(tp, pos)
                continue
            if p.end_offset < pos.offset:
                self._truncated(tp, pos, p.end_offset, p.leader_epoch)
            else:
                s.state = FETCHING

    def on_diverging(self, tp: TopicPartition, pos: FetchPosition, epoch: int,
                     end_offset: int) -> None:
        """A Fetch answered with a diverging epoch (the leader's log ends our last
        fetched epoch at end_offset): the same judgement as a validation answer."""
        s = self.subs.get(tp)
        if s is None or s.position != pos:
            return
        if epoch < 0 or end_offset < 0:
            self._no_common_epoch(tp, pos)
        elif end_offset < pos.offset:
            self._truncated(tp, pos, end_offset, epoch)
        else:
            # Our epoch is unknown there but nothing we read is gone: adopt its epoch
            # so the next fetch does not diverge again.
            s.position = FetchPosition(pos.offset, epoch, pos.current_leader_epoch)

    def _no_common_epoch(self, tp: TopicPartition, pos: FetchPosition) -> None:
        """The leader knows no epoch <= ours: everything we read may be gone. Record it
        as a truncation (end offset -1) and reset by auto.offset.reset, as Kafka does."""
        t = Truncation(tp, pos.offset, pos.offset_epoch, -1, -1, self.rt.now())
        self.truncations.append(t)
        self.rt.emit("consumer_truncation_detected", topic=tp[0], partition=tp[1],
                     position=pos.offset, offset_epoch=pos.offset_epoch, end_offset=-1,
                     end_epoch=-1)
        if not self.subs.request_reset(tp):
            self.on_error(tp, "log truncation: the leader has no epoch <= ours")

    def _truncated(self, tp: TopicPartition, pos: FetchPosition, end_offset: int,
                   end_epoch: int) -> None:
        t = Truncation(tp, pos.offset, pos.offset_epoch, end_offset, end_epoch, self.rt.now())
        self.truncations.append(t)
        self.rt.emit("consumer_truncation_detected", topic=tp[0], partition=tp[1],
                     position=pos.offset, offset_epoch=pos.offset_epoch,
                     end_offset=end_offset, end_epoch=end_epoch)
        s = self.subs.assignment[tp]
        if self.subs.default_reset == "none":
            s.state = FAILED
            s.error = (f"log truncation: position {pos.offset} epoch {pos.offset_epoch}, "
                       f"leader ends it at {end_offset}")
            self.on_error(tp, s.error)
            return
        s.position = FetchPosition(end_offset, end_epoch, pos.current_leader_epoch)
        s.state = FETCHING


__all__ = ["OffsetFetcher", "Truncation"]
