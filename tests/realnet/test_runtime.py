"""AsyncioRuntime: clock, skew, timers, seeded chance, events, halt, handler errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from realnet.disk import RealDisk
from realnet.runtime import AsyncioRuntime, seeded_random
from simlog.runtime import Message, NodeBase, Runtime, Timer


class RTNote(Message, frozen=True):
    text: str


def make_rt(tmp_path: Path, **kw) -> tuple[AsyncioRuntime, list]:
    sent: list = []
    rt = AsyncioRuntime("n1", RealDisk(tmp_path / "disk"), lambda d, m: sent.append((d, m)), **kw)
    return rt, sent


def test_is_a_runtime(tmp_path: Path) -> None:
    async def main() -> None:
        rt, _ = make_rt(tmp_path)
        assert isinstance(rt, Runtime)
        assert isinstance(rt.set_timer(10, lambda: None), Timer)
    asyncio.run(main())


def test_clock_is_integer_us_with_offset_and_drift(tmp_path: Path) -> None:
    async def main() -> None:
        plain, _ = make_rt(tmp_path)
        skewed, _ = make_rt(tmp_path, clock_offset_us=5_000_000)
        fast, _ = make_rt(tmp_path, clock_drift=1.0)  # runs twice as fast
        a0, f0 = plain.now(), fast.now()
        assert isinstance(a0, int)
        assert 4_900_000 < skewed.now() - plain.now() < 5_100_000
        await asyncio.sleep(0.2)
        da, df = plain.now() - a0, fast.now() - f0
        assert da >= 190_000  # a sleep never ends early (and may end late on a busy box)
        assert 1.7 < df / da < 2.3
        plain.set_clock(offset_us=-1_000_000)
        assert plain.now() < a0
    asyncio.run(main())


def test_timers_fire_in_order_and_cancel(tmp_path: Path) -> None:
    async def main() -> None:
        rt, _ = make_rt(tmp_path)
        fired: list[tuple[str, int]] = []
        t0 = rt.now()
        rt.set_timer(60_000, lambda: fired.append(("b", rt.now() - t0)))
        rt.set_timer(20_000, lambda: fired.append(("a", rt.now() - t0)))
        gone = rt.set_timer(40_000, lambda: fired.append(("cancelled", 0)))
        assert gone.active
        gone.cancel()
        gone.cancel()  # idempotent
        assert not gone.active
        for _ in range(500):
            if len(fired) == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the cancelled one would have fired by now
        assert [k for k, _ in fired] == ["a", "b"]
        assert fired[0][1] >= 20_000 and fired[1][1] >= 60_000
    asyncio.run(main())


def test_drifted_timer_fires_on_the_node_clock(tmp_path: Path) -> None:
    async def main() -> None:
        fast, _ = make_rt(tmp_path, clock_drift=1.0)
        plain, _ = make_rt(tmp_path)
        order: list[str] = []
        t0 = fast.now()
        plain.set_timer(150_000, lambda: order.append("plain 150ms"))
        fast.set_timer(200_000, lambda: order.append(f"fast 200ms:{fast.now() - t0}"))
        for _ in range(500):
            if len(order) == 2:
                break
            await asyncio.sleep(0.01)
        # 200 ms of a clock running twice as fast is 100 ms of real time.
        assert order[0].startswith("fast 200ms") and order[1] == "plain 150ms"
        assert int(order[0].split(":")[1]) >= 200_000
    asyncio.run(main())


def test_random_is_seeded_by_seed_and_node() -> None:
    a = [seeded_random(7, "node", "n1").random() for _ in range(2)]
    assert a[0] == a[1]
    assert seeded_random(7, "node", "n1").random() != seeded_random(7, "node", "n2").random()
    assert seeded_random(7, "node", "n1").random() != seeded_random(8, "node", "n1").random()


def test_emit_writes_json_lines(tmp_path: Path) -> None:
    async def main() -> None:
        with open(tmp_path / "ev.jsonl", "w") as f:
            rt, _ = make_rt(tmp_path, event_log=f)
            rt.emit("leader_elected", leader="n1", epoch=3)
        line = json.loads((tmp_path / "ev.jsonl").read_text())
        assert line["kind"] == "leader_elected" and line["node"] == "n1"
        assert line["epoch"] == 3 and isinstance(line["t_us"], int)
    asyncio.run(main())


class Flaky(NodeBase):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.got: list[str] = []

    def on_message(self, src: str, msg: Message) -> None:
        assert isinstance(msg, RTNote)
        if msg.text == "boom":
            raise ValueError("boom")
        self.got.append(msg.text)


def test_handler_error_is_logged_and_node_continues(tmp_path: Path, caplog) -> None:
    async def main() -> None:
        events: list[dict] = []
        rt, _ = make_rt(tmp_path)
        rt.listeners.append(events.append)
        node = Flaky(rt)
        rt.attach(node)
        rt.deliver("x", RTNote(text="boom"))
        rt.deliver("x", RTNote(text="after"))
        assert node.got == ["after"] and rt.alive and rt.handler_errors == 1
        assert events[0]["kind"] == "handler_error" and "boom" in events[0]["error"]
    asyncio.run(main())
    assert any("node n1: handler" in r.getMessage() for r in caplog.records)


def test_halt_on_error_option(tmp_path: Path) -> None:
    async def main() -> None:
        rt, _ = make_rt(tmp_path, halt_on_error=True)
        node = Flaky(rt)
        rt.attach(node)
        rt.deliver("x", RTNote(text="boom"))
        assert not rt.alive and rt.halt_reason and "boom" in rt.halt_reason
    asyncio.run(main())


def test_halt_drops_timers_sends_and_fsync_callbacks(tmp_path: Path) -> None:
    async def main() -> None:
        halted: list[str] = []
        rt, sent = make_rt(tmp_path, on_halt=halted.append)
        fired: list[int] = []
        rt.set_timer(10_000, lambda: fired.append(1))
        rt.disk.append("f", b"x")
        rt.disk.fsync("f", lambda err: fired.append(2))
        rt.halt("disk failure")
        rt.send("n2", RTNote(text="late"))
        await asyncio.sleep(0.05)
        assert fired == [] and sent == [] and halted == ["disk failure"]
        assert not rt.set_timer(1, lambda: None).active
    asyncio.run(main())


def test_fsync_callback_runs_as_a_later_event(tmp_path: Path) -> None:
    async def main() -> None:
        rt, _ = make_rt(tmp_path)
        order: list[str] = []
        rt.disk.append("f", b"abc")
        rt.disk.fsync("f", lambda err: order.append(f"fsynced:{err}"))
        order.append("returned")
        for _ in range(200):
            if len(order) == 2:
                break
            await asyncio.sleep(0.005)
        assert order == ["returned", "fsynced:None"]
    asyncio.run(main())


def test_send_to_self_is_delivered_later(tmp_path: Path) -> None:
    async def main() -> None:
        rt, sent = make_rt(tmp_path)
        node = Flaky(rt)
        rt.attach(node)
        rt.send("n1", RTNote(text="me"))
        assert node.got == []
        await asyncio.sleep(0.01)
        assert node.got == ["me"] and sent == []
    asyncio.run(main())
