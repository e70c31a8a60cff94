"""Pairing a history into operations, and the DataFrames built from it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.history import HistoryError, history_frames, load_history, pair_operations


def op(index, time_us, process, type_, f, value=None):
    return {"index": index, "time_us": time_us, "process": process, "type": type_, "f": f,
            "value": value}


CONTRACT_EXAMPLE = [
    op(17, 1234567, "p1", "invoke", "send",
       {"id": "p1-42", "topic": "orders", "partition": 3, "key": "k17"}),
    op(18, 1235000, "analytics-1", "invoke", "poll", {}),
    op(19, 1236001, "p1", "ok", "send",
       {"id": "p1-42", "topic": "orders", "partition": 3, "offset": 811}),
    op(20, 1237000, "analytics-1", "ok", "poll",
       {"records": [{"topic": "orders", "partition": 3, "offset": 811, "id": "p1-42"}]}),
]


def test_contract_example_pairs_into_a_send_and_a_poll():
    frames = history_frames(CONTRACT_EXAMPLE)
    send = frames.sends.iloc[0]
    assert (send["id"], send["type"], send["offset"], send["partition"]) == ("p1-42", "ok", 811, 3)
    assert send["latency_us"] == 1236001 - 1234567
    assert (send["invoke_index"], send["complete_index"]) == (17, 19)
    assert list(frames.records["id"]) == ["p1-42"]
    assert list(frames.polls["n_records"]) == [1]


def test_sends_in_flight_pair_by_id_even_when_acked_out_of_order():
    history = [
        op(0, 0, "p1", "invoke", "send", {"id": "p1-0", "topic": "t", "partition": 0}),
        op(1, 10, "p1", "invoke", "send", {"id": "p1-1", "topic": "t", "partition": 1}),
        op(2, 25, "p1", "ok", "send", {"id": "p1-1", "topic": "t", "partition": 1, "offset": 0}),
        op(3, 40, "p1", "info", "send", {"id": "p1-0", "topic": "t", "partition": 0}),
    ]
    sends = history_frames(history).sends.set_index("id")
    assert sends.loc["p1-0", "latency_us"] == 40 and sends.loc["p1-0", "type"] == "info"
    assert sends.loc["p1-1", "latency_us"] == 15 and sends.loc["p1-1", "offset"] == 0
    assert pd.isna(sends.loc["p1-0", "offset"])


def test_a_completion_without_id_closes_the_one_open_invoke():
    history = [op(0, 0, "p1", "invoke", "send", {"id": "p1-0", "topic": "t", "partition": 0}),
               op(1, 7, "p1", "fail", "send", None)]
    ops = pair_operations(history)
    assert [(o.get("id"), o.type, o.latency_us) for o in ops] == [("p1-0", "fail", 7)]


def test_commits_and_assigns_have_one_row_per_partition():
    history = [
        op(0, 0, "c1", "invoke", "assign", {"group": "g", "generation": 2,
                                             "partitions": ["orders/10", "orders/2"]}),
        op(1, 5, "c1", "ok", "assign", {"group": "g", "generation": 2,
                                         "partitions": ["orders/10", "orders/2"]}),
        op(2, 9, "c1", "invoke", "commit", {"group": "g", "offsets": {"orders/2": 7,
                                                                       "orders/10": 3}}),
        op(3, 12, "c1", "ok", "commit", {"group": "g", "offsets": {"orders/2": 7,
                                                                   "orders/10": 3}}),
    ]
    frames = history_frames(history)
    assert sorted(zip(frames.assigns["partition"], frames.assigns["generation"])) == [
        (2, 2), (10, 2)]
    commits = dict(zip(frames.commits["partition"], frames.commits["offset"]))
    assert commits == {2: 7, 10: 3}
    assert set(frames.commits["group"]) == {"g"}


def test_empty_history_gives_empty_frames_with_columns():
    frames = history_frames([])
    assert frames.sends.empty and "latency_us" in frames.sends.columns
    assert frames.sends["latency_us"].dtype == "int64"


def test_load_history_reads_jsonl(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in CONTRACT_EXAMPLE))
    assert load_history(path) == CONTRACT_EXAMPLE


def test_generated_history_pairs_every_send(run):
    sends = history_frames(run.history).sends.set_index("id")
    for truth in run.truth[::97]:
        row = sends.loc[truth["id"]]
        assert row["type"] == truth["type"]
        assert row["latency_us"] == truth["complete_us"] - truth["invoke_us"]
    assert len(sends) == len(run.truth)


SEND = {"id": "p1-0", "topic": "t", "partition": 0}
MALFORMED = {
    "completion without invoke": (
        [op(0, 0, "p1", "ok", "send", SEND)], "no open invoke"),
    "two completions": (
        [op(0, 0, "p1", "invoke", "send", SEND), op(1, 1, "p1", "ok", "send", SEND),
         op(2, 2, "p1", "ok", "send", SEND)], "index 2.*no open invoke"),
    "completion of another f": (
        [op(0, 0, "c1", "invoke", "poll", {}), op(1, 1, "c1", "ok", "commit", {})],
        "index 1.*no open invoke"),
    "completion of another process": (
        [op(0, 0, "p1", "invoke", "send", SEND), op(1, 1, "p2", "ok", "send", SEND)],
        "p2 ok send"),
    "overlapping polls": (
        [op(0, 0, "c1", "invoke", "poll", {}), op(1, 1, "c1", "invoke", "poll", {})],
        "overlaps the invoke at index 0"),
    "same id invoked twice": (
        [op(0, 0, "p1", "invoke", "send", SEND), op(1, 1, "p1", "invoke", "send", SEND)],
        "overlaps"),
    "invoke never completed": (
        [op(0, 0, "p1", "invoke", "send", SEND)], "never completed; first at index 0"),
    "unknown type": (
        [op(0, 0, "p1", "done", "send", SEND)], "type 'done'"),
    "index out of order": (
        [op(5, 0, "p1", "invoke", "send", SEND), op(4, 1, "p1", "ok", "send", SEND)],
        "index 4 follows index 5"),
    "completion before invoke": (
        [op(0, 10, "p1", "invoke", "send", SEND), op(1, 5, "p1", "ok", "send", SEND)],
        "earlier than its invoke"),
    "missing field": (
        [{"index": 0, "process": "p1", "type": "invoke", "f": "send"}], "lacks time_us"),
    "time not an integer": (
        [op(0, 1.5, "p1", "invoke", "send", SEND)], "must be integers"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_history_is_rejected_with_a_clear_error(case):
    history, message = MALFORMED[case]
    with pytest.raises(HistoryError, match=message):
        history_frames(history)


def test_bad_partition_name_in_a_commit_is_rejected():
    history = [op(0, 0, "c1", "invoke", "commit", {"group": "g", "offsets": {"orders": 1}}),
               op(1, 1, "c1", "ok", "commit", {"group": "g", "offsets": {"orders": 1}})]
    with pytest.raises(HistoryError, match="TOPIC/NUMBER"):
        history_frames(history)


def test_op_objects_are_read_like_dicts():
    """The checks package's history model (frozen Op objects) needs no conversion."""
    ops_module = pytest.importorskip("simlog.checks.history")
    objects = [ops_module.Op(o["index"], o["time_us"], o["process"], o["type"], o["f"],
                             o["value"]) for o in CONTRACT_EXAMPLE]
    pd.testing.assert_frame_equal(history_frames(objects).sends,
                                  history_frames(CONTRACT_EXAMPLE).sends)
