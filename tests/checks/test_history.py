"""The history model: the pairing rule, the recorder's refusals, and the JSONL format."""

from __future__ import annotations

import json

import pytest

from simlog.checks.history import HistoryError, HistoryRecorder, Op, pairs, read_jsonl, write_jsonl


def test_jsonl_line_is_exactly_the_contract_format(tmp_path):
    op = Op(17, 1234567, "p1", "invoke", "send",
            {"id": "p1-42", "topic": "orders", "partition": 3, "key": "k17"})
    assert op.to_json() == (
        '{"index": 17, "time_us": 1234567, "process": "p1", "type": "invoke", "f": "send", '
        '"value": {"id": "p1-42", "topic": "orders", "partition": 3, "key": "k17"}}')
    done = Op(19, 1236001, "p1", "ok", "send",
              {"id": "p1-42", "topic": "orders", "partition": 3, "offset": 811})
    path = tmp_path / "history.jsonl"
    write_jsonl([op, done], path)
    assert read_jsonl(path) == [op, done]
    assert [json.loads(x)["index"] for x in path.read_text().splitlines()] == [17, 19]


def test_sends_pair_by_id_so_a_producer_can_have_many_in_flight():
    r = HistoryRecorder()
    r.invoke(1, "p1", "send", {"id": "p1-1"})
    r.invoke(2, "p1", "send", {"id": "p1-2"})
    r.ok(3, "p1", "send", {"id": "p1-2", "offset": 0})
    r.fail(4, "p1", "send", {"id": "p1-1"})
    got = [(p.invoke.value["id"], p.type, p.completion.index) for p in pairs(r.history)]
    assert got == [("p1-1", "fail", 3), ("p1-2", "ok", 2)]


def test_recorder_refuses_what_the_format_forbids():
    r = HistoryRecorder()
    r.invoke(1, "c1", "poll")
    with pytest.raises(HistoryError, match="invokes poll while its invoke 0 is still open"):
        r.invoke(2, "c1", "poll")
    with pytest.raises(HistoryError, match="has no open invoke"):
        r.ok(2, "c1", "commit")
    r.ok(3, "c1", "poll", {"records": []})
    with pytest.raises(HistoryError, match="has no open invoke"):
        r.ok(4, "c1", "poll")  # a second completion
    with pytest.raises(HistoryError, match="time goes backwards"):
        r.invoke(1, "c1", "poll")
    with pytest.raises(HistoryError, match="is not a completion"):
        r.complete(5, "c1", "invoke", "poll")


def test_finish_completes_open_invokes_as_info_in_index_order():
    r = HistoryRecorder()
    r.invoke(1, "p1", "send", {"id": "p1-1", "topic": "t", "partition": 0})
    r.invoke(2, "c1", "poll")
    ops = r.finish(10)
    assert [(o.process, o.type, o.value, o.time_us) for o in ops[2:]] == [
        ("p1", "info", {"id": "p1-1"}, 10), ("c1", "info", None, 10)]
    assert all(p.completion is not None for p in pairs(ops))


def test_reading_a_broken_history_names_the_problem(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"index": 2, "time_us": 0, "process": "p", "type": "invoke", "f": "x"}\n'
                    '{"index": 1, "time_us": 0, "process": "p", "type": "ok", "f": "x"}\n')
    with pytest.raises(HistoryError, match="index 1 after 2"):
        read_jsonl(path)
    path.write_text('{"index": 1, "time_us": 0, "process": "p", "type": "done", "f": "x"}\n')
    with pytest.raises(HistoryError, match="unknown type 'done'"):
        read_jsonl(path)
