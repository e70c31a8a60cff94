"""Network model: each fault drops exactly what it should, FIFO per link, bandwidth,
latency distribution, and the rough rates of loss, duplication and reorder."""

from __future__ import annotations

import itertools
import statistics

from hypothesis import given
from hypothesis import strategies as st

from simlog.sim import LatencyDist, NetworkParams, World
from simlog.sim.example import counter_factory
from simlog.sim.testing import ProbeNode, probe_send

IDS = ["a", "b", "c", "d"]


def world(ids=IDS, **net) -> World:
    net.setdefault("latency", LatencyDist.constant(1_000))
    w = World(1, network=NetworkParams(**net))
    for n in ids:
        w.add_node(n, ProbeNode)
    w.run(0)
    return w


def all_to_all(w: World, seq: int = 0) -> None:
    for src in w.node_ids:
        for dst in w.node_ids:
            if src != dst:
                probe_send(w, src, dst, 1, seq)


def delivered_pairs(w: World) -> set[tuple[str, str]]:
    return {(src, dst) for dst in w.node_ids for src, *_ in w.node(dst).arrivals}


ALL_PAIRS = {(s, d) for s in IDS for d in IDS if s != d}


def test_partition_drops_exactly_the_cut_links() -> None:
    w = world(transport="datagram")
    w.partition([["a"], ["b", "c"]])  # d is not named: keeps every link
    all_to_all(w)
    w.run_for(100_000)
    cut = {("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")}
    assert delivered_pairs(w) == ALL_PAIRS - cut
    assert w.network.dropped == {"cut": 4}
    assert not w.reachable("a", "b") and w.reachable("a", "d") and w.reachable("b", "c")


def test_one_way_cut_drops_one_direction_only() -> None:
    w = world()
    w.cut(["a"], ["b"])
    all_to_all(w)
    w.run_for(100_000)
    assert delivered_pairs(w) == ALL_PAIRS - {("a", "b")}
    g = w.connectivity
    assert not g.has_edge("a", "b") and g.has_edge("b", "a")


def test_heal_restores_and_later_messages_flow() -> None:
    w = world(transport="datagram")
    w.isolate(["c"])
    all_to_all(w)
    w.run_for(10_000)
    assert not any("c" in p for p in delivered_pairs(w))
    w.heal()
    all_to_all(w, seq=1)
    w.run_for(10_000)
    assert {(s, d) for d in IDS for s, seq, *_ in w.node(d).arrivals if seq == 1} == ALL_PAIRS


def test_message_in_flight_is_dropped_when_its_link_is_cut() -> None:
    w = world(latency=LatencyDist.constant(10_000), transport="datagram")
    probe_send(w, "a", "b", 1, seq=1)
    w.call_later(5_000, lambda: w.cut(["a"], ["b"]))
    w.call_later(6_000, w.heal)  # healed before the arrival: still lost
    w.call_later(7_000, lambda: probe_send(w, "a", "b", 1, seq=2))
    w.run_for(100_000)
    assert w.node("b").seqs_from("a") == [2]
    assert w.network.dropped == {"cut_in_flight": 1}


def test_tcp_holds_what_a_cut_catches_and_resends_it_after_the_heal_in_order() -> None:
    w = world()                                   # tcp, 1 ms links
    w.partition([["a"], ["b", "c"]])
    all_to_all(w)                                 # a<->b, a<->c held at t=0
    w.call_later(50_000, w.heal)
    w.call_later(60_000, lambda: all_to_all(w, seq=1))
    w.run_for(100_000)
    assert delivered_pairs(w) == ALL_PAIRS - {("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")}
    assert w.stats()["holding"] == 4 + 4 and w.network.dropped == {}
    w.run_for(200_000)
    # the first retransmission after the heal: 200 ms after the send (RTO_MIN), then
    # the link's latency; what was sent after the heal waits behind it (one stream)
    arrivals = {s_: t for s_, seq, _, t in w.node("b").arrivals if seq == 0}
    assert 201_000 <= arrivals["a"] < 201_100  # (+ serialisation at 1 Gbps)
    assert w.node("b").seqs_from("a") == [0, 1] and w.node("a").seqs_from("c") == [0, 1]
    assert w.stats()["holding"] == 0 and w.stats()["retransmitted"] == 8


def test_tcp_resends_a_message_a_cut_caught_in_flight_even_after_a_quick_heal() -> None:
    w = world(latency=LatencyDist.constant(10_000))
    probe_send(w, "a", "b", 1, seq=1)
    w.call_later(5_000, lambda: w.cut(["a"], ["b"]))
    w.call_later(6_000, w.heal)
    w.call_later(7_000, lambda: probe_send(w, "a", "b", 1, seq=2))
    w.run_for(500_000)
    assert w.node("b").seqs_from("a") == [1, 2]    # resent, and still first
    assert w.network.dropped == {}


def test_tcp_retransmissions_back_off_and_a_long_cut_delays_more() -> None:
    w = world()
    w.cut(["a"], ["b"])
    probe_send(w, "a", "b", 1)
    w.call_later(5_000_000, w.heal)               # 5 s: timer at 0.2+0.4+...+3.2 = 6.2 s
    w.run_for(10_000_000)
    (when,) = [t for _s, _seq, _, t in w.node("b").arrivals]
    assert 6_201_000 <= when < 6_201_100


def test_tcp_drops_held_messages_of_a_dead_sender_and_resets_for_a_dead_receiver() -> None:
    w = world()
    w.isolate(["b"])
    probe_send(w, "a", "b", 1)          # a -> b held; b's process dies meanwhile
    probe_send(w, "b", "c", 1)          # b -> c held; b's process dies meanwhile
    w.call_later(10_000, lambda: w.crash("b"))
    w.call_later(20_000, lambda: w.restart("b"))
    w.call_later(30_000, w.heal)
    w.run_for(1_000_000)
    assert w.node("c").seqs_from("b") == []       # its connection went with its process
    assert w.node("b").seqs_from("a") == []       # the new process never had it...
    assert [p for p, _ in w.node("a").resets] == ["b"]  # ...and a's connection is reset
    assert w.network.dropped == {"sender_gone": 1, "dead": 1}


def test_disconnect_starts_a_new_connection_that_the_old_ones_retransmissions_do_not_block(
) -> None:
    w = world()
    w.cut(["a"], ["b"])
    w.cut(["b"], ["a"])
    probe_send(w, "a", "b", 1, seq=0)             # held on a's connection to b
    probe_send(w, "b", "a", 1, seq=0)             # held on the same connection, b's side
    w.call_later(2_000_000, lambda: w.heal())
    # a's request timed out: it closes the connection, and sends again after the heal
    w.call_later(1_500_000, lambda: w.call_in("a", lambda n: n.rt.disconnect("b")))
    w.call_later(2_000_000, lambda: probe_send(w, "a", "b", 1, seq=1))
    w.run_for(2_100_000)
    assert w.node("b").seqs_from("a") == [1]      # the new connection is not held up
    w.run_for(2_000_000)
    # the old connection's data still arrives, at its retransmission (3.0 s): late;
    # what b had sent a on it is gone with a's socket
    assert w.node("b").seqs_from("a") == [1, 0]
    assert w.node("a").seqs_from("b") == []
    assert w.network.dropped == {"connection_closed": 1}


def test_overlapping_faults_heal_independently() -> None:
    w = world()
    w.partition([["a"], ["b"]])
    w.isolate(["a"])
    assert w.heal_partition([["a"], ["b"]])
    assert not w.reachable("a", "b")  # the isolation still holds
    assert w.heal_isolate(["a"])
    assert w.reachable("a", "b")


def test_connectivity_log_says_who_reached_whom_when() -> None:
    w = world()
    w.run_for(1_000)
    w.partition([["a", "b"], ["c", "d"]])
    w.run_for(1_000)
    w.heal()
    before, during, after = (w.connectivity_at(t) for t in (500, 1_500, 2_500))
    assert before.has_edge("a", "c") and after.has_edge("a", "c")
    assert not during.has_edge("a", "c") and during.has_edge("a", "b")
    assert during.number_of_edges() == 4  # a<->b, c<->d
    assert [what for _, what, _ in w.connectivity_log] == ["start", "partition", "heal"]


def test_link_to_self_is_never_cut() -> None:
    w = world()
    w.isolate(["a"])
    probe_send(w, "a", "a", 1)
    w.run_for(1_000)
    assert w.node("a").seqs_from("a") == [0]


def test_degradation_expires_after_for_us_and_touches_one_direction() -> None:
    w = world(latency=LatencyDist.constant(1_000), bandwidth_bytes_per_s=None)
    w.degrade_link("a", "b", latency=LatencyDist.constant(50_000), for_us=100_000)
    probe_send(w, "a", "b", 1, seq=1)
    probe_send(w, "b", "a", 1, seq=1)
    w.run_for(150_000)
    probe_send(w, "a", "b", 1, seq=2)
    w.run_for(10_000)
    times = {seq: t for _, seq, _, t in w.node("b").arrivals}
    assert times[1] == 50_000
    assert times[2] == 150_000 + 1_000
    assert w.node("a").arrivals[0][3] == 1_000


def test_fifo_per_link_despite_latency_variance() -> None:
    w = world(["a", "b"], latency=LatencyDist(500, 20_000))
    for i in range(50):
        w.call_later(i * 100, lambda i=i: probe_send(w, "a", "b", 10, seq=i * 10))
    w.run_for(1_000_000)
    assert w.node("b").seqs_from("a") == list(range(500))


def test_bandwidth_serialises_messages_on_a_link() -> None:
    w = world(["a", "b"], latency=LatencyDist.constant(1_000),
              bandwidth_bytes_per_s=1_000_000)
    probe_send(w, "a", "b", 10, pad=bytes(9_980))
    w.run_for(1_000_000)
    times = [t for *_, t in w.node("b").arrivals]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 10
    assert all(9_990 <= g <= 10_100 for g in gaps)  # ~10 KB at 1 MB/s each
    assert times[0] >= 10_000 + 1_000


def test_latency_distribution_matches_median_and_p99() -> None:
    w = world(["a", "b"], latency=LatencyDist(500, 5_000), bandwidth_bytes_per_s=None)
    n = 4_000
    for i in range(n):
        w.call_later(i * 100_000, lambda i=i: probe_send(w, "a", "b", 1, seq=i))
    w.run()
    lat = sorted(t - seq * 100_000 for _, seq, _, t in w.node("b").arrivals)
    assert len(lat) == n
    assert 450 <= statistics.median(lat) <= 550
    assert 3_800 <= lat[int(n * 0.99)] <= 6_500


def test_loss_duplicate_and_reorder_rates_roughly_as_set() -> None:
    n = 3_000
    w = world(["a", "b", "c", "d"], latency=LatencyDist(500, 2_000))
    w.degrade_link("a", "b", loss=0.3)
    w.degrade_link("a", "c", duplicate=0.2)
    w.degrade_link("a", "d", reorder=0.3)
    for i in range(n):
        w.call_later(i * 200, lambda i=i: [probe_send(w, "a", d, 1, seq=i) for d in "bcd"])
    w.run()
    got_b = len(w.node("b").arrivals)
    assert 0.65 * n <= got_b <= 0.75 * n
    got_c = w.node("c").seqs_from("a")
    assert 1.15 * n <= len(got_c) <= 1.25 * n and set(got_c) == set(range(n))
    got_d = w.node("d").seqs_from("a")
    assert sorted(got_d) == list(range(n))
    inversions = sum(1 for x, y in itertools.pairwise(got_d) if y < x)
    assert inversions > 0.05 * n


def test_without_reorder_or_duplicate_no_inversions() -> None:
    w = world(["a", "b"], latency=LatencyDist(500, 2_000))
    for i in range(1_000):
        w.call_later(i * 200, lambda i=i: probe_send(w, "a", "b", 1, seq=i))
    w.run()
    assert w.node("b").seqs_from("a") == list(range(1_000))


def test_messages_to_a_crashed_node_are_lost_even_if_it_restarts_first() -> None:
    w = world(["a", "b"], latency=LatencyDist.constant(10_000))
    probe_send(w, "a", "b", 3)
    w.call_later(2_000, lambda: w.crash("b"))
    w.call_later(4_000, lambda: w.restart("b"))
    w.run_for(100_000)
    assert w.node("b").arrivals == []
    assert w.network.dropped == {"dead": 3}


def test_unknown_destination_is_a_drop() -> None:
    w = world(["a"])
    probe_send(w, "a", "zz", 1)
    w.run_for(1_000)
    assert w.network.dropped == {"unknown": 1}


def test_degrade_many_links_at_once() -> None:
    w = world(bandwidth_bytes_per_s=None)
    w.degrade_link(["a", "b"], ["c", "d", "a"], latency=LatencyDist.constant(7_000),
                   for_us=50_000)
    all_to_all(w)
    w.run_for(20_000)
    slow = {(s, d) for d in IDS for s, _, _, t in w.node(d).arrivals if t == 7_000}
    assert slow == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("b", "a")}


def test_fast_path_size_matches_wire_size() -> None:
    from simlog.sim.testing import SimProbe

    w = World(1, record_events=True)
    for n in ("a", "b"):
        w.add_node(n, ProbeNode)
    w.run(0)
    probe_send(w, "a", "b", 1, pad=b"x" * 300)
    w.run_for(10_000)
    delivered = [e[1:] for e in w.raw_events if e[2] == "deliver"]
    assert delivered == [("b", "deliver", "a", "SimProbe",
                          SimProbe(seq=0, pad=b"x" * 300).wire_size())]


@given(st.integers(0, 10_000),
       st.lists(st.tuples(st.integers(0, 300_000),
                          st.sampled_from(["partition", "cut", "heal", "crash", "restart",
                                           "pause", "resume"]),
                          st.integers(0, 2)), max_size=10))
def test_every_message_is_delivered_dropped_or_in_flight(seed, faults) -> None:
    """Conservation: nothing sent vanishes without a trace, whatever the faults."""
    ids = ["n1", "n2", "n3"]
    w = World(seed, network=NetworkParams(latency=LatencyDist(300, 30_000), loss=0.1,
                                          duplicate=0.1, reorder=0.1))
    for n in ids:
        w.add_node(n, counter_factory(ids, interval_us=3_000))
    for at, kind, i in faults:
        a, b = ids[i], ids[(i + 1) % 3]
        action = {
            "partition": lambda a=a, b=b: w.partition([[a], [b]]),
            "cut": lambda a=a, b=b: w.cut([a], [b]),
            "heal": w.heal,
            "crash": lambda a=a: w.alive(a) and w.crash(a),
            "restart": lambda a=a: w.alive(a) or w.restart(a),
            "pause": lambda a=a: w.pause(a),
            "resume": lambda a=a: w.resume(a),
        }[kind]
        w.call_later(at, action)
    w.run(300_000)
    s = w.stats()
    assert s["sent"] + s["duplicated"] == s["delivered"] + sum(s["dropped"].values()) \
        + s["in_flight"] + s["holding"]
    got = sum(sum(n.received.values()) for n in map(w.node, ids) if n is not None)
    assert got <= s["delivered"]
