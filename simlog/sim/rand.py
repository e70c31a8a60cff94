"""Seeded random streams: one `random.Random` per (run seed, stream, node id).

The seed of a stream is the first 8 bytes of SHA-256 of f"{seed}:{stream}:{node_id}",
so streams are independent of each other, of the order they are created in, and of
PYTHONHASHSEED (Python's `hash()` is never used).
"""

from __future__ import annotations

import hashlib
import random

NETWORK = "network"
DISK = "disk"
FAULTS = "faults"
NODE = "node"


def stream_seed(seed: int | str, stream: str, node_id: str = "") -> int:
    digest = hashlib.sha256(f"{seed}:{stream}:{node_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def stream_rng(seed: int | str, stream: str, node_id: str = "") -> random.Random:
    """A fresh generator for one stream of one node."""
    return random.Random(stream_seed(seed, stream, node_id))
