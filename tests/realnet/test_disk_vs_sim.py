"""RealDisk and the simulation's SimDisk answer every Disk call alike.

A differential property: random sequences of calls go to both disks (the sim one
without torn writes or background writeback, which RealDisk's emulation does not
model), every result must match (errors by kind), and after a power loss both keep
the same file lengths. RealDisk keeps overwritten bytes inside the synced prefix as
written (documented), so its contents are checked against its own page cache.
"""

from __future__ import annotations

import random
import tempfile

from hypothesis import example, given
from hypothesis import strategies as st

from realnet.disk import RealDisk, simulate_power_loss
from simlog.runtime import DiskError
from simlog.sim.disk import ManualDiskHost, SimDisk
from simlog.sim.params import DiskParams

PATHS = st.sampled_from(["a", "b", "d/c"])
SMALL = st.integers(0, 20)
DATA = st.binary(max_size=8)
OPS = st.one_of(
    st.tuples(st.just("append"), PATHS, DATA),
    st.tuples(st.just("pwrite"), PATHS, SMALL, DATA),
    st.tuples(st.just("read"), PATHS, SMALL, SMALL),
    st.tuples(st.just("size"), PATHS),
    st.tuples(st.just("exists"), PATHS),
    st.tuples(st.just("truncate"), PATHS, SMALL),
    st.tuples(st.just("rename"), PATHS, PATHS),
    st.tuples(st.just("delete"), PATHS),
    st.tuples(st.just("list"), st.sampled_from(["", "a", "d", "d/"])),
    st.tuples(st.just("fsync"), PATHS),
)


def norm(result: object) -> object:
    return ("error", result.kind) if isinstance(result, DiskError) else result


class Pair:
    def __init__(self, root: str) -> None:
        self.host = ManualDiskHost()
        self.sim = SimDisk(self.host, DiskParams(torn_writes=False, dirty_expire_us=None),
                           random.Random(0))
        self.real = RealDisk(root)
        self.root = root

    def apply(self, op: tuple) -> tuple[object, object]:
        name, *args = op
        if name == "fsync":
            got_sim: list = []
            got_real: list = []
            self.sim.fsync(args[0], got_sim.append)
            self.real.fsync(args[0], got_real.append)
            self.host.run_all()
            self.real.run_pending()
            return [norm(x) for x in got_sim], [norm(x) for x in got_real]
        return norm(getattr(self.sim, name)(*args)), norm(getattr(self.real, name)(*args))


@given(st.lists(OPS, max_size=40))
# Sequences random search rarely builds, each a past or plausible bug:
@example([("append", "a", b"0123456789"), ("fsync", "a"), ("truncate", "a", 4),
          ("append", "a", b"xyz")])                        # truncate lowers the record
@example([("append", "a", b"abc"), ("fsync", "a"), ("rename", "a", "b"),
          ("append", "a", b"new")])                        # rename moves the record
@example([("append", "a", b"abc"), ("fsync", "a"), ("delete", "a"),
          ("append", "a", b"again")])                      # delete drops the record
@example([("append", "b", b"old"), ("fsync", "b"), ("append", "a", b"abcd"),
          ("fsync", "a"), ("rename", "a", "b")])           # rename replaces the target
def test_same_answers_and_same_survivors_after_power_loss(ops: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as root:
        pair = Pair(root)
        for op in ops:
            sim, real = pair.apply(op)
            assert sim == real, op
        assert pair.sim.list() == pair.real.list()
        cache = {p: pair.real.read(p, 0, 1 << 20) for p in pair.real.list()}
        pair.sim.power_loss()
        pair.host.run_all()
        simulate_power_loss(root)
        after = RealDisk(root)
        assert pair.sim.list() == after.list()
        for path in after.list():
            assert after.size(path) == pair.sim.size(path), path
            assert after.read(path, 0, 1 << 20) == cache[path][:after.size(path)]
