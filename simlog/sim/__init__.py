"""The deterministic SimPy world: network, disk and process models, faults, trace.

Public API: `World` (see docs/architecture.md), `SimDisk` and `ManualDiskHost`
(simlog.sim.disk), and the parameter classes.
"""

from simlog.sim.disk import ManualDiskHost, SimDisk
from simlog.sim.params import CpuParams, DiskParams, LatencyDist, LinkParams, NetworkParams
from simlog.sim.world import World

__all__ = ["CpuParams", "DiskParams", "LatencyDist", "LinkParams", "ManualDiskHost",
           "NetworkParams", "SimDisk", "World"]
