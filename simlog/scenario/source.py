"""A scenario file's YAML, parsed with the line of every key and value kept.

ruamel.yaml's round-trip loader records positions on each mapping and sequence; `Source`
keeps that tree for `line_of(path)` and hands the validators a plain copy (dict, list,
str, int, float, bool, None) so no ruamel type leaks into the schema. YAML problems
(syntax, duplicate keys, an empty file, a top level that is not a mapping) become
one-line `ScenarioError`s with the line where the parser stopped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from simlog.scenario.errors import Path, ScenarioError


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool | ScalarBoolean):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _mark_line(err: MarkedYAMLError) -> int | None:
    mark = err.problem_mark or err.context_mark
    return None if mark is None else mark.line + 1


@dataclass
class Source:
    file: str
    tree: Any   # ruamel nodes, with positions
    data: Any   # the same as plain Python values

    @classmethod
    def parse(cls, text: str, file: str) -> Source:
        yaml = YAML(typ="rt")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. a reused anchor: legal YAML
                tree = yaml.load(text)
        except MarkedYAMLError as err:
            problem = err.problem or err.context or "not valid YAML"
            if "found duplicate key" in str(err):
                problem = f"duplicate key {str(err).split('duplicate key')[1].split()[0]}"
            raise ScenarioError(file, _mark_line(err), (),
                                f"YAML syntax error: {problem}") from None
        except ReaderError as err:
            line = text[:max(err.position, 0)].count("\n") + 1
            raise ScenarioError(file, line, (), f"YAML error: character U+{int(err.character):04X} is "
                                                "not allowed in YAML") from None
        except YAMLError as err:
            raise ScenarioError(file, None, (), f"YAML error: {err}") from None
        except Exception as err:  # ruamel's own slips on odd input ('._'): still one line
            raise ScenarioError(file, None, (), f"YAML error: cannot read a value "
                                                f"({type(err).__name__}: {err})") from None
        if tree is None:
            raise ScenarioError(file, 1, (), "the file is empty (expected a scenario mapping "
                                             "with at least name and duration)")
        if not isinstance(tree, CommentedMap):
            raise ScenarioError(file, 1, (), "expected a mapping at the top level "
                                             "(name:, duration:, ...), found "
                                             f"{type(_plain(tree)).__name__}")
        return cls(file, tree, _plain(tree))

    def line_of(self, path: Path, *, key: bool = False) -> int | None:
        """1-based line of the value at `path` (of the key itself with `key=True`); where
        the path leaves the file (a missing key), the line of the deepest node that exists."""
        node: Any = self.tree
        line = 1
        for i, step in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, CommentedMap) and step in node:
                k_line, _ = node.lc.key(step)
                v_line, _ = node.lc.value(step)
                child = node[step]
                if key and last:
                    return k_line + 1
                block = isinstance(child, CommentedMap | CommentedSeq) and bool(child) \
                    and not child.fa.flow_style()
                line = (k_line if block else v_line) + 1
                node = child
            elif isinstance(node, CommentedSeq) and isinstance(step, int) and \
                    0 <= step < len(node):
                line = node.lc.item(step)[0] + 1
                node = node[step]
            else:
                break
        return line
