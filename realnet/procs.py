"""Run `python -m realnet.node` processes from a test or a bench, with OS-level faults.

`NodeProcess` maps the simulation's process faults onto a real process:
crash -> SIGKILL, pause/resume -> SIGSTOP/SIGCONT, restart -> the same command over
the same data dir and port, power loss -> SIGKILL + `simulate_power_loss`; disk full,
slow fsync and clock skew -> data_dir/faults.json + SIGUSR1 (`set_faults`).
Every wait is bounded; `stop()` is idempotent and always leaves no child behind.
Only 127.0.0.1 addresses are used.

Two launchers run the same `realnet.node.main`: "exec" starts `python -m realnet.node`
(a fresh interpreter: the real thing, ~0.3-1 s to start), "fork" forks it from a
multiprocessing fork server that has the modules imported already (a few ms; what
test clusters use). Either way the node is its own OS process; its stdout (the READY
line) goes to data_dir/stdout.log and its stderr to data_dir/node.log.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from realnet.disk import simulate_power_loss
from realnet.node import format_peers

REPO_ROOT = Path(__file__).resolve().parent.parent
FORK_PRELOAD = ["realnet.node", "realnet.host", "realnet.echo",
                "simlog.examples.replicated_log"]


def _run_forked_node(argv: list[str], stdout_path: str, stderr_path: str) -> None:
    """In the forked child: point fds 0/1/2 at /dev/null and the log files, run main."""
    from realnet import node

    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    sys.exit(node.main([*argv, "--parent-pid", str(os.getppid())]))


class _ForkedProc:
    """A node forked from the fork server, with the bits of Popen's API we use."""

    _ctx: multiprocessing.context.BaseContext | None = None

    def __init__(self, argv: list[str], stdout_path: Path, stderr_path: Path) -> None:
        if _ForkedProc._ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(FORK_PRELOAD)
            _ForkedProc._ctx = ctx
        self._p = _ForkedProc._ctx.Process(
            target=_run_forked_node, args=(argv, str(stdout_path), str(stderr_path)),
            daemon=True)
        self._p.start()
        self.pid: int = self._p.pid  # type: ignore[assignment]

    def poll(self) -> int | None:
        return self._p.exitcode

    @property
    def returncode(self) -> int | None:
        return self._p.exitcode


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports the OS says are free on 127.0.0.1 (bound, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class NodeProcess:
    """One node as a child process. Its stderr goes to data_dir/node.log."""

    def __init__(self, node_id: str, port: int, data_dir: str | os.PathLike[str],
                 peers: dict[str, tuple[str, int]], factory: str, *, seed: int | str = 0,
                 clock_offset_us: int = 0, clock_drift: float = 0.0,
                 extra_args: list[str] | None = None, launcher: str = "exec") -> None:
        if launcher not in ("exec", "fork"):
            raise ValueError(f"launcher must be exec or fork, not {launcher!r}")
        self.launcher = launcher
        self.node_id = node_id
        self.port = port
        self.data_dir = Path(data_dir)
        self.peers = peers
        self.factory = factory
        self.seed = seed
        self.clock_offset_us = clock_offset_us
        self.clock_drift = clock_drift
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | _ForkedProc | None = None
        self.paused = False
        self._stdout_seen = 0

    @property
    def disk_dir(self) -> Path:
        return self.data_dir / "disk"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.jsonl"

    @property
    def stdout_path(self) -> Path:
        return self.data_dir / "stdout.log"

    def node_args(self) -> list[str]:
        return ["--id", self.node_id,
                "--port", str(self.port), "--peers", format_peers(self.peers),
                "--data-dir", str(self.data_dir), "--factory", self.factory,
                "--seed", str(self.seed), "--clock-offset-us", str(self.clock_offset_us),
                "--clock-drift", str(self.clock_drift), *self.extra_args]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "realnet.node", *self.node_args(),
                "--parent-pid", str(os.getpid())]

    def start(self, timeout_s: float = 10.0) -> None:
        """Spawn and wait (bounded) for its READY line."""
        self.spawn()
        self.wait_ready(timeout_s)

    def spawn(self) -> None:
        """Start the process without waiting (start several, then `wait_ready` each)."""
        if self.running:
            raise RuntimeError(f"{self.node_id} already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path.touch()
        self._stdout_seen = self.stdout_path.stat().st_size
        if self.launcher == "fork":
            self.proc = _ForkedProc(self.node_args(), self.stdout_path,
                                    self.data_dir / "node.log")
        else:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                              env.get("PYTHONPATH")]))
            with open(self.stdout_path, "ab") as out, open(self.data_dir / "node.log", "ab") as err:
                self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err,
                                             stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
        self.paused = False

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) for this start's READY line; on failure kill it and raise."""
        deadline = time.monotonic() + timeout_s
        want = f"READY {self.node_id} "
        line = ""
        while time.monotonic() < deadline:
            with open(self.stdout_path, "rb") as f:
                f.seek(self._stdout_seen)
                fresh = f.read().decode(errors="replace")
            line = next((x for x in fresh.splitlines() if x.startswith(want)), "")
            if line or not self.running:
                break
            time.sleep(0.005)
        if not line:
            self.stop()
            tail = (self.data_dir / "node.log").read_text()[-2000:]
            raise RuntimeError(f"{self.node_id} did not start\n{tail}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def crash(self) -> None:
        """SIGKILL: the process dies at once; the page cache (its files) stays."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGKILL)
        self._reap()

    def power_loss(self) -> dict[str, tuple[int, int]]:
        """SIGKILL, then cut every file back to its last fsynced length."""
        self.crash()
        return simulate_power_loss(self.disk_dir)

    def set_faults(self, timeout_s: float = 5.0, **faults: object) -> None:
        """Merge faults into data_dir/faults.json (read at every start) and, if the
        process runs and is not paused, signal it and wait (bounded) until applied.
        Keys: disk_full, fsync_delay_s, clock_offset_us, clock_drift."""
        path = self.data_dir / "faults.json"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            current = json.loads(path.read_text())
        except (OSError, ValueError):
            current = {}
        current.update(faults)
        seq = int(current.get("seq", 0)) + 1
        current["seq"] = seq
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, sort_keys=True))
        os.replace(tmp, path)
        if not self.running:
            return
        self._signal(signal.SIGUSR1)
        if self.paused:
            return  # delivered at resume
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._applied(seq) or not self.running:
                return  # applied, or it exited (halted): applied at next start
            time.sleep(0.01)
        raise TimeoutError(f"{self.node_id} did not apply faults {faults}")

    def _applied(self, seq: int) -> bool:
        if not self.events_path.exists():
            return False
        for line in self.events_path.read_text().splitlines():
            if '"host_faults"' not in line:
                continue
            try:
                if json.loads(line).get("seq") == seq:
                    return True
            except ValueError:
                continue
        return False

    def restart(self, timeout_s: float = 10.0) -> None:
        self.crash()
        self.start(timeout_s)

    def pause(self) -> None:
        if self.running:
            self._signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.running:
            self._signal(signal.SIGCONT)
        self.paused = False

    def terminate(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM (graceful stop); SIGKILL if it has not exited within timeout_s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self.paused:
                self.resume()
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        self._reap()
        return self.proc.returncode if self.proc is not None else None

    def _signal(self, sig: int) -> None:
        """Signal the process; one that has just died (and been reaped by the fork
        server) is not an error."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        """Kill if running and reap; safe to call any number of times."""
        self.crash()

    def _reap(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        self.paused = False
