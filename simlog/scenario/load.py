"""Load a scenario file: YAML -> declared schema -> references -> a frozen `Scenario`.

`load(path)` / `loads(text, file)` return a `Scenario` or raise `ScenarioError`, whose
string is ONE line naming file, line, key path, the value found and what was expected:

    split_brain.yaml:14: faults[2].isolate: unknown node 'b7' (cluster has b1..b3, c1..c3)

When a file has several problems, the one on the earliest line is reported (an unknown
key before other problems on the same line), so fixing errors top-down converges.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from simlog.scenario.errors import Path, ScenarioError, did_you_mean, show
from simlog.scenario.model import Scenario
from simlog.scenario.refs import build
from simlog.scenario.schema import ScenarioSpec
from simlog.scenario.source import Source


def load(path: str | FsPath) -> Scenario:
    """Read and validate the scenario file at `path` (named as given in errors)."""
    file = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ScenarioError(file, None, (), f"cannot read the file: {reason}") from None
    return loads(text, file)


def loads(text: str, file: str = "<string>") -> Scenario:
    """Validate scenario YAML given as text; `file` names it in errors."""
    source = Source.parse(text, file)
    spec = validate_spec(source)
    return build(spec, source)


def validate_spec(source: Source) -> ScenarioSpec:
    """The schema step alone: the file as typed models, or the first error."""
    try:
        return ScenarioSpec.model_validate(source.data)
    except ValidationError as exc:
        raise first_error(exc, source, ScenarioSpec, ()) from None


def first_error(exc: ValidationError, source: Source, model: type[BaseModel],
                prefix: Path) -> ScenarioError:
    """The pydantic error on the earliest line, as a ScenarioError; `prefix` is where the
    validated value sits in the file (for models validated on a part of it)."""
    found = []
    for order, err in enumerate(exc.errors()):
        kind = err["type"]
        loc = _clean_loc(source.data, prefix, tuple(err["loc"]), kind)
        is_key = kind == "extra_forbidden"
        line = source.line_of(prefix + loc, key=is_key)
        message = _message(err, model, loc)
        path = prefix + (loc[:-1] if kind == "missing" else loc)
        found.append(((line or 0, 0 if is_key else 1, order), ScenarioError(
            source.file, line, path, message)))
    return min(found, key=lambda item: item[0])[1]


def _clean_loc(data: Any, prefix: Path, loc: tuple, kind: str) -> Path:
    """Keep the steps of pydantic's `loc` that exist in the file (dropping its internal
    steps such as `function-before[...]` and keys a shorthand value did not spell)."""
    node = data
    for step in prefix:
        node = node[step]
    out: list[str | int] = []
    for i, step in enumerate(loc):
        last = i == len(loc) - 1
        if (isinstance(node, dict) and step in node) or (isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)):
            out.append(step)
            node = node[step]
        elif last and kind == "missing" and isinstance(node, dict):
            out.append(step)
    return tuple(out)


def _unwrap(tp: Any, step: str | int) -> Any:
    """The type found one step (`step`) inside a value of type `tp`."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0], step)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is not type(None):
                inner = _unwrap(arg, step)
                if inner is not None:
                    return inner
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if step in (field.alias, name):
                return field.annotation
        return None
    if origin in (list, tuple) and isinstance(step, int):
        return typing.get_args(tp)[0]
    if origin is dict and isinstance(step, str):
        return typing.get_args(tp)[1]
    return None


def _model_of(tp: Any) -> type[BaseModel] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        models = [m for m in (_model_of(a) for a in typing.get_args(tp)) if m]
        return models[0] if models else None
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def keys_of(model: type[BaseModel], loc: Path) -> list[str]:
    """The keys the file may use at `loc` (a mapping) inside `model`."""
    tp: Any = model
    for step in loc:
        tp = _unwrap(tp, step)
        if tp is None:
            return []
    found = _model_of(tp)
    if found is None:
        return []
    return sorted((f.alias or n) for n, f in found.model_fields.items())


def _message(err: Any, model: type[BaseModel], loc: Path) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind == "extra_forbidden":
        keys = keys_of(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), keys)
        return "unknown key" + (hint or (f" (expected one of {', '.join(keys)})" if keys else ""))
    found = f", found {show(value)}"
    simple = {
        "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
        "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
        "bool_parsing": "true or false", "string_type": "a string", "list_type": "a list",
        "dict_type": "a mapping", "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }
    if kind in simple:
        return f"expected {simple[kind]}{found}"
    if kind == "literal_error":
        return f"expected one of {ctx['expected'].replace(chr(39), '')}{found}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"expected a value {bounds[kind]} {limit}{found}"
    if kind == "too_short":
        if isinstance(value, str):
            return f"expected a non-empty string{found}"
        return f"expected at least {ctx['min_length']} items, found {ctx['actual_length']}"
    if kind == "too_long":
        return f"expected at most {ctx['max_length']} items, found {ctx['actual_length']}"
    if kind == "string_pattern_mismatch":
        return f"expected a name of letters, digits, '.', '_' or '-'{found}"
    if kind == "string_too_long":
        return f"expected at most {ctx['max_length']} characters{found}"
    return f"{err['msg']}{found}"
