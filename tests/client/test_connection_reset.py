"""Connection resets (`runtime.ConnectionReset`: a TCP RST from the machine of a
crashed broker) handled as Kafka's NetworkClient handles a disconnect: in-flight
requests to that broker fail at once (NETWORK_EXCEPTION) instead of after
request.timeout.ms, metadata is refreshed, reconnects back off, other brokers are
preferred; resent writes are deduplicated by idempotence and nothing acknowledged
is lost."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import simlog.runtime
from simlog.client.network import RequestTracker
from simlog.protocol.errors import Errors
from simlog.protocol.metadata import MetadataRequest, MetadataResponse
from simlog.runtime import Message
from tests.client.harness import FakeRuntime, Loop, Net
from tests.client.test_cluster import S, Workload, cluster, leader_of

pytestmark = pytest.mark.skipif(not hasattr(simlog.runtime, "ConnectionReset"),
                                reason="runtime.ConnectionReset has not landed")
REQUEST_TIMEOUT_US = 30 * S  # request.timeout.ms default


def _reset(peer: str) -> Message:
    return simlog.runtime.ConnectionReset(peer=peer)  # type: ignore[attr-defined]


def test_a_reset_fails_in_flight_requests_to_that_node_only_and_backs_off_reconnecting() -> None:
    loop = Loop()
    rt = FakeRuntime("c", loop, Net(loop))
    tracker = RequestTracker(rt, REQUEST_TIMEOUT_US)
    disconnected: list[str] = []
    tracker.on_disconnect = disconnected.append
    got: list[tuple[str, int, Message | None, Errors]] = []

    def send(dst: str) -> int:
        corr = tracker.next_correlation_id()
        tracker.send(dst, MetadataRequest(correlation_id=corr, topics=()),
                     lambda r: got.append((dst, corr, r, tracker.last_failure)))
        return corr

    a, b, c = send("b1"), send("b1"), send("b2")
    loop.run_for(1_000)
    assert tracker.handle("b1", _reset("b1"))
    # Both requests to b1 failed at once, oldest first, as a disconnect; b2's waits.
    assert got == [("b1", a, None, Errors.NETWORK_EXCEPTION),
                   ("b1", b, None, Errors.NETWORK_EXCEPTION)]
    assert tracker.in_flight("b1") == 0 and tracker.in_flight("b2") == 1
    assert disconnected == ["b1"]
    assert not tracker.ready("b1") and tracker.ready("b2")
    assert tracker.least_loaded(["b1", "b2"], 0) == "b2"  # metadata goes elsewhere
    retry_at = tracker.retry_at("b1")
    assert retry_at is not None and 40_000 <= retry_at - loop.now <= 60_000  # 50 ms ± 20%
    # After the backoff a probe goes out; unanswered, the next backoff doubles and
    # metadata is refreshed again (a refused reconnect, as Kafka's).
    loop.run(retry_at)
    assert not tracker.ready("b1")
    probes = [m for _, _, dst, m in rt.net.log if dst == "b1" and m.correlation_id > c]
    assert len(probes) == 1 and isinstance(probes[0], MetadataRequest)
    loop.run(retry_at + 50_000)  # the probe's timeout: one reconnect backoff
    assert disconnected == ["b1", "b1"]
    retry_at = tracker.retry_at("b1")
    assert retry_at is not None and 80_000 <= retry_at - loop.now <= 120_000
    # The next probe is answered: connected again, requests may go to b1.
    loop.run(retry_at)
    tracker.ready("b1")
    probe = [m for _, _, dst, m in rt.net.log if dst == "b1"][-1]
    assert tracker.handle("b1", MetadataResponse(correlation_id=probe.correlation_id))
    assert tracker.ready("b1") and tracker.retry_at("b1") is None
    assert tracker.in_flight("b2") == 1 and got[-1][0] == "b1"  # b2 untouched


def _crash_leader_under_load(idempotent: bool) -> tuple[Any, Workload, str, int]:
    w = cluster(seed=4)
    pcfg: dict[str, Any] = {"linger.ms": 1}
    if not idempotent:
        pcfg.update({"enable.idempotence": False, "retries": 5})
    wl = Workload(w, producer=pcfg)
    wl.send(60, partition=0)
    w.run_for(2 * S)
    victim = leader_of(w, 0)
    crash_us = w.now_us
    w.crash(victim)
    return w, wl, victim, crash_us


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_leader_crash_is_noticed_within_100ms_and_no_acknowledged_write_is_lost(
        idempotent: bool) -> None:
    w, wl, victim, crash_us = _crash_leader_under_load(idempotent)
    producer: Any = w.node("p1")
    wl.send(10, partition=0)  # goes to the dead leader: its machine answers with a reset
    w.run_for(100_000)
    assert producer.tracker.resets >= 1
    assert producer.tracker.in_flight(victim) == 0  # nothing waits for request.timeout.ms
    for _ in range(40):  # keep writing while the controller elects a new leader
        wl.send(10, partition=0)
        w.run_for(50_000)
    while len(wl.results) < wl.sent and w.now_us < crash_us + REQUEST_TIMEOUT_US:
        w.run_for(S // 2)
    # Everything was settled well before a request timeout could have fired.
    assert len(wl.results) == wl.sent and w.now_us < crash_us + REQUEST_TIMEOUT_US // 2
    statuses = Counter(r.status for r in wl.results.values())
    assert statuses == {"ok": wl.sent}, statuses
    # The consumer's long fetch to the dead leader sent nothing after the crash, so no
    # reset tells it: it waits out its request timeout before reading the new leader.
    w.run_for(REQUEST_TIMEOUT_US + 5 * S)
    ids = [rid for _, _, rid in wl.consumed]
    assert {rid for rid, r in wl.results.items() if r.ok} <= set(ids), "acknowledged write lost"
    if idempotent:
        assert len(ids) == len(set(ids)), "duplicates with idempotence"


def test_a_restarted_broker_is_reconnected_by_a_probe_and_used_again() -> None:
    w, wl, victim, crash_us = _crash_leader_under_load(True)
    producer: Any = w.node("p1")
    wl.send(10, partition=0)
    w.run_for(300_000)
    assert not producer.tracker.ready(victim)  # reset; probes go unanswered meanwhile
    w.restart(victim)
    for _ in range(20):
        wl.send(10, partition=0)
        w.run_for(50_000)
    assert producer.tracker.ready(victim)  # a probe was answered: connected again
    while len(wl.results) < wl.sent and w.now_us < crash_us + REQUEST_TIMEOUT_US:
        w.run_for(S // 2)
    assert Counter(r.status for r in wl.results.values()) == {"ok": wl.sent}
    w.run_for(REQUEST_TIMEOUT_US + 5 * S)
    ids = [rid for _, _, rid in wl.consumed]
    assert len(ids) == len(set(ids)) == wl.sent
