"""Transport: framing, order, reconnect after a peer restarts, bad frames survived,
and the `python -m realnet.node` process entry point."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from pathlib import Path

import msgspec
import pytest

from realnet.echo import EchoNode, RNBoom, RNPing
from realnet.host import NodeHost
from realnet.procs import NodeProcess, free_ports
from realnet.transport import Hello, LinkFault, frame
from simlog.protocol import codec

pytestmark = [pytest.mark.realnet, pytest.mark.timeout(60)]


async def until(cond, timeout_s: float = 5.0, step_s: float = 0.01) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(step_s)
    return True


def echo_pair(tmp_path: Path) -> tuple[NodeHost, NodeHost, dict]:
    book: dict[str, tuple[str, int]] = {}
    a = NodeHost("a", EchoNode, tmp_path / "a", book)
    b = NodeHost("b", EchoNode, tmp_path / "b", book)
    return a, b, book


def test_frames_arrive_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        a, b, _ = echo_pair(tmp_path)
        await a.start()
        await b.start()
        try:
            for i in range(500):
                a.runtime.send("b", RNPing(seq=i, payload=bytes(i % 97)))
            assert await until(lambda: len(a.node.pongs) == 500)
            assert a.node.pongs == [("b", i) for i in range(500)]
            assert b.transport.stats.received == 500
        finally:
            await a.close()
            await b.close()
    asyncio.run(main())


def test_send_to_unreachable_peer_is_dropped(tmp_path: Path) -> None:
    async def main() -> None:
        (dead_port,) = free_ports(1)
        book = {"ghost": ("127.0.0.1", dead_port)}
        a = NodeHost("a", EchoNode, tmp_path / "a", book,
                     transport_options={"backoff_min_s": 30.0, "backoff_max_s": 60.0})
        await a.start()
        try:
            a.runtime.send("ghost", RNPing(seq=1))
            a.runtime.send("nobody", RNPing(seq=2))  # not in the address book
            assert await until(lambda: a.transport.stats.connect_failures >= 1)
            a.runtime.send("ghost", RNPing(seq=3))  # inside the backoff window
            assert a.transport.stats.dropped == 3
            assert a.runtime.alive
        finally:
            await a.close()
    asyncio.run(main())


def test_bad_frames_are_skipped_and_node_survives(tmp_path: Path) -> None:
    async def main() -> None:
        a, b, book = echo_pair(tmp_path)
        await a.start()
        await b.start()
        try:
            reader, writer = await asyncio.open_connection(*book["b"])
            writer.write(frame(msgspec.msgpack.encode(Hello("a"))))
            writer.write(frame(b"\xc1garbage"))                        # not msgpack
            writer.write(frame(msgspec.msgpack.encode({"type": "NoSuchMessage"})))
            writer.write(frame(msgspec.msgpack.encode({"type": "RNPing", "seq": "x"})))
            writer.write(frame(codec.encode(RNPing(seq=42))))
            await writer.drain()
            assert await until(lambda: ("b", 42) in a.node.pongs)
            assert b.transport.stats.bad_frames == 3
            # An oversized frame closes that connection, not the node.
            writer.write(struct.pack(">I", (64 << 20) + 1))
            await writer.drain()
            assert await reader.read() == b""
            writer.close()
            a.runtime.send("b", RNPing(seq=43))
            assert await until(lambda: ("b", 43) in a.node.pongs)
            assert b.runtime.alive
        finally:
            await a.close()
            await b.close()
    asyncio.run(main())


def test_handler_error_does_not_kill_the_node(tmp_path: Path) -> None:
    async def main() -> None:
        a, b, _ = echo_pair(tmp_path)
        await a.start()
        await b.start()
        try:
            a.runtime.send("b", RNBoom(why="test"))
            a.runtime.send("b", RNPing(seq=1))
            assert await until(lambda: a.node.pongs == [("b", 1)])
            assert b.runtime.handler_errors == 1 and b.runtime.alive
        finally:
            await a.close()
            await b.close()
    asyncio.run(main())


def test_reconnect_after_peer_process_restart(tmp_path: Path) -> None:
    async def main() -> None:
        port_a, port_b = free_ports(2)
        book = {"a": ("127.0.0.1", port_a), "b": ("127.0.0.1", port_b)}
        proc = NodeProcess("b", port_b, tmp_path / "b", book, "realnet.echo:EchoNode")
        a = NodeHost("a", EchoNode, tmp_path / "a", book, port=port_a)
        await a.start()
        try:
            proc.start()
            seq = iter(range(10_000))

            def pinged(n: int):
                for _ in range(n):
                    a.runtime.send("b", RNPing(seq=next(seq)))

            async def pong_soon() -> bool:
                # Fire and forget: keep pinging (bounded) until one comes back.
                for _ in range(200):
                    before = len(a.node.pongs)
                    pinged(1)
                    if await until(lambda b=before: len(a.node.pongs) > b, 0.05):
                        return True
                return False

            assert await pong_soon()
            await asyncio.get_running_loop().run_in_executor(None, proc.crash)
            pinged(3)  # lost with the dead peer, or dropped while backing off
            await asyncio.get_running_loop().run_in_executor(None, proc.start)
            assert await pong_soon()
            assert a.transport.stats.connects >= 2
        finally:
            proc.stop()
            await a.close()
    asyncio.run(main())


@pytest.mark.parametrize("launcher", ["exec", "fork"])
def test_node_process_reports_ready_and_stops_on_sigterm(tmp_path: Path, launcher: str) -> None:
    (port,) = free_ports(1)
    proc = NodeProcess("e1", port, tmp_path / "e1", {}, "realnet.echo:EchoNode", seed=3,
                       launcher=launcher)
    try:
        proc.start()
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        proc.crash()  # SIGKILL, then the same command over the same data dir
        assert not proc.running
        proc.start()
        t0 = time.monotonic()
        assert proc.terminate() == 0
        assert time.monotonic() - t0 < 5
        events = (proc.events_path).read_text().splitlines()
        assert sum('"kind": "started"' in e for e in events) == 2
        assert '"kind": "halt"' in events[-1]
    finally:
        proc.stop()


@pytest.mark.parametrize("launcher", ["exec", "fork"])
def test_node_process_rejects_bad_factory(tmp_path: Path, launcher: str) -> None:
    (port,) = free_ports(1)
    proc = NodeProcess("e1", port, tmp_path / "e1", {}, "realnet.echo:NoSuchThing",
                       launcher=launcher)
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            proc.start(timeout_s=10)
        assert proc.proc is not None and proc.proc.returncode == 2
    finally:
        proc.stop()


def test_faults_file_applies_on_signal_and_at_every_start(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    proc = NodeProcess("e1", port, tmp_path / "e1", {}, "realnet.echo:EchoNode")
    try:
        proc.start()
        proc.set_faults(disk_full=True, fsync_delay_s=0.5)  # waits until applied
        proc.set_faults(clock_offset_us=3_600_000_000)
        proc.restart()
        events = [json.loads(line) for line in proc.events_path.read_text().splitlines()]
        faults = [e for e in events if e["kind"] == "host_faults"]
        assert [f["seq"] for f in faults] == [1, 2, 2]  # the restart re-applied seq 2
        assert faults[-1]["disk_full"] is True and faults[-1]["fsync_delay_s"] == 0.5
        # Clock skew shows in now(): the restarted node's clock runs an hour ahead
        # of the (system-wide) monotonic clock.
        started = [e for e in events if e["kind"] == "started"]
        skew_us = started[-1]["t_us"] - time.monotonic_ns() // 1000
        assert 3_590_000_000 < skew_us < 3_600_000_000
    finally:
        proc.stop()


def test_link_faults_loss_duplicate_delay_jitter_cut(tmp_path: Path) -> None:
    async def main() -> None:
        a, b, _ = echo_pair(tmp_path)
        await a.start()
        await b.start()
        loop = asyncio.get_running_loop()
        try:
            # Warm the connection first so connect time does not blur the figures.
            a.runtime.send("b", RNPing(seq=-1))
            assert await until(lambda: len(a.node.pongs) == 1)
            a.node.pongs.clear()
            a.transport.set_link("b", LinkFault(loss=0.5))
            dropped0 = a.transport.stats.dropped
            for i in range(400):
                a.runtime.send("b", RNPing(seq=i))
            lost = a.transport.stats.dropped - dropped0
            assert 120 < lost < 280  # seeded coin flips, about half
            assert await until(lambda: len(a.node.pongs) == 400 - lost)
            seqs = [s for _, s in a.node.pongs]
            assert seqs == sorted(seqs)  # loss alone never reorders
            a.node.pongs.clear()
            a.transport.set_link("b", LinkFault(duplicate=1.0))
            a.runtime.send("b", RNPing(seq=7))
            assert await until(lambda: len(a.node.pongs) == 2)
            assert a.node.pongs == [("b", 7), ("b", 7)]
            a.node.pongs.clear()
            a.transport.set_link("b", LinkFault(delay_s=0.2))
            t0 = loop.time()
            a.runtime.send("b", RNPing(seq=8))
            assert await until(lambda: a.node.pongs == [("b", 8)])
            assert loop.time() - t0 >= 0.2
            a.node.pongs.clear()
            a.transport.set_link("b", LinkFault(jitter_s=0.05))
            for i in range(50):
                a.runtime.send("b", RNPing(seq=i))
            assert await until(lambda: len(a.node.pongs) == 50)
            seqs = [s for _, s in a.node.pongs]
            assert sorted(seqs) == list(range(50)) and seqs != sorted(seqs)  # reordered
            a.node.pongs.clear()
            a.transport.set_link("b", LinkFault(cut=True))
            b.runtime.send("a", RNPing(seq=9))  # one way only: b -> a still works...
            assert await until(lambda: a.node.pings == 1)
            await asyncio.sleep(0.1)
            assert b.node.pongs == []  # ...but the pong a sends back is cut (held)
            a.transport.set_link("b", None)
            assert await until(lambda: b.node.pongs == [("a", 9)])  # sent at the heal
            a.runtime.send("b", RNPing(seq=10))
            assert await until(lambda: a.node.pongs == [("b", 10)])
        finally:
            await a.close()
            await b.close()
    asyncio.run(main())


def test_a_paused_peer_gets_a_bounded_backlog_then_drops(tmp_path: Path) -> None:
    async def main() -> None:
        port_a, port_b = free_ports(2)
        book = {"a": ("127.0.0.1", port_a), "b": ("127.0.0.1", port_b)}
        proc = NodeProcess("b", port_b, tmp_path / "b", book, "realnet.echo:EchoNode")
        a = NodeHost("a", EchoNode, tmp_path / "a", book, port=port_a,
                     transport_options={"max_buffer_bytes": 1 << 20})
        await a.start()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, proc.start)
            for _ in range(200):  # connect and see one pong
                a.runtime.send("b", RNPing(seq=-1))
                if await until(lambda: a.node.pongs, 0.05):
                    break
            a.node.pongs.clear()
            proc.pause()
            blob = bytes(100 << 10)
            for i in range(300):  # 30 MB: more than the kernel and our buffer hold
                a.runtime.send("b", RNPing(seq=i, payload=blob))
                await asyncio.sleep(0.001)
            dropped = a.transport.stats.dropped
            assert dropped > 0
            buffered = a.transport._out["b"].writer.transport.get_write_buffer_size()
            assert buffered <= (1 << 20) + len(blob) + 64
            proc.resume()
            assert await until(lambda: len(a.node.pongs) == 300 - dropped, 20)
            seqs = [s for _, s in a.node.pongs]
            assert seqs == sorted(seqs)  # what survived arrived in order
        finally:
            proc.stop()
            await a.close()
    asyncio.run(main())
