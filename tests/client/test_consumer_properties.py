"""Consumer invariants under random appends, leader changes and unclean truncations
(hypothesis, fake brokers): offsets only go back when a truncation was detected, and
once things settle the consumer has read exactly the final log."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.client.config import ConsumerConfig
from simlog.client.consumer import Consumer, PollResult
from simlog.records import Record, build_batch
from tests.client.harness import World

MS = 1000
S = 1_000_000
TP = ("orders", 0)

step = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 5)),
    st.tuples(st.just("move"), st.integers(1, 3)),
    st.tuples(st.just("truncate"), st.integers(0, 20)),
    st.tuples(st.just("wait"), st.integers(1, 300)),
)


def run(steps: list[tuple[str, int]]) -> None:
    w = World(seed=5)
    w.cluster.create_topic("orders", 1, leader=1)
    part = w.cluster.parts[TP]
    c: Any = w.add_client("c1", lambda rt: Consumer(rt, ConsumerConfig.from_kafka({
        "bootstrap.servers": "b1,b2,b3", "auto.offset.reset": "earliest"})))
    c.assign([TP])
    seen: list[tuple[int, str, int]] = []  # (offset, id, truncations detected so far)

    def loop(res: PollResult | None = None) -> None:
        if res is not None:
            seen.extend((r.offset, r.header("id").decode(), len(c.truncations))  # type: ignore[union-attr]
                        for r in res.records)
        c.poll(loop, timeout_us=50 * MS)

    loop()
    n = 0
    for kind, a in steps:
        if kind == "append":
            recs = [Record(None, b"v", (("id", f"r{n + i}".encode()),), 1) for i in range(a)]
            n += a
            part.append(build_batch(recs))
        elif kind == "move":
            w.cluster.move_leader(TP, a)
        elif kind == "truncate":
            # An unclean election: the new leader lacks the tail; a new epoch begins.
            part.truncate_to(min(a, part.end_offset))
            w.cluster.move_leader(TP, 1 + (part.leader % 3))
        else:
            w.run_for(a * MS)
    w.run_for(3 * S)
    final = {off: h["id"].decode() for off, _, h in part.records()}  # type: ignore[union-attr]
    assert c.position(TP) == part.end_offset
    for (o1, _, t1), (o2, _, t2) in pairwise(seen):
        # Contiguous, unless a truncation was detected in between (then it went back).
        assert o2 == o1 + 1 or (o2 <= o1 and t2 > t1), (o1, o2, t1, t2)
    last: dict[int, str] = {}
    for off, rid, _ in seen:
        last[off] = rid
    assert {o: r for o, r in last.items() if o < part.end_offset} == final


@settings(max_examples=12)
@given(steps=st.lists(step, min_size=1, max_size=20))
def test_consumer_reads_the_final_log_and_goes_back_only_on_detected_truncation(
        steps: list[tuple[str, int]]) -> None:
    run(steps)
