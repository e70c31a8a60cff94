"""`RealDisk`: `runtime.Disk` on real files under one root directory.

What it is for: the real world's node disk, and a second `Disk` the storage layer's
property tests can run on (`RealDisk(tmp_path)`).

Semantics (the `runtime.Disk` contract):
- Paths are '/'-separated names relative to `root_dir`; parent directories are created
  as needed. Absolute paths, '..' and the reserved side-file names are refused.
- Page-cache calls (append, pwrite, read, size, exists, truncate, rename, delete, list)
  are plain synchronous syscalls. Errors are returned as `DiskError` values, never
  raised: ENOSPC/EDQUOT -> NO_SPACE, ENOENT -> NOT_FOUND, anything else -> IO_ERROR.
- `fsync(path, on_done)` completes later, as an event, never inside the call. How it
  completes depends on the mode, fixed per call:
    1. `schedule` given to the constructor: `schedule(fn)` is called with an event that
       does `os.fsync` on the calling thread and then calls on_done. (The asyncio
       runtime does not use this; it is a hook for hosts with their own event queue.)
    2. no `schedule`, an asyncio loop running: `os.fsync` runs in the loop's default
       thread executor and on_done runs on the loop (`call_soon`) when it finishes.
    3. no `schedule`, no running loop (plain unit tests): the request is queued;
       `run_pending()` performs queued fsyncs in order and calls their on_done.
- Power-loss emulation (ARCHITECTURE rule 7): the disk remembers each file's last
  fsynced length in the side file `root_dir/.simlog-synced` (JSON, replaced atomically
  on every change, so it survives SIGKILL of the process). After the process is
  killed, `simulate_power_loss(root_dir)` cuts every file back to that length; a file
  never fsynced keeps its name (metadata is durable) but loses all its bytes.
  Invariants: the recorded length of a file is never more than the bytes a completed
  fsync covered; truncate lowers it, rename moves it, delete drops it, all before the
  call returns. An fsync that races with a truncate/rename/delete of the same file
  records nothing (conservative: more is lost, never less) but still succeeds: in loop
  mode the file is opened when fsync is called, so a rename in between does not fail
  it. Overwrites (pwrite) inside
  the synced prefix are kept as written: the emulation cuts lengths, it does not
  restore old contents, nor keep torn prefixes.
- Open files: append, pwrite and read keep a bounded LRU of open descriptors (a
  broker appends to the same active segment again and again; opening it per call cost
  more than the write). truncate works through the path (the descriptor stays valid),
  rename moves a cached descriptor with its file, delete closes it. `close()` closes
  them all.
- Injected faults (the real-world side of the simulation's disk faults): `set_full(True)`
  makes every call that would grow a file return NO_SPACE (shrinking, reads, renames
  and fsync still work); `set_fsync_delay(seconds)` holds each fsync completion that
  much longer in loop mode (a slow device; the length is recorded at completion).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

from simlog.runtime import DiskError, FsyncCallback

SYNCED_FILE = ".simlog-synced"
_SYNCED_TMP = ".simlog-synced.tmp"
_RESERVED = {SYNCED_FILE, _SYNCED_TMP}
MAX_OPEN_FILES = 256

Schedule = Callable[[Callable[[], None]], None]


def _error(exc: OSError, path: str) -> DiskError:
    """Map an OSError to the DiskError value the core understands."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        kind = DiskError.NO_SPACE
    elif exc.errno == errno.ENOENT:
        kind = DiskError.NOT_FOUND
    else:
        kind = DiskError.IO_ERROR
    return DiskError(kind, path, exc.strerror or str(exc))


def _load_synced(root: Path) -> dict[str, int]:
    try:
        data = json.loads((root / SYNCED_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A corrupt side file can only come from outside meddling; losing the record
        # makes power-loss emulation lose more, never keep unsynced bytes.
        return {}
    return {str(k): int(v) for k, v in data.items()}


def _walk(root: Path) -> list[str]:
    """Every regular file under root as a '/'-separated relative path, sorted."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
            if rel not in _RESERVED:
                out.append(rel)
    out.sort()
    return out


class RealDisk:
    """A node's disk on real files. See the module docstring for the contract."""

    def __init__(self, root_dir: str | os.PathLike[str], schedule: Schedule | None = None):
        self.root = Path(root_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._schedule = schedule
        self._pending: deque[tuple[str, FsyncCallback]] = deque()
        # path -> generation; bumped by truncate/rename/delete so a racing fsync
        # completion knows its measured length no longer describes the file.
        self._generation: dict[str, int] = {}
        self._synced = _load_synced(self.root)
        self._reconcile()
        self.full = False
        self.fsync_delay_s = 0.0
        self._fds: OrderedDict[str, int] = OrderedDict()  # path -> O_RDWR fd, LRU
        self._paths: dict[str, Path | None] = {}            # path -> _abs(path), memo

    # -- injected faults -------------------------------------------------------

    def set_full(self, full: bool) -> None:
        """Disk full: writes that would grow a file fail with NO_SPACE."""
        self.full = full

    def set_fsync_delay(self, seconds: float) -> None:
        """Slow disk: every fsync completes `seconds` later (loop mode only)."""
        self.fsync_delay_s = max(0.0, seconds)

    def _no_space(self, full: Path, path: str, end: int) -> DiskError | None:
        if not self.full:
            return None
        try:
            size = full.stat().st_size
        except OSError:
            size = 0
        if end > size:
            return DiskError(DiskError.NO_SPACE, path, "disk full (injected)")
        return None

    # -- helpers -------------------------------------------------------------

    def _reconcile(self) -> None:
        """Drop records of missing files and clamp records to current sizes (a kill
        between a truncate and its record update may leave one too long)."""
        changed = False
        for path in sorted(self._synced):
            try:
                size = (self.root / path).stat().st_size
            except OSError:
                del self._synced[path]
                changed = True
                continue
            if self._synced[path] > size:
                self._synced[path] = size
                changed = True
        if changed:
            self._save_synced()

    def _save_synced(self) -> None:
        tmp = self.root / _SYNCED_TMP
        tmp.write_text(json.dumps(self._synced, sort_keys=True))
        os.replace(tmp, self.root / SYNCED_FILE)

    def _abs(self, path: str) -> Path | None:
        """The absolute file for a relative path, or None if the path is not allowed."""
        try:
            return self._paths[path]
        except KeyError:
            pass
        full = self._resolve(path)
        if len(self._paths) < 65_536:
            self._paths[path] = full
        return full

    def _resolve(self, path: str) -> Path | None:
        if not path or path.startswith("/") or "\\" in path:
            return None
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts) or path in _RESERVED:
            return None
        return self.root.joinpath(*parts)

    @staticmethod
    def _bad(path: str) -> DiskError:
        return DiskError(DiskError.IO_ERROR, path, "invalid path")

    def _bump(self, path: str) -> None:
        self._generation[path] = self._generation.get(path, 0) + 1

    def _fd(self, path: str, full: Path, create: bool) -> int:
        """A cached read-write descriptor of the file (created when `create`)."""
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        if create:
            full.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(full, os.O_RDWR | os.O_CREAT, 0o644)
        else:
            fd = os.open(full, os.O_RDWR)
        self._fds[path] = fd
        if len(self._fds) > MAX_OPEN_FILES:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def _forget_fd(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Close every cached descriptor (the disk stays usable: they reopen)."""
        while self._fds:
            os.close(self._fds.popitem()[1])

    # -- page-cache calls ------------------------------------------------------

    def append(self, path: str, data: bytes) -> int | DiskError:
        full = self._abs(path)
        if full is None:
            return self._bad(path)
        if self.full and data:
            return DiskError(DiskError.NO_SPACE, path, "disk full (injected)")
        try:
            fd = self._fd(path, full, create=True)
            pos = end = os.fstat(fd).st_size
            view = memoryview(data)
            while view:
                n = os.pwrite(fd, view, end)
                view = view[n:]
                end += n
        except OSError as exc:
            return _error(exc, path)
        return pos

    def pwrite(self, path: str, offset: int, data: bytes) -> DiskError | None:
        full = self._abs(path)
        if full is None or offset < 0:
            return self._bad(path)
        err = self._no_space(full, path, offset + len(data))
        if err is not None:
            return err
        try:
            fd = self._fd(path, full, create=True)
            view = memoryview(data)
            while view:
                n = os.pwrite(fd, view, offset)
                view = view[n:]
                offset += n
        except OSError as exc:
            return _error(exc, path)
        return None

    def read(self, path: str, offset: int, length: int) -> bytes | DiskError:
        full = self._abs(path)
        if full is None or offset < 0 or length < 0:
            return self._bad(path)
        try:
            fd = self._fd(path, full, create=False)
            chunks = []
            while length > 0:
                chunk = os.pread(fd, length, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
                length -= len(chunk)
        except OSError as exc:
            return _error(exc, path)
        return b"".join(chunks)

    def size(self, path: str) -> int | DiskError:
        full = self._abs(path)
        if full is None:
            return self._bad(path)
        try:
            st = full.stat()
        except OSError as exc:
            return _error(exc, path)
        if not full.is_file():
            return DiskError(DiskError.NOT_FOUND, path, "not a file")
        return st.st_size

    def exists(self, path: str) -> bool:
        full = self._abs(path)
        return full is not None and full.is_file()

    def truncate(self, path: str, length: int) -> DiskError | None:
        full = self._abs(path)
        if full is None or length < 0:
            return self._bad(path)
        try:
            size = full.stat().st_size
            if length < size:
                os.truncate(full, length)
        except OSError as exc:
            return _error(exc, path)
        self._bump(path)
        if self._synced.get(path, 0) > length:
            self._synced[path] = length
            self._save_synced()
        return None

    def rename(self, src: str, dst: str) -> DiskError | None:
        full_src, full_dst = self._abs(src), self._abs(dst)
        if full_src is None:
            return self._bad(src)
        if full_dst is None:
            return self._bad(dst)
        try:
            if not full_src.is_file():
                return DiskError(DiskError.NOT_FOUND, src, "no such file")
            full_dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(full_src, full_dst)
        except OSError as exc:
            return _error(exc, src)
        self._forget_fd(dst)  # the file it named is gone
        fd = self._fds.pop(src, None)
        if fd is not None:
            self._fds[dst] = fd  # the descriptor follows its file
        self._bump(src)
        self._bump(dst)
        synced = self._synced.pop(src, None)
        had_dst = self._synced.pop(dst, None)
        if synced is not None:
            self._synced[dst] = synced
        if synced is not None or had_dst is not None:
            self._save_synced()
        return None

    def delete(self, path: str) -> DiskError | None:
        full = self._abs(path)
        if full is None:
            return self._bad(path)
        try:
            os.unlink(full)
        except OSError as exc:
            return _error(exc, path)
        self._forget_fd(path)
        self._bump(path)
        if self._synced.pop(path, None) is not None:
            self._save_synced()
        return None

    def list(self, prefix: str = "") -> list[str]:
        return [p for p in _walk(self.root) if p.startswith(prefix)]

    # -- fsync -----------------------------------------------------------------

    def fsync(self, path: str, on_done: FsyncCallback) -> None:
        if self._schedule is not None:
            self._schedule(lambda: self._fsync_now(path, on_done))
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append((path, on_done))
            return
        generation = self._generation.get(path, 0)
        # Open now, on the node's thread: the fsync is of the file as named at the
        # call (an inode), even if it is renamed before the worker thread runs.
        full = self._abs(path)
        fd_or_err: int | DiskError
        if full is None:
            fd_or_err = self._bad(path)
        else:
            try:
                fd_or_err = os.open(full, os.O_RDONLY)
            except OSError as exc:
                fd_or_err = _error(exc, path)
        if isinstance(fd_or_err, DiskError):
            loop.call_soon(on_done, fd_or_err)
            return
        fut = loop.run_in_executor(None, self._fsync_fd, fd_or_err, path)

        delay_s = self.fsync_delay_s

        def complete(result: int | DiskError) -> None:
            on_done(self._record(path, generation, result))

        def finished(f: asyncio.Future[int | DiskError]) -> None:
            if delay_s > 0:
                loop.call_later(delay_s, complete, f.result())
            else:
                complete(f.result())

        fut.add_done_callback(finished)

    def run_pending(self) -> int:
        """Loop-less mode: perform queued fsyncs in call order and call their on_done.
        fsyncs requested by those callbacks run too (bounded by 1e6). Returns how many
        ran."""
        count = 0
        while self._pending and count < 1_000_000:
            path, on_done = self._pending.popleft()
            self._fsync_now(path, on_done)
            count += 1
        return count

    @property
    def pending(self) -> int:
        """Queued fsyncs in loop-less mode."""
        return len(self._pending)

    def synced_length(self, path: str) -> int:
        """The durable length recorded for path (0 if never fsynced)."""
        return self._synced.get(path, 0)

    def _fsync_now(self, path: str, on_done: FsyncCallback) -> None:
        generation = self._generation.get(path, 0)
        on_done(self._record(path, generation, self._fsync_blocking(path)))

    @staticmethod
    def _fsync_fd(fd: int, path: str) -> int | DiskError:
        """Worker thread: fsync an open fd, close it, return the length it covered."""
        try:
            length = os.fstat(fd).st_size
            os.fsync(fd)
        except OSError as exc:
            return _error(exc, path)
        finally:
            os.close(fd)
        return length

    def _fsync_blocking(self, path: str) -> int | DiskError:
        """Thread-safe: os.fsync the file and return the length it covered."""
        full = self._abs(path)
        if full is None:
            return self._bad(path)
        try:
            fd = os.open(full, os.O_RDONLY)
            try:
                length = os.fstat(fd).st_size
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            return _error(exc, path)
        return length

    def _record(self, path: str, generation: int, result: int | DiskError) -> DiskError | None:
        """On the node's thread: remember a completed fsync's length durably."""
        if isinstance(result, DiskError):
            return result
        if self._generation.get(path, 0) == generation and result > self._synced.get(path, 0):
            self._synced[path] = result
            self._save_synced()
        return None


def simulate_power_loss(root_dir: str | os.PathLike[str]) -> dict[str, tuple[int, int]]:
    """Cut every file under root_dir back to its last fsynced length (0 if never
    fsynced). Call only while no process uses the directory (after SIGKILL).
    Returns {path: (size_before, size_after)} for the files it cut."""
    root = Path(root_dir).resolve()
    synced = _load_synced(root)
    cut: dict[str, tuple[int, int]] = {}
    for path in _walk(root):
        full = root.joinpath(*path.split("/"))
        size = full.stat().st_size
        keep = min(synced.get(path, 0), size)
        if keep < size:
            os.truncate(full, keep)
            cut[path] = (size, keep)
    kept = {p: min(n, (root / p).stat().st_size) for p, n in synced.items()
            if (root / p).is_file()}
    tmp = root / _SYNCED_TMP
    tmp.write_text(json.dumps(kept, sort_keys=True))
    os.replace(tmp, root / SYNCED_FILE)
    return cut
