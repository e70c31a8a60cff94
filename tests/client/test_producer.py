"""The producer against fake brokers: batching, retries, ordering, idempotence,
delivery timeouts and how each send is reported (ok / fail / info)."""

from __future__ import annotations

from typing import Any

from simlog.client.config import ProducerConfig
from simlog.client.producer import Producer
from simlog.client.results import SendResult
from simlog.protocol.errors import Errors
from simlog.protocol.init_producer_id import InitProducerIdRequest
from simlog.protocol.produce import ProduceRequest
from simlog.records import parse_batches
from tests.client.harness import World

MS = 1000
S = 1_000_000


def make(world: World, **kafka: Any) -> tuple[Producer, dict[str, SendResult]]:
    settings = {"bootstrap.servers": "b1,b2,b3", **kafka}
    producer = world.add_client("p1", lambda rt: Producer(rt, ProducerConfig.from_kafka(settings)))
    producer.partitions_for("orders")  # warm up metadata, as a real workload's first send
    return producer, {}


def send(p: Producer, results: dict[str, SendResult], n: int, topic: str = "orders",
         partition: int | None = 0, start: int = 0, key: bytes | None = None) -> None:
    for i in range(start, start + n):
        rid = f"p1-{i}"

        def done(r: SendResult, rid: str = rid) -> None:
            assert rid not in results, f"{rid} completed twice"
            results[rid] = r

        p.send(topic, value=b"v%d" % i, key=key, headers=(("id", rid.encode()),),
               partition=partition, on_complete=done)


def produce_requests(world: World) -> list[ProduceRequest]:
    return world.net.sent(ProduceRequest, "p1")  # type: ignore[return-value]


def log_ids(world: World, tp: tuple[str, int]) -> list[str]:
    return [h["id"].decode() for _, _, h in world.cluster.parts[tp].records()]  # type: ignore[union-attr]


def test_records_within_linger_go_out_as_one_batch_with_consecutive_offsets() -> None:
    w = World()
    w.cluster.create_topic("orders", 3)
    p, res = make(w, **{"linger.ms": 20})
    w.run_for(10 * MS)  # metadata + producer id
    send(p, res, 10)
    w.run_for(10 * MS)
    assert produce_requests(w) == []  # still lingering
    w.run_for(20 * MS)
    reqs = produce_requests(w)
    assert len(reqs) == 1
    batches, err = parse_batches(reqs[0].topic_data[0].partition_data[0].records)
    assert err is None and len(batches) == 1 and batches[0].records_count == 10
    assert [res[f"p1-{i}"].status for i in range(10)] == ["ok"] * 10
    assert [res[f"p1-{i}"].offset for i in range(10)] == list(range(10))
    assert log_ids(w, ("orders", 0)) == [f"p1-{i}" for i in range(10)]


def test_batch_size_closes_batches_before_linger() -> None:
    w = World()
    w.cluster.create_topic("orders", 1)
    p, res = make(w, **{"linger.ms": 1000, "batch.size": 400})
    w.run_for(10 * MS)
    send(p, res, 30)  # ~30 bytes each: two full batches of <= 400 bytes and a third
    w.run_for(5 * MS)
    reqs = produce_requests(w)
    assert len(reqs) == 2  # the full batches did not wait for linger.ms; the last does
    for r in reqs:
        for pd in r.topic_data[0].partition_data:
            assert len(pd.records) <= 400
    w.run_for(2 * S)
    assert len(produce_requests(w)) == 3
    assert all(r.status == "ok" for r in res.values()) and len(res) == 30
    assert log_ids(w, ("orders", 0)) == [f"p1-{i}" for i in range(30)]


def test_default_linger_is_kafka_4_five_ms_and_defaults_are_kafkas() -> None:
    cfg = ProducerConfig.from_kafka({})
    assert cfg.linger_us == 5 * MS and cfg.batch_size == 16384 and cfg.acks == -1
    assert cfg.enable_idempotence and cfg.max_in_flight == 5
    assert cfg.delivery_timeout_us == 120 * S and cfg.request_timeout_us == 30 * S
    assert cfg.retry_backoff_us == 100 * MS


def test_idempotence_silently_off_with_conflicting_acks_unless_asked_for() -> None:
    import pytest

    from simlog.client.config import ConfigError
    assert not ProducerConfig.from_kafka({"acks": 1}).enable_idempotence
    with pytest.raises(ConfigError):
        ProducerConfig.from_kafka({"acks": 1, "enable.idempotence": True})


def test_keyed_records_go_to_the_murmur2_partition() -> None:
    w = World()
    w.cluster.create_topic("orders", 3)
    p, _res = make(w)
    w.run_for(10 * MS)
    for key, expected in ((b"k0", 2), (b"k1", 2), (b"k2", 0), (b"hello", 0)):
        done: list[SendResult] = []
        p.send("orders", b"x", key=key, on_complete=done.append)
        w.run_for(50 * MS)
        assert done and done[0].status == "ok" and done[0].partition == expected


def test_not_leader_retries_with_backoff_after_a_metadata_refresh() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    w.cluster.leader_hints = False  # the producer must learn the leader from Metadata
    p, res = make(w)
    w.run_for(10 * MS)
    w.cluster.move_leader(("orders", 0), 2)  # the producer still thinks b1 leads
    send(p, res, 3)
    w.run_for(2 * S)
    assert [res[f"p1-{i}"].status for i in range(3)] == ["ok"] * 3
    sent_to = [dst for _, src, dst, m in w.net.log if src == "p1" and isinstance(m, ProduceRequest)]
    assert sent_to[0] == "b1" and sent_to[-1] == "b2"
    times = [t for t, src, _, m in w.net.log if src == "p1" and isinstance(m, ProduceRequest)]
    assert times[1] - times[0] >= 80 * MS  # retry.backoff.ms=100 with 20% jitter
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1", "p1-2"]


def test_in_flight_requests_per_connection_are_capped() -> None:
    w = World()
    w.cluster.create_topic("orders", 8, leader=1)
    p, res = make(w, **{"max.in.flight.requests.per.connection": 2, "linger.ms": 0})
    w.run_for(10 * MS)
    w.cluster.brokers[1].silent = True  # answers nothing: requests stay in flight
    for part in range(8):
        send(p, res, 1, partition=part, start=part)
        w.run_for(1 * MS)
    assert p.in_flight_requests() == 2
    assert len(produce_requests(w)) == 2


def test_idempotent_batches_carry_producer_id_and_consecutive_sequences() -> None:
    w = World()
    w.cluster.create_topic("orders", 1)
    p, res = make(w, **{"linger.ms": 1})
    w.run_for(10 * MS)
    assert len(w.net.sent(InitProducerIdRequest, "p1")) == 1
    for i in range(4):
        send(p, res, 3, start=3 * i)
        w.run_for(5 * MS)
    seqs = []
    for r in produce_requests(w):
        (b,), _ = parse_batches(r.topic_data[0].partition_data[0].records)
        assert b.producer_id == 1001 and b.producer_epoch == 0
        seqs.append((b.base_sequence, b.records_count))
    assert seqs == [(0, 3), (3, 3), (6, 3), (9, 3)]


def test_idempotent_retry_after_timeout_leaves_no_duplicate_and_keeps_order() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "request.timeout.ms": 1000,
                        "delivery.timeout.ms": 60000})
    w.run_for(10 * MS)
    b1 = w.cluster.brokers[1]
    b1.silent = True  # appends, but every answer is lost
    for i in range(5):
        send(p, res, 2, start=2 * i)
        w.run_for(1 * MS)
    w.run_for(500 * MS)
    b1.silent = False
    w.run_for(5 * S)
    assert all(res[f"p1-{i}"].status == "ok" for i in range(10))
    ids = log_ids(w, ("orders", 0))
    assert ids == [f"p1-{i}" for i in range(10)]  # each once, in order
    assert sorted(res[f"p1-{i}"].offset for i in range(10)) == list(range(10))  # type: ignore[type-var]


def test_without_idempotence_a_retry_can_duplicate() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "request.timeout.ms": 1000,
                        "enable.idempotence": False})
    w.run_for(10 * MS)
    w.cluster.brokers[1].silent = True
    send(p, res, 1)
    w.run_for(1050 * MS)  # the request timed out at 1.01 s; the retry goes at ~1.1 s
    w.cluster.brokers[1].silent = False
    w.run_for(2 * S)
    assert res["p1-0"].status == "ok"
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-0"]


def test_without_idempotence_five_in_flight_retry_reorders() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "enable.idempotence": False})
    w.run_for(10 * MS)
    w.cluster.produce_errors[("orders", 0)] = [Errors.NOT_ENOUGH_REPLICAS]
    for i in range(3):
        send(p, res, 1, start=i)
        w.run_for(100)
    w.run_for(2 * S)
    assert all(r.status == "ok" for r in res.values())
    assert log_ids(w, ("orders", 0)) == ["p1-1", "p1-2", "p1-0"]


def test_idempotent_five_in_flight_retry_keeps_order() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0})
    w.run_for(10 * MS)
    w.cluster.produce_errors[("orders", 0)] = [Errors.NOT_ENOUGH_REPLICAS]
    for i in range(3):
        send(p, res, 1, start=i)
        w.run_for(100)
    w.run_for(2 * S)
    assert all(r.status == "ok" for r in res.values())
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1", "p1-2"]


def test_delivery_timeout_after_send_is_info_and_before_send_is_fail() -> None:
    w = World()
    w.cluster.create_topic("orders", 2, leader=1)
    p, res = make(w, **{"linger.ms": 0, "request.timeout.ms": 1000,
                        "delivery.timeout.ms": 3000, "enable.idempotence": False})
    w.run_for(10 * MS)
    w.net.cut("p1", "b1")  # every request to b1 is lost
    send(p, res, 1, partition=0)
    w.run_for(5 * S)
    assert res["p1-0"].status == "info"
    # A partition without a leader: its batch is never sent, so it certainly failed.
    w.cluster.parts[("orders", 1)].leader = -1
    p.metadata.request_update()
    w.net.heal()
    for _ in range(100):
        w.run_for(100 * MS)
        if p.metadata.leader(("orders", 1)) is None:
            break
    assert p.metadata.leader(("orders", 1)) is None
    send(p, res, 1, partition=1, start=1)
    w.run_for(5 * S)
    assert res["p1-1"].status == "fail"


def test_definite_rejection_fails_and_after_append_error_is_info() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "enable.idempotence": False, "acks": "all",
                        "retries": 0})
    w.run_for(10 * MS)
    w.cluster.produce_errors[("orders", 0)] = [Errors.NOT_ENOUGH_REPLICAS,
                                               Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND]
    send(p, res, 1)
    w.run_for(100 * MS)
    send(p, res, 1, start=1)
    w.run_for(100 * MS)
    assert (res["p1-0"].status, res["p1-0"].error) == ("fail", Errors.NOT_ENOUGH_REPLICAS)
    assert (res["p1-1"].status, res["p1-1"].error) == (
        "info", Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    assert log_ids(w, ("orders", 0)) == ["p1-1"]


def test_acks_zero_gets_no_response_and_reports_info() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "acks": 0})
    w.run_for(10 * MS)
    send(p, res, 2)
    w.run_for(100 * MS)
    assert [res[f"p1-{i}"].status for i in range(2)] == ["info", "info"]
    assert w.net.sent(InitProducerIdRequest, "p1") == []  # acks=0: no idempotence
    from simlog.protocol.produce import ProduceResponse
    assert [m for _, _, dst, m in w.net.log if dst == "p1" and isinstance(m, ProduceResponse)] == []
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1"]


def test_unknown_topic_fails_after_max_block() -> None:
    w = World()
    p, res = make(w, **{"max.block.ms": 2000})
    w.run_for(10 * MS)
    send(p, res, 1, topic="nope")
    w.run_for(3 * S)
    assert res["p1-0"].status == "fail"


def test_keyless_records_stick_to_one_partition_per_batch() -> None:
    w = World()
    w.cluster.create_topic("orders", 6)
    p, res = make(w, **{"linger.ms": 50})
    w.run_for(10 * MS)
    send(p, res, 20, partition=None)
    w.run_for(1 * S)
    assert len({r.partition for r in res.values()}) == 1


def test_producer_charges_cpu_for_compression() -> None:
    w = World()
    w.cluster.create_topic("orders", 1)
    p, res = make(w, **{"compression.type": "gzip", "linger.ms": 0})
    w.run_for(10 * MS)
    for i in range(50):
        p.send("orders", value=bytes(2000), partition=0,
               on_complete=lambda r, i=i: res.__setitem__(str(i), r))
    w.run_for(1 * S)
    assert all(r.status == "ok" for r in res.values()) and len(res) == 50
    assert p.rt.cpu_us >= 50 * 2000 * 20 // 1000  # >= 20 ns per byte for gzip


def batches_sent(world: World) -> list[tuple[int, int, int, int]]:
    """(producer_id, epoch, base_sequence, count) of every batch p1 sent, in order."""
    out = []
    for r in produce_requests(world):
        for t in r.topic_data:
            for pd in t.partition_data:
                for b in parse_batches(pd.records)[0]:
                    out.append((b.producer_id, b.producer_epoch, b.base_sequence,
                                b.records_count))
    return out


def test_out_of_order_on_the_next_sequence_bumps_the_epoch_and_retries() -> None:
    """OOO on the batch the broker should expect next proves a gap: Kafka bumps the
    epoch and resends the batch at sequence 0 of the new epoch."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0})
    w.run_for(10 * MS)
    w.cluster.produce_errors[("orders", 0)] = [Errors.OUT_OF_ORDER_SEQUENCE_NUMBER]
    send(p, res, 1)
    w.run_for(500 * MS)
    send(p, res, 1, start=1)
    w.run_for(500 * MS)
    assert res["p1-0"].status == "ok" and res["p1-1"].status == "ok"
    bumps = [m for m in w.net.sent(InitProducerIdRequest, "p1")
             if m.producer_id >= 0]  # type: ignore[attr-defined]
    assert len(bumps) == 1 and p.idempotence is not None and p.idempotence.producer_epoch == 1
    assert batches_sent(w) == [(1001, 0, 0, 1), (1001, 1, 0, 1), (1001, 1, 1, 1)]
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1"]


def test_out_of_order_behind_an_unacknowledged_batch_is_retried_without_bump() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0})
    w.run_for(10 * MS)
    # The first batch is rejected (not appended); the two behind it get OOO.
    w.cluster.produce_errors[("orders", 0)] = [Errors.NOT_ENOUGH_REPLICAS]
    for i in range(3):
        send(p, res, 1, start=i)
        w.run_for(100)
    w.run_for(2 * S)
    assert all(res[f"p1-{i}"].status == "ok" for i in range(3))
    assert p.idempotence is not None and p.idempotence.producer_epoch == 0
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1", "p1-2"]


def test_unknown_producer_id_bumps_the_epoch_and_retries_the_batch() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0})
    w.run_for(10 * MS)
    w.cluster.produce_errors[("orders", 0)] = [Errors.UNKNOWN_PRODUCER_ID]
    send(p, res, 2)
    w.run_for(1 * S)
    assert all(r.status == "ok" for r in res.values()) and len(res) == 2
    sent = batches_sent(w)
    assert sent[0][:3] == (1001, 0, 0) and sent[-1][1] == 1
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1"]


def test_expired_sequenced_batch_forces_an_epoch_bump_so_later_sends_succeed() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "request.timeout.ms": 1000,
                        "delivery.timeout.ms": 2500})
    w.run_for(10 * MS)
    w.net.cut("p1", "b1")
    send(p, res, 1)
    w.run_for(4 * S)
    assert res["p1-0"].status == "info"  # it was sent: may or may not be written
    w.net.heal()
    send(p, res, 1, start=1)
    w.run_for(2 * S)
    assert res["p1-1"].status == "ok"
    assert p.idempotence is not None and p.idempotence.producer_epoch == 1
    assert log_ids(w, ("orders", 0)) == ["p1-1"]
    # the attempts of p1-0 that the cut held are resent late (TCP); the bumped epoch
    # fences them, so the timed-out record never lands behind p1-1
    w.run_for(10 * S)
    assert log_ids(w, ("orders", 0)) == ["p1-1"]
    if w.sim is not None:
        assert w.sim.stats()["retransmitted"] >= 1  # they did arrive, late


def test_retriable_rejections_until_delivery_timeout_are_fail_not_info() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "request.timeout.ms": 1000,
                        "delivery.timeout.ms": 2000})
    w.run_for(10 * MS)
    w.cluster.produce_errors[("orders", 0)] = [Errors.NOT_ENOUGH_REPLICAS] * 100
    send(p, res, 1)
    w.run_for(3 * S)
    assert (res["p1-0"].status, res["p1-0"].error) == ("fail", Errors.NOT_ENOUGH_REPLICAS)
    assert len(produce_requests(w)) >= 3  # it did retry, with backoff


def test_same_seed_same_run() -> None:
    def run() -> list[tuple[int, str, str, str]]:
        w = World(seed=7)
        w.cluster.create_topic("orders", 3)
        p, res = make(w, **{"linger.ms": 2})
        w.run_for(10 * MS)
        for i in range(30):
            send(p, res, 1, partition=None, start=i, key=None if i % 2 else b"k%d" % i)
            w.run_for(300)
        w.cluster.move_leader(("orders", 1), 3)
        w.run_for(2 * S)
        assert len(res) == 30
        return [(t, s, d, type(m).__name__) for t, s, d, m in w.net.log]

    assert run() == run()


def test_buffer_memory_bounds_queued_bytes_and_waiting_sends_fail_after_max_block() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"buffer.memory": 2000, "max.block.ms": 1000, "linger.ms": 0})
    w.run_for(10 * MS)
    w.cluster.brokers[1].silent = True  # nothing completes: the buffer stays full
    for i in range(40):
        p.send("orders", value=bytes(100), partition=0,
               on_complete=lambda r, i=i: res.__setitem__(str(i), r))
    w.run_for(10 * MS)
    assert p.sender.buffered_bytes <= 2000
    assert res == {}  # the overflow waits, as a blocked send() would
    w.run_for(1 * S)
    failed = [k for k, r in res.items() if r.status == "fail"]
    assert len(failed) >= 20 and all("buffer.memory" in res[k].reason for k in failed)


def test_expired_batch_of_unknown_fate_resolves_without_duplicating_later_batches() -> None:
    """Batch 0 expires while its fate is unknown (it was appended; every answer was
    lost). Batch 1, also appended, is being retried. A Kafka client must not bump the
    epoch and resend batch 1 under new sequences (the broker could not recognise it as
    a duplicate): the retry under the old epoch succeeds and resolves batch 0."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0, "request.timeout.ms": 1000,
                        "delivery.timeout.ms": 2500})
    w.run_for(10 * MS)
    w.cluster.brokers[1].silent = True
    send(p, res, 1)
    w.run_for(1500 * MS)
    send(p, res, 1, start=1)
    w.run_for(1500 * MS)
    w.cluster.brokers[1].silent = False
    w.run_for(5 * S)
    assert res["p1-0"].status == "info" and res["p1-1"].status == "ok"
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1"]
    assert p.idempotence is not None and p.idempotence.producer_epoch == 0


def test_partitioner_ignore_keys_makes_keyed_records_sticky() -> None:
    w = World()
    w.cluster.create_topic("orders", 6)
    p, res = make(w, **{"linger.ms": 50, "partitioner.ignore.keys": True})
    w.run_for(10 * MS)
    for i in range(12):
        p.send("orders", b"v", key=b"k%d" % i,
               on_complete=lambda r, i=i: res.__setitem__(str(i), r))
    w.run_for(1 * S)
    assert len(res) == 12 and len({r.partition for r in res.values()}) == 1


def test_send_results_render_as_history_values() -> None:
    ok = SendResult("ok", "orders", 3, 811)
    assert ok.history_value("p1-42") == {"id": "p1-42", "topic": "orders", "partition": 3,
                                         "offset": 811}
    info = SendResult("info", "orders", 3, None, Errors.REQUEST_TIMED_OUT, "expired")
    assert info.history_value("p1-43") == {"id": "p1-43", "topic": "orders", "partition": 3,
                                           "error": "REQUEST_TIMED_OUT"}


def test_a_refused_epoch_bump_falls_back_to_a_new_producer_id() -> None:
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    w.cluster.refuse_bumps = True
    p, res = make(w, **{"linger.ms": 0})
    w.run_for(10 * MS)
    w.cluster.produce_errors[("orders", 0)] = [Errors.OUT_OF_ORDER_SEQUENCE_NUMBER]
    send(p, res, 1)
    w.run_for(1 * S)
    assert res["p1-0"].status == "ok"
    assert p.idempotence is not None and p.idempotence.producer_id == 1002
    assert batches_sent(w)[-1] == (1002, 0, 0, 1)
    assert log_ids(w, ("orders", 0)) == ["p1-0"]


def test_an_in_flight_batch_expires_at_its_delivery_deadline() -> None:
    """As Kafka: delivery.timeout.ms also bounds a batch whose request is still in
    flight; it is reported info then, not when the request finally times out."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, _ = make(w, **{"linger.ms": 0, "request.timeout.ms": 10000,
                      "delivery.timeout.ms": 10000, "max.in.flight.requests.per.connection": 1,
                      "enable.idempotence": False})
    w.run_for(10 * MS)
    w.cluster.brokers[1].silent = True
    done: dict[str, tuple[int, SendResult]] = {}
    start = w.now
    for rid, delay in (("a", 0), ("b", 5 * S)):
        w.run_for(delay)
        p.send("orders", b"v", partition=0,
               on_complete=lambda r, rid=rid: done.__setitem__(rid, (w.now, r)))
    w.run_for(30 * S)
    t_b, r_b = done["b"]
    assert r_b.status == "info"
    # b was sent at ~10 s (after a's request timed out) and expired in flight at ~15 s,
    # well before its own request would have timed out (~20 s).
    assert 14 * S < t_b - start < 16 * S
    assert done["a"][1].status == "info"


def test_current_leader_hint_in_a_produce_error_redirects_the_producer() -> None:
    """Metadata stays stale (it still names b1); only the CurrentLeader hint of b1's
    NOT_LEADER_OR_FOLLOWER answer can lead the producer to b2 (KIP-951)."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 0})
    w.run_for(10 * MS)
    w.cluster.frozen_leaders = {("orders", 0): 1}
    w.cluster.move_leader(("orders", 0), 2)
    send(p, res, 2)
    w.run_for(2 * S)
    assert [res[f"p1-{i}"].status for i in range(2)] == ["ok", "ok"]
    assert log_ids(w, ("orders", 0)) == ["p1-0", "p1-1"]
    times = [t for t, src, _, m in w.net.log if src == "p1" and isinstance(m, ProduceRequest)]
    assert times[1] - times[0] < 20 * MS  # a known new leader: no retry backoff


def _count_calls(obj: Any, name: str) -> list[int]:
    calls = [0]
    inner = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return inner(*args, **kwargs)

    setattr(obj, name, wrapper)
    return calls


def test_a_send_costs_no_sender_pass_and_records_are_encoded_once_per_batch(
        monkeypatch: Any) -> None:
    """Per-record cost is O(1): appending never runs the sender (only a batch that
    became sendable or a linger deadline does), even while the partition is backed
    up behind a silent leader; batch bytes are built once per batch, at drain."""
    import simlog.client.accumulator as acc_mod

    builds = [0]
    real_build = acc_mod.build_batch

    def counting_build(*args: Any, **kwargs: Any) -> bytes:
        builds[0] += 1
        return real_build(*args, **kwargs)

    monkeypatch.setattr(acc_mod, "build_batch", counting_build)
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, res = make(w, **{"linger.ms": 50, "batch.size": 1000})
    w.run_for(10 * MS)
    runs = _count_calls(p.sender, "run")
    send(p, res, 20)  # ~40 bytes each: one lingering batch
    assert runs[0] == 0 and produce_requests(w) == []
    w.run_for(60 * MS)
    assert runs[0] <= 3 and len(produce_requests(w)) == 1 and builds[0] == 1
    # Backed up: the leader answers nothing, so batches pile up in the queue.
    w.cluster.brokers[1].silent = True
    runs[0] = 0
    for i in range(40):
        send(p, res, 25, start=100 + 25 * i)  # 1000 records, ~40 batches
        w.run_for(MS)
    batches = sum(len(q) for q in p.accumulator.queues.values()) + p.in_flight_requests()
    assert batches >= 30
    assert runs[0] <= 2 * batches + 5 < 1000  # per batch, not per record
    w.cluster.brokers[1].silent = False
    w.run_for(60 * S)
    assert all(r.ok for r in res.values()) and len(res) == 1020
    sent_batches = sum(len(pd.records) > 0 for r in produce_requests(w)
                       for t in r.topic_data for pd in t.partition_data)
    assert builds[0] <= sent_batches  # a resend under the same sequence reuses bytes


def test_a_queued_batch_expires_on_its_own_deadline_with_no_other_event() -> None:
    """Expiry runs on a timer at the earliest delivery deadline, not on sends."""
    w = World()
    w.cluster.create_topic("orders", 1, leader=1)
    p, _ = make(w, **{"linger.ms": 0, "request.timeout.ms": 2000,
                      "delivery.timeout.ms": 4000, "retry.backoff.ms": 100000,
                      "retry.backoff.max.ms": 100000, "enable.idempotence": False})
    w.run_for(10 * MS)
    w.cluster.brokers[1].silent = True
    done: list[tuple[int, SendResult]] = []
    start = w.now
    p.send("orders", b"v", partition=0, on_complete=lambda r: done.append((w.now, r)))
    w.run_for(30 * S)
    # Timed out at 2 s and requeued behind a 100 s backoff: only the delivery deadline
    # (4 s after the send) can end it, and it does so on time.
    assert len(done) == 1 and done[0][1].status == "info"
    assert 4 * S <= done[0][0] - start < 4 * S + 10 * MS
