"""Purgatory: requests that wait for a condition or a timeout (Kafka's DelayedOperation).

A produce with acks=all waits until the high watermark passes its last offset; a fetch
with fetch.min.bytes waits until enough bytes are there. Each waits under keys (its
partitions); whoever changes a partition calls `check_and_complete(key)`, and a timer
per operation expires it after its delay.

An operation may start watching further keys while it waits (`DelayedOperation.watch`:
a fetch session's long poll watches a parked partition once it changes, see
`simlog.broker.delayed.DelayedFetch`); it is filed under that key in the order it was
first watched, as if it had watched the key from the start.

Invariants: an operation completes exactly once (`force_complete` is idempotent and
cancels the timer), on whichever comes first of its condition or its timeout; watchers
are lists in the order the operations started waiting, so completion order is
deterministic.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from simlog.runtime import Runtime, Timer


class DelayedOperation:
    """Subclasses implement `try_complete` (call `force_complete` when the condition
    holds and return its result), `on_complete` (send the response) and optionally
    `on_expiration` (count the timeout). `on_complete` runs on both paths."""

    def __init__(self, delay_us: int) -> None:
        self.delay_us = delay_us
        self.completed = False
        self._timer: Timer | None = None
        self._purgatory: Purgatory | None = None  # set once it waits
        self._seq = 0  # the order it started waiting in
        self._keys: set[Hashable] = set()

    def watch(self, key: Hashable) -> None:
        """While waiting: watch key too (no-op before it waits, once completed, or if
        already watched)."""
        if self._purgatory is not None and not self.completed and key not in self._keys:
            self._purgatory._watch_late(self, key)

    def try_complete(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def on_complete(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def on_expiration(self) -> None:
        pass

    def try_complete_for(self, key: Hashable) -> bool:
        """try_complete after `key` changed: an operation may look at that key first
        (it must complete exactly when try_complete would)."""
        return self.try_complete()

    def force_complete(self) -> bool:
        if self.completed:
            return False
        self.completed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.on_complete()
        return True


class Purgatory:
    def __init__(self, rt: Runtime, name: str) -> None:
        self.rt = rt
        self.name = name
        self._watchers: dict[Hashable, list[DelayedOperation]] = {}
        self.expired_count = 0
        self._seq = 0

    def try_complete_else_watch(self, op: DelayedOperation, keys: Iterable[Hashable]) -> bool:
        """Complete op now if it can; otherwise watch it under keys until it can or
        its delay runs out. Returns True when completed at once."""
        if op.try_complete():
            return True
        self._seq += 1
        op._seq = self._seq
        op._purgatory = self
        watched = op._keys
        for key in keys:
            if key not in watched:
                watched.add(key)
                self._watchers.setdefault(key, []).append(op)
        op._timer = self.rt.set_timer(max(0, op.delay_us), lambda: self._expire(op))
        return False

    def check_and_complete(self, key: Hashable) -> int:
        """Try every operation watched under key; returns how many completed."""
        ops = self._watchers.get(key)
        if not ops:
            return 0
        done = 0
        for op in list(ops):
            if not op.completed and op.try_complete_for(key):
                done += 1
        live = [op for op in self._watchers.get(key, ()) if not op.completed]
        if live:
            self._watchers[key] = live
        else:
            self._watchers.pop(key, None)
        return done

    def _watch_late(self, op: DelayedOperation, key: Hashable) -> None:
        op._keys.add(key)
        ops = self._watchers.setdefault(key, [])
        i = len(ops)
        while i and ops[i - 1]._seq > op._seq:
            i -= 1
        ops.insert(i, op)

    def watched(self, key: Hashable) -> int:
        return sum(1 for op in self._watchers.get(key, ()) if not op.completed)

    def _expire(self, op: DelayedOperation) -> None:
        op._timer = None
        if op.force_complete():
            self.expired_count += 1
            op.on_expiration()
