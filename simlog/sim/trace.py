"""The run's trace: every event folded, in order, into a running BLAKE2b hash.

An event is a flat tuple (time_us, node, kind, *fields) whose fields are str, int,
float, bool, bytes, None, or lists/tuples/dicts of those (no sets, no objects with
addresses), so its encoding is the same in every interpreter. Events are hashed in
fixed blocks of BLOCK events, each block encoded as one msgpack array; a partial last
block is hashed into a copy when the digest is read. So the digest depends only on
the events, never on when it was read or flushed.

Hot paths append to `buf` directly (a bound `list.append`, the cheapest call there
is); the World calls `flush()` now and then, which hashes whole blocks only.
With record=True the events are also kept (`raw_events`, flat tuples) and offered as
dicts {time_us, node, kind, fields} for events.jsonl (`events`, built on demand).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

BLOCK = 1024

# "deterministic" sorts dict keys and set members, so a field holding a set (whose
# iteration order follows PYTHONHASHSEED) still hashes the same in every interpreter.
_encoder = msgspec.msgpack.Encoder(order="deterministic")


class Trace:
    __slots__ = ("_events", "_hash", "_kept", "append", "buf", "count", "record")

    def __init__(self, record: bool = False) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self.buf: list[tuple[Any, ...]] = []
        self.append = self.buf.append  # add one flat event (time_us, node, kind, *fields)
        self.record = record
        self._kept: list[tuple[Any, ...]] = []  # hashed events, kept when record=True
        self._events: list[dict[str, Any]] = []  # _kept as dicts, converted on demand
        self.count = 0

    def add(self, time_us: int, node: str, kind: str, fields: tuple[Any, ...] = ()) -> None:
        self.buf.append((time_us, node, kind, *fields))

    def flush(self) -> None:
        """Hash every whole block in the buffer (cheap to call often)."""
        buf = self.buf
        if len(buf) < BLOCK:
            return
        whole = len(buf) - len(buf) % BLOCK
        if self.record:
            self._kept.extend(buf[:whole])
        for i in range(0, whole, BLOCK):
            self._hash.update(_encoder.encode(buf[i:i + BLOCK]))
        self.count += whole
        del buf[:whole]

    @staticmethod
    def _as_dict(e: tuple[Any, ...]) -> dict[str, Any]:
        return {"time_us": e[0], "node": e[1], "kind": e[2], "fields": list(e[3:])}

    @property
    def raw_events(self) -> list[tuple[Any, ...]]:
        """Every event so far as its flat tuple (only with record=True); cheap."""
        self.flush()
        return self._kept + self.buf if self.record else []

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event so far as a dict (only with record=True). Dicts are built on
        demand, once per event, not on the hot path."""
        self.flush()
        if not self.record:
            return []
        done = self._events
        if len(done) < len(self._kept):
            done.extend(map(self._as_dict, self._kept[len(done):]))
        return done + [self._as_dict(e) for e in self.buf]

    @property
    def hexdigest(self) -> str:
        self.flush()
        h = self._hash.copy()
        if self.buf:
            h.update(_encoder.encode(self.buf))
        return h.hexdigest()

    def __len__(self) -> int:
        return self.count + len(self.buf)
