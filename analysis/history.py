"""A run's history (SCENARIOS.md "History format") as pandas DataFrames.

A history is a list of operations `{index, time_us, process, type, f, value}`, in index
order; `type` is `invoke` or one of the completions `ok` / `fail` / `info`. Pairing turns
each invoke and its completion into one operation with both times:

- an invoke whose value carries an `id` (a produced message) pairs with the completion of
  the same process, f and id, so one producer may have many sends in flight;
- any other invoke pairs with the next completion of the same process and f, and may not
  overlap another such invoke of that process and f (Jepsen's rule);
- a completion without an id closes the one open invoke of its process and f, if only one
  is open.

Pairing is strict, because every figure downstream trusts it: a completion without an
invoke, a second completion, an unknown type, an index out of order, a completion before
its invoke or an invoke never completed raises `HistoryError` naming the operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

FIELDS = ("index", "time_us", "process", "type", "f", "value")
COMPLETIONS = ("ok", "fail", "info")
TYPES = ("invoke", *COMPLETIONS)


class HistoryError(ValueError):
    """The history breaks the SCENARIOS.md format; the message names the operation."""


@dataclass(frozen=True)
class Operation:
    """One invoke paired with its completion."""

    process: str
    f: str
    type: str  # ok / fail / info
    invoke_index: int
    complete_index: int
    invoke_time_us: int
    complete_time_us: int
    invoke_value: Any
    complete_value: Any

    @property
    def latency_us(self) -> int:
        return self.complete_time_us - self.invoke_time_us

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the completion's value, else of the invoke's value."""
        for value in (self.complete_value, self.invoke_value):
            if isinstance(value, Mapping) and value.get(name) is not None:
                return value[name]
        return default


def load_history(source: str | Path | Iterable[Any]) -> list[dict]:
    """A history as a list of op dicts, from a history.jsonl path or an iterable of op
    dicts (or objects with the six fields as attributes, e.g. the checks' model)."""
    if isinstance(source, str | Path):
        ops = []
        with open(source, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        ops.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise HistoryError(f"{source}:{number}: not JSON: {error}") from None
        return ops
    return [as_op_dict(op) for op in source]


def as_op_dict(op: Any) -> dict:
    """One operation as a dict with exactly the SCENARIOS.md fields, in contract order."""
    if isinstance(op, Mapping):
        missing = [name for name in FIELDS if name not in op and name != "value"]
        if missing:
            raise HistoryError(f"operation {dict(op)!r} lacks {', '.join(missing)}")
        return {name: op.get(name) for name in FIELDS}
    try:
        return {name: getattr(op, name) for name in FIELDS}
    except AttributeError as error:
        raise HistoryError(f"operation {op!r} is neither a dict nor has {error.name}") from None


def pair_operations(history: str | Path | Iterable[Any]) -> list[Operation]:
    """Every invoke paired with its completion, in invoke order. Raises HistoryError."""
    ops = load_history(history)
    pending: dict[tuple[str, str], dict[Any, dict]] = {}  # (process, f) -> id -> invoke
    paired: list[Operation] = []
    last_index = None
    for op in ops:
        validate_op(op, last_index)
        last_index = op["index"]
        open_ops = pending.setdefault((op["process"], op["f"]), {})
        op_id = value_id(op)
        if op["type"] == "invoke":
            if op_id in open_ops:
                raise HistoryError(
                    f"invoke at index {op['index']} ({describe(op)}) overlaps the invoke at "
                    f"index {open_ops[op_id]['index']}, which has no completion yet"
                )
            open_ops[op_id] = op
            continue
        if op_id not in open_ops and op_id is None and len(open_ops) == 1:
            op_id = next(iter(open_ops))  # a completion that omits the id of the one open op
        invoke = open_ops.pop(op_id, None)
        if invoke is None:
            raise HistoryError(
                f"completion at index {op['index']} ({describe(op)}) has no open invoke: "
                "a completion without invoke, or a second completion"
            )
        if op["time_us"] < invoke["time_us"]:
            raise HistoryError(
                f"completion at index {op['index']} ({describe(op)}) is earlier than its "
                f"invoke at index {invoke['index']}"
            )
        paired.append(Operation(
            process=op["process"], f=op["f"], type=op["type"],
            invoke_index=invoke["index"], complete_index=op["index"],
            invoke_time_us=invoke["time_us"], complete_time_us=op["time_us"],
            invoke_value=invoke["value"], complete_value=op["value"],
        ))
    unfinished = [op for open_ops in pending.values() for op in open_ops.values()]
    if unfinished:
        first = min(unfinished, key=lambda op: op["index"])
        raise HistoryError(
            f"{len(unfinished)} invoke(s) never completed; first at index {first['index']} "
            f"({describe(first)}); the run loop must close them as info"
        )
    paired.sort(key=lambda op: op.invoke_index)
    return paired


def validate_op(op: dict, last_index: int | None) -> None:
    """Field types and index order of one operation."""
    if not is_int(op["index"]) or not is_int(op["time_us"]):
        raise HistoryError(f"operation {op!r}: index and time_us must be integers")
    if last_index is not None and op["index"] <= last_index:
        raise HistoryError(f"index {op['index']} follows index {last_index}: not in order")
    if op["type"] not in TYPES:
        raise HistoryError(
            f"operation at index {op['index']} has type {op['type']!r}; expected one of "
            f"{', '.join(TYPES)}"
        )
    if not isinstance(op["process"], str) or not isinstance(op["f"], str):
        raise HistoryError(f"operation at index {op['index']}: process and f must be strings")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def value_id(op: dict) -> Any:
    """The op's `value.id` (a produced message's id), or None."""
    value = op["value"]
    return value.get("id") if isinstance(value, Mapping) else None


def describe(op: dict) -> str:
    op_id = value_id(op)
    suffix = f" id={op_id}" if op_id is not None else ""
    return f"{op['process']} {op['type']} {op['f']}{suffix}"


def split_partition(name: str) -> tuple[str, int]:
    """`orders/3` -> ("orders", 3)."""
    topic, _, number = str(name).rpartition("/")
    if not topic or not number.lstrip("-").isdigit():
        raise HistoryError(f"partition {name!r} is not TOPIC/NUMBER")
    return topic, int(number)


@dataclass(frozen=True)
class HistoryFrames:
    """The history's operations by kind, one DataFrame each (see `history_frames`)."""

    ops: pd.DataFrame
    sends: pd.DataFrame
    polls: pd.DataFrame
    records: pd.DataFrame
    commits: pd.DataFrame
    assigns: pd.DataFrame


OP_COLUMNS = ["process", "f", "type", "invoke_index", "complete_index", "invoke_time_us",
              "complete_time_us", "latency_us"]
SEND_COLUMNS = [*OP_COLUMNS, "id", "topic", "partition", "key", "offset"]
POLL_COLUMNS = [*OP_COLUMNS, "n_records"]
RECORD_COLUMNS = ["process", "invoke_index", "complete_time_us", "topic", "partition",
                  "offset", "id"]
COMMIT_COLUMNS = [*OP_COLUMNS, "group", "topic", "partition", "offset"]
ASSIGN_COLUMNS = [*OP_COLUMNS, "group", "generation", "topic", "partition"]
INT_COLUMNS = ["invoke_index", "complete_index", "invoke_time_us", "complete_time_us",
               "latency_us", "n_records"]
NULLABLE_INT_COLUMNS = ["partition", "offset", "generation"]


def history_frames(history: str | Path | Iterable[Any] | list[Operation]) -> HistoryFrames:
    """Pair the history and tabulate it: every op; sends (one row per message); polls (one
    row per poll) and the records they returned; commits and assigns (one row per
    partition named). Rows follow invoke order."""
    ops = history if is_operation_list(history) else pair_operations(history)
    rows: dict[str, list[dict]] = {kind: [] for kind in
                                   ("ops", "sends", "polls", "records", "commits", "assigns")}
    for op in ops:
        base = {name: getattr(op, name) for name in OP_COLUMNS}
        rows["ops"].append(base)
        if op.f == "send":
            rows["sends"].append({**base, "id": op.get("id"), "topic": op.get("topic"),
                                  "partition": op.get("partition"), "key": op.get("key"),
                                  "offset": op.get("offset") if op.type == "ok" else None})
        elif op.f == "poll":
            records = op.get("records", []) if op.type == "ok" else []
            rows["polls"].append({**base, "n_records": len(records)})
            rows["records"].extend(
                {"process": op.process, "invoke_index": op.invoke_index,
                 "complete_time_us": op.complete_time_us, "topic": record.get("topic"),
                 "partition": record.get("partition"), "offset": record.get("offset"),
                 "id": record.get("id")}
                for record in records)
        elif op.f == "commit":
            offsets = op.get("offsets", {})
            for name in sorted(offsets):
                topic, partition = split_partition(name)
                rows["commits"].append({**base, "group": op.get("group"), "topic": topic,
                                        "partition": partition, "offset": offsets[name]})
        elif op.f == "assign":
            for name in sorted(op.get("partitions", [])):
                topic, partition = split_partition(name)
                rows["assigns"].append({**base, "group": op.get("group"),
                                        "generation": op.get("generation"),
                                        "topic": topic, "partition": partition})
    columns = {"ops": OP_COLUMNS, "sends": SEND_COLUMNS, "polls": POLL_COLUMNS,
               "records": RECORD_COLUMNS, "commits": COMMIT_COLUMNS, "assigns": ASSIGN_COLUMNS}
    return HistoryFrames(**{kind: table(rows[kind], columns[kind]) for kind in rows})


def is_operation_list(history: Any) -> bool:
    return isinstance(history, list) and bool(history) and isinstance(history[0], Operation)


def table(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """A DataFrame with fixed columns and dtypes, also when there are no rows."""
    frame = pd.DataFrame(rows, columns=columns)
    for name in columns:
        if name in INT_COLUMNS:
            frame[name] = frame[name].astype("int64")
        elif name in NULLABLE_INT_COLUMNS:
            frame[name] = frame[name].astype("Int64")
    return frame
