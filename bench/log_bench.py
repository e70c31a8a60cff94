"""Partition log on real files: append and sendfile-read throughput beside bare syscalls.

One run, on a temporary folder (page cache warm, no fsync on either side, as Kafka's
default):
- append: `PartitionLog.append_as_leader` of 16 KiB batches (16 records of 1 KiB;
  validates magic/length/CRC-32C, patches offset and epoch, writes, indexes) against a
  bare `os.write` loop of the same bytes to one file. Ratio = log / bare.
- read: consumer-style fetches (`PartitionLog.read(offset, 1 MiB)` -> FileSlice ->
  `os.sendfile` to a loopback TCP socket drained by a thread) against bare
  `os.sendfile` of the same file in 1 MiB chunks. Ratio = log / bare.
Run: .venv/bin/python bench/log_bench.py [--mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time

from realnet.disk import RealDisk
from simlog.records import Record, build_batch
from simlog.storage.config import LogConfig
from simlog.storage.log import PartitionLog

RECORD = 1024
PER_BATCH = 16
FETCH = 1 << 20


def make_batches(total: int) -> list[bytes]:
    rec = [Record(b"key-%04d" % i, bytes((i * 7 + j) % 251 for j in range(RECORD)), (), 1_700_000_000_000 + i)
           for i in range(PER_BATCH)]
    one = build_batch(rec, producer_id=1, producer_epoch=0, base_sequence=0)
    return [one] * (total // len(one))


def bench_append(root: str, batches: list[bytes]) -> tuple[float, float, PartitionLog]:
    disk = RealDisk(root)
    log = PartitionLog.open(disk, "bench-0", LogConfig(segment_bytes=1 << 30), now_us=0)
    assert isinstance(log, PartitionLog)
    t0 = time.perf_counter()
    for b in batches:
        log.append_as_leader(b, 0, 0)
    t_log = time.perf_counter() - t0
    fd = os.open(os.path.join(root, "bare.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    t0 = time.perf_counter()
    for b in batches:
        os.write(fd, b)
    t_bare = time.perf_counter() - t0
    os.close(fd)
    return t_log, t_bare, log


def _sink() -> tuple[socket.socket, threading.Thread, list[int]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    out = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    srv.close()
    got = [0]

    def drain() -> None:
        while True:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            got[0] += len(chunk)
        conn.close()

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    return out, t, got


def _sendfile_all(sock: socket.socket, fd: int, pos: int, length: int) -> None:
    while length:
        n = os.sendfile(sock.fileno(), fd, pos, length)
        pos += n
        length -= n


def bench_read(root: str, log: PartitionLog) -> tuple[float, float, int]:
    fds: dict[str, int] = {}
    sock, thread, got = _sink()
    t0 = time.perf_counter()
    offset, sent = log.log_start_offset, 0
    while offset < log.log_end_offset:
        r = log.read(offset, FETCH)
        assert not isinstance(r, type(None)) and r.size, r
        for s in r.slices:
            fd = fds.get(s.path)
            if fd is None:
                fd = fds[s.path] = os.open(os.path.join(root, s.path), os.O_RDONLY)
            _sendfile_all(sock, fd, s.position, s.length)
            sent += s.length
        offset = r.next_offset
    sock.shutdown(socket.SHUT_WR)
    thread.join()
    t_log = time.perf_counter() - t0
    assert got[0] == sent
    path = os.path.join(root, log.segment_base_offsets() and "bench-0/00000000000000000000.log")
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    sock, thread, got = _sink()
    t0 = time.perf_counter()
    for pos in range(0, size, FETCH):
        _sendfile_all(sock, fd, pos, min(FETCH, size - pos))
    sock.shutdown(socket.SHUT_WR)
    thread.join()
    t_bare = time.perf_counter() - t0
    os.close(fd)
    for fd in fds.values():
        os.close(fd)
    return t_log, t_bare, sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="bytes to append per repeat (MiB)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    batches = make_batches(args.mib << 20)
    total = sum(len(b) for b in batches)
    rows = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="simlog-logbench-") as root:
            ta, tb, log = bench_append(root, batches)
            ra, rb, sent = bench_read(root, log)
            assert sent == total
            rows.append((total / ta, total / tb, total / ra, total / rb))
    mib = 1 << 20
    a_log, a_bare, r_log, r_bare = (statistics.median(c) / mib for c in zip(*rows))
    print(f"data: {len(batches)} batches x {len(batches[0])} B = {total / mib:.0f} MiB, "
          f"median of {args.repeat}")
    print(f"append  log {a_log:8.0f} MB/s   bare write() {a_bare:8.0f} MB/s   ratio {a_log / a_bare:.2f}")
    print(f"read    log {r_log:8.0f} MB/s   bare sendfile {r_bare:7.0f} MB/s   ratio {r_log / r_bare:.2f}")


if __name__ == "__main__":
    main()
