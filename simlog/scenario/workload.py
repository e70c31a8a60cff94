"""Workloads: drive the producer and consumer nodes and write the history.

Producers send at a fixed rate (open loop: send k goes out at start + k/rate, whatever
happened to the previous ones) or closed loop (`rate: max`: a window of sends kept in
flight). Every record carries its id (`p1-42`) in a header named `id`; the history gets
an `invoke` when the workload hands the record to the client and exactly one completion:
`ok` with its offset, `fail` (certainly not written) or `info` (may or may not be).

Consumers: each group's members join the group (the coordinator on the broker leading the
group's `__consumer_offsets` partition), poll what they are assigned, and commit as
their config says (auto commit by default, as Kafka); the history gets the group's
`assign`, `revoke` and `commit` ops. After each poll a member's application works on the
records for the group's `processing` time (per record, per poll) before it polls again;
rebalances and auto commits happen only inside poll, as in Kafka's consumer, so a busy
member delays them. With `static: true` each member's `group.instance.id` is its id.

All chance comes from the world's seeded streams (`workload` per client), so the same
scenario and seed send the same keys and values.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from simlog.checks.history import HistoryRecorder
from simlog.client.consumer import PollResult
from simlog.client.group import GroupConsumer, GroupListener
from simlog.client.producer import Producer
from simlog.client.results import SendResult
from simlog.scenario.cluster import ScenarioCluster, explicit
from simlog.scenario.model import ConsumerGroup
from simlog.scenario.model import Producer as ProducerSpec
from simlog.scenario.schema import Keys
from simlog.scenario.units import MessageRate

CLOSED_LOOP_WINDOW = 64       # sends in flight per producer under `rate: max`
POLL_TIMEOUT_US = 100_000
VALUE_POOL_BYTES = 1 << 16
_WORDS = ("order", "user", "click", "amount", "status", "paid", "shipped", "item",
          "price", "region", "eu-west", "us-east", "session", "event", "true", "false")


class KeyChooser:
    """Keys by the scenario's distribution: none, uniform over n, zipf(n, s), or hot
    (one key takes `share`, the rest uniform). Keys are `k0`..`k{n-1}`."""

    def __init__(self, keys: Keys, rng: Any) -> None:
        self.dist = keys.dist
        self.n = keys.key_count
        self.share = keys.share or 0.0
        self.rng = rng
        self.cdf: list[float] = []
        if self.dist == "zipf":
            weights = [1.0 / (rank ** keys.zipf_s) for rank in range(1, self.n + 1)]
            total = sum(weights)
            self.cdf = list(itertools.accumulate(w / total for w in weights))

    def next(self) -> bytes | None:
        if self.dist == "none":
            return None
        if self.dist == "uniform":
            k = self.rng.randrange(self.n)
        elif self.dist == "zipf":
            k = min(bisect_left(self.cdf, self.rng.random()), self.n - 1)
        elif self.rng.random() < self.share or self.n == 1:
            k = 0
        else:
            k = 1 + self.rng.randrange(self.n - 1)
        return f"k{k}".encode()


def value_pool(rng: Any) -> bytes:
    """JSON-ish text, so compression codecs see realistic (compressible) data."""
    parts: list[str] = []
    size = 0
    while size < VALUE_POOL_BYTES:
        word = f'"{rng.choice(_WORDS)}":{rng.randrange(100_000)},'
        parts.append(word)
        size += len(word)
    return "".join(parts).encode()


class ProducerDriver:
    """One producer of the scenario: schedules sends and records them."""

    def __init__(self, cluster: ScenarioCluster, spec: ProducerSpec,
                 history: HistoryRecorder, end_us: int) -> None:
        self.cluster = cluster
        self.world = cluster.world
        self.spec = spec
        self.history = history
        rng = self.world.rng_for("workload", spec.id)
        self.rng = rng
        self.keys = KeyChooser(spec.keys, rng)
        self.pool = value_pool(rng)
        self.start_us = spec.start_us
        self.stop_us = min(spec.stop_us if spec.stop_us is not None else end_us, end_us)
        self.seq = 0
        self.pending: dict[str, Any] = {}   # id -> invoke op value, until completed
        self.unacknowledged = str(spec.config["acks"]) == "0"
        self.stopped = False
        self.leaving = False  # `client: {leave: p1}`: closing, halted once all answered

    def start(self) -> None:
        if self.start_us >= self.stop_us:
            return
        t0 = self.cluster.t0_us
        if isinstance(self.spec.rate, MessageRate):
            self.world.call_later(t0 + self.start_us - self.world.now_us, self._tick_open)
        else:
            self.world.call_later(t0 + self.start_us - self.world.now_us, self._fill_window)

    # -- open loop: send k at start + k / rate -------------------------------------------

    def _tick_open(self) -> None:
        if self.stopped or self.cluster.rel_us() >= self.stop_us:
            return
        if self.leaving:  # gone for now; a join restarts the ticks
            return
        self.send()
        rate = self.spec.rate.per_s  # type: ignore[union-attr]
        due_us = self.cluster.t0_us + self.start_us + round(self.seq * 1_000_000 / rate)
        self.world.call_later(max(0, due_us - self.world.now_us), self._tick_open)

    # -- closed loop: keep a window in flight --------------------------------------------

    def _fill_window(self) -> None:
        while (not self.stopped and not self.leaving and self.cluster.rel_us() < self.stop_us
               and len(self.pending) < CLOSED_LOOP_WINDOW and self._alive()):
            self.send()

    # -- one send ---------------------------------------------------------------------------

    def _alive(self) -> bool:
        return self.world.node(self.spec.id) is not None

    def send(self) -> None:
        """Hand one record to the producer node (skipped while the client is down)."""
        if not self._alive():
            return
        self.seq += 1
        msg_id = f"{self.spec.id}-{self.seq}"
        key = self.keys.next()
        size = self.spec.value_size_bytes
        start = self.rng.randrange(max(1, len(self.pool) - size))
        value = self.pool[start:start + size]
        invoke = {"id": msg_id, "topic": self.spec.topic,
                  "key": None if key is None else key.decode()}
        self.pending[msg_id] = invoke
        self.history.invoke(self.cluster.rel_us(), self.spec.id, "send", invoke)
        topic, headers = self.spec.topic, (("id", msg_id.encode()),)
        done = self._completion(msg_id)
        self.world.call_in(self.spec.id, lambda p: _send(p, topic, value, key, headers, done))

    def _completion(self, msg_id: str) -> Callable[[SendResult], None]:
        def done(result: SendResult) -> None:
            if self.pending.pop(msg_id, None) is None:
                return  # already closed as info (client crashed)
            value: dict[str, Any] = {"id": msg_id, "topic": result.topic,
                                     "partition": result.partition}
            now = self.cluster.rel_us()
            if result.status == "ok" and self.unacknowledged:
                # acks=0: Kafka never answers, the client's "success" says nothing.
                self.history.info(now, self.spec.id, "send", value)
            elif result.status == "ok":
                value["offset"] = result.offset
                self.history.ok(now, self.spec.id, "send", value)
            else:
                value["error"] = result.error.name if result.error is not None else result.reason
                if result.status == "fail":
                    self.history.fail(now, self.spec.id, "send", value)
                else:
                    self.history.info(now, self.spec.id, "send", value)
            if not isinstance(self.spec.rate, MessageRate):
                self._fill_window()
            self._maybe_gone()
        return done

    def client_left(self) -> None:
        """Close the producer (Kafka's close(): queued records are still sent); its
        process ends once every send is answered."""
        self.leaving = True
        self.history.invoke(self.cluster.rel_us(), self.spec.id, "leave", None)
        self.world.call_in(self.spec.id, lambda p: p.close() if isinstance(p, Producer) else None)
        self._maybe_gone()

    def _maybe_gone(self) -> None:
        if not self.leaving or self.pending or not self._alive():
            return
        self.history.ok(self.cluster.rel_us(), self.spec.id, "leave", None)
        self.world.call_in(self.spec.id, lambda p: p.rt.halt("closed"))

    def client_crashed(self) -> None:
        """The producer process died: whatever it had not answered may or may not have
        been written."""
        now = self.cluster.rel_us()
        for msg_id in sorted(self.pending, key=_id_order):
            value = dict(self.pending[msg_id], error="client crashed")
            self.history.info(now, self.spec.id, "send", value)
        self.pending.clear()

    def client_restarted(self) -> None:
        rejoined, self.leaving = self.leaving, False
        if not isinstance(self.spec.rate, MessageRate):
            self.world.call_later(0, self._fill_window)
        elif rejoined:
            self.world.call_later(0, self._tick_open)

    def stop(self) -> None:
        self.stopped = True
        self.world.call_in(self.spec.id, lambda p: p.flush() if isinstance(p, Producer) else None)


def _send(node: Any, topic: str, value: bytes, key: bytes | None,
          headers: tuple[tuple[str, bytes], ...], done: Callable[[SendResult], None]) -> None:
    if isinstance(node, Producer):
        node.send(topic, value, key=key, headers=headers, on_complete=done)


def _id_order(msg_id: str) -> tuple[str, int]:
    name, _, n = msg_id.rpartition("-")
    return name, int(n) if n.isdigit() else 0


class ConsumerDriver:
    """One consumer group: each member is a GroupConsumer subscribed to the group's
    topics, polling in a loop. The group client's listener writes the history's
    `assign` / `revoke` / `commit` ops, so the group checks see real ownership."""

    def __init__(self, cluster: ScenarioCluster, spec: ConsumerGroup,
                 history: HistoryRecorder, end_us: int) -> None:
        self.cluster = cluster
        self.world = cluster.world
        self.spec = spec
        self.history = history
        self.stop_us = min(spec.stop_us if spec.stop_us is not None else end_us, end_us)
        self.polling: set[str] = set()
        self.leaving: set[str] = set()   # closing after `client: {leave: ...}`
        self.commits: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in spec.members}
        self.rngs = {m: self.world.rng_for("workload", m) for m in spec.members}
        self.stopped = False
        self.draining = False
        bootstrap = ",".join(cluster.scenario.cluster.brokers)
        # A workload consumer reads the topic from the start unless the scenario says
        # otherwise (Kafka's client default, latest, would skip what was written before
        # the group first formed, and consumed_all could never pass).
        settings = {"auto.offset.reset": "earliest", **explicit(spec.config),
                    "bootstrap.servers": bootstrap, "group.id": spec.group}
        for member in spec.members:
            own = {**settings, "group.instance.id": member} if spec.static else settings
            cluster.consumer_factories[member] = self._factory(member, own)

    def _factory(self, member: str, settings: dict[str, Any]) -> Callable[[Any], Any]:
        def make(rt: Any) -> GroupConsumer:
            listener = GroupListener(
                on_assign=lambda gen, tps: self._on_assign(member, gen, tps),
                on_revoke=lambda tps, why: self._on_revoke(member, tps, why),
                on_lost=lambda tps, ago: self._on_revoke(member, tps, "lost", ago),
                on_commit_invoke=lambda cid, offs: self._on_commit_invoke(member, cid, offs),
                on_commit_done=lambda cid, offs, outcome, err: self._on_commit_done(
                    member, cid, offs, outcome, err))
            return GroupConsumer(rt, settings, listener=listener)
        return make

    # -- history from the group client ------------------------------------------------------

    def _on_assign(self, member: str, generation: int, tps: list[tuple[str, int]]) -> None:
        value = {"group": self.spec.group, "generation": generation,
                 "partitions": [f"{t}/{p}" for t, p in sorted(tps)]}
        now = self.cluster.rel_us()
        self.history.invoke(now, member, "assign", value)
        self.history.ok(now, member, "assign", value)

    def _on_revoke(self, member: str, tps: list[tuple[str, int]], reason: str,
                   lapsed_ago_us: int | None = None) -> None:
        value: dict[str, Any] = {"group": self.spec.group,
                                 "partitions": [f"{t}/{p}" for t, p in sorted(tps)],
                                 "reason": reason}
        now = self.cluster.rel_us()
        if lapsed_ago_us is not None:
            # when its session ran out: the member (frozen, say) learns only now
            value["lapsed_us"] = now - max(0, lapsed_ago_us)
        self.history.invoke(now, member, "revoke", value)
        self.history.ok(now, member, "revoke", value)

    def _on_commit_invoke(self, member: str, cid: int, offsets: dict) -> None:
        value = {"id": f"{member}-commit-{cid}", "group": self.spec.group,
                 "offsets": {f"{t}/{p}": o for (t, p), o in sorted(offsets.items())}}
        self.commits[member][cid] = value
        self.history.invoke(self.cluster.rel_us(), member, "commit", value)

    def _on_commit_done(self, member: str, cid: int, offsets: dict, outcome: str,
                        error: Any) -> None:
        value = self.commits[member].pop(cid, None)
        if value is None:
            return
        now = self.cluster.rel_us()
        if outcome == "ok":
            self.history.ok(now, member, "commit", value)
        elif outcome == "fail":
            self.history.fail(now, member, "commit", dict(value, error=getattr(error, "name", str(error))))
        else:
            self.history.info(now, member, "commit", dict(value, error=getattr(error, "name", str(error))))

    # -- the poll loop ----------------------------------------------------------------------

    def start(self) -> None:
        delay = self.cluster.t0_us + self.spec.start_us - self.world.now_us
        for member in self.spec.members:
            self.world.call_later(max(0, delay), lambda m=member: self._join(m))

    def _join(self, member: str) -> None:
        if self.world.node(member) is None or self.stopped:
            return  # down (or not started yet: a late joiner starts on its join op)
        topics = list(self.spec.topics)

        def subscribe(c: Any) -> None:
            if isinstance(c, GroupConsumer):
                c.subscribe(topics)
        self.world.call_in(member, subscribe)
        self._poll(member)

    def _poll(self, member: str) -> None:
        if member in self.polling or member in self.leaving or self.world.node(member) is None:
            return
        if self.stopped or (not self.draining and self.cluster.rel_us() >= self.stop_us):
            return
        self.polling.add(member)
        self.history.invoke(self.cluster.rel_us(), member, "poll", None)

        def on_result(result: PollResult) -> None:
            if member not in self.polling:
                return  # the member crashed meanwhile; its poll was closed then
            self.polling.discard(member)
            records = [{"topic": r.topic, "partition": r.partition, "offset": r.offset,
                        "id": _header_id(r.header("id"))} for r in result.records]
            value: dict[str, Any] = {"records": records}
            if result.errors:
                value["errors"] = [f"{t}/{p}: {msg}" for (t, p), msg in result.errors]
            self.history.ok(self.cluster.rel_us(), member, "poll", value)
            # the application works on what it got, then polls again (heartbeats go on
            # meanwhile; a rebalance waits for that next poll, as in Kafka)
            jitter = self.rngs[member].random() if self.spec.processing_jitter else 0.5
            busy_us = self.spec.processing_us(len(records), jitter)
            self.world.call_later(busy_us, lambda: self._poll(member))

        def poll(c: Any) -> None:
            if isinstance(c, GroupConsumer):
                c.poll(on_result, timeout_us=POLL_TIMEOUT_US)
        self.world.call_in(member, poll)

    def client_crashed(self, member: str) -> None:
        if member not in self.commits:
            return
        now = self.cluster.rel_us()
        if member in self.polling:
            self.polling.discard(member)
            self.history.info(now, member, "poll", None)
        for cid in sorted(self.commits[member]):
            value = dict(self.commits[member][cid], error="client crashed")
            self.history.info(now, member, "commit", value)
        self.commits[member].clear()
        self.history.invoke(now, member, "crash", {"group": self.spec.group})
        self.history.ok(now, member, "crash", {"group": self.spec.group})

    def client_restarted(self, member: str) -> None:
        self.leaving.discard(member)
        if member in self.commits:
            self.world.call_later(0, lambda: self._join(member))

    def client_left(self, member: str) -> None:
        """Kafka's close(): commit (auto commit on), revoke, LeaveGroup; the `leave` op
        completes and the process ends when that is done."""
        if member not in self.commits:
            return
        self.leaving.add(member)
        value = {"group": self.spec.group}
        self.history.invoke(self.cluster.rel_us(), member, "leave", value)

        def gone(c: Any) -> None:
            now = self.cluster.rel_us()
            if member in self.polling:  # the poll it was in never returned
                self.polling.discard(member)
                self.history.info(now, member, "poll", None)
            for cid in sorted(self.commits[member]):
                self.history.info(now, member, "commit",
                                  dict(self.commits[member][cid], error="client closed"))
            self.commits[member].clear()
            self.history.ok(now, member, "leave", value)
            c.rt.halt("left the group")

        def close(c: Any) -> None:
            if isinstance(c, GroupConsumer):
                c.close(lambda: gone(c))
        self.world.call_in(member, close)

    def drain(self) -> None:
        """After the workload: keep polling until settling ends."""
        self.draining = True
        for member in self.spec.members:
            self.world.call_later(0, lambda m=member: self._poll(m))

    def stop(self) -> None:
        self.stopped = True

    def final_commit(self) -> None:
        """At the end, as Kafka's close() does with auto commit on: every live member
        commits the positions it reached (nothing when auto commit is off: the
        application commits, and this workload's application never does)."""
        if not self.spec.config["enable.auto.commit"]:
            return
        for member in self.spec.members:
            if member in self.leaving:
                continue

            def commit(c: Any) -> None:
                if isinstance(c, GroupConsumer) and c.group.generation >= 0:
                    c.commit()
            self.world.call_in(member, commit)

    def commits_open(self) -> bool:
        return any(self.commits[m] for m in self.spec.members)

    def positions(self) -> dict[tuple[str, int], int]:
        """The position of every partition some live member owns (0 when unknown)."""
        out: dict[tuple[str, int], int] = {}
        for member in self.spec.members:
            node = self.world.node(member)
            if not isinstance(node, GroupConsumer):
                continue
            for tp in node.assignment():
                out[tp] = node.position(tp) or 0
        return dict(sorted(out.items()))

    def owned_partitions(self) -> set[tuple[str, int]]:
        return set(self.positions())


def _header_id(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")
