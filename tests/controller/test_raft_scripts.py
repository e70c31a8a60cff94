"""Data-driven Raft scenarios (etcd rafttest-style): testdata/*.txt hold blocks of

    command args
    ----
    expected output

run against the in-memory cluster. SIMLOG_REWRITE=1 rewrites the expected outputs
(review the diff!). Commands: cluster voters=c1,c2,c3 [observers=b1] [seed=N];
run 2s|300ms; isolate N; cut A B; heal; crash N [power-loss]; restart N;
propose N name...; campaign N; status; events [kind,...] (emitted since last `events`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ctl_harness import Cluster
from ctl_raftnode import committed_names, raft_factory

TESTDATA = Path(__file__).resolve().parent / "testdata"
REWRITE = os.environ.get("SIMLOG_REWRITE") == "1"


def parse_duration_us(text: str) -> int:
    if text.endswith("ms"):
        return int(text[:-2]) * 1_000
    if text.endswith("s"):
        return int(text[:-1]) * 1_000_000
    return int(text)


class Script:
    def __init__(self) -> None:
        self.c: Cluster | None = None
        self.seen_events = 0

    def run(self, line: str) -> str:
        cmd, *args = line.split()
        return getattr(self, "cmd_" + cmd.replace("-", "_"))(*args)

    def cmd_cluster(self, *args: str) -> str:
        opts = dict(a.split("=", 1) for a in args)
        voters = opts["voters"].split(",")
        observers = opts.get("observers", "").split(",") if opts.get("observers") else []
        self.c = Cluster(seed=int(opts.get("seed", "1")))
        for n in voters + observers:
            self.c.add(n, raft_factory(voters))
        return self.cmd_status()

    def cmd_run(self, duration: str) -> str:
        self.c.run_for(parse_duration_us(duration))
        return self.cmd_status()

    def cmd_isolate(self, node: str) -> str:
        self.c.isolate(node)
        return "ok"

    def cmd_cut(self, a: str, b: str) -> str:
        self.c.cut(a, b)
        return "ok"

    def cmd_heal(self) -> str:
        self.c.heal()
        return "ok"

    def cmd_crash(self, node: str, *flags: str) -> str:
        self.c.crash(node, lose_unsynced="power-loss" in flags)
        return "ok"

    def cmd_restart(self, node: str) -> str:
        self.c.restart(node)
        return self.cmd_status()

    def cmd_propose(self, node: str, *names: str) -> str:
        out = []
        for name in names:
            offset = self.c.node(node).propose(name)
            out.append(f"{name}: {'rejected' if offset is None else offset}")
        return "\n".join(out)

    def cmd_campaign(self, node: str) -> str:
        self.c.node(node).raft.become_prospective()
        return "ok"

    def cmd_status(self) -> str:
        lines = [f"t={self.c.now_us // 1_000}ms"]
        for n in sorted(self.c.incarnation):
            node = self.c.node(n)
            if node is None:
                lines.append(f"{n}: down")
                continue
            r = node.raft
            lines.append(f"{n}: {r.role} epoch={r.epoch} leader={r.leader_id} "
                         f"hw={r.high_watermark} end={r.log.end_offset} "
                         f"committed={','.join(committed_names(node)) or '-'}")
        return "\n".join(lines)

    def cmd_events(self, kinds: str = "") -> str:
        wanted = set(kinds.split(",")) if kinds else None
        new = self.c.events[self.seen_events:]
        self.seen_events = len(self.c.events)
        lines = []
        for e in new:
            if wanted is None or e["kind"] in wanted:
                fields = " ".join(f"{k}={e[k]}" for k in sorted(e)
                                  if k not in ("time_us", "node", "kind"))
                lines.append(f"{e['time_us'] // 1_000}ms {e['node']} {e['kind']} {fields}".rstrip())
        return "\n".join(lines) or "(none)"


def parse(path: Path) -> list[tuple[str, str]]:
    blocks = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            i += 1
            continue
        assert lines[i + 1] == "----", f"{path}:{i + 2}: expected ----"
        j = i + 2
        out = []
        while j < len(lines) and lines[j].strip():
            out.append(lines[j])
            j += 1
        blocks.append((line, "\n".join(out)))
        i = j
    return blocks


def render(path: Path, results: list[tuple[str, str]]) -> None:
    header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
    body = "\n\n".join(f"{cmd}\n----\n{out}" for cmd, out in results)
    path.write_text("\n".join(header) + ("\n\n" if header else "") + body + "\n")


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("raft_*.txt")), ids=lambda p: p.stem)
def test_raft_script(path: Path) -> None:
    script = Script()
    results = []
    for cmd, expected in parse(path):
        actual = script.run(cmd)
        results.append((cmd, actual))
        if not REWRITE:
            assert actual == expected, f"{path.name}: {cmd}\n--- expected\n{expected}\n--- got\n{actual}"
    if REWRITE:
        render(path, results)
