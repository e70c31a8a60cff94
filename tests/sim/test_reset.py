"""ConnectionReset: a message reaching a machine whose process is down comes back as a
reset (TCP RST) over the reverse link, and a process that ends resets the connections of
every peer it talked to at once (its kernel closes its sockets); an unreachable or
powered-off machine, or a paused process, stays silent."""

from __future__ import annotations

from simlog.sim import LatencyDist, NetworkParams, World
from simlog.sim.testing import ProbeNode, probe_send

ONE_WAY = 1_000


def world(seed: int = 1, record: bool = False, latency: LatencyDist | None = None) -> World:
    w = World(seed, network=NetworkParams(latency=latency or LatencyDist.constant(ONE_WAY),
                                          bandwidth_bytes_per_s=None),
              record_events=record)
    for n in ("a", "b", "c"):
        w.add_node(n, ProbeNode)
    w.run(0)
    return w


def test_message_to_a_crashed_process_is_answered_by_one_reset_per_attempt() -> None:
    w = world()
    w.crash("b")
    probe_send(w, "a", "b", 5)  # one handler, five messages: one connection, one reset
    w.call_later(3_000, lambda: probe_send(w, "a", "b", 1, seq=5))  # a new attempt: one more
    w.run_for(20_000)
    assert w.node("a").resets == [("b", 2 * ONE_WAY), ("b", 3_000 + 2 * ONE_WAY)]
    assert w.network.dropped == {"dead": 6}
    assert w.stats()["resets"] == 2
    assert w.node("c").resets == []


def test_each_down_gap_resets_again_and_a_restarted_node_answers_normally() -> None:
    w = world()
    w.crash("b")
    probe_send(w, "a", "b", 1)
    w.call_later(10_000, lambda: w.restart("b"))
    w.call_later(11_000, lambda: probe_send(w, "a", "b", 1, seq=1))
    w.call_later(20_000, lambda: w.crash("b"))
    w.call_later(21_000, lambda: probe_send(w, "a", "b", 1, seq=2))
    w.run_for(40_000)
    # first gap: a's message is refused; second: b's exit resets a's connection (a
    # talked to it at 11 ms), then a's new message is refused again
    assert w.node("a").resets == [("b", 2 * ONE_WAY), ("b", 20_000 + ONE_WAY),
                                  ("b", 21_000 + 2 * ONE_WAY)]


def test_message_in_flight_when_the_process_dies_is_reset() -> None:
    w = world()
    probe_send(w, "a", "b", 1)
    w.call_later(ONE_WAY // 2, lambda: w.crash("b"))
    w.run_for(10_000)
    # the exit's reset, one way after the crash; the message arriving later on the
    # connection already reset brings no second one
    assert w.node("a").resets == [("b", ONE_WAY // 2 + ONE_WAY)]
    assert w.network.dropped == {"dead": 1}


def test_a_process_that_dies_resets_every_peer_it_talked_to_at_once() -> None:
    w = world()
    for n in ("d", "e"):
        w.add_node(n, ProbeNode)
    probe_send(w, "a", "b", 1)
    probe_send(w, "b", "c", 1)        # b talked to c, not c to b: a connection too
    w.run_for(5_000)
    w.isolate(["d"])
    probe_send(w, "d", "b", 1)        # d's message never arrived: no connection
    w.run_for(5_000)
    w.heal()
    w.crash("b")
    w.run_for(10_000)
    assert w.node("a").resets == [("b", 10_000 + ONE_WAY)]
    assert w.node("c").resets == [("b", 10_000 + ONE_WAY)]
    # e never talked to b, and d's only message never arrived: no connection to reset
    assert w.node("e").resets == []
    assert w.node("d").resets == []
    # a power loss (machine off) resets nobody
    w.restart("b")
    probe_send(w, "a", "b", 1, seq=1)
    w.run_for(5_000)
    w.crash("b", lose_unsynced=True)
    w.run_for(10_000)
    assert len(w.node("a").resets) == 1


def test_halted_process_resets_too() -> None:
    w = world()
    w.call_in("b", lambda node: node.rt.halt("fatal"))
    w.run_for(1)
    probe_send(w, "a", "b", 1)
    w.run_for(10_000)
    assert [p for p, _ in w.node("a").resets] == ["b"]


def test_no_reset_from_an_isolated_partitioned_cut_or_paused_node() -> None:
    for fault in ("isolate", "partition", "cut_back", "pause"):
        w = world()
        if fault == "isolate":
            w.isolate(["b"])
        elif fault == "partition":
            w.partition([["a"], ["b", "c"]])
        elif fault == "cut_back":  # b's process is down but its reset cannot come back
            w.cut(["b"], ["a"])
            w.crash("b")
        else:
            w.pause("b")
        probe_send(w, "a", "b", 1)
        w.run_for(20_000)
        assert w.node("a").resets == [], fault
        if fault == "cut_back":
            assert w.network.dropped == {"dead": 1, "cut": 1}
            assert w.stats()["resets"] == 1  # sent, and lost on the cut link
        if fault == "pause":
            w.resume("b")
            w.run_for(1)
            assert w.node("b").seqs_from("a") == [0]  # it waited, it was not reset


def test_powered_off_machine_is_silent_until_restart() -> None:
    w = world()
    w.crash("b", lose_unsynced=True)
    probe_send(w, "a", "b", 3)
    w.run_for(20_000)
    assert w.node("a").resets == []
    assert w.network.dropped == {"dead": 3}
    # A plain crash after the restart resets again: the power-off flag went with it
    # (the exit closes a's connection, then a's new message is refused).
    w.restart("b")
    w.crash("b")
    probe_send(w, "a", "b", 1, seq=3)
    w.run_for(20_000)
    assert [p for p, _ in w.node("a").resets] == ["b", "b"]


def test_reset_is_traced_and_deterministic() -> None:
    def run(seed: int) -> tuple[str, list[tuple]]:
        w = world(seed, record=True, latency=LatencyDist(500, 5_000))
        for i in range(20):
            w.call_later(i * 1_000, lambda i=i: probe_send(w, "a", "b", 1, seq=i))
            w.call_later(i * 1_000 + 300, lambda i=i: probe_send(w, "c", "b", 1, seq=i))
        w.call_later(4_000, lambda: w.crash("b"))
        w.call_later(12_000, lambda: w.restart("b"))
        w.run_for(50_000)
        ev = [e for e in w.raw_events if e[2] in ("reset", "deliver") and
              (e[2] == "reset" or e[4] == "ConnectionReset")]
        return w.trace_hash, ev

    h1, ev1 = run(7)
    h2, ev2 = run(7)
    assert (h1, ev1) == (h2, ev2)
    # b's exit resets a's and c's connections; their later messages (one a millisecond
    # from each while b is down) are refused, one reset per message sent after the
    # previous reset on its link, and every reset arrives
    resets = [e for e in ev1 if e[2] == "reset"]
    assert [e[3:] for e in resets[:2]] == [("a", "close"), ("c", "close")]
    assert all(e[4] == "SimProbe" for e in resets[2:])
    assert 2 + 2 < len(resets) <= 2 + 2 * 8
    delivered = sorted(e[1] for e in ev1 if e[2] == "deliver")
    assert delivered == sorted(e[3] for e in resets)
    assert run(8)[0] != h1


def test_a_reset_never_answers_a_reset() -> None:
    w = world()
    w.crash("b")
    probe_send(w, "a", "b", 1)  # reaches dead b at 1 ms; b's reset reaches a at 2 ms
    w.call_later(ONE_WAY + ONE_WAY // 2, lambda: w.crash("a"))  # a dies before that
    w.run_for(20_000)
    # b's refusal, and a's exit closing its connection to b: both reach dead processes
    # and neither is answered
    assert w.stats()["resets"] == 2
    assert w.network.dropped == {"dead": 3}
