"""KIP-227 fetch sessions between followers and leaders, in the sim World (real KRaft
controllers, brokers, an idempotent producer): replication converges with sessions, a
restarted leader (no sessions) is recovered from through FETCH_SESSION_ID_NOT_FOUND,
and a follower's long poll on an idle session wakes when data arrives."""

from __future__ import annotations

from simlog.broker.node import BrokerNode
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import FetchRequest

from .simcluster import MS, S, SimCluster

SESSIONS_OFF = {"max.incremental.fetch.session.cache.slots": 0}


def converged(c: SimCluster) -> list[str]:
    logs = {b: c.values(b) for b in c.broker_ids}
    first = logs[c.broker_ids[0]]
    assert all(log == first for log in logs.values()), logs
    return first


def fetch_bytes(c: SimCluster) -> tuple[int, int]:
    """(count, bytes) of FetchRequest + FetchResponse deliveries between brokers."""
    n = size = 0
    for e in c.w.raw_events:
        if (e[2] == "deliver" and e[4] in ("FetchRequest", "FetchResponse")
                and e[1].startswith("b") and e[3].startswith("b")):
            n += 1
            size += e[5]
    return n, size


def replicate(settings: dict) -> SimCluster:
    c = SimCluster(settings={"min.insync.replicas": 2, **settings}, partitions=12,
                   producer_config={"request.timeout.ms": 5_000})
    c.send_every(20 * MS, c.w.now_us + 10 * S)
    c.run_for(15 * S)
    return c


def test_replication_converges_with_sessions_and_moves_fewer_bytes() -> None:
    on, off = replicate({}), replicate(SESSIONS_OFF)
    for c in (on, off):
        assert len(c.acked()) == len(c.writes) == 500
        assert converged(c) == [wr.value for wr in c.writes]
        assert c.lost(f"b{c.leader()}") == [] and len(c.isr()) == 3
    # with sessions every follower holds one with each leader (12 partitions over 3
    # brokers); without, none is ever created
    for c, expect in ((on, True), (off, False)):
        for b in c.broker_ids:
            rm = c.broker(b).rm
            assert bool(rm.fetchers) and all(
                (f.session.session_id != 0) is expect for f in rm.fetchers.values())
            assert (len(rm.fetch_sessions) > 0) is expect
    n_on, bytes_on = fetch_bytes(on)
    n_off, bytes_off = fetch_bytes(off)
    assert n_on > 0.8 * n_off  # about as many round trips ...
    assert bytes_on < 0.6 * bytes_off  # ... but the idle partitions stay off the wire


def test_a_session_the_leader_lost_is_recovered_through_id_not_found() -> None:
    """The leader no longer has the follower's session (Kafka: evicted from a full
    cache, or the leader restarted and the follower never saw its connection reset):
    the next incremental fetch gets FETCH_SESSION_ID_NOT_FOUND and starts over."""
    c = SimCluster(settings={"min.insync.replicas": 2}, partitions=3,
                   producer_config={"request.timeout.ms": 5_000})
    c.send_every(20 * MS, c.w.now_us + 2 * S)
    c.run_for(3 * S)
    leader = c.leader()
    follower = next(b for b in c.broker_ids if b != f"b{leader}")
    fetcher = c.broker(follower).rm.fetchers[leader]
    sid = fetcher.session.session_id
    assert sid != 0 and fetcher.session.epoch > 1  # fetching incrementally
    node = c.broker(f"b{leader}")
    assert isinstance(node, BrokerNode) and node.rm.fetch_sessions.get(sid) is not None
    del node.rm.fetch_sessions.sessions[sid]
    restarted = c.w.now_us
    seen: list[FetchRequest] = []
    handle = node.rm.handle_fetch

    def tap(src: str, req: FetchRequest) -> None:
        if src == follower:
            seen.append(req)
        handle(src, req)

    node.rm.handle_fetch = tap  # type: ignore[method-assign]
    c.send_every(20 * MS, c.w.now_us + 200 * MS)  # wake the long poll
    c.run_for(300 * MS)
    # the follower's next incremental fetch reaches the new process: unknown session
    errors = [e for e in c.events("fetch_session_error")
              if e["node"] == follower and e["time_us"] >= restarted]
    assert len(errors) == 1, "the follower never heard FETCH_SESSION_ID_NOT_FOUND"
    fields = dict(errors[0]["fields"][1])
    assert fields["error"] == Errors.FETCH_SESSION_ID_NOT_FOUND.name
    assert fields["leader"] == leader
    # it starts over at once with a full fetch asking for a new session
    assert len(seen) >= 2
    assert seen[0].session_id == sid and seen[0].session_epoch > 1
    assert (seen[1].session_id, seen[1].session_epoch) == (0, 0)
    assert {(t.topic, p.partition) for t in seen[1].topics for p in t.partitions} == \
        set(fetcher.states)
    # ... and starts over: replication and the ISR recover, nothing acknowledged is lost
    c.send_every(20 * MS, c.w.now_us + 3 * S)
    c.run_for(30 * S)
    assert all(wr.result is not None and wr.result.ok for wr in c.writes)
    assert converged(c) == [wr.value for wr in c.writes]
    assert len(c.isr()) == 3
    for b in c.broker_ids:
        rm = c.broker(b).rm
        assert all(f.session.session_id != 0 for f in rm.fetchers.values() if f.states)


def test_follower_long_poll_on_an_idle_session_wakes_when_data_arrives() -> None:
    c = SimCluster(partitions=3, producer_config={"request.timeout.ms": 5_000})
    c.send(3)
    c.run_for(2 * S)  # replicated, then idle for a while
    leader = c.leader()
    node = c.broker(f"b{leader}")
    assert isinstance(node, BrokerNode)
    seen: list[tuple[int, str, FetchRequest]] = []
    handle = node.rm.handle_fetch

    def tap(src: str, req: FetchRequest) -> None:
        seen.append((c.w.now_us, src, req))
        handle(src, req)

    node.rm.handle_fetch = tap  # type: ignore[method-assign]
    c.run_for(1200 * MS)
    polls = [(t, src, r) for t, src, r in seen if r.replica_id >= 0]
    # idle: incremental fetches naming no partition, each held for replica.fetch.wait.max.ms
    assert len(polls) == 2 * 3  # two followers, one poll per 500 ms
    assert all(r.session_id != 0 and r.session_epoch > 0 and r.topics == ()
               and r.forgotten_topics_data == () for _, _, r in polls)
    follower = polls[-1][1]
    parked_at = polls[-1][0]
    assert c.w.now_us - parked_at < 500 * MS  # its poll is waiting at the leader now
    before = c.broker(follower).rm.partition(("t", 0)).log_end_offset
    c.send(1)
    sent = c.w.now_us
    for _ in range(100):
        c.run_for(1 * MS)
        if c.broker(follower).rm.partition(("t", 0)).log_end_offset > before:
            break
    took = c.w.now_us - sent
    assert c.broker(follower).rm.partition(("t", 0)).log_end_offset == before + 1
    assert took < 20 * MS, took  # woken by the append, not by the 500 ms timeout
    # the request that brought it named no partition: the session's partition woke it
    answered = [r for t, src, r in seen if src == follower and t >= parked_at]
    assert answered and answered[0].topics == ()


def test_a_crashed_leaders_reset_fails_the_followers_fetch_at_once() -> None:
    """The leader's process dies with both followers' long polls waiting at it: its
    kernel resets their connections, so they give those fetches up at once (then back
    off replica.fetch.backoff.ms) instead of waiting replica.socket.timeout.ms."""
    c = SimCluster(settings={"min.insync.replicas": 2}, partitions=3)
    c.run_for(3 * S)
    leader = c.leader()
    followers = [b for b in c.broker_ids if b != f"b{leader}"]
    assert all(c.broker(f).rm.fetchers[leader]._inflight is not None for f in followers)
    crashed = c.w.now_us
    c.w.crash(f"b{leader}")
    c.run_for(10 * MS)
    resets = [e for e in c.events("fetch_connection_reset") if e["time_us"] >= crashed]
    assert sorted(e["node"] for e in resets) == sorted(followers)
    assert all(e["time_us"] - crashed < 10 * MS for e in resets)
    for f in followers:
        fetcher = c.broker(f).rm.fetchers[leader]
        # no fetch in flight; the next one is full (epoch 0), on a new session
        assert fetcher._inflight is None and fetcher.session.epoch == 0
