"""The sender: drains ready batches into Produce requests and settles their fate.

One pass (`run`) expires batches past `delivery.timeout.ms`, then, per leader, sends
one request with at most one batch per partition while fewer than
`max.in.flight.requests.per.connection` requests are in flight to that leader.
Responses complete batches (ok), retry them after an exponential backoff with jitter
(`retry.backoff.ms` doubling up to `retry.backoff.max.ms`, KIP-580), or fail them.

How an unsuccessful batch is reported (SCENARIOS.md history):
- `fail` only when no attempt can have reached a log: never sent, or every attempt got
  a broker error that Kafka raises only before appending (NOT_ENOUGH_REPLICAS,
  MESSAGE_TOO_LARGE, OUT_OF_ORDER_SEQUENCE_NUMBER, ...: `_BEFORE_APPEND`).
- `info` when some attempt may have been written: no response (request timeout), or
  any other error, since it may follow an append (NOT_ENOUGH_REPLICAS_AFTER_APPEND,
  REQUEST_TIMED_OUT from the acks=all wait, NOT_LEADER_OR_FOLLOWER from a delayed
  produce whose leader moved on), and always for acks=0.

Expiry: a batch past `delivery.timeout.ms` is failed whether queued (fail if it never
reached a broker, else info) or in flight (info at once; its late answer only settles
the idempotence bookkeeping), as Kafka's Sender does. Not modelled: splitting a batch
answered MESSAGE_TOO_LARGE (Kafka re-batches it); here that is a definite `fail`.

Ordering: without idempotence and with more than one request in flight a retried
batch can land after a later one (Kafka's documented reordering). With
`max.in.flight.requests.per.connection=1` a partition is muted while its batch is in
flight, as Kafka's `guaranteeMessageOrder`. With idempotence, see idempotence.py.
"""

from __future__ import annotations

from collections.abc import Callable

from simlog.client.accumulator import ProducerBatch, RecordAccumulator
from simlog.client.config import ProducerConfig
from simlog.client.costs import CpuMeter
from simlog.client.idempotence import IdempotenceState
from simlog.client.metadata import Metadata, TopicPartition
from simlog.client.network import RequestTracker
from simlog.client.results import FAIL, INFO, OK, SendResult
from simlog.protocol.errors import Errors
from simlog.protocol.produce import (
    ProducePartitionData,
    ProducePartitionResponse,
    ProduceRequest,
    ProduceResponse,
    ProduceTopicData,
)
from simlog.runtime import Message, Runtime

# Errors a Kafka broker returns only from checks *before* appending: the attempt wrote
# nothing. Any other error may follow an append (NOT_ENOUGH_REPLICAS_AFTER_APPEND,
# REQUEST_TIMED_OUT from the acks=all wait, and NOT_LEADER_OR_FOLLOWER, which a delayed
# produce answers when leadership moved after the append), so it leaves the outcome open.
_BEFORE_APPEND = frozenset({
    Errors.NOT_ENOUGH_REPLICAS, Errors.MESSAGE_TOO_LARGE, Errors.RECORD_LIST_TOO_LARGE,
    Errors.INVALID_RECORD, Errors.CORRUPT_MESSAGE, Errors.INVALID_TIMESTAMP,
    Errors.INVALID_REQUIRED_ACKS, Errors.UNKNOWN_TOPIC_OR_PARTITION,
    Errors.LEADER_NOT_AVAILABLE, Errors.INVALID_TOPIC_EXCEPTION,
    Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Errors.DUPLICATE_SEQUENCE_NUMBER,
    Errors.INVALID_PRODUCER_EPOCH, Errors.UNKNOWN_PRODUCER_ID, Errors.PRODUCER_FENCED,
    Errors.INVALID_PRODUCER_ID_MAPPING, Errors.INVALID_TXN_STATE,
    Errors.TOPIC_AUTHORIZATION_FAILED, Errors.CLUSTER_AUTHORIZATION_FAILED,
    Errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, Errors.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    Errors.UNSUPPORTED_VERSION, Errors.POLICY_VIOLATION, Errors.THROTTLING_QUOTA_EXCEEDED,
})
_JITTER = 0.2


class Sender:
    def __init__(self, rt: Runtime, cfg: ProducerConfig, acc: RecordAccumulator,
                 metadata: Metadata, tracker: RequestTracker,
                 idem: IdempotenceState | None, meter: CpuMeter) -> None:
        self.rt = rt
        self.cfg = cfg
        self.acc = acc
        self.metadata = metadata
        self.tracker = tracker
        self.idem = idem
        self.meter = meter
        self.produce_in_flight = 0
        self._tp_in_flight: dict[TopicPartition, int] = {}
        self.requests_sent = 0
        self.retries = 0
        self.buffered_bytes = 0  # record bytes appended and not yet completed

    # --- one pass ------------------------------------------------------------
    def run(self) -> int | None:
        """Expire, then drain and send what is ready. Returns the next deadline.

        The producer runs this once per batch-level event (a batch became sendable,
        a linger or backoff deadline, a response), never per record."""
        now = self.rt.now()
        deadline = self._expire(now)
        by_host: dict[str, list[TopicPartition]] = {}
        acc = self.acc
        for tp in acc.partitions():
            host = self.metadata.leader_host(tp)
            if host is None:
                self.metadata.request_update()
                continue
            ready_at = acc.ready_at(tp)
            assert ready_at is not None
            if ready_at > now:
                deadline = _min(deadline, ready_at)
                continue
            if not self.tracker.ready(host):  # reset: wait for the reconnect
                retry_at = self.tracker.retry_at(host)
                if retry_at is not None:
                    deadline = _min(deadline, retry_at)
                continue
            head = acc.queues[tp][0]
            if self._may_drain(tp, head):
                by_host.setdefault(host, []).append(tp)
        for host in sorted(by_host):
            tps = by_host[host]
            while tps and self.tracker.in_flight(host) < self.cfg.max_in_flight:
                self._send(host, tps)
                tps = [tp for tp in tps if self._drainable(tp, now)]
        if acc.flushing and acc.empty():
            acc.flushing = False
        return deadline

    def _drainable(self, tp: TopicPartition, now: int) -> bool:
        head = self.acc.head(tp)
        ready_at = self.acc.ready_at(tp)
        return (head is not None and ready_at is not None and ready_at <= now
                and self._may_drain(tp, head))

    def _may_drain(self, tp: TopicPartition, head: ProducerBatch) -> bool:
        in_flight = self._tp_in_flight.get(tp, 0)
        if self.idem is not None:
            return in_flight < 5 and self.idem.may_drain(head)
        if self.cfg.max_in_flight == 1:
            return in_flight == 0
        return True

    def _send(self, host: str, tps: list[TopicPartition]) -> None:
        batches: list[ProducerBatch] = []
        size = 0
        for tp in tps:
            head = self.acc.head(tp)
            assert head is not None
            if batches and size + head.size_bytes > self.cfg.max_request_size:
                break
            batch = self.acc.pop_head(tp)
            if self.idem is not None:
                self.idem.assign(batch)
            batches.append(batch)
            size += batch.size_bytes
        by_topic: dict[str, list[ProducePartitionData]] = {}
        for b in batches:
            data, fresh = b.build(self.cfg.compression)
            if fresh:
                self.meter.build_batch(b.raw_size(), self.cfg.compression, len(data))
            by_topic.setdefault(b.tp[0], []).append(
                ProducePartitionData(index=b.tp[1], records=data))
            b.attempts += 1
            b.in_flight = True
            self._tp_in_flight[b.tp] = self._tp_in_flight.get(b.tp, 0) + 1
        req = ProduceRequest(
            correlation_id=self.tracker.next_correlation_id(), acks=self.cfg.acks,
            timeout_ms=self.cfg.request_timeout_us // 1000,
            topic_data=tuple(ProduceTopicData(name=t, partition_data=tuple(by_topic[t]))
                             for t in sorted(by_topic)))
        self.requests_sent += 1
        if self.cfg.acks == 0:
            self.tracker.send(host, req, None)
            for b in batches:
                self._landed(b)
                b.maybe_written = True
                self._complete(b, INFO, None, None, "acks=0: no acknowledgement")
            return
        self.produce_in_flight += 1
        self.tracker.send(host, req, lambda resp: self._on_response(batches, resp))

    # --- responses -----------------------------------------------------------
    def _on_response(self, batches: list[ProducerBatch], resp: Message | None) -> None:
        self.produce_in_flight -= 1
        if not isinstance(resp, ProduceResponse):
            # Timed out or disconnected (NETWORK_EXCEPTION, a connection reset): any
            # attempt may have been appended; retried (idempotence dedups a resend).
            err = self.tracker.last_failure
            reason = ("disconnected" if err == Errors.NETWORK_EXCEPTION
                      else "request timed out")
            self.metadata.request_update()
            for b in batches:
                self._landed(b)
                b.maybe_written = True
                self._retry_or_fail(b, err, reason)
            return
        results: dict[TopicPartition, ProducePartitionResponse] = {}
        for topic in resp.responses:
            for pr in topic.partition_responses:
                results[(topic.name, pr.index)] = pr
        for b in batches:
            self._landed(b)
            pr = results.get(b.tp)
            if pr is None:
                b.maybe_written = True
                self._retry_or_fail(b, Errors.UNKNOWN_SERVER_ERROR, "partition missing")
            else:
                self._on_partition(b, pr)

    def _on_partition(self, b: ProducerBatch, pr: ProducePartitionResponse) -> None:
        err = pr.error_code
        if err == Errors.NONE or err == Errors.DUPLICATE_SEQUENCE_NUMBER:
            if self.idem is not None:
                self.idem.on_success(b)
            self._complete(b, OK, None, pr.base_offset if pr.base_offset >= 0 else None, "")
            return
        if err not in _BEFORE_APPEND:
            b.maybe_written = True
        new_leader = False
        if err.invalidates_metadata:
            self.metadata.request_update()
            hint = pr.current_leader
            if hint is not None and hint.leader_id >= 0:
                new_leader = self.metadata.hint_leader(b.tp, hint.leader_id, hint.leader_epoch)
        reason = pr.error_message or err.name
        idem = self.idem
        if idem is not None and idem.is_current(b):
            if err in (Errors.UNKNOWN_PRODUCER_ID, Errors.INVALID_PRODUCER_EPOCH):
                # The broker lost or fenced our state (and appended nothing): bump the
                # epoch; the partition's batches are re-sequenced and retried.
                idem.request_bump(b.tp, err.name, gap_proven=False)
                self._retry_or_fail(b, err, reason, force_retriable=True)
                return
            if err == Errors.OUT_OF_ORDER_SEQUENCE_NUMBER:
                idem.on_out_of_order(b)
                self._retry_or_fail(b, err, reason, force_retriable=True)
                return
        self._retry_or_fail(b, err, reason, no_backoff=new_leader)

    def _retry_or_fail(self, b: ProducerBatch, err: Errors, reason: str,
                       force_retriable: bool = False, no_backoff: bool = False) -> None:
        """Requeue b after a backoff if it may still be retried, else fail it.
        no_backoff: a new leader is known (KIP-951), retry at once as Kafka does."""
        now = self.rt.now()
        if b.reported:
            # Expired while in flight and already reported: settle the bookkeeping only.
            if self.idem is not None:
                self.idem.on_failure(b)
            return
        retriable = force_retriable or err.retriable
        if retriable and b.attempts <= self.cfg.retries and now < b.deadline_us:
            self.retries += 1
            b.last_error = err
            b.retry_at_us = now if no_backoff else now + self._backoff_us(b.attempts)
            self.acc.reenqueue(b)
            return
        if retriable and now >= b.deadline_us:
            reason = f"delivery.timeout.ms expired ({reason})"
        self._fail(b, err, reason)

    def _backoff_us(self, attempts: int) -> int:
        base = self.cfg.retry_backoff_us
        cap = max(base, self.cfg.retry_backoff_max_us)
        exp = min(cap, base * (2 ** max(0, attempts - 1)))
        jitter = 1.0 + _JITTER * (2 * self.rt.random.random() - 1)
        return max(1, min(cap, int(exp * jitter)))

    # --- endings -------------------------------------------------------------
    def _expire(self, now: int) -> int | None:
        """Fail batches past delivery.timeout.ms; returns the next such deadline.

        Only the top of the accumulator's expiry heap is looked at, so this is O(1)
        unless something expires. Queued batches are failed (fail if no attempt can
        have reached a broker, else info); in-flight batches expire too, as in Kafka:
        they are reported `info` at once (they may be written) and their late answer
        only settles the idempotence bookkeeping."""
        acc = self.acc
        while True:
            b = acc.next_expiry()
            if b is None:
                return None
            if b.deadline_us > now:
                return b.deadline_us
            acc.pop_expiry()
            err = b.last_error if isinstance(b.last_error, Errors) else None
            if b.in_flight:
                b.maybe_written = True
                self._complete(b, INFO, err, None, "delivery.timeout.ms expired in flight")
            else:
                acc.remove(b)
                self._fail(b, err, "delivery.timeout.ms expired")

    def abandon(self, b: ProducerBatch) -> None:
        """Idempotence cannot resend b safely under a new epoch: report it `info`."""
        self.acc.remove(b)
        b.maybe_written = True
        err = b.last_error if isinstance(b.last_error, Errors) else None
        self._complete(b, INFO, err, None,
                       "producer epoch bumped; an earlier attempt may be in the log")

    def _fail(self, b: ProducerBatch, err: Errors | None, reason: str) -> None:
        if self.idem is not None:
            self.idem.on_failure(b)
        self._complete(b, INFO if b.maybe_written else FAIL, err, None, reason)

    def _landed(self, b: ProducerBatch) -> None:
        b.in_flight = False
        left = self._tp_in_flight.get(b.tp, 0) - 1
        if left > 0:
            self._tp_in_flight[b.tp] = left
        else:
            self._tp_in_flight.pop(b.tp, None)

    def _complete(self, b: ProducerBatch, status: str, err: Errors | None,
                  base_offset: int | None, reason: str) -> None:
        if b.reported:
            return
        b.reported = True
        topic, partition = b.tp
        self.buffered_bytes -= b.raw_size()
        for i, rec in enumerate(b.records):
            if rec.on_complete is None:
                continue
            offset = None if base_offset is None or status != OK else base_offset + i
            rec.on_complete(SendResult(status, topic, partition, offset, err, reason))


def _min(a: int | None, b: int) -> int:
    return b if a is None or b < a else a


Callback = Callable[[SendResult], None]

__all__ = ["Sender"]
