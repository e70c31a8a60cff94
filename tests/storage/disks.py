"""The two disks the storage suites run on, behind one small test-side adapter.

`SimWorld` wraps `simlog.sim.disk.SimDisk` on a `ManualDiskHost` (torn writes on
power loss); `RealWorld` wraps `realnet.disk.RealDisk` on a temporary folder (fsyncs
queued until `settle`, power loss by cutting files to their fsynced length). Both give
`disk`, `settle()` (complete pending fsyncs, running callbacks), `crash()` (the process
dies: pending callbacks are lost, the page cache stays) and `power_loss()`.
"""

from __future__ import annotations

import random
import shutil
import tempfile

from realnet.disk import RealDisk, simulate_power_loss
from simlog.sim.disk import ManualDiskHost, SimDisk
from simlog.sim.params import DiskParams


class SimWorld:
    name = "sim"

    def __init__(self, seed: int = 0, torn_writes: bool = True):
        self.host = ManualDiskHost()
        self.disk = SimDisk(
            self.host, DiskParams(torn_writes=torn_writes, dirty_expire_us=None), random.Random(seed)
        )

    def settle(self) -> None:
        self.host.run_all()

    def crash(self) -> None:
        # The node's queued callbacks die with it; the kernel still completes fsyncs
        # already issued (SimDisk's rule), which is what running them to the end models
        # once the log object is closed.
        self.host.run_all()

    def power_loss(self) -> None:
        self.disk.power_loss()
        self.host.run_all()  # drain callbacks of cancelled fsyncs (they do nothing)

    def close(self) -> None:
        pass


class RealWorld:
    name = "real"

    def __init__(self, seed: int = 0):
        self.root = tempfile.mkdtemp(prefix="simlog-storage-")
        self.disk = RealDisk(self.root)

    def settle(self) -> None:
        self.disk.run_pending()

    def crash(self) -> None:
        self.disk = RealDisk(self.root)  # queued fsyncs are lost with the process

    def power_loss(self) -> None:
        simulate_power_loss(self.root)
        self.disk = RealDisk(self.root)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


WORLDS = {"sim": SimWorld, "real": RealWorld}
