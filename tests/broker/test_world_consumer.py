"""A consumer reads what the producer wrote through the brokers: only committed data,
each record once and in offset order, across a leader change (KIP-320 epochs)."""

from __future__ import annotations

from simlog.client.consumer import Consumer, PollResult

from .simcluster import MS, S, SimCluster


def test_consumer_reads_every_acknowledged_write_in_order_across_a_leader_crash() -> None:
    c = SimCluster(settings={"min.insync.replicas": 2},
                   producer_config={"request.timeout.ms": 5_000})
    c.w.add_node("c-1", lambda rt: Consumer(rt, {"bootstrap.servers": "b1,b2,b3",
                                                 "auto.offset.reset": "earliest",
                                                 "request.timeout.ms": 5_000}))
    seen: list[tuple[int, str]] = []

    def poll_loop(node: Consumer) -> None:
        def got(r: PollResult) -> None:
            seen.extend((rec.offset, rec.value.decode()) for rec in r.records)
            c.w.call_in("c-1", poll_loop)
        node.poll(got, timeout_us=100 * MS)

    c.w.call_in("c-1", lambda node: node.assign([("t", 0)]))
    c.w.call_in("c-1", poll_loop)
    c.send_every(20 * MS, c.w.now_us + 8 * S)
    c.run_for(3 * S)
    c.w.crash(f"b{c.leader()}")
    c.run_for(30 * S)
    offsets = [o for o, _ in seen]
    assert offsets == list(range(len(seen))), "gaps, repeats or reordering"
    acked = {wr.value: wr.result.offset for wr in c.acked()}
    assert len(acked) == len(c.writes)
    assert dict((v, o) for o, v in seen) == acked
