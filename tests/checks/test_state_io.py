"""FinalState survives a JSON round trip, byte for byte, so checks can be re-run offline."""

from __future__ import annotations

from simlog.checks.state import LeaderChange, Truncation
from simlog.checks.state_io import read_json, to_dict, write_json
from simlog.checks.writes import lost_writes
from simlog.scenario.selectors import TopicPartition
from simlog.testing.builders import Hist, final, partition

TP = TopicPartition("orders", 0)


def test_round_trip(tmp_path):
    state = final(
        partition("orders/0", {"b1": ["a", "b"], "b2": [(0, "a", 0), (1, None, 2)]},
                  hw=1, isr=["b1"]),
        partition("audit/1", {"b3": []}, leader=None),
        start_us=1, end_us=99,
        leader_changes=(LeaderChange(0, TP, "b1", 0), LeaderChange(5, TP, None)),
        truncations=(Truncation(7, TP, "b2", 1, 2),),
        committed_offsets={("g", TP): 4}, groups={"g": ("orders",)},
        idempotent_producers=frozenset({"p1"}))
    path = tmp_path / "final_state.json"
    write_json(state, path)
    again = read_json(path)
    assert to_dict(again) == to_dict(state)
    write_json(again, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()
    h = Hist()
    h.send("p1", "b", "orders/0", ok=1)
    assert lost_writes(h.ops, again).witnesses == lost_writes(h.ops, state).witnesses != ()
