"""NodeHost: incarnations over one disk, in-process crash, graceful shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

from realnet.host import NodeHost
from simlog.runtime import Message, NodeBase, Runtime


class HostTick(Message, frozen=True):
    n: int


class Counter(NodeBase):
    """Appends one byte per timer tick; recovers its count from disk at start."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.ticks = 0
        self.recovered = 0

    def start(self) -> None:
        size = self.rt.disk.size("ticks")
        self.recovered = 0 if not isinstance(size, int) else size
        self.rt.emit("recovered", ticks=self.recovered)
        self.rt.set_timer(10_000, self.tick)

    def tick(self) -> None:
        self.ticks += 1
        self.rt.disk.append("ticks", b"t")
        self.rt.set_timer(10_000, self.tick)

    def on_message(self, src: str, msg: Message) -> None:
        pass


def test_crash_and_restart_in_process(tmp_path: Path) -> None:
    async def main() -> None:
        host = NodeHost("k1", Counter, tmp_path / "k1", {})
        await host.start()
        try:
            await asyncio.sleep(0.1)
            first = host.node
            assert isinstance(first, Counter) and first.ticks > 0
            host.crash_node()
            frozen = first.ticks
            await asyncio.sleep(0.05)
            assert first.ticks == frozen  # a crashed incarnation's timers are dead
            host.start_node()
            second = host.node
            assert second is not first and host.incarnation == 2
            assert second.recovered == frozen  # same disk, fresh object
            host.shutdown_node()  # NodeBase.shutdown halts
            await asyncio.wait_for(host.halted.wait(), 2)
            assert host.node is None and not host.runtime.alive
        finally:
            await host.close()
        lines = (tmp_path / "k1" / "events.jsonl").read_text().splitlines()
        assert [line.count('"recovered"') for line in lines[:1]] == [1]
        assert '"halt"' in lines[-1] and '"shutdown"' in lines[-1]

    asyncio.run(main())
