"""The event discipline both clients share: one work loop, never re-entered.

A client node reacts to every event (a response, a timeout, an API call) by handling it
and then running its work loop (`_run`) until nothing more is dirty. Handling code that
calls back into the client (a completion callback that sends again) only marks the loop
dirty, so `_run` never starts half-way through another pass of itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simlog.client.metadata import Metadata
from simlog.client.network import RequestTracker
from simlog.runtime import Message, NodeBase, Runtime


class WorkLoopNode(NodeBase):
    """Base of Producer and Consumer: `tracker` handles messages, `_run` is the loop."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self._busy = False
        self._dirty = False

    def _connect(self, config: Any) -> None:
        """The network side both clients share, from their typed config: a request
        tracker (timeouts, reconnect backoff after a ConnectionReset) and cluster
        metadata refreshed on a disconnect."""
        self.config = config
        self.tracker = RequestTracker(self.rt, config.request_timeout_us, self._event,
                                      config.reconnect_backoff_us,
                                      config.reconnect_backoff_max_us)
        self.metadata = Metadata(self.rt, self.tracker, config.bootstrap_servers,
                                 config.retry_backoff_us, config.metadata_max_age_us,
                                 self._kick)
        self.tracker.on_disconnect = lambda _node: self.metadata.request_update()

    def start(self) -> None:
        self._kick()

    def on_message(self, src: str, msg: Message) -> None:
        self._event(lambda: self.tracker.handle(src, msg))

    def _event(self, handle: Callable[[], object]) -> None:
        """Run an event's handling with the work loop held off, then run the loop once:
        callbacks inside (responses, timeouts) never re-enter it half-way."""
        if self._busy:
            handle()
            self._dirty = True
            return
        self._busy = True
        try:
            handle()
        finally:
            self._busy = False
        self._kick()

    def _kick(self) -> None:
        if self._busy:
            self._dirty = True
            return
        self._busy = True
        try:
            self._dirty = True
            while self._dirty:
                self._dirty = False
                self._run()
        finally:
            self._busy = False

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
