"""Parameters of the simulated world: network links, disks and CPU cost.

Every figure is an integer in the unit its name ends with (`_us`, `_bytes`,
`_bytes_per_s`), except probabilities and the clock drift, which are floats that are
only ever compared with a seeded draw. Frozen, so a World can share one instance
between nodes and links.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# z-score of the 99th percentile of a standard normal distribution.
_Z99 = 2.3263478740408408


@dataclass(frozen=True, slots=True)
class LatencyDist:
    """One-way link latency: a lognormal distribution fitted to a median and a p99.

    p99_us == median_us gives a constant latency. Draws are rounded to whole µs.
    """

    median_us: int = 500
    p99_us: int = 5_000

    def __post_init__(self) -> None:
        if self.median_us < 0 or self.p99_us < self.median_us:
            raise ValueError(f"need 0 <= median_us <= p99_us, got {self.median_us}, {self.p99_us}")

    @property
    def mu(self) -> float:
        return math.log(max(self.median_us, 1))

    @property
    def sigma(self) -> float:
        if self.median_us == 0 or self.p99_us == self.median_us:
            return 0.0
        return (math.log(self.p99_us) - math.log(self.median_us)) / _Z99

    @classmethod
    def constant(cls, latency_us: int) -> LatencyDist:
        return cls(latency_us, latency_us)

    def quantile_table(self) -> tuple[int, ...] | None:
        """The distribution as QUANTILES equally likely whole-µs values (quantile
        (i + 0.5) / QUANTILES each), or None for a constant. A draw is one table
        lookup by a uniform random index: exact, integer and ten times cheaper than
        `random.gauss` (the extreme tail beyond 1 - 1/2/QUANTILES is cut off)."""
        if self.sigma == 0.0:
            return None
        return _lognormal_table(self.mu, self.sigma)


QUANTILE_BITS = 14
QUANTILES = 1 << QUANTILE_BITS


@lru_cache(maxsize=64)
def _lognormal_table(mu: float, sigma: float) -> tuple[int, ...]:
    inv = NormalDist().inv_cdf
    return tuple(round(math.exp(mu + sigma * inv((i + 0.5) / QUANTILES)))
                 for i in range(QUANTILES))


@dataclass(frozen=True, slots=True)
class LinkParams:
    """One directed link: latency, bandwidth (None = unlimited) and misbehaviour odds."""

    latency: LatencyDist = field(default_factory=LatencyDist)
    bandwidth_bytes_per_s: int | None = 125_000_000  # 1 Gbps
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0


TRANSPORTS = ("tcp", "datagram")


@dataclass(frozen=True, slots=True)
class NetworkParams:
    """Default link parameters for every ordered pair, with per-pair overrides.

    `links[(src, dst)]` replaces the default for that direction only.
    """

    latency: LatencyDist = field(default_factory=LatencyDist)
    bandwidth_bytes_per_s: int | None = 125_000_000
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    links: Mapping[tuple[str, str], LinkParams] = field(default_factory=dict)
    # "tcp": a message caught by a cut is retransmitted after the heal (at TCP's next
    # backed-off retransmission), unless an end's process died or TCP gave up;
    # "datagram": it is lost. (See network.py.)
    transport: str = "tcp"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, "
                             f"found {self.transport!r}")

    def default_link(self) -> LinkParams:
        return LinkParams(self.latency, self.bandwidth_bytes_per_s, self.loss,
                          self.duplicate, self.reorder)

    def for_link(self, src: str, dst: str) -> LinkParams:
        return self.links.get((src, dst)) or self.default_link()


@dataclass(frozen=True, slots=True)
class DiskParams:
    """One node's disk.

    - fsync costs `fsync_latency_us` + dirty bytes / `write_bytes_per_s`, serialised
      per disk; a slow-disk factor multiplies both.
    - page-cache writes and hits cost bytes / `memory_bytes_per_s` of the node's CPU;
      reads that miss the cache cost bytes / `read_bytes_per_s`.
    - the page cache holds `page_cache_bytes` in LRU chunks of `page_chunk_bytes`.
    - `dirty_expire_us`: background writeback makes dirty data older than this durable
      (Linux's dirty_expire_centisecs, 30 s); None disables writeback.
    - `capacity_bytes`: total file bytes the disk holds; None = unlimited.
    - `torn_writes`: on power loss keep a seeded prefix of the pending writes (in write
      order, the last one cut mid-way); False drops every unsynced byte.
    """

    write_bytes_per_s: int = 500 * MIB
    read_bytes_per_s: int = 1 * GIB
    memory_bytes_per_s: int = 10 * GIB
    fsync_latency_us: int = 2_000
    page_cache_bytes: int = 4 * GIB
    page_chunk_bytes: int = 64 * KIB
    dirty_expire_us: int | None = 30_000_000
    capacity_bytes: int | None = None
    torn_writes: bool = True


@dataclass(frozen=True, slots=True)
class CpuParams:
    """CPU cost charged to a node per handled event, plus per byte of message received."""

    per_event_us: int = 0
    per_kib_us: int = 0
