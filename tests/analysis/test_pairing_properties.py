"""Pairing on generated histories: any valid interleaving of concurrent sends and one-at-a-
time consumer ops pairs back to exactly the operations it was made of, and losing or
repeating one completion is always caught."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.history import HistoryError, pair_operations

# One operation: (process, f, has_id, start_us, latency_us, completion type)
OPERATION = st.tuples(
    st.sampled_from(["p1", "p2", "c1"]),
    st.sampled_from(["send", "poll"]),
    st.integers(0, 5_000_000),
    st.integers(0, 300_000),
    st.sampled_from(["ok", "fail", "info"]),
)


def build(operations):
    """A valid history from the operations: sends carry ids and may overlap; an op
    without id waits for its process's previous op of the same f to complete."""
    busy_until: dict[tuple[str, str], int] = {}
    events, expected = [], []
    for seq, (process, f, start_us, latency_us, kind) in enumerate(operations):
        value = {"id": f"{process}-{seq}"} if f == "send" else {}
        if f != "send":
            start_us = max(start_us, busy_until.get((process, f), 0) + 1)
            busy_until[(process, f)] = start_us + latency_us
        end_us = start_us + latency_us
        events.append((start_us, 0, seq, {"process": process, "type": "invoke", "f": f,
                                          "value": value}))
        events.append((end_us, 1, seq, {"process": process, "type": kind, "f": f,
                                        "value": dict(value)}))
        expected.append((process, f, value.get("id"), kind, start_us, end_us))
    # completions before invokes at one instant would be fine too; invokes first is simplest
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    history = [{"index": n, "time_us": t, **op} for n, (t, _, _, op) in enumerate(events)]
    return history, sorted(expected)


@given(st.lists(OPERATION, max_size=60))
def test_a_valid_history_pairs_back_to_its_operations(operations):
    history, expected = build(operations)
    paired = sorted((o.process, o.f, o.get("id"), o.type, o.invoke_time_us, o.complete_time_us)
                    for o in pair_operations(history))
    assert paired == expected


@given(st.lists(OPERATION, min_size=1, max_size=40), st.data())
def test_a_lost_or_repeated_completion_is_rejected(operations, data):
    history, _ = build(operations)
    completions = [n for n, op in enumerate(history) if op["type"] != "invoke"]
    victim = data.draw(st.sampled_from(completions))
    if data.draw(st.booleans()):
        broken = history[:victim] + history[victim + 1:]
    else:
        broken = [*history[:victim + 1], dict(history[victim]), *history[victim + 1:]]
    broken = [{**op, "index": n} for n, op in enumerate(broken)]
    with pytest.raises(HistoryError):
        pair_operations(broken)
