"""The results folder is byte-identical across processes with different hash seeds (set
and dict order of strings changes with PYTHONHASHSEED; nothing may leak into output)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from conftest import make_run
from analysis.results import write_results
from analysis.summary import build_summary
run = make_run(duration_s=4, rate_per_s=200)
summary = build_summary(scenario="s", seed=7, trace_hash="h", history=run.history,
                        recorder=run.recorder, checks={{"order": {{"result": "pass",
                        "witnesses": []}}}}, lost=0, sim_seconds=4.0, wall_seconds=1.0,
                        faults=run.faults)
write_results(sys.argv[1], summary, run.history, run.events, run.recorder, run.faults)
"""


@pytest.mark.slow
def test_results_are_identical_under_different_hash_seeds(tmp_path):
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", SCRIPT.format(here=str(HERE)), str(out)],
                       check=True, env=env, cwd=HERE.parent.parent, timeout=240)
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes()
                        for p in sorted(out.rglob("*")) if p.is_file()})
    assert sorted(outputs[0]) == sorted(outputs[1])
    assert len(outputs[0]) == 8
    for name in outputs[0]:
        assert outputs[0][name] == outputs[1][name], name
