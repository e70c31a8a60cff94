"""A simulated disk with a page cache, fsync, writeback, power loss and media faults.

`SimDisk` implements `simlog.runtime.Disk` for one node. It keeps two images of every
file: the *page cache* (what the process reads and writes; survives a process crash)
and the *durable* image (what survives a power loss). Every write lands in the page
cache at once and is remembered as a pending write, in a disk-wide order; a write
becomes durable when

- an `fsync` of its file, issued after the write, completes (fsyncs are serialised per
  disk; each costs `fsync_latency_us` + dirty bytes / `write_bytes_per_s`, times the
  slow-disk factor), or
- background writeback reaches it (pending for longer than `dirty_expire_us`), or
- a power loss keeps it as part of a seeded *prefix* of the pending writes (writes
  reach the platter in order; the write at the cut point is torn).

Metadata calls (create by first write, truncate, rename, delete) act on both images at
once: they are durable on return, as on a journalled file system.

Decision: once issued, an fsync's durability completes at its due time even if the
node crashes (the kernel still writes the dirty pages); only the node's callback is
lost. A power loss before the due time cancels it.

Durability is settled lazily: the durable image is brought up to date (completed
fsyncs, expired writeback) only when someone can observe it: at fsync issue and
completion, at power loss, and when a test inspects it. Dirty data is tracked as the
list of pending writes, never as whole-file copies, and the durable image shares the
page cache's bytes while it is a prefix of them (see `_File`).

Costs go to the node through its host (`charge`): page-cache writes and hits cost
bytes / `memory_bytes_per_s`, reads of chunks that are not in the (bounded, LRU)
page cache cost bytes / `read_bytes_per_s`. Sub-µs costs accumulate exactly
(integer remainders), so many small writes cost what one big one does.

The host is anything with `now_us()`, `charge(cost_us)`, `schedule(delay_us, fn)`
(fn runs later as an event of the node) and `trace(kind, *fields)`; the World
provides one per node and `ManualDiskHost` is one for unit tests.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

from simlog.runtime import DiskError, FileSlice, FsyncCallback
from simlog.sim.params import DiskParams

US_PER_S = 1_000_000
PPM = 1_000_000


class DiskHost(Protocol):
    """What a SimDisk needs from the node it belongs to."""

    def now_us(self) -> int: ...

    def charge(self, cost_us: int) -> None: ...

    def schedule(self, delay_us: int, fn: Callable[[], None]) -> None: ...

    def trace(self, kind: str, *fields: Any) -> None: ...


class ManualDiskHost:
    """A host for unit tests: a clock you move by hand and a queue of callbacks.

    `busy_us` sums every cost the disk charged; `traced` keeps every trace event as
    (time_us, kind, *fields).
    """

    def __init__(self, start_us: int = 0) -> None:
        self.time_us = start_us
        self.busy_us = 0
        self.traced: list[tuple[Any, ...]] = []
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0

    def now_us(self) -> int:
        return self.time_us

    def charge(self, cost_us: int) -> None:
        self.busy_us += cost_us

    def schedule(self, delay_us: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (self.time_us + max(0, delay_us), self._seq, fn))
        self._seq += 1

    def trace(self, kind: str, *fields: Any) -> None:
        self.traced.append((self.time_us, kind, *fields))

    @property
    def pending(self) -> int:
        """Callbacks scheduled and not yet run."""
        return len(self._heap)

    def advance(self, delay_us: int) -> None:
        """Move the clock forward by delay_us, running every callback due on the way."""
        target = self.time_us + delay_us
        while self._heap and self._heap[0][0] <= target:
            at, _, fn = heapq.heappop(self._heap)
            self.time_us = max(self.time_us, at)
            fn()
        self.time_us = target

    def run_all(self) -> None:
        """Run every callback (and those they schedule) in time order."""
        while self._heap:
            at, _, fn = heapq.heappop(self._heap)
            self.time_us = max(self.time_us, at)
            fn()


class _Write:
    """One pending (not yet durable) write: data at offset of file, issued at time_us."""

    __slots__ = ("data", "done", "file", "offset", "seq", "time_us")

    def __init__(self, seq: int, file: _File, offset: int, data: bytes, time_us: int) -> None:
        self.seq = seq
        self.file = file
        self.offset = offset
        self.data = data
        self.time_us = time_us
        self.done = False


class _File:
    """A file (an inode): its page-cache bytes, its durable bytes, its pending writes.

    The durable image is *shared* while it is a prefix of the page cache
    (`durable is None`: durable = cache[:durable_len]), which is the whole life of an
    append-only log, so log bytes are held once. It is *split* into its own
    bytearray only when the two diverge below durable_len (an overwrite of durable
    bytes, or a write made durable while a later overwrite of the same bytes is still
    pending), and shared again once nothing is pending.
    """

    __slots__ = ("cache", "dirty_bytes", "durable", "durable_len", "ino", "pending")

    def __init__(self, ino: int) -> None:
        self.ino = ino
        self.cache = bytearray()
        self.durable: bytearray | None = None
        self.durable_len = 0
        self.pending: deque[_Write] = deque()
        self.dirty_bytes = 0

    def split(self) -> bytearray:
        """Give the durable image its own bytes (before cache and durable diverge)."""
        if self.durable is None:
            self.durable = bytearray(self.cache[:self.durable_len])
        return self.durable

    def maybe_share(self) -> None:
        """Nothing pending means durable == cache: hold the bytes once again."""
        if self.durable is not None and self.dirty_bytes == 0:
            self.durable = None
            self.durable_len = len(self.cache)

    def durable_image(self) -> bytes:
        if self.durable is None:
            return bytes(self.cache[:self.durable_len])
        return bytes(self.durable)


def _apply(write: _Write) -> None:
    """Put a pending write into its file's durable image and mark it done."""
    write.done = True
    data = write.data
    if not data:
        return  # clipped away by a truncate
    f = write.file
    f.dirty_bytes -= len(data)
    off = write.offset
    end = off + len(data)
    if f.durable is None:
        if off <= f.durable_len:
            with memoryview(f.cache) as view:
                same = view[off:end] == data
            if same:  # the cache still holds exactly these bytes: extend the prefix
                if end > f.durable_len:
                    f.durable_len = end
                return
        f.split()
    d = f.durable
    assert d is not None
    if off > len(d):
        d.extend(bytes(off - len(d)))
    d[off:end] = data


class SimDisk:
    """A node's simulated disk; see the module docstring. Survives crashes and restarts
    of the node: the World keeps it and hands it to each new incarnation."""

    def __init__(self, host: DiskHost, params: DiskParams | None = None,
                 rng: random.Random | None = None) -> None:
        self.host = host
        self.params = params or DiskParams()
        self.rng = rng if rng is not None else random.Random(0)
        self._files: dict[str, _File] = {}
        self._next_ino = 1
        self._seq = 0
        self._epoch = 0  # bumped by power loss: cancels fsyncs in flight
        self._writes: deque[_Write] = deque()  # pending writes, disk-wide order
        self._inflight: deque[tuple[int, _File, int, int]] = deque()  # (due, file, seq, epoch)
        self._busy_until_us = 0
        self._slow_factor = 1.0
        self._slow_ppm = PPM  # the factor as an integer, for integer-only cost maths
        self._full = False
        self._used_bytes = 0
        self._lru: OrderedDict[int, None] = OrderedDict()
        self._lru_chunks = max(1, self.params.page_cache_bytes // self.params.page_chunk_bytes)
        self._mem_acc = 0
        self._read_acc = 0
        self._chunk_bytes = self.params.page_chunk_bytes
        self._memory_bytes_per_s = self.params.memory_bytes_per_s
        self.stats = {"writes": 0, "bytes_written": 0, "reads": 0, "bytes_read": 0,
                      "read_miss_bytes": 0, "fsyncs": 0, "fsync_bytes": 0, "no_space": 0}

    # ------------------------------------------------------------------ costs

    def _charge_read_miss(self, nbytes: int) -> None:
        self._read_acc += nbytes * US_PER_S * self._slow_ppm // PPM
        cost, self._read_acc = divmod(self._read_acc, self.params.read_bytes_per_s)
        if cost:
            self.host.charge(cost)

    def _touch(self, f: _File, offset: int, length: int, write: bool) -> None:
        """Mark the chunks of [offset, offset+length) recently used; charge their cost.
        LRU keys are ints (inode << 32 | chunk index): no tuple per chunk."""
        if length <= 0:
            return
        chunk = self._chunk_bytes
        lru = self._lru
        first = offset // chunk
        last = (offset + length - 1) // chunk
        base = f.ino << 32
        miss_bytes = 0
        if first == last:  # the common case: one chunk
            key = base | first
            if key in lru:
                lru.move_to_end(key)
            else:
                lru[key] = None
                if not write:
                    miss_bytes = length
                if len(lru) > self._lru_chunks:
                    lru.popitem(last=False)
        else:
            for idx in range(first, last + 1):
                key = base | idx
                if key in lru:
                    lru.move_to_end(key)
                else:
                    lru[key] = None
                    if not write:
                        lo = max(offset, idx * chunk)
                        hi = min(offset + length, (idx + 1) * chunk)
                        miss_bytes += hi - lo
                    if len(lru) > self._lru_chunks:
                        lru.popitem(last=False)
        acc = self._mem_acc + (length - miss_bytes) * US_PER_S
        if acc >= self._memory_bytes_per_s:
            cost, self._mem_acc = divmod(acc, self._memory_bytes_per_s)
            self.host.charge(cost)
        else:
            self._mem_acc = acc
        if miss_bytes:
            self.stats["read_miss_bytes"] += miss_bytes
            self._charge_read_miss(miss_bytes)

    # ------------------------------------------------------------------ writes

    def _file_for_write(self, path: str) -> _File:
        f = self._files.get(path)
        if f is None:
            f = _File(self._next_ino)
            self._next_ino += 1
            self._files[path] = f
        return f

    def _no_space(self, path: str, growth: int) -> DiskError | None:
        cap = self.params.capacity_bytes
        if growth > 0 and (self._full or (cap is not None and self._used_bytes + growth > cap)):
            self.stats["no_space"] += 1
            self.host.trace("disk.no_space", path, growth)
            return DiskError(DiskError.NO_SPACE, path, "disk full")
        return None

    def _record(self, f: _File, offset: int, data: bytes) -> None:
        self._seq += 1
        w = _Write(self._seq, f, offset, data, self.host.now_us())
        f.pending.append(w)
        f.dirty_bytes += len(data)
        if self.params.dirty_expire_us is not None:
            self._writes.append(w)
        self.stats["writes"] += 1
        self.stats["bytes_written"] += len(data)

    def append(self, path: str, data: bytes) -> int | DiskError:
        err = self._no_space(path, len(data))
        if err is not None:
            return err
        f = self._file_for_write(path)
        pos = len(f.cache)
        if data:
            data = bytes(data)
            f.cache += data
            self._used_bytes += len(data)
            self._record(f, pos, data)
            self._touch(f, pos, len(data), True)
        self.host.trace("disk.append", path, pos, len(data))
        return pos

    def pwrite(self, path: str, offset: int, data: bytes) -> DiskError | None:
        if offset < 0:
            return DiskError(DiskError.IO_ERROR, path, f"negative offset {offset}")
        f = self._files.get(path)
        size = len(f.cache) if f is not None else 0
        growth = max(0, offset + len(data) - size)
        err = self._no_space(path, growth)
        if err is not None:
            return err
        f = self._file_for_write(path)
        if data:
            data = bytes(data)
            if f.durable is None and offset < f.durable_len:
                f.split()  # about to overwrite durable bytes in the cache
            if offset > size:  # the gap is written zeros, pending like any write
                gap = bytes(offset - size)
                f.cache.extend(gap)
                self._record(f, size, gap)
            f.cache[offset:offset + len(data)] = data
            self._used_bytes += growth
            self._record(f, offset, data)
            self._touch(f, offset, len(data), True)
        self.host.trace("disk.pwrite", path, offset, len(data))
        return None

    # ------------------------------------------------------------------ reads

    def read(self, path: str, offset: int, length: int) -> bytes | DiskError:
        f = self._files.get(path)
        if f is None:
            return DiskError(DiskError.NOT_FOUND, path)
        if offset < 0 or length < 0:
            return DiskError(DiskError.IO_ERROR, path, f"bad range {offset}+{length}")
        if length <= 16_384:  # small: a slice and a copy beat a memoryview's setup
            data = bytes(f.cache[offset:offset + length])
        else:
            with memoryview(f.cache) as view:  # one copy, not two
                data = bytes(view[offset:offset + length])
        stats = self.stats
        stats["reads"] += 1
        stats["bytes_read"] += len(data)
        self._touch(f, offset, len(data), False)
        self.host.trace("disk.read", path, offset, len(data))
        return data

    def read_slice(self, piece: FileSlice) -> bytes | DiskError:
        """Read a `FileSlice` the storage layer handed out (the sim's sendfile)."""
        return self.read(piece.path, piece.position, piece.length)

    def size(self, path: str) -> int | DiskError:
        f = self._files.get(path)
        if f is None:
            return DiskError(DiskError.NOT_FOUND, path)
        return len(f.cache)

    def exists(self, path: str) -> bool:
        return path in self._files

    def list(self, prefix: str = "") -> list[str]:
        return sorted(p for p in self._files if p.startswith(prefix))

    # ------------------------------------------------------------------ metadata

    def truncate(self, path: str, length: int) -> DiskError | None:
        f = self._files.get(path)
        if f is None:
            return DiskError(DiskError.NOT_FOUND, path)
        length = max(0, length)
        if length < len(f.cache):
            self._used_bytes -= len(f.cache) - length
            del f.cache[length:]
            if f.durable is None:
                f.durable_len = min(f.durable_len, length)
            else:
                del f.durable[length:]
            for w in f.pending:
                end = w.offset + len(w.data)
                if not w.done and end > length:
                    keep = max(0, length - w.offset)
                    f.dirty_bytes -= len(w.data) - keep
                    w.data = w.data[:keep]
        self.host.trace("disk.truncate", path, length)
        return None

    def _drop(self, f: _File) -> None:
        for w in f.pending:
            w.done = True
        f.pending.clear()
        f.dirty_bytes = 0
        self._used_bytes -= len(f.cache)

    def rename(self, src: str, dst: str) -> DiskError | None:
        f = self._files.get(src)
        if f is None:
            return DiskError(DiskError.NOT_FOUND, src)
        if src != dst:
            old = self._files.pop(dst, None)
            if old is not None:
                self._drop(old)
            self._files[dst] = self._files.pop(src)
        self.host.trace("disk.rename", src, dst)
        return None

    def delete(self, path: str) -> DiskError | None:
        f = self._files.pop(path, None)
        if f is None:
            return DiskError(DiskError.NOT_FOUND, path)
        self._drop(f)
        self.host.trace("disk.delete", path)
        return None

    # ------------------------------------------------------------------ durability

    def fsync(self, path: str, on_done: FsyncCallback) -> None:
        now = self.host.now_us()
        f = self._files.get(path)
        if f is None:
            err = DiskError(DiskError.NOT_FOUND, path)
            self.host.trace("disk.fsync", path, -1, 0)
            self.host.schedule(0, lambda: on_done(err))
            return
        self._settle(now)
        dirty = f.dirty_bytes
        cost = self.params.fsync_latency_us + dirty * US_PER_S // self.params.write_bytes_per_s
        cost = cost * self._slow_ppm // PPM
        start = max(now, self._busy_until_us)
        due = start + cost
        self._busy_until_us = due
        cutoff = self._seq
        epoch = self._epoch
        self._inflight.append((due, f, cutoff, epoch))
        self.stats["fsyncs"] += 1
        self.stats["fsync_bytes"] += dirty
        self.host.trace("disk.fsync", path, dirty, due - now)

        def done() -> None:
            if epoch != self._epoch:
                return  # power was lost before the fsync completed
            self._settle(self.host.now_us())
            self.host.trace("disk.fsync_done", path)
            on_done(None)

        self.host.schedule(due - now, done)

    @staticmethod
    def _flush_file(f: _File, cutoff_seq: int) -> None:
        pending = f.pending
        while pending and pending[0].seq <= cutoff_seq:
            w = pending.popleft()
            if not w.done:
                _apply(w)
        f.maybe_share()

    def _settle(self, now_us: int) -> None:
        """Apply completed fsyncs and expired writeback to the durable images."""
        inflight = self._inflight
        while inflight and inflight[0][0] <= now_us:
            _, f, cutoff, epoch = inflight.popleft()
            if epoch == self._epoch:
                self._flush_file(f, cutoff)
        expire = self.params.dirty_expire_us
        if expire is not None:
            writes = self._writes
            oldest = now_us - expire
            while writes and (writes[0].done or writes[0].time_us <= oldest):
                w = writes.popleft()
                if not w.done:
                    _apply(w)
                    pending = w.file.pending
                    while pending and pending[0].done:
                        pending.popleft()
                    w.file.maybe_share()

    # ------------------------------------------------------------------ faults

    def power_loss(self) -> int:
        """Lose every unsynced byte, except a seeded prefix of the pending writes when
        `torn_writes` is set. The page cache becomes the durable image. Returns the
        number of unsynced bytes kept."""
        now = self.host.now_us()
        self._settle(now)
        pending = sorted((w for f in self._files.values() for w in f.pending if not w.done),
                         key=lambda w: w.seq)
        total = sum(len(w.data) for w in pending)
        keep = self.rng.randint(0, total) if (self.params.torn_writes and total) else 0
        left = keep
        for w in pending:
            if left <= 0:
                break
            if len(w.data) > left:
                w.data = w.data[:left]
            left -= len(w.data)
            _apply(w)
        self._used_bytes = 0
        for f in self._files.values():
            f.pending.clear()
            f.dirty_bytes = 0
            if f.durable is None:
                del f.cache[f.durable_len:]
            else:
                f.cache, f.durable = f.durable, None
                f.durable_len = len(f.cache)
            self._used_bytes += len(f.cache)
        self._writes.clear()
        self._inflight.clear()
        self._epoch += 1
        self._lru.clear()
        self.host.trace("disk.power_loss", total, keep)
        return keep

    def set_slow(self, factor: float) -> None:
        """Multiply fsync and read-miss time by factor (1 = normal)."""
        if factor <= 0:
            raise ValueError("slow-disk factor must be > 0")
        self._slow_factor = float(factor)
        self._slow_ppm = round(factor * PPM)
        self.host.trace("disk.slow", self._slow_factor)

    def set_full(self, full: bool) -> None:
        """While full, every write that would add bytes fails with NO_SPACE."""
        self._full = bool(full)
        self.host.trace("disk.full", self._full)

    def corrupt(self, path: str, nbytes: int) -> list[int]:
        """Flip bits in nbytes seeded distinct positions of path (page cache, durable
        image and pending writes alike). Returns the positions, sorted."""
        f = self._files.get(path)
        if f is None or not f.cache or nbytes <= 0:
            return []
        size = len(f.cache)
        positions = sorted(self.rng.sample(range(size), min(nbytes, size)))
        for pos in positions:
            mask = self.rng.randrange(1, 256)
            f.cache[pos] ^= mask
            if f.durable is not None and pos < len(f.durable):
                f.durable[pos] ^= mask  # (a shared durable image flipped with the cache)
            for w in f.pending:
                if not w.done and w.offset <= pos < w.offset + len(w.data):
                    patched = bytearray(w.data)
                    patched[pos - w.offset] ^= mask
                    w.data = bytes(patched)
        self.host.trace("disk.corrupt", path, positions)
        return positions

    # ------------------------------------------------------------------ inspection

    @property
    def used_bytes(self) -> int:
        return self._used_bytes

    @property
    def busy_until_us(self) -> int:
        """When the device finishes the fsyncs queued so far."""
        return self._busy_until_us

    @property
    def slow_factor(self) -> float:
        return self._slow_factor

    @property
    def full(self) -> bool:
        return self._full

    def durable_bytes(self, path: str) -> bytes | None:
        """What a power loss right now would leave of path, without torn writes
        (None if the file does not exist)."""
        self._settle(self.host.now_us())
        f = self._files.get(path)
        return None if f is None else f.durable_image()

    def dirty_bytes(self, path: str) -> int:
        """Bytes of path written and not yet durable."""
        self._settle(self.host.now_us())
        f = self._files.get(path)
        return 0 if f is None else f.dirty_bytes

    def cached_bytes(self, path: str) -> bytes | None:
        """The page-cache contents of path, without charging a read."""
        f = self._files.get(path)
        return None if f is None else bytes(f.cache)
