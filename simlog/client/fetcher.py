"""The consumer's fetcher: Fetch requests to partition leaders, records into buffers.

At most one Fetch is in flight per broker (as Kafka's Fetcher), covering every
fetchable partition that broker leads and whose buffer is empty. Each carries the
position's `current_leader_epoch`, so a deposed leader answers FENCED_LEADER_EPOCH
instead of serving a log that may be diverging (KIP-320), and the epoch of the last
fetched record (`last_fetched_epoch`), so the leader can answer a diverging epoch
when our log was truncated under us; offset_fetcher.py judges that.

Parsing follows Kafka's client: whole batches only (a partial batch at the end of the
data is dropped, it is fetched again next time); records before the position (a
compressed batch starting earlier) are skipped; control batches (transaction markers)
advance the position but yield no record; a batch failing its CRC (with `check.crcs`)
stops the partition with an error instead of returning corrupt data. A response for a
position that has moved meanwhile (seek, reset) is discarded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from simlog.client.config import ConsumerConfig
from simlog.client.costs import CpuMeter
from simlog.client.metadata import Metadata, TopicPartition
from simlog.client.network import RequestTracker
from simlog.client.subscription import (
    AWAIT_VALIDATION,
    FETCHING,
    FetchPosition,
    SubscriptionState,
)
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import (
    CONSUMER_REPLICA_ID,
    FetchPartition,
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopic,
)
from simlog.records import HEADER_SIZE, parse_batches
from simlog.runtime import Message, Runtime


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int
    leader_epoch: int

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass(slots=True)
class Buffer:
    """Fetched records of one partition not yet handed out by poll."""

    fetch_offset: int
    records: list[ConsumerRecord] = field(default_factory=list)
    next_offset: int = 0
    next_epoch: int = -1


class Fetcher:
    def __init__(self, rt: Runtime, cfg: ConsumerConfig, tracker: RequestTracker,
                 metadata: Metadata, subs: SubscriptionState, meter: CpuMeter,
                 on_error: Callable[[TopicPartition, str], None],
                 on_diverging: Callable[[TopicPartition, FetchPosition, int, int], None],
                 ) -> None:
        self.rt = rt
        self.cfg = cfg
        self.tracker = tracker
        self.metadata = metadata
        self.subs = subs
        self.meter = meter
        self.on_error = on_error
        self.on_diverging = on_diverging
        self.buffers: dict[TopicPartition, Buffer] = {}
        self._hosts_in_flight: set[str] = set()
        self.fetches_sent = 0

    def run(self) -> int | None:
        now = self.rt.now()
        deadline: int | None = None
        by_host: dict[str, list[TopicPartition]] = {}
        for tp in self.subs.fetchable():
            s = self.subs.assignment[tp]
            if tp in self.buffers:
                continue
            if s.next_attempt_us > now:
                deadline = s.next_attempt_us if deadline is None else min(deadline,
                                                                          s.next_attempt_us)
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
            if host not in self._hosts_in_flight:
                self._send(host, by_host[host])
        return deadline

    def _send(self, host: str, tps: list[TopicPartition]) -> None:
        by_topic: dict[str, list[FetchPartition]] = {}
        sent: list[tuple[TopicPartition, FetchPosition]] = []
        for tp in tps:
            pos = self.subs.assignment[tp].position
            assert pos is not None
            sent.append((tp, pos))
            by_topic.setdefault(tp[0], []).append(FetchPartition(
                partition=tp[1], fetch_offset=pos.offset,
                current_leader_epoch=pos.current_leader_epoch,
                last_fetched_epoch=pos.offset_epoch,
                partition_max_bytes=self.cfg.max_partition_fetch_bytes))
        req = FetchRequest(
            correlation_id=self.tracker.next_correlation_id(), replica_id=CONSUMER_REPLICA_ID,
            max_wait_ms=self.cfg.fetch_max_wait_us // 1000, min_bytes=self.cfg.fetch_min_bytes,
            max_bytes=self.cfg.fetch_max_bytes, isolation_level=self.cfg.isolation_level,
            topics=tuple(FetchTopic(topic=t, partitions=tuple(by_topic[t]))
                         for t in sorted(by_topic)),
            rack_id=self.cfg.client_rack)
        self._hosts_in_flight.add(host)
        self.fetches_sent += 1
        self.tracker.send(host, req, lambda resp: self._on_response(host, sent, resp),
                          timeout_us=self.cfg.request_timeout_us + self.cfg.fetch_max_wait_us)

    def _on_response(self, host: str, sent: list[tuple[TopicPartition, FetchPosition]],
                     resp: Message | None) -> None:
        self._hosts_in_flight.discard(host)
        if not isinstance(resp, FetchResponse):
            self.metadata.request_update()
            return
        answers: dict[TopicPartition, FetchPartitionResponse] = {}
        for t in resp.responses:
            for p in t.partitions:
                answers[(t.topic, p.partition_index)] = p
        for tp, pos in sent:
            s = self.subs.get(tp)
            p = answers.get(tp)
            if s is None or p is None or s.state != FETCHING or s.position != pos:
                continue  # unassigned, or the position moved: stale data
            self._on_partition(tp, pos, p)

    def _on_partition(self, tp: TopicPartition, pos: FetchPosition,
                      p: FetchPartitionResponse) -> None:
        s = self.subs.assignment[tp]
        err = p.error_code
        offset = pos.offset
        if err == Errors.NONE and p.diverging_epoch is not None:
            self.on_diverging(tp, pos, p.diverging_epoch.epoch, p.diverging_epoch.end_offset)
            return
        if err == Errors.NONE:
            s.high_watermark = p.high_watermark
            s.log_start_offset = p.log_start_offset
            s.last_stable_offset = p.last_stable_offset
            self._parse(tp, offset, p.records)
            return
        s.next_attempt_us = self.rt.now() + self.cfg.retry_backoff_us
        if err == Errors.OFFSET_OUT_OF_RANGE:
            self.rt.emit("consumer_offset_out_of_range", topic=tp[0], partition=tp[1],
                         offset=offset)
            if not self.subs.request_reset(tp):
                self.on_error(tp, f"offset {offset} out of range and auto.offset.reset=none")
            return
        if err.invalidates_metadata or err == Errors.UNKNOWN_LEADER_EPOCH:
            self.metadata.request_update()
            hint = p.current_leader
            if hint is not None and hint.leader_id >= 0 and self.metadata.hint_leader(
                    tp, hint.leader_id, hint.leader_epoch):
                s.next_attempt_us = 0  # the new leader is known: no need to back off
            if err == Errors.FENCED_LEADER_EPOCH and s.position is not None \
                    and s.position.offset_epoch >= 0:
                s.state = AWAIT_VALIDATION  # validate once metadata names the new leader
            return
        if not err.retriable:
            self.on_error(tp, f"fetch error {err.name}")

    def _parse(self, tp: TopicPartition, offset: int, data: bytes) -> None:
        batches, error = parse_batches(data, validate=self.cfg.check_crcs)
        buf = Buffer(fetch_offset=offset, next_offset=offset)
        pos = self.subs.assignment[tp].position
        buf.next_epoch = pos.offset_epoch if pos is not None else -1
        for b in batches:
            if b.last_offset < offset:
                continue
            raw = max(0, b.size - HEADER_SIZE)
            self.meter.read_batch(b.size, b.compression, raw * (3 if b.compression else 1),
                                  self.cfg.check_crcs)
            if not b.is_control:
                records = b.records()
                if not isinstance(records, list):
                    self._corrupt(tp, str(records))
                    break
                for r in records:
                    if r.offset >= offset:
                        buf.records.append(ConsumerRecord(
                            tp[0], tp[1], r.offset, r.key, r.value, r.headers, r.timestamp,
                            b.partition_leader_epoch))
            buf.next_offset = b.next_offset
            buf.next_epoch = b.partition_leader_epoch
        if error is not None and not error.truncated and not batches:
            self._corrupt(tp, str(error))
            return
        if buf.next_offset > offset:
            self.buffers[tp] = buf

    def _corrupt(self, tp: TopicPartition, detail: str) -> None:
        s = self.subs.assignment[tp]
        s.next_attempt_us = self.rt.now() + self.cfg.retry_backoff_us
        self.rt.emit("consumer_corrupt_batch", topic=tp[0], partition=tp[1], detail=detail)
        self.on_error(tp, f"corrupt record batch: {detail}")

    def drop(self, tp: TopicPartition) -> None:
        self.buffers.pop(tp, None)


__all__ = ["Buffer", "ConsumerRecord", "Fetcher"]
