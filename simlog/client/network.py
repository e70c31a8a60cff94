"""Request/response bookkeeping for a client node: correlation ids, timeouts, wakeups.

Kafka's NetworkClient in event form. A request is sent with a callback; the callback
gets the response, or None when the request timed out. A timeout is treated as Kafka
treats it: the connection to that broker is closed, so *every* request in flight to
it fails at once (oldest first), and a late response to any of them is ignored.

Invariants:
- Correlation ids are unique per client incarnation and increase; a response is
  matched only by (source node, correlation id), so a stray or duplicated response is
  dropped silently.
- Each callback runs exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simlog.runtime import Message, Runtime, Timer

ResponseCallback = Callable[[Message | None], None]


@dataclass(slots=True)
class _Pending:
    dst: str
    on_response: ResponseCallback
    timer: Timer | None


class RequestTracker:
    """Pending requests of one client node."""

    def __init__(self, rt: Runtime, request_timeout_us: int,
                 run_event: Callable[[Callable[[], None]], None] | None = None) -> None:
        """run_event(fn) runs a timeout's handling as an event of the owner: the owner
        guards its work loop against re-entry while fn runs, then runs the loop."""
        self.rt = rt
        self.request_timeout_us = request_timeout_us
        self.run_event = run_event or (lambda fn: fn())
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        self._count: dict[str, int] = {}
        self._timed_out_at: dict[str, int] = {}

    def next_correlation_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def send(self, dst: str, msg: Message, on_response: ResponseCallback | None,
             timeout_us: int | None = None) -> None:
        """Send msg (built with a fresh correlation id) to dst. on_response None means
        no response is expected (acks=0): nothing is tracked."""
        self.rt.send(dst, msg)
        if on_response is None:
            return
        corr: int = msg.correlation_id  # type: ignore[attr-defined]
        delay = self.request_timeout_us if timeout_us is None else timeout_us
        timer = self.rt.set_timer(delay, lambda: self.run_event(lambda: self._timed_out(corr)))
        self._pending[corr] = _Pending(dst, on_response, timer)
        self._count[dst] = self._count.get(dst, 0) + 1

    def in_flight(self, dst: str) -> int:
        return self._count.get(dst, 0)

    def total_in_flight(self) -> int:
        return len(self._pending)

    def least_loaded(self, hosts: list[str], rotation: int) -> str | None:
        """Kafka's leastLoadedNode: fewest requests in flight, skipping hosts whose
        last request timed out within a request timeout (unless all did); ties go to
        the first host from a rotating start, so load spreads deterministically."""
        if not hosts:
            return None
        now = self.rt.now()
        fresh = [h for h in hosts
                 if now - self._timed_out_at.get(h, -self.request_timeout_us)
                 >= self.request_timeout_us]
        usable = fresh or hosts
        start = rotation % len(usable)
        ordered = usable[start:] + usable[:start]
        return min(ordered, key=self.in_flight)

    def handle(self, src: str, msg: Message) -> bool:
        """Deliver a response; False when it matches no pending request."""
        corr = getattr(msg, "correlation_id", None)
        pending = self._pending.get(corr) if isinstance(corr, int) else None
        if pending is None or pending.dst != src:
            return False
        self._finish(corr)  # type: ignore[arg-type]
        pending.on_response(msg)
        return True

    def disconnect(self, dst: str) -> None:
        """Fail every request in flight to dst (oldest first), as a closed connection."""
        victims = sorted(c for c, p in self._pending.items() if p.dst == dst)
        callbacks = []
        for corr in victims:
            callbacks.append(self._pending[corr].on_response)
            self._finish(corr)
        for cb in callbacks:
            cb(None)

    def _timed_out(self, corr: int) -> None:
        pending = self._pending.get(corr)
        if pending is not None:
            pending.timer = None
            self._timed_out_at[pending.dst] = self.rt.now()
            self.disconnect(pending.dst)

    def _finish(self, corr: int) -> None:
        pending = self._pending.pop(corr)
        if pending.timer is not None:
            pending.timer.cancel()
        left = self._count[pending.dst] - 1
        if left:
            self._count[pending.dst] = left
        else:
            del self._count[pending.dst]


class Waker:
    """One runtime timer armed for the earliest deadline anyone asked for.

    A client's work loop calls `wake_at(t)` for each future deadline it knows of
    (linger expiry, retry backoff, delivery timeout, metadata age); the callback runs
    once at the earliest, and the loop re-arms what is still pending.
    """

    def __init__(self, rt: Runtime, callback: Callable[[], None]) -> None:
        self.rt = rt
        self._callback = callback
        self._timer: Timer | None = None
        self._deadline_us: int | None = None

    def wake_at(self, deadline_us: int) -> None:
        if self._timer is not None and self._timer.active and self._deadline_us is not None \
                and self._deadline_us <= deadline_us:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._deadline_us = deadline_us
        self._timer = self.rt.set_timer(max(0, deadline_us - self.rt.now()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._deadline_us = None
        self._callback()


__all__ = ["RequestTracker", "ResponseCallback", "Waker"]
