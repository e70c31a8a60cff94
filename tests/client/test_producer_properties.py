"""Producer invariants under random broker misbehaviour (hypothesis, fake brokers):

- every send completes exactly once;
- `ok` means the record is in the log at the reported offset;
- `fail` means it is not in the log;
- with idempotence: no record twice in the log, and each partition's records in the
  order they were sent.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simlog.client.producer import Producer
from simlog.client.results import SendResult
from simlog.protocol.errors import Errors
from tests.client.harness import World

MS = 1000
S = 1_000_000

# Injected answers. OUT_OF_ORDER_SEQUENCE_NUMBER is not injected: a broker sends it only
# for a real gap (the fake broker does so by itself), and the client relies on that.
ERRORS = [Errors.NOT_LEADER_OR_FOLLOWER, Errors.NOT_ENOUGH_REPLICAS,
          Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, Errors.REQUEST_TIMED_OUT,
          Errors.UNKNOWN_PRODUCER_ID]

step = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 8), st.integers(0, 1)),
    st.tuples(st.just("error"), st.sampled_from(ERRORS), st.integers(0, 1)),
    st.tuples(st.just("silent"), st.integers(1, 3), st.integers(200, 3000)),
    st.tuples(st.just("move"), st.integers(1, 3), st.integers(0, 1)),
    st.tuples(st.just("wait"), st.integers(1, 500), st.just(0)),
)


def run(steps: list[tuple[object, int, int]], idempotent: bool) -> None:
    w = World(seed=11)
    w.cluster.create_topic("orders", 2, leader=1)
    p = w.add_client("p1", lambda rt: Producer(rt, {
        "bootstrap.servers": "b1,b2,b3", "linger.ms": 2, "request.timeout.ms": 1000,
        "delivery.timeout.ms": 4000, "enable.idempotence": idempotent,
        "acks": "all"}))
    p.partitions_for("orders")
    w.run_for(10 * MS)
    results: dict[str, list[SendResult]] = {}
    order: dict[int, list[str]] = {0: [], 1: []}
    n = 0
    for kind, a, b in steps:
        if kind == "send":
            for _ in range(a):
                rid = f"p1-{n}"
                n += 1
                order[b].append(rid)
                p.send("orders", b"v", partition=b, headers=(("id", rid.encode()),),
                       on_complete=lambda r, rid=rid: results.setdefault(rid, []).append(r))
        elif kind == "error":
            w.cluster.produce_errors.setdefault(("orders", b), []).append(a)  # type: ignore[arg-type]
        elif kind == "silent":
            broker = w.cluster.brokers[a]
            broker.silent = True
            w.run_for(b * MS)
            broker.silent = False
        elif kind == "move":
            w.cluster.move_leader(("orders", b), a)
        else:
            w.run_for(a * MS)
    w.run_for(20 * S)
    assert sorted(results) == sorted(f"p1-{i}" for i in range(n))
    assert all(len(v) == 1 for v in results.values()), "a send completed twice"
    for part in (0, 1):
        log = [(off, h["id"].decode()) for off, _, h in
               w.cluster.parts[("orders", part)].records()]  # type: ignore[union-attr]
        in_log = [rid for _, rid in log]
        where = dict((rid, off) for off, rid in log)
        for rid in order[part]:
            r = results[rid][0]
            if r.status == "ok" and r.offset is not None:
                assert where.get(rid) == r.offset or rid in in_log, rid
                assert rid in in_log, f"{rid} acknowledged but not in the log"
            if r.status == "fail":
                assert rid not in in_log, f"{rid} reported fail but is in the log"
        if idempotent:
            assert len(in_log) == len(set(in_log)), "duplicate in the log"
            sent_pos = {rid: i for i, rid in enumerate(order[part])}
            positions = [sent_pos[rid] for rid in in_log]
            assert positions == sorted(positions), "log order differs from send order"


@settings(max_examples=25)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_idempotent_producer_invariants(steps: list[tuple[object, int, int]]) -> None:
    run(steps, idempotent=True)


@settings(max_examples=15)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_non_idempotent_producer_reports_honestly(steps: list[tuple[object, int, int]]) -> None:
    run(steps, idempotent=False)


def test_regression_unknown_producer_id_after_an_unanswered_append() -> None:
    """Found by fuzzing: a batch appended without an answer, then UNKNOWN_PRODUCER_ID on
    the partition. Resending the appended batch under the new epoch duplicated it."""
    run([("wait", 323, 0), ("send", 7, 1), ("send", 2, 0),
         ("error", Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, 1), ("wait", 279, 0),
         ("error", Errors.NOT_ENOUGH_REPLICAS, 1), ("error", Errors.REQUEST_TIMED_OUT, 0),
         ("silent", 3, 385), ("error", Errors.UNKNOWN_PRODUCER_ID, 0), ("wait", 303, 0),
         ("silent", 1, 1654), ("send", 8, 0), ("send", 3, 0), ("silent", 3, 1329)],
        idempotent=True)
