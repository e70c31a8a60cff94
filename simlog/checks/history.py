"""A Jepsen-style history of client operations (SCENARIOS.md, "History format").

An `Op` is `{index, time_us, process, type, f, value}`; `type` is `invoke`, then exactly one
completion: `ok` (it happened), `fail` (it certainly did not) or `info` (unknown). Pairing
follows the format's rule, shared with `analysis.history`:

- an invoke whose value carries an `id` (a produced message) pairs with the completion of
  the same process, f and id, so a producer may have many sends in flight;
- any other invoke pairs with the next completion of the same process and f, and may not
  overlap another such invoke (Jepsen's single-threaded process);
- a completion without an id closes the one open invoke of its process and f.

`HistoryRecorder` is what the runner writes through: it assigns indexes, refuses
completions with no open invoke, second completions and time going backwards, and at the
end (`finish`) completes whatever is still open as `info`, so a saved history always
pairs. `write_jsonl` / `read_jsonl` use exactly the line format of SCENARIOS.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
COMPLETIONS = ("ok", "fail", "info")
TYPES = ("invoke", *COMPLETIONS)


class HistoryError(ValueError):
    """A history that breaks the format; the message names the operation."""


@dataclass(frozen=True, slots=True)
class Op:
    index: int
    time_us: int
    process: str
    type: OpType
    f: str
    value: Any = None

    def to_json(self) -> str:
        """One history.jsonl line (without the newline), keys in the contract's order."""
        return json.dumps({"index": self.index, "time_us": self.time_us,
                           "process": self.process, "type": self.type, "f": self.f,
                           "value": self.value})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        try:
            op = cls(int(d["index"]), int(d["time_us"]), str(d["process"]), d["type"],
                     str(d["f"]), d.get("value"))
        except (KeyError, TypeError, ValueError) as err:
            raise HistoryError(f"not a history operation: {d!r} ({err})") from None
        if op.type not in TYPES:
            raise HistoryError(f"op {op.index}: unknown type {op.type!r} (expected one of "
                               f"{', '.join(TYPES)})")
        return op


def _msg_id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Pair:
    """An invoke and its completion (None when the history ends first: treat as info)."""

    invoke: Op
    completion: Op | None

    @property
    def type(self) -> str:
        return "info" if self.completion is None else self.completion.type

    @property
    def process(self) -> str:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def value(self) -> Any:
        """The completion's value where it has one, else the invoke's."""
        if self.completion is not None and self.completion.value is not None:
            return self.completion.value
        return self.invoke.value


class _Pairing:
    """Open invokes, keyed as the pairing rule says."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str, str | None], Op] = {}

    def invoke(self, op: Op) -> None:
        key = (op.process, op.f, _msg_id(op.value))
        if key in self.open:
            other = self.open[key]
            raise HistoryError(f"op {op.index}: {op.process} invokes {op.f} while its "
                               f"invoke {other.index} is still open")
        self.open[key] = op

    def complete(self, op: Op) -> Op:
        key = (op.process, op.f, _msg_id(op.value))
        inv = self.open.pop(key, None)
        if inv is None and key[2] is None:
            matches = [k for k in self.open if k[:2] == key[:2]]
            if len(matches) == 1:
                inv = self.open.pop(matches[0])
        if inv is None:
            raise HistoryError(f"op {op.index}: {op.type} of {op.process} {op.f} "
                               f"{_msg_id(op.value) or ''} has no open invoke".replace("  ", " "))
        return inv


def pairs(history: Iterable[Op]) -> list[Pair]:
    """Every invoke with its completion, in invoke order; invokes never completed pair
    with None. Raises HistoryError for a completion without an open invoke."""
    pairing = _Pairing()
    done: dict[int, Op] = {}
    invokes: list[Op] = []
    for op in history:
        if op.type == "invoke":
            pairing.invoke(op)
            invokes.append(op)
        else:
            done[pairing.complete(op).index] = op
    return [Pair(inv, done.get(inv.index)) for inv in invokes]


def write_jsonl(history: Iterable[Op], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for op in history:
            out.write(op.to_json() + "\n")


def read_jsonl(path: str | Path) -> list[Op]:
    """Ops of a history.jsonl, checked for index order."""
    ops: list[Op] = []
    with open(path, encoding="utf-8") as src:
        for n, line in enumerate(src, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as err:
                raise HistoryError(f"{path}:{n}: not JSON: {err}") from None
            op = Op.from_dict(d)
            if ops and op.index <= ops[-1].index:
                raise HistoryError(f"{path}:{n}: index {op.index} after {ops[-1].index}")
            ops.append(op)
    return ops


class HistoryRecorder:
    """Appends ops as they happen and enforces the pairing rule while it does.

    `invoke` returns the op; `ok` / `fail` / `info` complete it (same process and f, and
    the same id for sends). `finish(time_us)` completes every still-open invoke as info
    (in index order) and returns the history."""

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._pairing = _Pairing()

    def _append(self, time_us: int, process: str, type_: OpType, f: str, value: Any) -> Op:
        if self._ops and time_us < self._ops[-1].time_us:
            raise HistoryError(f"time goes backwards: {time_us}us after "
                               f"{self._ops[-1].time_us}us")
        op = Op(len(self._ops), time_us, process, type_, f, value)
        if type_ == "invoke":
            self._pairing.invoke(op)
        else:
            self._pairing.complete(op)
        self._ops.append(op)
        return op

    def invoke(self, time_us: int, process: str, f: str, value: Any = None) -> Op:
        return self._append(time_us, process, "invoke", f, value)

    def complete(self, time_us: int, process: str, type_: OpType, f: str,
                 value: Any = None) -> Op:
        if type_ not in COMPLETIONS:
            raise HistoryError(f"{type_!r} is not a completion (expected ok, fail or info)")
        return self._append(time_us, process, type_, f, value)

    def ok(self, time_us: int, process: str, f: str, value: Any = None) -> Op:
        return self.complete(time_us, process, "ok", f, value)

    def fail(self, time_us: int, process: str, f: str, value: Any = None) -> Op:
        return self.complete(time_us, process, "fail", f, value)

    def info(self, time_us: int, process: str, f: str, value: Any = None) -> Op:
        return self.complete(time_us, process, "info", f, value)

    @property
    def open_invokes(self) -> list[Op]:
        return sorted(self._pairing.open.values(), key=lambda op: op.index)

    def finish(self, time_us: int) -> tuple[Op, ...]:
        for inv in self.open_invokes:
            value = {"id": _msg_id(inv.value)} if _msg_id(inv.value) else None
            self.info(max(time_us, self._ops[-1].time_us), inv.process, inv.f, value)
        return self.history

    @property
    def history(self) -> tuple[Op, ...]:
        return tuple(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)


History = Sequence[Op]
