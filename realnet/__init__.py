"""The real world: the same `simlog.runtime` interface over asyncio, TCP and real files.

Modules (one job each):
- `disk`:      `RealDisk`, the Disk on real files; `simulate_power_loss` after SIGKILL
- `runtime`:   `AsyncioRuntime`, one node incarnation's Runtime on an asyncio loop
- `transport`: framed msgpack over TCP between nodes, with per-link faults
- `host`:      `NodeHost`, one node on a loop (listener, disk, runtime, incarnations)
- `node`:      `python -m realnet.node`, one node as its own OS process
- `procs`:     `NodeProcess`, such a process driven from tests (SIGKILL, SIGSTOP, ...)
- `echo`:      a ping/pong node for transport tests; `pingpong`: latency/fsync figures

Later: the Kafka wire protocol and the broker daemon.
"""
