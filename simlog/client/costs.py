"""Client-side CPU cost of handling bytes: compression, decompression, CRC-32C.

The simulation charges each event a fixed cost; these are the per-byte costs on top,
charged through `rt.charge_cpu`, so a producer compressing with gzip or a consumer
checking CRCs of a fat fetch is busy for a realistic while. Figures are nanoseconds
per uncompressed byte on one modern core (order-of-magnitude, from the codecs' own
benchmarks). Sub-microsecond remainders carry over, so many small charges add up.
"""

from __future__ import annotations

from simlog.records import Compression
from simlog.runtime import Runtime

CRC_NS_PER_BYTE = 0.2
COMPRESS_NS_PER_BYTE = {
    Compression.NONE: 0.0,
    Compression.GZIP: 25.0,
    Compression.SNAPPY: 2.5,
    Compression.LZ4: 2.0,
    Compression.ZSTD: 5.0,
}
DECOMPRESS_NS_PER_BYTE = {
    Compression.NONE: 0.0,
    Compression.GZIP: 4.0,
    Compression.SNAPPY: 1.0,
    Compression.LZ4: 0.5,
    Compression.ZSTD: 1.5,
}
ENCODE_NS_PER_BYTE = 0.5  # record framing (varints, copies) both ways


class CpuMeter:
    """Accumulates fractional costs and charges whole microseconds."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._ns = 0.0
        self.charged_us = 0

    def add_ns(self, ns: float) -> None:
        self._ns += ns
        whole = int(self._ns // 1000)
        if whole > 0:
            self._ns -= whole * 1000
            self.charged_us += whole
            self.rt.charge_cpu(whole)

    def build_batch(self, raw_bytes: int, codec: Compression, batch_bytes: int) -> None:
        self.add_ns(raw_bytes * (ENCODE_NS_PER_BYTE + COMPRESS_NS_PER_BYTE[codec])
                    + batch_bytes * CRC_NS_PER_BYTE)

    def read_batch(self, batch_bytes: int, codec: Compression, raw_bytes: int,
                   check_crc: bool) -> None:
        self.add_ns(raw_bytes * (ENCODE_NS_PER_BYTE + DECOMPRESS_NS_PER_BYTE[codec])
                    + (batch_bytes * CRC_NS_PER_BYTE if check_crc else 0.0))


__all__ = ["CpuMeter"]
