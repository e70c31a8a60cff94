"""Errors a scenario file can have, each rendered as ONE line a user can act on.

`ScenarioError` carries where (file, line, key path) and what (value found, expected),
so every layer (YAML parser, schema, reference checks, units) reports the same way:

    split_brain.yaml:14: faults[2].isolate: unknown node 'b7' (cluster has b1..b3, c1..c3)

`UnitError` is the plain `ValueError` the unit parsers raise; the loader attaches the
location. Paths are tuples of keys and list indexes; `format_path` renders them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NEWLINES = re.compile(r"\s*\n\s*")


class UnitError(ValueError):
    """A value that does not parse as the unit a key expects; the message says both."""


class ScenarioError(Exception):
    """A scenario file that is not valid: one line naming file, line, key path and problem."""

    def __init__(self, file: str, line: int | None, path: Path, message: str) -> None:
        self.file = file
        self.line = line
        self.path = tuple(path)
        self.message = _NEWLINES.sub(" ", message.strip())
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = format_path(self.path)
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


def format_path(path: Sequence[str | int]) -> str:
    """`("faults", 2, "isolate")` -> `faults[2].isolate`; dotted Kafka keys in brackets:
    `("cluster", "config", "min.insync.replicas")` -> `cluster.config[min.insync.replicas]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part}]"
    return out


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or '' when none is close."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def show(value: object) -> str:
    """A found value as the user wrote it: strings quoted, YAML-ish for the rest."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)
