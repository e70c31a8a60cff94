"""Shared reading of histories and final logs for the checks (pure helpers)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from simlog.checks.history import Op, Pair, pairs
from simlog.checks.state import FinalState
from simlog.scenario.selectors import TopicPartition, parse_partition


def send_pairs(history: Sequence[Op]) -> list[Pair]:
    """Every `send`, invoke with completion, in invoke order."""
    return [p for p in pairs(history) if p.f == "send"]


def msg_id(pair: Pair) -> str | None:
    v = pair.invoke.value
    return v.get("id") if isinstance(v, dict) else None


def send_partition(pair: Pair) -> TopicPartition | None:
    """Where a send went: the invoke's topic/partition, else the completion's."""
    for value in (pair.invoke.value,
                  pair.completion.value if pair.completion is not None else None):
        if isinstance(value, dict) and "topic" in value and value.get("partition") is not None:
            return TopicPartition(str(value["topic"]), int(value["partition"]))
    return None


def acked_offset(pair: Pair) -> int | None:
    v = pair.completion.value if pair.completion is not None else None
    return v.get("offset") if isinstance(v, dict) else None


def locations(state: FinalState) -> dict[str, list[tuple[TopicPartition, int]]]:
    """Message id -> every (partition, offset) where the final logs hold it, sorted."""
    out: dict[str, list[tuple[TopicPartition, int]]] = defaultdict(list)
    for ps in state.sorted_partitions():
        for rec in ps.final_log():
            if rec.id is not None:
                out[rec.id].append((ps.partition, rec.offset))
    return {k: sorted(v) for k, v in out.items()}


def tp_str(tp: TopicPartition | None) -> str | None:
    return None if tp is None else str(tp)


def parse_tp(text: Any) -> TopicPartition:
    return parse_partition(text)
