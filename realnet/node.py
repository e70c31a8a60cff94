"""`python -m realnet.node`: run one node as its own OS process.

    python -m realnet.node --id n1 --port 9001 --data-dir /tmp/n1 \
        --peers n1=127.0.0.1:9001,n2=127.0.0.1:9002 \
        --factory simlog.examples.replicated_log:factory --seed 7

Tests drive faults through the OS: SIGKILL is a crash (then
`realnet.disk.simulate_power_loss(data_dir/"disk")` turns it into a power loss),
SIGSTOP/SIGCONT pause and resume, and a restart is the same command over the same data
dir. SIGTERM/SIGINT ask for a graceful stop (node.shutdown()); SIGUSR1 re-reads
data_dir/faults.json (disk full, slow fsync, clock skew: see `NodeHost.apply_faults`). Once listening the
process prints one line `READY <node id> <port>` on stdout. It exits 0 after the node
halts, 2 on bad arguments. With `--parent-pid` it dies with that parent (Linux
PR_SET_PDEATHSIG, even while stopped, plus a check of its parent every second), so a
test runner that is killed leaves no node behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib
import logging
import os
import signal
import sys

from realnet.host import NodeHost
from simlog.runtime import NodeFactory


def parse_peers(text: str) -> dict[str, tuple[str, int]]:
    """"a=127.0.0.1:9001,b=127.0.0.1:9002" -> {"a": ("127.0.0.1", 9001), ...}"""
    peers: dict[str, tuple[str, int]] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        node_id, _, addr = item.partition("=")
        host, _, port = addr.rpartition(":")
        if not node_id or not host or not port.isdigit():
            raise ValueError(f"bad peer {item!r}: want id=host:port")
        peers[node_id] = (host, int(port))
    return peers


def format_peers(peers: dict[str, tuple[str, int]]) -> str:
    return ",".join(f"{k}={h}:{p}" for k, (h, p) in sorted(peers.items()))


def load_factory(path: str) -> NodeFactory:
    """"package.module:attr.sub" -> the callable it names."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"bad factory {path!r}: want module:callable")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{path} is not callable")
    return obj  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m realnet.node", description=__doc__.split("\n")[0])
    p.add_argument("--id", required=True, help="this node's id")
    p.add_argument("--port", type=int, required=True, help="listen port on --host (0: any)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--peers", default="", help="address book: id=host:port,...")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--factory", required=True, help="module:callable building the node")
    p.add_argument("--seed", default="0")
    p.add_argument("--clock-offset-us", type=int, default=0)
    p.add_argument("--clock-drift", type=float, default=0.0)
    p.add_argument("--halt-on-error", action="store_true")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--parent-pid", type=int, default=None,
                   help="exit when this process (our parent) dies")
    return p


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to SIGKILL us when our parent exits; False if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return os.getppid() == parent_pid


def _watch_parent(loop: asyncio.AbstractEventLoop, parent_pid: int) -> None:
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    loop.call_later(1.0, _watch_parent, loop, parent_pid)


async def run(args: argparse.Namespace) -> int:
    host = NodeHost(
        args.id, load_factory(args.factory), args.data_dir, parse_peers(args.peers),
        port=args.port, host=args.host, seed=args.seed,
        clock_offset_us=args.clock_offset_us, clock_drift=args.clock_drift,
        halt_on_error=args.halt_on_error)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.shutdown_node)
    loop.add_signal_handler(signal.SIGUSR1, host.reload_faults)
    if args.parent_pid is not None:
        _watch_parent(loop, args.parent_pid)
    port = await host.start()
    print(f"READY {args.id} {port}", flush=True)
    assert host.halted is not None
    try:
        await host.halted.wait()
    finally:
        await host.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {args.id} %(name)s %(levelname)s %(message)s")
    if args.parent_pid is not None and not die_with_parent(args.parent_pid):
        return 0
    try:
        load_factory(args.factory)
        parse_peers(args.peers)
    except (ValueError, ImportError, AttributeError) as exc:
        parser.error(str(exc))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
