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

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
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
    dicts (kept as they are) or objects with the six fields as attributes (e.g. the
    checks' model)."""
    if isinstance(source, str | Path):
        decoder = msgspec.json.Decoder()
        ops = []
        with open(source, "rb") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        ops.append(decoder.decode(line))
                    except msgspec.DecodeError as error:
                        raise HistoryError(f"{source}:{number}: not JSON: {error}") from None
        return ops
    return [op if isinstance(op, dict) else as_op_dict(op) for op in source]


def as_op_dict(op: Any) -> dict:
    """One operation as a dict with exactly the SCENARIOS.md fields, in contract order."""
    if isinstance(op, Mapping):
        return {name: op.get(name) for name in FIELDS}
    try:
        return {name: getattr(op, name) for name in FIELDS}
    except AttributeError as error:
        raise HistoryError(f"operation {op!r} is neither a dict nor has {error.name}") from None


def pair(history: str | Path | Iterable[Any]) -> list[tuple[dict, dict]]:
    """(invoke, completion) op dicts in invoke order. Raises HistoryError. One tight pass,
    with the cyclic garbage collector paused (it would walk every op dict again and again,
    doubling the time): histories of a long run hold millions of operations."""
    with gc_paused():
        return pair_ops(load_history(history))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees memory)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def pair_ops(ops: list[dict]) -> list[tuple[dict, dict]]:
    """The pairing pass itself (see the module docstring for the rules)."""
    pending: dict[tuple[str, str], dict[Any, dict]] = {}  # (process, f) -> id -> invoke
    pairs: list[tuple[dict, dict]] = []
    last_index = -(2**63)
    for op in ops:
        try:
            index, time_us, process, type_, f = (op["index"], op["time_us"], op["process"],
                                                 op["type"], op["f"])
        except KeyError as error:
            raise HistoryError(f"operation {op!r} lacks {error.args[0]}") from None
        if type(index) is not int or type(time_us) is not int:
            raise HistoryError(f"operation {op!r}: index and time_us must be integers")
        if index <= last_index:
            raise HistoryError(f"index {index} follows index {last_index}: not in order")
        last_index = index
        value = op.get("value")
        op_id = value.get("id") if isinstance(value, dict) else None
        key = (process, f)
        open_ops = pending.get(key)
        if open_ops is None:
            if type(process) is not str or type(f) is not str:
                raise HistoryError(f"operation at index {index}: process and f must be strings")
            open_ops = pending[key] = {}
        if type_ == "invoke":
            if op_id in open_ops:
                raise HistoryError(
                    f"invoke at index {index} ({describe(op)}) overlaps the invoke at "
                    f"index {open_ops[op_id]['index']}, which has no completion yet"
                )
            open_ops[op_id] = op
            continue
        if type_ not in COMPLETIONS:
            raise HistoryError(
                f"operation at index {index} has type {type_!r}; expected one of "
                f"{', '.join(TYPES)}"
            )
        if op_id not in open_ops and op_id is None and len(open_ops) == 1:
            op_id = next(iter(open_ops))  # a completion that omits the id of the one open op
        invoke = open_ops.pop(op_id, None)
        if invoke is None:
            raise HistoryError(
                f"completion at index {index} ({describe(op)}) has no open invoke: "
                "a completion without invoke, or a second completion"
            )
        if time_us < invoke["time_us"]:
            raise HistoryError(
                f"completion at index {index} ({describe(op)}) is earlier than its "
                f"invoke at index {invoke['index']}"
            )
        pairs.append((invoke, op))
    unfinished = [op for open_ops in pending.values() for op in open_ops.values()]
    if unfinished:
        first = min(unfinished, key=lambda op: op["index"])
        raise HistoryError(
            f"{len(unfinished)} invoke(s) never completed; first at index {first['index']} "
            f"({describe(first)}); the run loop must close them as info"
        )
    pairs.sort(key=lambda entry: entry[0]["index"])
    return pairs


def pair_operations(history: str | Path | Iterable[Any]) -> list[Operation]:
    """Every invoke paired with its completion, in invoke order. Raises HistoryError."""
    return [Operation(
        process=done["process"], f=done["f"], type=done["type"],
        invoke_index=invoke["index"], complete_index=done["index"],
        invoke_time_us=invoke["time_us"], complete_time_us=done["time_us"],
        invoke_value=invoke.get("value"), complete_value=done.get("value"),
    ) for invoke, done in pair(history)]


def value_id(op: dict) -> Any:
    """The op's `value.id` (a produced message's id), or None."""
    value = op.get("value")
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


def history_frames(history: str | Path | Iterable[Any]) -> HistoryFrames:
    """Pair the history and tabulate it: every op; sends (one row per message); polls (one
    row per poll) and the records they returned; commits and assigns (one row per
    partition named). Rows follow invoke order. Built column by column: a long run's
    history has millions of rows."""
    with gc_paused():
        pairs = pair(history)
        ops = table(op_columns(pairs), OP_COLUMNS)
        sends = [entry for entry in pairs if entry[1]["f"] == "send"]
        invoke_values = [invoke.get("value") for invoke, _ in sends]
        done_values = [done.get("value") for _, done in sends]
        send_columns = {name: value_column(done_values, invoke_values, name)
                        for name in ("id", "topic", "partition", "key")}
        send_columns["offset"] = [
            value.get("offset") if isinstance(value, dict) and done["type"] == "ok" else None
            for value, (_, done) in zip(done_values, sends)]
        send_table = pd.concat(
            [ops[ops["f"] == "send"].reset_index(drop=True),
             table(send_columns, SEND_COLUMNS[len(OP_COLUMNS):])], axis=1)
        consumer: dict[str, dict[str, list]] = {
            kind: {name: [] for name in names} for kind, names in
            (("polls", POLL_COLUMNS), ("records", RECORD_COLUMNS), ("commits", COMMIT_COLUMNS),
             ("assigns", ASSIGN_COLUMNS))}
        for invoke, done in pairs:
            if done["f"] in ("poll", "commit", "assign"):
                add_consumer_op(consumer, invoke, done)
        return HistoryFrames(
            ops=ops, sends=send_table,
            **{kind: table(consumer[kind], columns) for kind, columns in
               (("polls", POLL_COLUMNS), ("records", RECORD_COLUMNS),
                ("commits", COMMIT_COLUMNS), ("assigns", ASSIGN_COLUMNS))},
        )


def op_columns(pairs: list[tuple[dict, dict]]) -> dict[str, list]:
    """The OP_COLUMNS of paired operations, as lists."""
    invoke_time_us = [invoke["time_us"] for invoke, _ in pairs]
    complete_time_us = [done["time_us"] for _, done in pairs]
    return {
        "process": [done["process"] for _, done in pairs],
        "f": [done["f"] for _, done in pairs],
        "type": [done["type"] for _, done in pairs],
        "invoke_index": [invoke["index"] for invoke, _ in pairs],
        "complete_index": [done["index"] for _, done in pairs],
        "invoke_time_us": invoke_time_us,
        "complete_time_us": complete_time_us,
        "latency_us": [end - start for start, end in zip(invoke_time_us, complete_time_us)],
    }


def value_column(done_values: list, invoke_values: list, name: str) -> list:
    """value[name] of each completion, else of its invoke."""
    column = [value.get(name) if isinstance(value, dict) else None for value in done_values]
    for row in [row for row, item in enumerate(column) if item is None]:
        value = invoke_values[row]
        if isinstance(value, dict):
            column[row] = value.get(name)
    return column


def op_row(invoke: dict, done: dict) -> dict[str, Any]:
    return {name: column[0] for name, column in op_columns([(invoke, done)]).items()}


def field_of(first: Any, second: Any, name: str) -> Any:
    """value[name] from the completion's value, else from the invoke's."""
    if isinstance(first, dict):
        found = first.get(name)
        if found is not None:
            return found
    return second.get(name) if isinstance(second, dict) else None


def add_consumer_op(data: dict, invoke: dict, done: dict) -> None:
    """Rows of one poll (and its records), commit or assign."""
    base = op_row(invoke, done)
    invoke_value, done_value = invoke.get("value"), done.get("value")
    if done["f"] == "poll":
        records = (field_of(done_value, None, "records") or []) if done["type"] == "ok" else []
        append_rows(data["polls"], [{**base, "n_records": len(records)}])
        append_rows(data["records"], [
            {"process": base["process"], "invoke_index": base["invoke_index"],
             "complete_time_us": base["complete_time_us"], "topic": record.get("topic"),
             "partition": record.get("partition"), "offset": record.get("offset"),
             "id": record.get("id")} for record in records])
    elif done["f"] == "commit":
        offsets = field_of(done_value, invoke_value, "offsets") or {}
        group = field_of(done_value, invoke_value, "group")
        append_rows(data["commits"], [
            {**base, "group": group, "topic": topic, "partition": partition,
             "offset": offsets[name]}
            for name, (topic, partition) in sorted_partitions(offsets)])
    else:
        names = field_of(done_value, invoke_value, "partitions") or []
        group = field_of(done_value, invoke_value, "group")
        generation = field_of(done_value, invoke_value, "generation")
        append_rows(data["assigns"], [
            {**base, "group": group, "generation": generation, "topic": topic,
             "partition": partition}
            for _, (topic, partition) in sorted_partitions(names)])


def sorted_partitions(names: Iterable[str]) -> list[tuple[str, tuple[str, int]]]:
    """(name, (topic, number)) for partition names, by topic then number."""
    return sorted(((name, split_partition(name)) for name in names), key=lambda e: e[1])


def append_rows(columns: dict[str, list], rows: list[dict]) -> None:
    for row in rows:
        for name, items in columns.items():
            items.append(row[name])


def table(data: dict[str, list], columns: list[str]) -> pd.DataFrame:
    """A DataFrame with fixed columns and dtypes, also when there are no rows."""
    converted = {}
    for name in columns:
        if name in INT_COLUMNS:
            converted[name] = np.array(data[name], dtype=np.int64)
        elif name in NULLABLE_INT_COLUMNS:
            converted[name] = pd.array(data[name], dtype="Int64")
        else:
            converted[name] = pd.array(data[name], dtype=object)
    return pd.DataFrame(converted, columns=columns)
