"""Parked fetch-session partitions (`simlog.broker.fetch_session`, "Reading only what
changed"): a leader skips the session partitions where the follower sits at the log end
and nothing changed, and applies the skipped fetches' caught-up times lazily; a long
poll watches only the partitions that are not parked. These tests pin down that the
lazy caught-up time is the one every fetch would have set (ISR shrinks at the same
ticks), that parked partitions cost nothing per fetch, and that a long poll still wakes
on data in a partition its request did not list."""

from __future__ import annotations

from pathlib import Path

import pytest

from simlog.broker import fetch_session, replica_fetcher
from simlog.broker.partition import Partition
from simlog.broker.replica_manager import PartitionState
from simlog.protocol.fetch import FetchRequest, FetchResponse
from simlog.protocol.produce import ProducePartitionData, ProduceRequest, ProduceTopicData
from simlog.runtime import Message
from simlog.scenario.load import load
from simlog.scenario.run import Run

from .fakes import batch_bytes
from .harness import Cluster
from .simcluster import MS, S, SimCluster

PARTS = 8
LAG_US = 30 * S  # replica.lag.time.max.ms (default)
TICK_US = LAG_US // 2  # the leader's ISR shrink check; the first at 15 s after boot


@pytest.fixture(autouse=True)
def _verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read checks that each skipped partition is parked and has nothing new, and
    every fetch that the tracked fetch data is what a pass over all partitions gives."""
    monkeypatch.setattr(fetch_session, "VERIFY_PARKING", True)
    monkeypatch.setattr(replica_fetcher, "VERIFY_FETCH_DATA", True)


def cluster() -> Cluster:
    c = Cluster()
    for i in range(PARTS):
        c.set_state(PartitionState("t", i, (1, 2, 3), (1, 2, 3), 1, 0, 0))
    c.run_for(100 * MS)
    return c


def produce(c: Cluster, partition: int, payload: str) -> None:
    c.deliver("client", "b1", ProduceRequest(
        correlation_id=next(c._cid), acks=-1, timeout_ms=30_000,
        topic_data=(ProduceTopicData(name="t", partition_data=(ProducePartitionData(
            index=partition, records=batch_bytes(payload=payload)),)),)))


def leader(c: Cluster, partition: int) -> Partition:
    p = c.rms[1].partition(("t", partition))
    assert p is not None and p.is_leader
    return p


def session_of(c: Cluster, follower: int) -> fetch_session.FetchSession:
    (s,) = [s for s in c.rms[1].fetch_sessions.sessions.values() if s.replica_id == follower]
    return s


def shrinks(c: Cluster, partition: int) -> list[tuple[int, list[int]]]:
    return [(t, f["removed"]) for t, _, f in c.event_kinds("isr_shrink")
            if f["partition"] == f"t-{partition}"]


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Follower reads of leader partitions (replica_id >= 0) from now on."""
    n = [0]
    read = Partition.read_as_leader

    def counted(self: Partition, *args, **kwargs):  # type: ignore[no-untyped-def]
        if args[4] >= 0:
            n[0] += 1
        return read(self, *args, **kwargs)

    monkeypatch.setattr(Partition, "read_as_leader", counted)
    return n


def first_tick_after(t_us: int) -> int:
    """The leader's first ISR shrink check at which now - t_us > replica.lag.time.max."""
    k = (t_us + LAG_US) // TICK_US + 1
    return k * TICK_US


def test_an_idle_follower_stays_in_the_isr_for_minutes_and_idle_fetches_read_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    c = cluster()
    for i in range(PARTS):
        produce(c, i, f"m{i}")
    c.run_for(2 * S)
    for f in (2, 3):
        s = session_of(c, f)
        assert len(s.partitions) == PARTS and s.dirty == set()  # all parked
    reads = count_reads(monkeypatch)
    fetches = c.rms[1].fetch_sessions
    before = {f: session_of(c, f).loops for f in (2, 3)}
    c.run_for(5 * 60 * S)
    assert reads[0] == 0  # five minutes of long polls, not one partition read
    assert all(session_of(c, f).loops > before[f] + 500 for f in (2, 3))
    assert len(fetches) == 2
    for i in range(PARTS):
        assert c.state[("t", i)].isr == (1, 2, 3) and shrinks(c, i) == []
        p = leader(c, i)
        for f in (2, 3):
            st = p.follower_state(f)
            # caught up as of its session's latest fetch (a long poll: <= 500 ms ago)
            assert st is not None and c.loop.now_us - st.last_caught_up_time_us <= 500 * MS
            assert st.last_caught_up_time_us == st.last_fetch_time_us == session_of(c, f).read_us
    # data on one partition: it leaves parking with that caught-up time, the waiting
    # long polls read it at once (a fetch below the new log end, at the old one: caught
    # up as of the previous fetch), it replicates, and the followers park again; the
    # other partitions are never touched
    t3 = leader(c, 3)
    expected = {f: t3.follower_state(f) for f in (2, 3)}
    produce(c, 3, "late")
    c.run_for(500)  # delivered (0.5 ms), appended, the long polls answered
    appended = c.loop.now_us
    assert t3.log_end_offset == 2 and t3.high_watermark == 1
    for f in (2, 3):
        st, old = t3.remotes[f], expected[f]
        assert st is not None and old is not None and st.parked is None
        assert (st.log_end_offset, st.last_fetch_leader_leo, st.last_fetch_time_us) == (
            1, 2, appended)
        assert st.last_caught_up_time_us == old.last_fetch_time_us < appended
    c.run_for(1 * S)
    assert t3.high_watermark == 2 and c.state[("t", 3)].isr == (1, 2, 3)
    assert all(session_of(c, f).dirty == set() for f in (2, 3))
    assert 0 < reads[0] <= 12  # t-3 read a few times per follower, nothing else


def test_a_follower_that_stops_fetching_is_shrunk_lag_max_after_its_last_fetch() -> None:
    """A stopped follower at the log end of quiet partitions stays in their ISR (Kafka:
    caught up = at the leader's log end). Once data comes, it is out of sync since its
    last fetch: its caught-up time is that fetch's, not the time it was parked (long
    before) nor the time the data came (later)."""
    c = cluster()
    for i in range(PARTS):
        produce(c, i, f"m{i}")
    c.run_for(3 * S)
    parked_at = session_of(c, 3).read_us
    c.run_for(60 * S)  # a minute of idle long polls, all parked
    s3 = session_of(c, 3)
    assert s3.dirty == set() and s3.read_us > parked_at + 55 * S
    c.crash(3)  # b3 stops fetching; the leader answers its last long poll to no one
    c.run_for(1 * S)
    last_fetch = s3.read_us
    assert c.loop.now_us - 1 * S <= last_fetch <= c.loop.now_us
    c.run_for(24 * S)  # past a shrink check: quiet partitions keep b3 in their ISR
    assert all(c.state[("t", i)].isr == (1, 2, 3) for i in range(PARTS))
    produce(c, 0, "after")
    c.run_for(1 * MS)
    st = leader(c, 0).remotes[3]
    assert st.parked is None and st.last_caught_up_time_us == last_fetch
    c.run_for(60 * S)
    # shrunk (only from t-0) at the first check more than the lag after its last fetch;
    # a parked-time caught-up would shrink at the first check after the write, a
    # write-time one a check later
    expect = first_tick_after(last_fetch)
    assert expect > first_tick_after(parked_at)
    ((t, removed),) = shrinks(c, 0)
    assert removed == [3] and expect <= t <= expect + 2 * MS
    assert c.state[("t", 0)].isr == (1, 2)
    assert all(shrinks(c, i) == [] for i in range(1, PARTS))
    assert all(c.state[("t", i)].isr == (1, 2, 3) for i in range(1, PARTS))


def test_a_follower_behind_on_one_partition_is_shrunk_while_it_fetches_the_others() -> None:
    """b3 keeps fetching t-0 at the same offset (its appends of t-0 are lost) and the
    other partitions of its session (one of them busy): t-0's leader is quiet after one
    write, but b3 is not at its end, so nothing parks t-0 and it is shrunk a lag after
    its last fetch at the log end; the other partitions keep b3."""
    c = cluster()
    for i in range(PARTS):
        produce(c, i, f"m{i}")
    c.run_for(2 * S)
    stuck = c.rms[3].partition(("t", 0))
    assert stuck is not None
    stuck.append_as_follower = lambda records: stuck.log_end_offset  # type: ignore[method-assign]
    s3 = session_of(c, 3)
    last_at_end = s3.read_us
    produce(c, 0, "lost-on-b3")
    for k in range(40):  # t-1 busy meanwhile: b3's session keeps fetching
        c.loop.at(k * S + 300 * MS, lambda k=k: produce(c, 1, f"busy{k}"))
    c.run_for(1 * MS)
    st = leader(c, 0).remotes[3]
    assert st.last_caught_up_time_us == last_at_end
    c.run_for(45 * S)
    assert session_of(c, 3) is s3 and s3.loops > 100 and ("t", 0) in s3.dirty
    assert leader(c, 0).remotes[3].log_end_offset == 1  # still fetching at offset 1
    expect = first_tick_after(last_at_end)
    ((t, removed),) = shrinks(c, 0)
    assert removed == [3] and expect <= t <= expect + 2 * MS
    assert leader(c, 1).high_watermark == 41 and shrinks(c, 1) == []
    assert all(c.state[("t", i)].isr == (1, 2, 3) for i in range(1, PARTS))


def test_a_long_poll_wakes_on_data_in_a_partition_its_request_did_not_list() -> None:
    c = cluster()
    for i in range(PARTS):
        produce(c, i, f"m{i}")
    c.run_for(2 * S)
    log: list[tuple[int, str, Message]] = []
    deliver = c.deliver

    def tap(src: str, dst: str, msg: Message) -> None:
        if isinstance(msg, FetchRequest | FetchResponse) and {src, dst} == {"b1", "b2"}:
            log.append((c.loop.now_us, src, msg))
        deliver(src, dst, msg)

    c.deliver = tap  # type: ignore[method-assign]
    c.run_for(1 * S)
    reqs = [(t, m) for t, src, m in log if src == "b2"]
    assert reqs and all(m.topics == () and m.forgotten_topics_data == () for _, m in reqs)
    s2 = session_of(c, 2)
    waiter = s2.waiter
    assert waiter is not None and not waiter.completed and s2.dirty == set()
    purgatory = c.rms[1].fetch_purgatory
    assert all(purgatory.watched(("t", i)) == 0 for i in range(PARTS))  # (parked: unwatched)
    sent = c.loop.now_us
    produce(c, 5, "wake")
    c.run_for(5 * MS)
    assert waiter.completed
    (t, resp) = next((t, m) for t, src, m in log if src == "b1" and t > sent)
    assert t == sent + 500  # answered on arrival (+ the harness's 0.5 ms latency)
    (topic,) = resp.responses
    assert [p.partition_index for p in topic.partitions] == [5] and topic.partitions[0].records
    c.run_for(1 * S)
    assert c.rms[2].partition(("t", 5)).log_end_offset == 2  # type: ignore[union-attr]


def test_a_parked_partition_changed_while_its_session_is_read_counts_as_read_once_passed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads of a session go in partition order. When a parked partition changes in the
    middle of one (a nested event), it was read by it if the read got past it (its
    fetch times are this read's) and otherwise not yet (the previous read's; it is read
    later in this one), as when every partition was read."""
    c = cluster()
    for i in range(PARTS):
        produce(c, i, f"m{i}")
    c.run_for(2 * S)
    s = session_of(c, 2)
    assert s.dirty == set()
    leader(c, 4).fetch_changed()  # t-4 is read at the next read of b2's session
    seen: dict[str, int] = {}
    read = Partition.read_as_leader
    reads: list[tuple[int, int]] = []

    def nested(self: Partition, *args, **kwargs):  # type: ignore[no-untyped-def]
        if args[4] == 2:
            reads.append((s.loops, self.index))
            if self.index == 4 and not seen:
                for i in (2, 6):  # a change to t-2 (passed) and t-6 (not yet)
                    leader(c, i).fetch_changed()
                seen.update(loop=s.loops, now=s.read_us, prev=s.prev_read_us,
                            t2=leader(c, 2).remotes[2].last_fetch_time_us,
                            t6=leader(c, 6).remotes[2].last_fetch_time_us)
        return read(self, *args, **kwargs)

    monkeypatch.setattr(Partition, "read_as_leader", nested)
    c.run_for(2 * S)
    assert seen and seen["prev"] < seen["now"]
    assert seen["t2"] == seen["now"] and seen["t6"] == seen["prev"]
    loop = seen["loop"]
    assert [i for k, i in reads if k == loop] == [4, 6]  # t-6 later in that same read
    assert [i for k, i in reads if k == loop + 1] == [2]  # t-2 at the next one
    assert s.dirty == set()


def clock_step_run(parking: bool) -> tuple[object, ...]:
    fetch_session.PARKING = parking
    try:
        c = cluster()
        for i in range(PARTS):
            produce(c, i, f"m{i}")
        c.run_for(60 * S)  # parked (with parking) for a minute of long polls
        c.rts["b1"].clock_offset_us = -50 * S  # the leader's clock steps back 50 s
        c.run_for(2 * S)
        c.crash(3)
        c.run_for(3 * S)
        produce(c, 0, "after")
        c.run_for(120 * S)
        states = []
        for i in range(PARTS):
            for f in (2, 3):
                st = leader(c, i).follower_state(f)
                assert st is not None
                states.append((st.log_end_offset, st.last_caught_up_time_us,
                               st.last_fetch_leader_leo, st.last_fetch_time_us))
        return tuple(shrinks(c, i) for i in range(PARTS)), tuple(states)
    finally:
        fetch_session.PARKING = True


def test_caught_up_times_are_the_latest_fetch_times_when_the_leaders_clock_steps_back() -> None:
    """Kafka keeps the latest caught-up time (a max): after the leader's clock stepped
    back, a parked state's is the latest of its skipped fetches, not the last one."""
    with_parking = clock_step_run(True)
    assert with_parking == clock_step_run(False)
    shrunk, _ = with_parking
    assert [len(s) for s in shrunk] == [1] + [0] * (PARTS - 1)  # b3 from t-0 only


def world_run(parking: bool) -> str:
    """A world with faults: the same trace with parking and without."""
    fetch_session.PARKING = parking
    try:
        c = SimCluster(settings={"min.insync.replicas": 2, "replica.lag.time.max.ms": 4000},
                       partitions=12, producer_config={"request.timeout.ms": 5_000})
        c.send_every(20 * MS, c.w.now_us + 30 * S)
        c.run_for(3 * S)
        lead = f"b{c.leader()}"
        follower = next(b for b in c.broker_ids if b != lead)
        c.w.pause(follower)  # falls behind on t-0, shrunk; the rest stay quiet
        c.run_for(6 * S)
        c.w.resume(follower)
        c.run_for(3 * S)
        c.w.isolate([lead])  # a new leader; the old one's sessions go stale
        c.run_for(5 * S)
        c.w.heal()
        c.run_for(3 * S)
        c.w.set_clock(f"b{c.leader()}", offset_us=-2 * S)  # the leader's clock steps back
        c.run_for(3 * S)
        other = next(b for b in c.broker_ids if b not in (lead, follower))
        c.w.crash(other)
        c.run_for(2 * S)
        c.w.restart(other)
        c.run_for(15 * S)
        assert len(c.acked()) > 1000 and c.lost(f"b{c.leader()}") == []
        return c.w.trace_hash
    finally:
        fetch_session.PARKING = True


def test_parking_changes_no_message_or_event_of_a_run_with_faults() -> None:
    assert world_run(parking=True) == world_run(parking=False)


SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def scenario_hash(name: str, parking: bool) -> str:
    fetch_session.PARKING = parking
    try:
        run = Run(load(SCENARIOS / f"{name}.yaml"))
        run.execute()
        return run.world.trace_hash
    finally:
        fetch_session.PARKING = True


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swarm", "split_brain", "rolling_restart"])
def test_parking_changes_no_message_or_event_of_a_library_scenario(name: str) -> None:
    assert scenario_hash(name, parking=True) == scenario_hash(name, parking=False)
