"""`--export-disks DIR`: every node's final simulated disk as real files.

The layout is the disk's own paths under DIR/NODE/ — for brokers Kafka's
(`DIR/b1/orders-0/00000000000000000000.log`, `.index`, `.timeindex`, checkpoints), so
`simlog dump-log` (and Kafka's own tools) can read them. What is written is the page
cache as the run left it (what a process restart would see).
"""

from __future__ import annotations

from pathlib import Path

from simlog.sim import World


def export_disks(world: World, out_dir: Path) -> list[Path]:
    written = []
    for node in world.node_ids:
        disk = world.disk(node)
        for path in disk.list():
            size = disk.size(path)
            data = disk.read(path, 0, size) if isinstance(size, int) else b""
            if not isinstance(data, bytes):
                continue
            target = out_dir / node / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
    return written
