"""Properties of the checks on generated runs of a correct log, and on broken copies.

A correct run: producers send one message at a time to partitions of an in-memory log;
`ok` sends are appended, `fail` sends are not, `info` sends may or may not be; a consumer
polls every partition from the start, in batches; all replicas hold the same log. Every
check passes on it. Breaking the log in one way makes exactly the matching check fail,
naming the message or offset that was broken.
"""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from simlog.checks.consumers import consumed_all, poll_monotonic
from simlog.checks.registry import CHECKS
from simlog.checks.replicas import replicas_converge
from simlog.checks.writes import duplicates, lost_writes, order
from simlog.testing.builders import Hist, final, partition

sends = st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.integers(0, 2),
                           st.sampled_from(["ok", "ok", "ok", "fail", "info"]), st.booleans()),
                 min_size=1, max_size=30)


def run(events, batch: int = 3):
    """(history, logs) of a correct run; logs: partition -> ids in offset order."""
    h = Hist()
    logs: dict[str, list[str]] = {f"orders/{p}": [] for p in range(3)}
    for n, (producer, p, outcome, landed) in enumerate(events):
        tp, mid = f"orders/{p}", f"{producer}-{n}"
        h.invoke_send(producer, mid, tp)
        if outcome == "ok" or (outcome == "info" and landed):
            logs[tp].append(mid)
        offset = len(logs[tp]) - 1 if outcome == "ok" else None
        h.complete_send(producer, mid, tp, outcome, offset)
    h.assign("g-1", "g", 1, *sorted(logs))
    for tp in sorted(logs):
        records = [(tp, off, mid) for off, mid in enumerate(logs[tp])]
        for i in range(0, len(records), batch):
            h.poll("g-1", *records[i:i + batch])
    return h.ops, logs


def state_of(logs, replicas=("b1", "b2", "b3"), **kw):
    parts = [partition(tp, dict.fromkeys(replicas, ids)) for tp, ids in sorted(logs.items())]
    return final(*parts, groups={"g": ("orders",)},
                 idempotent_producers=frozenset({"p1", "p2"}), **kw)


def acked(history):
    return [op.value["id"] for op in history if op.f == "send" and op.type == "ok"]


@given(sends)
def test_every_check_passes_on_a_correct_run(events):
    history, logs = run(events)
    state = state_of(logs)
    for definition in CHECKS.values():
        result = definition.function()(history, state)
        assert result.passed, (definition.name, result.witnesses)


@given(sends, st.data())
def test_dropping_an_acked_record_fails_lost_writes_naming_it(events, data):
    history, logs = run(events)
    ids = acked(history)
    assume(ids)
    victim = data.draw(st.sampled_from(ids))
    broken = {tp: [m for m in ids_ if m != victim] for tp, ids_ in logs.items()}
    result = lost_writes(history, state_of(broken))
    assert [(w["kind"], w["id"]) for w in result.witnesses] == [("lost", victim)]


@given(sends, st.data())
def test_appending_a_failed_send_fails_lost_writes(events, data):
    history, logs = run(events)
    failed = [op.value for op in history if op.f == "send" and op.type == "fail"]
    assume(failed)
    victim = data.draw(st.sampled_from(failed))
    tp = f"{victim['topic']}/{victim['partition']}"
    broken = {**logs, tp: [*logs[tp], victim["id"]]}
    result = lost_writes(history, state_of(broken))
    assert [(w["kind"], w["id"]) for w in result.witnesses] == [("failed_present",
                                                                  victim["id"])]


@given(sends, st.data())
def test_copying_a_record_fails_duplicates_naming_it(events, data):
    history, logs = run(events)
    present = [(tp, m) for tp, ids in sorted(logs.items()) for m in ids]
    assume(present)
    tp, victim = data.draw(st.sampled_from(present))
    broken = {**logs, tp: [*logs[tp], victim]}
    result = duplicates(history, state_of(broken))
    assert [w["id"] for w in result.witnesses] == [victim]


@given(sends, st.data())
def test_swapping_two_acked_records_of_one_producer_fails_order(events, data):
    history, logs = run(events)
    by_producer = {}
    for tp, ids in sorted(logs.items()):
        for i, a in enumerate(ids):
            for j in range(i + 1, len(ids)):
                if ids[j].split("-")[0] == a.split("-")[0] and a in acked(history) \
                        and ids[j] in acked(history):
                    by_producer.setdefault((tp, i, j), (a, ids[j]))
    assume(by_producer)
    (tp, i, j) = data.draw(st.sampled_from(sorted(by_producer)))
    swapped = list(logs[tp])
    swapped[i], swapped[j] = swapped[j], swapped[i]
    result = order(history, state_of({**logs, tp: swapped}))
    assert not result.passed
    assert all(w["partition"] == tp for w in result.witnesses)


@given(sends, st.data())
def test_a_replica_differing_below_hw_fails_replicas_converge(events, data):
    history, logs = run(events)
    present = [(tp, off) for tp, ids in sorted(logs.items()) for off in range(len(ids))]
    assume(present)
    tp, off = data.draw(st.sampled_from(present))
    state = state_of(logs)
    bad = list(logs[tp])
    bad[off] = "other"
    parts = dict(state.partitions)
    good = parts[next(k for k in parts if str(k) == tp)]
    parts[good.partition] = partition(tp, {"b1": logs[tp], "b2": logs[tp], "b3": bad})
    result = replicas_converge(history, final(*parts.values()))
    assert [(w["node"], w["offset"]) for w in result.witnesses] == [("b3", off)]


@given(sends)
def test_a_consumer_that_stops_early_fails_consumed_all_not_poll_monotonic(events):
    history, logs = run(events)
    polls = [i for i, op in enumerate(history) if op.f == "poll"]
    assume(polls)
    cut = history[:polls[-1] - 1]       # drop the last poll (invoke and ok)
    last_records = history[polls[-1]].value["records"]
    assume(last_records)
    state = state_of(logs)
    assert poll_monotonic(cut, state).passed
    result = consumed_all(cut, state)
    missing = {r["id"] for r in last_records} & set(acked(history))
    assert {w["id"] for w in result.witnesses} == missing
