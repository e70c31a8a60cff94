"""`python -m realnet.pingpong`: quick figures for the real world's transport and disk.

Starts an echo node as its own process (`realnet.echo`) and drives it from a node in
this process over 127.0.0.1: round-trip latency of sequential pings, then throughput
of pipelined pings (at most `--window` in flight); then append+fsync latency of a
`RealDisk` in a temporary directory. A measuring tool, not a test: figures depend on
the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from realnet.disk import RealDisk
from realnet.echo import EchoNode, RNPing
from realnet.host import NodeHost
from realnet.procs import NodeProcess, free_ports


async def _pings(root: Path, n_rtt: int, n_tput: int, window: int, size: int) -> dict:
    port_a, port_b = free_ports(2)
    book = {"a": ("127.0.0.1", port_a), "b": ("127.0.0.1", port_b)}
    proc = NodeProcess("b", port_b, root / "b", book, "realnet.echo:EchoNode",
                       extra_args=["--log-level", "WARNING"])
    a = NodeHost("a", EchoNode, root / "a", book, port=port_a)
    await a.start()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, proc.start)
        node = a.node
        payload = bytes(size)

        async def until(count: int, timeout_s: float = 30.0) -> None:
            deadline = loop.time() + timeout_s
            while len(node.pongs) < count:
                if loop.time() > deadline:
                    raise TimeoutError(f"{len(node.pongs)} of {count} pongs")
                await asyncio.sleep(0)

        # Warm up the connection (the first sends may race the connect).
        for _ in range(200):
            a.runtime.send("b", RNPing(seq=-1))
            await asyncio.sleep(0.01)
            if node.pongs:
                break
        node.pongs.clear()
        rtts = []
        for i in range(n_rtt):
            t0 = time.perf_counter()
            a.runtime.send("b", RNPing(seq=i, payload=payload))
            await until(i + 1)
            rtts.append(time.perf_counter() - t0)
        node.pongs.clear()
        t0 = time.perf_counter()
        sent = 0
        while len(node.pongs) < n_tput:
            while sent < n_tput and sent - len(node.pongs) < window:
                a.runtime.send("b", RNPing(seq=sent, payload=payload))
                sent += 1
            await asyncio.sleep(0)
            if time.perf_counter() - t0 > 60:
                raise TimeoutError("throughput run took over 60 s")
        elapsed = time.perf_counter() - t0
        rtts.sort()
        return {
            "rtt_us_p50": round(statistics.median(rtts) * 1e6),
            "rtt_us_p99": round(rtts[int(len(rtts) * 0.99) - 1] * 1e6),
            "pipelined_msgs_per_s": round(n_tput / elapsed),
            "dropped": a.transport.stats.dropped,
        }
    finally:
        proc.stop()
        await a.close()


async def _fsyncs(root: Path, n: int, size: int) -> dict:
    disk = RealDisk(root / "fsync")
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        disk.append("f", bytes(size))
        done = asyncio.Event()
        disk.fsync("f", lambda err, ev=done: ev.set())
        await done.wait()
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return {"append_fsync_us_p50": round(statistics.median(lat) * 1e6),
            "append_fsync_us_p99": round(lat[int(len(lat) * 0.99) - 1] * 1e6)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rtt", type=int, default=2000, help="sequential pings")
    p.add_argument("--msgs", type=int, default=50_000, help="pipelined pings")
    p.add_argument("--window", type=int, default=500)
    p.add_argument("--size", type=int, default=100, help="payload bytes")
    p.add_argument("--fsyncs", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(_pings(Path(tmp), args.rtt, args.msgs, args.window, args.size))
        figures |= asyncio.run(_fsyncs(Path(tmp), args.fsyncs, 4096))
    for k, v in figures.items():
        print(f"{k:24} {v}")


if __name__ == "__main__":
    main()
