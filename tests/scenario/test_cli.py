"""`simlog validate FILE`: exit 0 with OK and a summary, or exit 2 with one line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from simlog.cli import cli

DATA = Path(__file__).parent / "data"


def run(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def test_valid_file_prints_ok_and_summary():
    result = run(str(DATA / "contract_example.yaml"))
    assert result.exit_code == 0
    assert result.output.startswith("OK split-brain: 1m, seed 42, 3 brokers, 3 controllers")
    assert result.output.count("\n") == 1


def test_invalid_file_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "split_brain.yaml"
    bad.write_text("name: x\nduration: 1s\nfaults:\n  - {at: 0s, isolate: b7}\n")
    result = run(str(bad))
    assert result.exit_code == 2
    assert result.output == (f"{bad}:4: faults[0].isolate: unknown node 'b7' "
                             "(cluster has b1..b3, c1..c3)\n")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_every_kind_of_unreadable_input_exits_2(tmp_path):
    cases = {"empty.yaml": "", "syntax.yaml": "name: [\n", "binary.yaml": b"\xff\xfe\x00",
             "types.yaml": "name: 3\nduration: 1s\n", "units.yaml": "name: x\nduration: 1y\n"}
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        result = run(str(path))
        assert result.exit_code == 2, (name, result.output)
        assert result.output.startswith(str(path)) and result.output.count("\n") == 1
        assert "Traceback" not in result.output
    missing = run(str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2
    assert "cannot read the file: No such file or directory" in missing.output
