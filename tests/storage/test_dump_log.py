"""`simlog dump-log`: kafka-dump-log style output and --verify on real segment files."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from realnet.disk import RealDisk
from simlog.cli import cli
from simlog.records import Compression, Record, build_batch, build_control_batch
from simlog.storage.config import LogConfig
from simlog.storage.log import PartitionLog


def make_segment(root: Path) -> Path:
    disk = RealDisk(root)
    log = PartitionLog.open(disk, "orders-0", LogConfig(), now_us=0)
    assert isinstance(log, PartitionLog)
    log.append_as_leader(build_batch([Record(b"k1", b"hello", (("h", b"v"),), 1_700_000_000_000),
                                      Record(None, None, (), 1_700_000_000_005)],
                                     compression=Compression.GZIP, producer_id=7,
                                     producer_epoch=0, base_sequence=0), 3, 0)
    log.append_as_leader(build_control_batch(True, producer_id=7, producer_epoch=0,
                                             coordinator_epoch=2, timestamp=1_700_000_000_010), 3, 0)
    log.append_as_leader(build_batch([Record(b"k2", b"world", (), 1_700_000_000_020)]), 4, 0)
    log.close()
    return root / "orders-0" / "00000000000000000000.log"


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["dump-log", *args])
    return res.exit_code, res.output


def test_prints_batches_and_records_like_kafka_dump_log(tmp_path: Path) -> None:
    seg = make_segment(tmp_path)
    code, out = run(str(seg), "--print-data-log", "--verify")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[1] == "Log starting offset: 0"
    assert lines[2].startswith("baseOffset: 0 lastOffset: 1 count: 2 baseSequence: 0 lastSequence: 1 "
                               "producerId: 7 producerEpoch: 0 partitionLeaderEpoch: 3 ")
    assert "position: 0 CreateTime: 1700000000005" in lines[2]
    assert "compresscodec: gzip" in lines[2] and lines[2].endswith("isvalid: true")
    assert lines[3] == ("| offset: 0 CreateTime: 1700000000000 keySize: 2 valueSize: 5 sequence: 0 "
                        "headerKeys: [h] key: k1 payload: hello")
    assert lines[4].endswith("keySize: -1 valueSize: -1 sequence: 1 headerKeys: [] key: null payload: null")
    assert "isControl: true" in lines[5] and "endTxnMarker: COMMIT coordinatorEpoch: 2" in lines[6]
    assert lines[7].startswith("baseOffset: 3 lastOffset: 3") and "partitionLeaderEpoch: 4" in lines[7]
    assert lines[-1] == "Verification passed"


def test_without_print_data_log_only_batches(tmp_path: Path) -> None:
    code, out = run(str(make_segment(tmp_path)))
    assert code == 0 and "| offset:" not in out
    assert sum(line.startswith("baseOffset:") for line in out.splitlines()) == 3


def test_verify_names_first_corrupt_offset(tmp_path: Path) -> None:
    seg = make_segment(tmp_path)
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0x40  # inside the last batch (offset 3)
    seg.write_bytes(bytes(data))
    code, out = run(str(seg), "--verify")
    assert code == 1
    assert "Verification failed at offset 3" in out and "CRC" in out
    assert "isvalid: false" in out


def test_verify_reports_torn_tail_and_gaps(tmp_path: Path) -> None:
    seg = make_segment(tmp_path)
    data = seg.read_bytes()
    seg.write_bytes(data[:-10])
    code, out = run(str(seg), "--verify")
    assert code == 1 and "Verification failed at offset 3" in out
    gap = build_batch([Record(b"a", b"1", (), 1)], base_offset=0) + build_batch(
        [Record(b"b", b"2", (), 2)], base_offset=5)
    seg.write_bytes(gap)
    assert run(str(seg), "--verify")[0] == 1
    assert run(str(seg), "--verify", "--allow-gaps")[0] == 0


def test_dumps_index_files(tmp_path: Path) -> None:
    disk = RealDisk(tmp_path)
    log = PartitionLog.open(disk, "t-0", LogConfig(index_interval_bytes=50), now_us=0)
    assert isinstance(log, PartitionLog)
    for i in range(5):
        log.append_as_leader(build_batch([Record(b"k", b"v" * 40, (), 1000 + i)]), 0, 0)
    log.flush()  # buffered index entries reach the files
    disk.run_pending()
    code, out = run(str(tmp_path / "t-0" / "00000000000000000000.index"))
    assert code == 0
    entries = [line for line in out.splitlines() if line.startswith("offset:")]
    assert entries and all("position:" in e for e in entries)
    code, out = run(str(tmp_path / "t-0" / "00000000000000000000.timeindex"))
    assert code == 0 and "timestamp: 1001 offset: 1" in out
