"""Request/response bookkeeping for a client node: correlation ids, timeouts, wakeups.

Kafka's NetworkClient in event form. A request is sent with a callback; the callback
gets the response, or None when the request timed out. A timeout is treated as Kafka
treats it: the connection to that broker is closed, so *every* request in flight to
it fails at once (oldest first), and a late response to any of them is ignored.

Connection resets (`runtime.ConnectionReset` from a peer whose process is down while
its machine is up: the kernel's TCP reset) are handled as Kafka's NetworkClient
handles a disconnect: every request in flight to that node fails at once (callbacks
get None; `last_failure` says NETWORK_EXCEPTION, "disconnected"), the owner is told
(`on_disconnect`: metadata is marked for refresh) and the node is not used again
until a reconnect succeeds. A reconnect is modelled as a cheap probe (a Metadata
request for no topics, what a TCP handshake would be) sent after the reconnect
backoff (reconnect.backoff.ms doubling up to reconnect.backoff.max.ms, 20% jitter);
any answer from the node connects it again, a probe that goes unanswered for a
backoff period counts as a refused attempt. Meanwhile `least_loaded` prefers other
nodes (for metadata, producer ids, coordinators), and producers and fetchers hold
requests for the node (`ready`).

Invariants:
- Correlation ids are unique per client incarnation and increase; a response is
  matched only by (source node, correlation id), so a stray or duplicated response is
  dropped silently.
- Each callback runs exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simlog.protocol.errors import Errors
from simlog.protocol.metadata import MetadataRequest
from simlog.runtime import Message, Runtime, Timer

ResponseCallback = Callable[[Message | None], None]
CONNECTION_RESET = "ConnectionReset"  # simlog.runtime.ConnectionReset, matched by name
_RECONNECT_JITTER = 0.2


@dataclass(slots=True)
class _Disconnected:
    """A node that reset our connection and has not answered since."""

    backoff_us: int  # the current reconnect backoff
    retry_at_us: int  # the next reconnect (probe) may go out at this time
    probe_corr: int | None = None  # correlation id of the probe in flight


@dataclass(slots=True)
class _Pending:
    dst: str
    on_response: ResponseCallback
    timer: Timer | None


class RequestTracker:
    """Pending requests of one client node."""

    def __init__(self, rt: Runtime, request_timeout_us: int,
                 run_event: Callable[[Callable[[], None]], None] | None = None,
                 reconnect_backoff_us: int = 50_000,
                 reconnect_backoff_max_us: int = 1_000_000) -> None:
        """run_event(fn) runs a timeout's handling as an event of the owner: the owner
        guards its work loop against re-entry while fn runs, then runs the loop."""
        self.rt = rt
        self.request_timeout_us = request_timeout_us
        self.run_event = run_event or (lambda fn: fn())
        self.reconnect_backoff_us = reconnect_backoff_us
        self.reconnect_backoff_max_us = max(reconnect_backoff_us, reconnect_backoff_max_us)
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        self._count: dict[str, int] = {}
        self._timed_out_at: dict[str, int] = {}
        self._disconnected: dict[str, _Disconnected] = {}
        #: why the last callback got None: REQUEST_TIMED_OUT or NETWORK_EXCEPTION
        self.last_failure: Errors = Errors.REQUEST_TIMED_OUT
        #: called with the node after a connection reset (the owner refreshes metadata)
        self.on_disconnect: Callable[[str], None] = lambda node: None
        self.resets = 0

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

    def ready(self, dst: str) -> bool:
        """May requests go to dst? False while dst is disconnected after a reset; then
        this also sends the reconnect probe once its backoff has passed."""
        d = self._disconnected.get(dst)
        if d is None:
            return True
        if d.probe_corr is None and self.rt.now() >= d.retry_at_us:
            self._probe(dst, d)
        return False

    def retry_at(self, dst: str) -> int | None:
        """For a node that is not `ready`: when its next reconnect probe is due (the
        owner's loop should run then). None when no wake-up is needed: dst is ready,
        or a probe is in flight (its answer or timeout runs the owner's loop)."""
        d = self._disconnected.get(dst)
        if d is None or d.probe_corr is not None:
            return None
        return d.retry_at_us

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
        connected = [h for h in fresh if h not in self._disconnected]
        usable = connected or fresh or hosts
        start = rotation % len(usable)
        ordered = usable[start:] + usable[:start]
        return min(ordered, key=self.in_flight)

    def handle(self, src: str, msg: Message) -> bool:
        """Deliver a response (or a connection reset); False when it matches no
        pending request."""
        if type(msg).__name__ == CONNECTION_RESET:
            self.connection_reset(getattr(msg, "peer", src) or src)
            return True
        if src in self._disconnected:
            self._connected(src)  # it answered: the connection is back
        corr = getattr(msg, "correlation_id", None)
        pending = self._pending.get(corr) if isinstance(corr, int) else None
        if pending is None or pending.dst != src:
            return False
        self._finish(corr)  # type: ignore[arg-type]
        pending.on_response(msg)
        return True

    def disconnect(self, dst: str, error: Errors = Errors.REQUEST_TIMED_OUT) -> None:
        """Close the connection to dst: every request in flight to it fails (oldest
        first), and the runtime closes it, so what is sent next does not queue behind
        what a network cut still holds of the old one."""
        self.rt.disconnect(dst)
        victims = sorted(c for c, p in self._pending.items() if p.dst == dst)
        callbacks = []
        for corr in victims:
            callbacks.append(self._pending[corr].on_response)
            self._finish(corr)
        for cb in callbacks:
            self.last_failure = error
            cb(None)
        self.last_failure = Errors.REQUEST_TIMED_OUT

    def connection_reset(self, node: str) -> None:
        """node's kernel reset our connection (its process is down): fail everything
        in flight to it now as NETWORK_EXCEPTION, and reconnect only after a backoff."""
        self.resets += 1
        d = self._disconnected.get(node)
        if d is None:
            d = self._disconnected[node] = _Disconnected(0, 0)
        self._next_backoff(d)
        d.probe_corr = None
        self.rt.emit("client_disconnected", node=node, backoff_us=d.backoff_us)
        self.run_event(lambda: self._on_reset(node))

    def _on_reset(self, node: str) -> None:
        self.disconnect(node, Errors.NETWORK_EXCEPTION)
        self.on_disconnect(node)

    def _next_backoff(self, d: _Disconnected) -> None:
        base = self.reconnect_backoff_us
        exp = base if d.backoff_us == 0 else min(self.reconnect_backoff_max_us,
                                                   d.backoff_us * 2)
        d.backoff_us = exp
        jitter = 1.0 + _RECONNECT_JITTER * (2 * self.rt.random.random() - 1)
        d.retry_at_us = self.rt.now() + max(1, int(exp * jitter))

    def _probe(self, node: str, d: _Disconnected) -> None:
        corr = self.next_correlation_id()
        d.probe_corr = corr

        def answered(resp: Message | None) -> None:
            cur = self._disconnected.get(node)
            if cur is None or cur.probe_corr != corr:
                return
            cur.probe_corr = None
            if resp is None:
                # Refused / unanswered: try again later, and (as Kafka after a failed
                # connection) refresh metadata, which may name another leader by now.
                self._next_backoff(cur)
                self.on_disconnect(node)
            # an answer connected it already (handle -> _connected)

        self.send(node, MetadataRequest(correlation_id=corr, topics=(),
                                        allow_auto_topic_creation=False),
                  answered, timeout_us=max(1, d.backoff_us))

    def _connected(self, node: str) -> None:
        del self._disconnected[node]
        self.rt.emit("client_reconnected", node=node)

    def _timed_out(self, corr: int) -> None:
        pending = self._pending.get(corr)
        if pending is None:
            return
        pending.timer = None
        d = self._disconnected.get(pending.dst)
        if d is not None and d.probe_corr == corr:
            self._finish(corr)  # a reconnect probe: just this attempt failed
            pending.on_response(None)
            return
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
