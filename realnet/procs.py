"""Run `python -m realnet.node` processes from a test or a bench, with OS-level faults.

`NodeProcess` maps the simulation's process faults onto a real process:
crash -> SIGKILL, pause/resume -> SIGSTOP/SIGCONT, restart -> the same command over
the same data dir and port, power loss -> SIGKILL + `simulate_power_loss`; disk full,
slow fsync and clock skew -> data_dir/faults.json + SIGUSR1 (`set_faults`).
Every wait is bounded; `stop()` is idempotent and always leaves no child behind.
Only 127.0.0.1 addresses are used.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from realnet.disk import simulate_power_loss
from realnet.node import format_peers

REPO_ROOT = Path(__file__).resolve().parent.parent


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
                 extra_args: list[str] | None = None) -> None:
        self.node_id = node_id
        self.port = port
        self.data_dir = Path(data_dir)
        self.peers = peers
        self.factory = factory
        self.seed = seed
        self.clock_offset_us = clock_offset_us
        self.clock_drift = clock_drift
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[str] | None = None
        self.paused = False

    @property
    def disk_dir(self) -> Path:
        return self.data_dir / "disk"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.jsonl"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "realnet.node", "--id", self.node_id,
                "--port", str(self.port), "--peers", format_peers(self.peers),
                "--data-dir", str(self.data_dir), "--factory", self.factory,
                "--seed", str(self.seed), "--clock-offset-us", str(self.clock_offset_us),
                "--clock-drift", str(self.clock_drift), "--parent-pid", str(os.getpid()),
                *self.extra_args]

    def start(self, timeout_s: float = 10.0) -> None:
        """Spawn and wait (bounded) for its READY line."""
        self.spawn()
        self.wait_ready(timeout_s)

    def spawn(self) -> None:
        """Start the process without waiting (start several, then `wait_ready` each)."""
        if self.running:
            raise RuntimeError(f"{self.node_id} already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                          env.get("PYTHONPATH")]))
        with open(self.data_dir / "node.log", "a") as log:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log,
                                         stdin=subprocess.DEVNULL, text=True, env=env,
                                         cwd=REPO_ROOT)
        self.paused = False

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) for the READY line; on failure kill it and raise."""
        line = self._readline(timeout_s)
        if not line.startswith(f"READY {self.node_id} "):
            self.stop()
            tail = (self.data_dir / "node.log").read_text()[-2000:]
            raise RuntimeError(f"{self.node_id} did not start: {line!r}\n{tail}")

    def _readline(self, timeout_s: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return self.proc.stdout.readline() if ready else ""

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
            os.kill(self.proc.pid, signal.SIGKILL)
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
        os.kill(self.proc.pid, signal.SIGUSR1)  # type: ignore[union-attr]
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
            os.kill(self.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            self.paused = True

    def resume(self) -> None:
        if self.running:
            os.kill(self.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        self.paused = False

    def terminate(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM (graceful stop); SIGKILL if it has not exited within timeout_s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self.paused:
                self.resume()
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        self._reap()
        return self.proc.returncode if self.proc is not None else None

    def stop(self) -> None:
        """Kill if running and reap; safe to call any number of times."""
        self.crash()

    def _reap(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.stdout is not None:
            proc.stdout.close()
        self.paused = False
