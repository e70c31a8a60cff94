"""KIP-227 incremental fetch sessions: the leader's session cache
(`simlog.broker.fetch_session`) and the follower's `FetchSessionHandler`, as units."""

from __future__ import annotations

import random
from dataclasses import replace

from simlog.broker.fetch_session import (
    EVICTION_US,
    FINAL_EPOCH,
    INITIAL_EPOCH,
    FetchSessionCache,
    IncrementalFetchContext,
    SessionErrorContext,
    next_epoch,
)
from simlog.broker.partition import ReadOutcome
from simlog.broker.replica_fetcher import FetchSessionHandler
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import (
    FetchPartition,
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopic,
    FetchTopicResponse,
    ForgottenTopic,
)
from simlog.runtime import Message

from .harness import Cluster, _PushState

MS = 1_000
S = 1_000_000
A, B, C = ("t", 0), ("t", 1), ("u", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def cache(slots: int = 1000, seed: int = 7) -> tuple[FetchSessionCache, Clock]:
    clock = Clock()
    rng = random.Random(seed)
    return FetchSessionCache(lambda: rng, clock, max_entries=slots), clock


def fp(tp: tuple[str, int], offset: int, epoch: int = 3) -> FetchPartition:
    return FetchPartition(partition=tp[1], fetch_offset=offset, current_leader_epoch=epoch,
                          last_fetched_epoch=epoch, log_start_offset=0)


def request(parts: dict[tuple[str, int], int], session_id: int = 0, epoch: int = INITIAL_EPOCH,
            forget: tuple[tuple[str, int], ...] = ()) -> FetchRequest:
    topics: dict[str, list[FetchPartition]] = {}
    for tp, off in parts.items():
        topics.setdefault(tp[0], []).append(fp(tp, off))
    forgotten: dict[str, list[int]] = {}
    for tp in forget:
        forgotten.setdefault(tp[0], []).append(tp[1])
    return FetchRequest(correlation_id=1, replica_id=2, session_id=session_id,
                        session_epoch=epoch,
                        topics=tuple(FetchTopic(topic=t, partitions=tuple(ps))
                                     for t, ps in topics.items()),
                        forgotten_topics_data=tuple(ForgottenTopic(topic=t, partitions=tuple(ps))
                                                    for t, ps in forgotten.items()))


def idle(hw: int = 10, start: int = 0) -> ReadOutcome:
    return ReadOutcome(Errors.NONE, hw, start, hw)


def data(hw: int = 10) -> ReadOutcome:
    return ReadOutcome(Errors.NONE, hw, 0, hw + 1, b"batch")


def open_session(c: FetchSessionCache, parts: dict[tuple[str, int], int],
                 hw: int = 10) -> int:
    ctx = c.new_context(request(parts), privileged=True)
    err, sid, answer = ctx.finish({tp: idle(hw) for tp in ctx.specs()})
    assert err is Errors.NONE and sid != 0 and answer == list(parts)
    return sid


# ------------------------------------------------------------------ leader: the cache

def test_full_fetch_with_initial_epoch_creates_a_session_answering_everything() -> None:
    c, _ = cache()
    ctx = c.new_context(request({A: 5, B: 7}), privileged=True)
    specs = ctx.specs()
    assert [(tp, s.fetch_offset) for tp, s in specs.items()] == [(A, 5), (B, 7)]
    assert len(c) == 0  # created when answered, as Kafka's FullFetchContext
    err, sid, answer = ctx.finish({A: idle(), B: idle()})
    assert err is Errors.NONE and sid != 0 and answer == [A, B]
    s = c.get(sid)
    assert s is not None and s.epoch == 1 and s.privileged
    assert s.partitions[A].spec.fetch_offset == 5 and s.partitions[A].high_watermark == 10


def test_incremental_fetch_reads_every_session_partition_with_its_cached_parameters() -> None:
    c, _ = cache()
    sid = open_session(c, {A: 5, B: 7, C: 1})
    ctx = c.new_context(request({B: 9}, sid, 1), privileged=True)
    assert isinstance(ctx, IncrementalFetchContext)
    assert {tp: s.fetch_offset for tp, s in ctx.specs().items()} == {A: 5, B: 9, C: 1}
    assert list(ctx.specs()) == [A, B, C]  # sorted
    assert c.get(sid).epoch == 2  # advanced when accepted


def test_incremental_answer_holds_only_partitions_with_something_new() -> None:
    c, _ = cache()
    sid = open_session(c, {A: 5, B: 7, C: 1}, hw=10)
    ctx = c.new_context(request({}, sid, 1), privileged=True)
    err, got, answer = ctx.finish({A: idle(10), B: idle(10), C: idle(10)})
    assert (err, got, answer) == (Errors.NONE, sid, [])  # nothing new anywhere
    # records; a moved HW; a moved log start; each is answered, once
    ctx = c.new_context(request({}, sid, 2), privileged=True)
    assert ctx.finish({A: data(10), B: idle(11), C: idle(10, start=4)})[2] == [A, B, C]
    ctx = c.new_context(request({}, sid, 3), privileged=True)
    assert ctx.finish({A: idle(10), B: idle(11), C: idle(10, start=4)})[2] == []
    # an error is always answered, and the partition again once the error is gone
    ctx = c.new_context(request({}, sid, 4), privileged=True)
    failed = ReadOutcome(Errors.NOT_LEADER_OR_FOLLOWER)
    assert ctx.finish({A: idle(10), B: failed, C: idle(10, start=4)})[2] == [B]
    ctx = c.new_context(request({}, sid, 5), privileged=True)
    assert ctx.finish({A: idle(10), B: idle(11), C: idle(10, start=4)})[2] == [B]
    # (even an error that carries the same HW as the answer after it)
    ctx = c.new_context(request({}, sid, 6), privileged=True)
    out_of_range = ReadOutcome(Errors.OFFSET_OUT_OF_RANGE, 11, 0, 11)
    assert ctx.finish({A: idle(10), B: out_of_range, C: idle(10, start=4)})[2] == [B]
    ctx = c.new_context(request({}, sid, 7), privileged=True)
    assert ctx.finish({A: idle(10), B: idle(11), C: idle(10, start=4)})[2] == [B]
    # a diverging epoch is always answered
    ctx = c.new_context(request({}, sid, 8), privileged=True)
    div = ReadOutcome(Errors.NONE, 10, 0, 10, diverging_epoch=(2, 8))
    assert ctx.finish({A: div, B: idle(11), C: idle(10, start=4)})[2] == [A]
    ctx = c.new_context(request({}, sid, 9), privileged=True)
    assert ctx.finish({A: div, B: idle(11), C: idle(10, start=4)})[2] == [A]


def test_forgotten_partitions_leave_the_session_and_forgetting_all_closes_it() -> None:
    c, _ = cache()
    sid = open_session(c, {A: 5, B: 7, C: 1})
    ctx = c.new_context(request({}, sid, 1, forget=(B,)), privileged=True)
    assert list(ctx.specs()) == [A, C]
    # added back later: new to the session, so answered whatever it holds
    ctx = c.new_context(request({B: 7}, sid, 2), privileged=True)
    assert list(ctx.specs()) == [A, B, C]
    assert ctx.finish({A: idle(), B: idle(), C: idle()})[2] == [B]
    ctx = c.new_context(request({}, sid, 3, forget=(A, B, C)), privileged=True)
    assert ctx.specs() == {} and c.get(sid) is None
    assert ctx.finish({}) == (Errors.NONE, 0, [])  # sessionless: the fetcher starts over


def test_wrong_epoch_is_invalid_fetch_session_epoch_and_changes_nothing() -> None:
    c, _ = cache()
    sid = open_session(c, {A: 5})
    for wrong in (2, 7):
        ctx = c.new_context(request({A: 99}, sid, wrong), privileged=True)
        assert isinstance(ctx, SessionErrorContext) and ctx.specs() == {}
        assert ctx.finish({}) == (Errors.INVALID_FETCH_SESSION_EPOCH, 0, [])
    s = c.get(sid)
    assert s.epoch == 1 and s.partitions[A].spec.fetch_offset == 5


def test_unknown_session_id_is_fetch_session_id_not_found() -> None:
    c, _ = cache()
    sid = open_session(c, {A: 5})
    ctx = c.new_context(request({A: 5}, sid + 1, 1), privileged=True)
    assert ctx.error is Errors.FETCH_SESSION_ID_NOT_FOUND
    assert ctx.finish({}) == (Errors.FETCH_SESSION_ID_NOT_FOUND, 0, [])
    # a restarted leader: a new, empty cache
    fresh, _ = cache()
    assert fresh.new_context(request({}, sid, 1), True).error is Errors.FETCH_SESSION_ID_NOT_FOUND


def test_sessionless_fetch_is_answered_in_full_and_creates_nothing() -> None:
    c, _ = cache()
    for _ in range(3):
        ctx = c.new_context(request({A: 5, B: 7}, 0, FINAL_EPOCH), privileged=False)
        assert list(ctx.specs()) == [A, B]
        assert ctx.finish({A: idle(), B: idle()}) == (Errors.NONE, 0, [A, B])
    assert len(c) == 0


def test_full_fetch_naming_a_session_closes_it_and_opens_another() -> None:
    c, _ = cache()
    sid = open_session(c, {A: 5})
    ctx = c.new_context(request({A: 6}, sid, INITIAL_EPOCH), privileged=True)
    assert c.get(sid) is None
    err, new, answer = ctx.finish({A: idle()})
    assert err is Errors.NONE and new not in (0, sid) and answer == [A]
    # (id, FINAL): close it, no new one
    ctx = c.new_context(request({A: 6}, new, FINAL_EPOCH), privileged=True)
    assert ctx.finish({A: idle()}) == (Errors.NONE, 0, [A]) and len(c) == 0


def test_a_duplicate_accepted_meanwhile_turns_the_answer_into_an_epoch_error() -> None:
    c, _ = cache()
    sid = open_session(c, {A: 5})
    first = c.new_context(request({}, sid, 1), privileged=True)  # parked in purgatory
    second = c.new_context(request({}, sid, 2), privileged=True)
    assert second.finish({A: data()})[0] is Errors.NONE
    assert first.finish({A: data()}) == (Errors.INVALID_FETCH_SESSION_EPOCH, sid, [])


def test_cache_is_bounded_and_evicts_as_kafka() -> None:
    c, clock = cache(slots=1)
    first = open_session(c, {A: 5})
    # full, and the only session is a fresh follower's: no room for another
    ctx = c.new_context(request({A: 5}), privileged=True)
    assert ctx.finish({A: idle()})[1] == 0 and c.get(first) is not None
    # unused for longer than the eviction time: evicted for the new one
    clock.now += EVICTION_US + 1
    ctx = c.new_context(request({B: 5}), privileged=True)
    second = ctx.finish({B: idle()})[1]
    assert second != 0 and c.get(first) is None and c.evictions == 1
    # a consumer's session gives way to a follower's at once, not the other way round
    c2, _ = cache(slots=1)
    consumer = c2.new_context(request({A: 5, B: 5}), privileged=False).finish(
        {A: idle(), B: idle()})[1]
    assert consumer != 0
    assert c2.new_context(request({A: 5}), privileged=False).finish({A: idle()})[1] == 0
    follower = c2.new_context(request({A: 5}), privileged=True).finish({A: idle()})[1]
    assert follower != 0 and c2.get(consumer) is None
    # no slots: no sessions, the fetcher keeps sending full fetches
    c3, _ = cache(slots=0)
    assert c3.new_context(request({A: 5}), privileged=True).finish({A: idle()})[1] == 0


def test_session_ids_are_drawn_from_the_rng_unique_and_never_zero() -> None:
    class Rigged:
        def __init__(self, values: list[int]) -> None:
            self.values = values

        def randint(self, a: int, b: int) -> int:
            assert a == 1 and b > 1 << 30
            return self.values.pop(0)

    rng = Rigged([42, 42, 43])
    c = FetchSessionCache(lambda: rng, lambda: 0)
    ids = [c.new_context(request({A: 1}), True).finish({A: idle()})[1] for _ in range(2)]
    assert ids == [42, 43]
    # the same seed gives the same ids
    assert [open_session(cache(seed=3)[0], {A: 1}) for _ in range(2)] == \
        [open_session(cache(seed=3)[0], {A: 1})] * 2


def test_next_epoch() -> None:
    assert next_epoch(INITIAL_EPOCH) == 1 and next_epoch(5) == 6
    assert next_epoch((1 << 31) - 1) == 1  # wraps, never back to INITIAL
    assert next_epoch(FINAL_EPOCH) == FINAL_EPOCH


# ------------------------------------------------------------------ follower: the handler

def response(parts: tuple[tuple[str, int], ...], session_id: int,
             error: Errors = Errors.NONE) -> FetchResponse:
    topics: dict[str, list[FetchPartitionResponse]] = {}
    for tp in parts:
        topics.setdefault(tp[0], []).append(FetchPartitionResponse(partition_index=tp[1]))
    return FetchResponse(correlation_id=1, error_code=error, session_id=session_id,
                         responses=tuple(FetchTopicResponse(topic=t, partitions=tuple(ps))
                                         for t, ps in topics.items()))


def established(sid: int = 77) -> FetchSessionHandler:
    h = FetchSessionHandler()
    d = h.build({A: fp(A, 5), B: fp(B, 7)})
    assert d is not None and (d.session_id, d.session_epoch) == (0, INITIAL_EPOCH)
    assert list(d.to_send) == [A, B] and d.to_forget == []
    assert h.handle_response(response((A, B), sid))
    return h


def test_handler_sends_full_then_incremental_fetches_listing_only_changes() -> None:
    h = established()
    d = h.build({A: fp(A, 5), B: fp(B, 7)})
    assert (d.session_id, d.session_epoch) == (77, 1)
    assert d.to_send == {} and d.to_forget == [] and set(d.session) == {A, B}
    assert h.handle_response(response((), 77))  # nothing new: an empty answer
    # B moved, C is new, A is no longer fetched
    d = h.build({B: fp(B, 9), C: fp(C, 0)})
    assert (d.session_id, d.session_epoch) == (77, 2)
    assert list(d.to_send) == [B, C] and d.to_forget == [A]
    assert {tp: p.fetch_offset for tp, p in d.session.items()} == {B: 9, C: 0}
    assert h.handle_response(response((B,), 77))
    # a new leader epoch or max bytes counts as a change too
    d = h.build({B: fp(B, 9, epoch=4), C: fp(C, 0)})
    assert list(d.to_send) == [B]


def test_handler_forgets_everything_then_has_nothing_to_send() -> None:
    h = established()
    d = h.build({})
    assert d is not None and d.to_send == {} and d.to_forget == [A, B] and d.session == {}
    assert h.handle_response(response((), 0))  # the leader closed the emptied session
    assert (h.session_id, h.epoch) == (0, INITIAL_EPOCH)
    assert h.build({}) is None


def test_handler_starts_over_after_session_errors_and_timeouts() -> None:
    h = established()
    h.build({A: fp(A, 5), B: fp(B, 7)})
    assert not h.handle_response(response((), 0, Errors.FETCH_SESSION_ID_NOT_FOUND))
    d = h.build({A: fp(A, 5), B: fp(B, 7)})
    assert (d.session_id, d.session_epoch) == (0, INITIAL_EPOCH) and list(d.to_send) == [A, B]

    h = established()
    h.build({A: fp(A, 5), B: fp(B, 7)})
    assert not h.handle_response(response((), 0, Errors.INVALID_FETCH_SESSION_EPOCH))
    d = h.build({A: fp(A, 5), B: fp(B, 7)})  # close it, ask for a new one
    assert (d.session_id, d.session_epoch) == (77, INITIAL_EPOCH) and list(d.to_send) == [A, B]

    h = established()
    h.build({A: fp(A, 5), B: fp(B, 7)})
    h.handle_error()  # timed out: a new connection
    d = h.build({A: fp(A, 5), B: fp(B, 7)})
    assert (d.session_id, d.session_epoch) == (77, INITIAL_EPOCH) and list(d.to_send) == [A, B]


def test_handler_rejects_answers_that_do_not_fit_the_session() -> None:
    h = established()
    h.build({A: fp(A, 5)})  # forgets B
    assert not h.handle_response(response((B,), 77))  # B is not in the session
    assert (h.session_id, h.epoch) == (77, INITIAL_EPOCH)
    h = FetchSessionHandler()
    h.build({A: fp(A, 5), B: fp(B, 7)})
    assert not h.handle_response(response((A,), 77))  # a full answer omitting B
    assert (h.session_id, h.epoch) == (0, INITIAL_EPOCH)


def test_handler_keeps_fetching_in_full_when_the_leader_creates_no_session() -> None:
    h = FetchSessionHandler()
    for _ in range(2):
        d = h.build({A: fp(A, 5)})
        assert (d.session_id, d.session_epoch) == (0, INITIAL_EPOCH) and list(d.to_send) == [A]
        assert h.handle_response(response((A,), 0))


# ------------------------------------------------------------------ replica manager + fetcher

def tapped(c: Cluster) -> list[tuple[str, str, Message]]:
    """Record every Fetch request and response between brokers from now on."""
    log: list[tuple[str, str, Message]] = []
    deliver = c.deliver

    def tap(src: str, dst: str, msg: Message) -> None:
        if isinstance(msg, FetchRequest | FetchResponse) and src[0] == dst[0] == "b":
            log.append((src, dst, msg))
        deliver(src, dst, msg)

    c.deliver = tap  # type: ignore[method-assign]
    return log


def test_followers_fetch_incrementally_and_an_idle_partition_stays_off_the_wire() -> None:
    c = Cluster()
    log = tapped(c)
    c.create()
    c.run_for(100 * MS)
    c.produce("m0")
    c.run_for(2 * S)
    reqs = [m for s, _, m in log if s == "b2" and isinstance(m, FetchRequest)]
    resps = [m for _, d, m in log if d == "b2" and isinstance(m, FetchResponse)]
    assert len(reqs) == len(resps) + 1 >= 5  # the last one is parked at the leader
    first, rest = reqs[0], reqs[1:]
    assert (first.session_id, first.session_epoch) == (0, INITIAL_EPOCH) and first.topics
    sid = resps[0].session_id
    assert sid != 0
    assert [(r.session_id, r.session_epoch) for r in rest] == \
        [(sid, e) for e in range(1, len(rest) + 1)]
    # t-0 is listed again only when the follower's log end moved (m0 arrived)
    listed = [r.topics[0].partitions[0].fetch_offset for r in rest if r.topics]
    assert listed == [1]
    # answered: m0 (to the full fetch, parked until it came), the HW that the next
    # fetch moved (a round later, as without sessions); then nothing more
    answered = [(p.records != b"", p.high_watermark)
                for r in resps for t in r.responses for p in t.partitions]
    assert answered == [(True, 0), (False, 1)]
    assert [r.responses for r in resps[2:]] == [()] * (len(resps) - 2)
    assert [c.partition(b).high_watermark for b in (1, 2, 3)] == [1, 1, 1]
    assert c.payloads(2) == c.payloads(3) == ["m0"]


def test_a_partition_held_back_by_backoff_is_forgotten_then_fetched_afresh() -> None:
    c = Cluster()
    c.create()
    c.run_for(100 * MS)
    log = tapped(c)
    # b2 hears of a newer leader epoch before the leader does: the leader answers
    # UNKNOWN_LEADER_EPOCH, b2 backs off and, with nothing else to fetch, forgets t-0
    st = c.state[("t", 0)]
    c._broker_on(2, "ctl", _PushState(state=replace(st, leader_epoch=1, partition_epoch=1)))
    c.run_for(600 * MS)
    c.state[("t", 0)] = replace(st, leader_epoch=1, partition_epoch=1)
    c.set_state(c.state[("t", 0)])
    c.run_for(2 * S)
    reqs = [m for s, _, m in log if s == "b2" and isinstance(m, FetchRequest)]
    resps = [m for _, d, m in log if d == "b2" and isinstance(m, FetchResponse)]
    errors = [p.error_code for r in resps for t in r.responses for p in t.partitions]
    assert Errors.UNKNOWN_LEADER_EPOCH in errors
    forgot = [r for r in reqs if r.forgotten_topics_data]
    assert forgot and forgot[0].topics == ()
    assert forgot[0].forgotten_topics_data == (ForgottenTopic(topic="t", partitions=(0,)),)
    after = reqs[reqs.index(forgot[0]) + 1]
    assert (after.session_id, after.session_epoch) == (0, INITIAL_EPOCH)  # closed: anew
    assert after.topics[0].partitions[0].current_leader_epoch == 1
    cid = c.produce("m0")
    c.run_for(50 * MS)
    assert c.result(cid) == (Errors.NONE, 0)
    assert c.payloads(2) == c.payloads(3) == ["m0"]
