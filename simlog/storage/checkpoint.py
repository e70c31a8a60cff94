"""Checkpoint files: small text files replaced atomically (tmp + fsync + rename).

Formats are Kafka's (CheckpointFile.scala): a version line "0", a count line, then one
entry per line.
- offsets (recovery point, high watermark, log start): "<topic> <partition> <offset>"
- leader epochs: "<epoch> <start offset>"

Invariant: the real file is only ever replaced by a fully fsynced tmp file, and the
rename is durable on return (Disk contract), so after any crash the file holds either
the previous or the new content, never a mix. Writes are serialized: a write asked for
while one is in flight is queued, and only the latest queued content is written.
"""

from __future__ import annotations

from collections.abc import Callable

from simlog.runtime import Disk, DiskError

Done = Callable[[DiskError | None], None]


def format_offsets(topic: str, partition: int, offset: int) -> bytes:
    return f"0\n1\n{topic} {partition} {offset}\n".encode()


def parse_offsets(data: bytes) -> int | None:
    """The single offset of an offsets checkpoint; None if the file is not one."""
    lines = _lines(data)
    if lines is None or len(lines) != 1:
        return None
    parts = lines[0].split(" ")
    if len(parts) < 3:
        return None
    try:
        value = int(parts[-1])
    except ValueError:
        return None
    return value if value >= 0 else None


def format_epochs(entries: list[tuple[int, int]]) -> bytes:
    body = "".join(f"{e} {o}\n" for e, o in entries)
    return f"0\n{len(entries)}\n{body}".encode()


def parse_epochs(data: bytes) -> list[tuple[int, int]] | None:
    lines = _lines(data)
    if lines is None:
        return None
    out = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 2:
            return None
        try:
            out.append((int(parts[0]), int(parts[1])))
        except ValueError:
            return None
    return out


def _lines(data: bytes) -> list[str] | None:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n"):
        return None
    lines = text[:-1].split("\n")
    if len(lines) < 2 or lines[0] != "0":
        return None
    try:
        n = int(lines[1])
    except ValueError:
        return None
    if n != len(lines) - 2:
        return None
    return lines[2:]


def read_file(disk: Disk, path: str) -> bytes | None:
    """Whole content of path, or None if it is missing or unreadable."""
    size = disk.size(path)
    if isinstance(size, DiskError):
        return None
    data = disk.read(path, 0, size)
    return None if isinstance(data, DiskError) else data


class CheckpointFile:
    """One checkpoint path; see the module docstring."""

    def __init__(self, disk: Disk, path: str):
        self.disk = disk
        self.path = path
        self.tmp = path + ".tmp"
        self._in_flight = False
        self._queued: bytes | None = None
        self._waiters: list[Done] = []
        self._idle_waiters: list[Done] = []
        self.dead = False  # set by the owner when it is discarded; late events do nothing
        self._token = 0  # bumped by invalidate(): an in-flight write must not rename

    @property
    def idle(self) -> bool:
        return not self._in_flight and self._queued is None

    def write(self, content: bytes, on_done: Done | None = None) -> None:
        """Replace the file with content; on_done(None | error) once it is durable."""
        self._queued = content
        if on_done is not None:
            self._waiters.append(on_done)
        if not self._in_flight:
            self._start()

    def when_idle(self, on_done: Done) -> None:
        """Run on_done when no write is queued or in flight (at once if idle)."""
        if self.idle:
            on_done(None)
        else:
            self._idle_waiters.append(on_done)

    def invalidate(self, content: bytes | None = None) -> DiskError | None:
        """Delete the file now (durable on return) so a stale value can never be read
        back after a crash, cancel the rename of any write in flight, and queue
        content (if given) as the next write."""
        self._token += 1
        err = self.disk.delete(self.path)
        if err is not None and err.kind != DiskError.NOT_FOUND:
            return err
        if content is not None:
            self.write(content)
        return None

    def _start(self) -> None:
        content, self._queued = self._queued, None
        waiters, self._waiters = self._waiters, []
        assert content is not None
        self.disk.delete(self.tmp)  # NOT_FOUND is fine
        r = self.disk.append(self.tmp, content)
        if isinstance(r, DiskError):
            self._finish(r, waiters)
            return
        self._in_flight = True
        token = self._token
        self.disk.fsync(self.tmp, lambda err: self._synced(err, waiters, token))

    def _synced(self, err: DiskError | None, waiters: list[Done], token: int) -> None:
        if self.dead:
            return
        self._in_flight = False
        if err is None and token == self._token:
            err = self.disk.rename(self.tmp, self.path)
        self._finish(err, waiters)

    def _finish(self, err: DiskError | None, waiters: list[Done]) -> None:
        for w in waiters:
            w(err)
        if self._queued is not None:
            self._start()
        elif not self._in_flight:
            idle, self._idle_waiters = self._idle_waiters, []
            for w in idle:
                w(err)
