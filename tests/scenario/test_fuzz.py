"""Bad input never escapes as anything but a one-line ScenarioError (no traceback, ever)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from simlog.scenario.errors import ScenarioError
from simlog.scenario.load import loads
from simlog.scenario.source import Source
from simlog.testing.strategies import to_yaml

BASE = Source.parse((Path(__file__).parent / "data" / "every_fault.yaml").read_text(),
                    "x").data

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["10s", "-1s", "1MiB", "max", "all", "b9", "leader(orders/99)",
                     "orders/0", "random(x)", "1e400", "0x10", ""]),
    st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=5),
                                                             st.integers(), max_size=2))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)


def _mutate(data: Any, path: tuple, how: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"{last}x"] = value
    return data


def _assert_one_line_error(text: str) -> None:
    try:
        loads(text, "fuzz.yaml")
    except ScenarioError as err:
        message = str(err)
        assert message.startswith("fuzz.yaml") and "\n" not in message, message


# Each example parses a 60-line file with ruamel's pure-Python loader (~0.1 s): a quarter
# of the profile's examples keeps the default run fast; the long profile scales it up.
@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "add"]),
                          junk), min_size=1, max_size=3))
@example([(("workload", "consumers"), "replace", None)])
@example([(("faults", 17, "add_broker"), "replace", None)])
def test_mutated_valid_file_loads_or_fails_in_one_line(mutations):
    data = BASE
    for path, how, value in mutations:
        try:
            data = _mutate(data, path, how, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    _assert_one_line_error(to_yaml(data))


@given(st.text(max_size=200))
@example("._")       # ruamel itself raises ValueError here
@example("\x1f")     # a reader error, not a syntax error
def test_arbitrary_text_fails_in_one_line(text):
    _assert_one_line_error(text)


@given(st.lists(st.sampled_from(["name: x\n", "duration: 1s\n", "faults:\n", "  - ", "{at: 1s",
                                 ", crash: b1}", "\n", "checks: [", "]", "  - at: 2s\n",
                                 "    heal: ", "all\n", "&a ", "*a\n", "<<: *a\n", "\t",
                                 "topics: [{name: t}]\n", "'", '"', "- ", ": "]),
                max_size=15))
def test_yaml_fragments_fail_in_one_line(parts):
    _assert_one_line_error("".join(parts))
