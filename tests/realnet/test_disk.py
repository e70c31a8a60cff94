"""RealDisk: the runtime.Disk contract on real files, fsync as an event, errors as
values, and power-loss emulation after SIGKILL."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from realnet.disk import SYNCED_FILE, RealDisk, _error, simulate_power_loss
from simlog.runtime import Disk, DiskError

REPO = Path(__file__).resolve().parents[2]


def test_is_a_runtime_disk(tmp_path: Path) -> None:
    assert isinstance(RealDisk(tmp_path), Disk)


def test_page_cache_calls(tmp_path: Path) -> None:
    d = RealDisk(tmp_path)
    assert d.append("t-0/00.log", b"abc") == 0
    assert d.append("t-0/00.log", b"defg") == 3
    assert d.read("t-0/00.log", 1, 4) == b"bcde"
    assert d.read("t-0/00.log", 5, 100) == b"fg"
    assert d.read("t-0/00.log", 50, 10) == b""
    assert d.size("t-0/00.log") == 7
    assert d.exists("t-0/00.log") and not d.exists("t-0") and not d.exists("nope")
    assert d.pwrite("t-0/00.log", 9, b"Z") is None
    assert d.read("t-0/00.log", 0, 100) == b"abcdefg\0\0Z"
    assert d.pwrite("fresh", 2, b"x") is None and d.read("fresh", 0, 9) == b"\0\0x"
    assert d.truncate("t-0/00.log", 3) is None and d.size("t-0/00.log") == 3
    assert d.truncate("t-0/00.log", 99) is None and d.size("t-0/00.log") == 3  # never grows
    assert d.rename("t-0/00.log", "t-1/a/b.log") is None
    assert d.list() == ["fresh", "t-1/a/b.log"]
    assert d.list("t-") == ["t-1/a/b.log"]
    assert d.delete("fresh") is None and d.list() == ["t-1/a/b.log"]


def test_errors_are_values(tmp_path: Path) -> None:
    d = RealDisk(tmp_path)
    for result in (d.read("missing", 0, 1), d.size("missing"), d.delete("missing"),
                   d.rename("missing", "x"), d.truncate("missing", 0)):
        assert isinstance(result, DiskError) and result.kind == DiskError.NOT_FOUND
    for bad in ("/etc/passwd", "../escape", "a//b", SYNCED_FILE, ""):
        assert isinstance(d.append(bad, b"x"), DiskError)
        assert not d.exists(bad)
    assert not (tmp_path.parent / "escape").exists()
    # The errno mapping the core relies on.
    assert _error(OSError(errno.ENOSPC, "full"), "p").kind == DiskError.NO_SPACE
    assert _error(OSError(errno.EIO, "eio"), "p").kind == DiskError.IO_ERROR
    assert _error(OSError(errno.ENOENT, "gone"), "p").kind == DiskError.NOT_FOUND
    # A directory where a file is expected is an I/O error, not an exception.
    (tmp_path / "dir").mkdir()
    assert isinstance(d.append("dir", b"x"), DiskError)


def test_fsync_without_loop_waits_for_run_pending(tmp_path: Path) -> None:
    d = RealDisk(tmp_path)
    d.append("f", b"12345")
    done: list[DiskError | None] = []
    d.fsync("f", done.append)
    assert done == [] and d.pending == 1 and d.synced_length("f") == 0
    assert d.run_pending() == 1
    assert done == [None] and d.synced_length("f") == 5
    d.fsync("missing", done.append)
    d.run_pending()
    assert isinstance(done[-1], DiskError) and done[-1].kind == DiskError.NOT_FOUND


def test_fsync_with_schedule_hook(tmp_path: Path) -> None:
    queue: list = []
    d = RealDisk(tmp_path, schedule=queue.append)
    d.append("f", b"xy")
    done: list = []
    d.fsync("f", done.append)
    assert done == [] and len(queue) == 1
    queue.pop()()
    assert done == [None] and d.synced_length("f") == 2


def test_fsync_on_loop_completes_as_later_event(tmp_path: Path) -> None:
    async def main() -> list[str]:
        d = RealDisk(tmp_path)
        d.append("f", b"hello")
        order: list[str] = []
        d.fsync("f", lambda err: order.append(f"done:{err}"))
        order.append("returned")
        for _ in range(200):
            if len(order) == 2:
                break
            await asyncio.sleep(0.005)
        assert d.synced_length("f") == 5
        return order

    assert asyncio.run(main()) == ["returned", "done:None"]


def test_synced_lengths_follow_metadata_calls(tmp_path: Path) -> None:
    d = RealDisk(tmp_path)
    d.append("a", b"0123456789")
    d.fsync("a", lambda e: None)
    d.run_pending()
    d.truncate("a", 4)
    assert d.synced_length("a") == 4
    d.rename("a", "b")
    assert d.synced_length("a") == 0 and d.synced_length("b") == 4
    assert RealDisk(tmp_path).synced_length("b") == 4  # durable in the side file
    d.delete("b")
    assert RealDisk(tmp_path).synced_length("b") == 0


def test_queued_fsync_covers_the_file_as_it_is_when_it_runs(tmp_path: Path) -> None:
    d = RealDisk(tmp_path)
    d.append("a", b"0123456789")
    d.fsync("a", lambda e: None)
    d.truncate("a", 2)
    d.append("a", b"new")
    d.run_pending()
    assert d.synced_length("a") == 5


def test_fsync_racing_truncate_records_nothing(tmp_path: Path) -> None:
    # Loop mode measures the length in a worker thread; if the file is truncated on the
    # node's thread before the completion is recorded, the measure is stale.
    d = RealDisk(tmp_path)
    d.append("a", b"0123456789")
    generation = d._generation.get("a", 0)
    measured = d._fsync_blocking("a")
    d.truncate("a", 2)
    d.append("a", b"new-unsynced")
    assert d._record("a", generation, measured) is None
    assert d.synced_length("a") == 0


def test_power_loss_in_process(tmp_path: Path) -> None:
    d = RealDisk(tmp_path)
    d.append("log", b"durable|")
    d.fsync("log", lambda e: None)
    d.run_pending()
    d.append("log", b"volatile")
    d.append("never-synced", b"gone")
    cut = simulate_power_loss(tmp_path)
    assert cut == {"log": (16, 8), "never-synced": (4, 0)}
    d2 = RealDisk(tmp_path)
    assert d2.read("log", 0, 100) == b"durable|"
    assert d2.exists("never-synced") and d2.size("never-synced") == 0
    assert simulate_power_loss(tmp_path) == {}


WRITER = textwrap.dedent("""
    import sys, time
    from realnet.disk import RealDisk
    d = RealDisk(sys.argv[1])
    d.append("seg/0.log", b"A" * 1000)
    d.fsync("seg/0.log", lambda e: None)
    d.run_pending()
    d.append("seg/0.log", b"B" * 500)
    d.append("seg/1.log", b"C" * 50)
    print("ready", flush=True)
    time.sleep(60)
""")


@pytest.mark.realnet
def test_power_loss_after_sigkill_of_writer(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    # A process crash keeps the page cache: every byte is still there...
    assert (tmp_path / "seg/0.log").stat().st_size == 1500
    # ...power loss keeps exactly the fsynced prefix.
    assert simulate_power_loss(tmp_path) == {"seg/0.log": (1500, 1000), "seg/1.log": (50, 0)}
    assert (tmp_path / "seg/0.log").read_bytes() == b"A" * 1000


def test_full_disk_fails_only_growing_writes(tmp_path: Path) -> None:
    d = RealDisk(tmp_path)
    d.append("f", b"0123456789")
    d.set_full(True)
    err = d.append("f", b"more")
    assert isinstance(err, DiskError) and err.kind == DiskError.NO_SPACE
    assert d.pwrite("f", 2, b"ab") is None  # overwrite in place needs no space
    assert isinstance(d.pwrite("f", 8, b"abc"), DiskError)
    assert isinstance(d.append("new", b"x"), DiskError) and not d.exists("new")
    assert d.truncate("f", 4) is None and d.read("f", 0, 10) == b"01ab"
    d.fsync("f", lambda e: None)
    assert d.run_pending() == 1 and d.synced_length("f") == 4
    d.set_full(False)
    assert d.append("f", b"!") == 4


def test_fsync_delay_holds_the_completion(tmp_path: Path) -> None:
    async def main() -> None:
        d = RealDisk(tmp_path)
        d.set_fsync_delay(1.0)
        d.append("f", b"abc")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        done = asyncio.Event()
        d.fsync("f", lambda err: done.set())
        await asyncio.sleep(0.1)
        assert not done.is_set() and d.synced_length("f") == 0  # not durable yet
        await asyncio.wait_for(done.wait(), 5)
        assert loop.time() - t0 >= 1.0 and d.synced_length("f") == 3

    asyncio.run(main())


def test_fsync_of_a_file_renamed_in_flight_succeeds_without_recording(tmp_path: Path) -> None:
    async def main() -> None:
        d = RealDisk(tmp_path)
        d.append("seg.tmp", b"abcdef")
        results: list = []
        done = asyncio.Event()
        d.fsync("seg.tmp", lambda err: (results.append(err), done.set()))
        d.rename("seg.tmp", "seg.log")  # before the worker thread reports
        await asyncio.wait_for(done.wait(), 5)
        assert results == [None]
        # Conservative: the race leaves no durable record (power loss would cut it).
        assert d.synced_length("seg.log") == 0 and d.synced_length("seg.tmp") == 0

    asyncio.run(main())


def test_fsync_of_missing_file_fails_as_a_later_event_on_loop(tmp_path: Path) -> None:
    async def main() -> None:
        d = RealDisk(tmp_path)
        results: list = []
        d.fsync("nope", results.append)
        assert results == []
        await asyncio.sleep(0.01)
        assert len(results) == 1 and results[0].kind == DiskError.NOT_FOUND

    asyncio.run(main())


def test_cached_descriptors_follow_renames_and_deletes_and_stay_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import realnet.disk as disk_module
    monkeypatch.setattr(disk_module, "MAX_OPEN_FILES", 3)
    d = RealDisk(tmp_path)
    assert d.read("missing", 0, 1) == DiskError(DiskError.NOT_FOUND, "missing",
                                                d.read("missing", 0, 1).detail)
    assert not (tmp_path / "missing").exists()          # a read never creates
    d.append("a.log", b"aa")
    d.append("old.log", b"stale")
    assert d.rename("a.log", "old.log") is None           # replaces old.log's file
    assert d.append("old.log", b"bb") == 2                # through the moved descriptor
    assert (tmp_path / "old.log").read_bytes() == b"aabb"
    assert not (tmp_path / "a.log").exists()
    assert d.append("a.log", b"new") == 0                 # a fresh file, not the old fd
    assert d.delete("a.log") is None and d.append("a.log", b"x") == 0
    for i in range(10):                                   # more files than descriptors
        assert d.append(f"f{i}", b"%d" % i) == 0
        assert d.append("old.log", b"!") == 4 + i
    assert len(d._fds) <= 3
    assert all((tmp_path / f"f{i}").read_bytes() == b"%d" % i for i in range(10))
    assert d.truncate("old.log", 1) is None and d.append("old.log", b"z") == 1
    assert d.read("old.log", 0, 10) == b"az"
    d.close()
    assert d.read("old.log", 0, 10) == b"az"              # usable after close
