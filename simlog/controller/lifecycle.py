"""The broker's side of registration, heartbeats and controlled shutdown.

Kafka's BrokerLifecycleManager, as a component a broker embeds next to its
MetadataFollower. States: STARTING (registering) → RECOVERY (registered, fenced,
catching up on metadata) → RUNNING (unfenced) → PENDING_CONTROLLED_SHUTDOWN (asked to
shut down; the controller moves leadership away) → SHUTTING_DOWN (controller said
should_shut_down; `on_shutdown_complete` runs, the broker then halts).

It sends to the active controller (`metadata.controller_id`), falling back to the
voters in turn while no leader is known, and follows NOT_CONTROLLER hints. One request
is in flight at a time; a lost answer times out after controller.socket.timeout.ms.
A stale epoch or unknown registration (the controller fenced and forgot us, or a new
incarnation) starts over with a new registration.
"""

from __future__ import annotations

from collections.abc import Callable

from simlog.controller.follower import MetadataFollower
from simlog.protocol.controller import (
    BrokerHeartbeatRequest,
    BrokerHeartbeatResponse,
    BrokerRegistrationRequest,
    BrokerRegistrationResponse,
)
from simlog.protocol.errors import Errors
from simlog.runtime import Message, Runtime, Timer, ms_to_us

STARTING = "starting"
RECOVERY = "recovery"
RUNNING = "running"
PENDING_CONTROLLED_SHUTDOWN = "pending_controlled_shutdown"
SHUTTING_DOWN = "shutting_down"


class BrokerLifecycleManager:
    def __init__(self, rt: Runtime, broker_id: int, metadata: MetadataFollower, *,
                 heartbeat_interval_us: int = ms_to_us(2_000),
                 request_timeout_us: int = ms_to_us(2_000),
                 retry_backoff_us: int = ms_to_us(100),
                 rack: str | None = None,
                 on_state_change: Callable[[str], None] | None = None,
                 on_shutdown_complete: Callable[[], None] | None = None) -> None:
        self.rt = rt
        self.broker_id = broker_id
        self.metadata = metadata
        self.heartbeat_interval_us = heartbeat_interval_us
        self.request_timeout_us = request_timeout_us
        self.retry_backoff_us = retry_backoff_us
        self.rack = rack
        self.on_state_change = on_state_change
        self.on_shutdown_complete = on_shutdown_complete
        self.state = STARTING
        self.broker_epoch = -1
        self.previous_broker_epoch = -1
        self.incarnation_id = f"{rt.node_id}-{rt.now()}-{rt.random.getrandbits(32):08x}"
        self._correlation_id = 0
        self._inflight: int | None = None  # correlation id of the request in flight
        self._timer: Timer | None = None
        self._target_hint: str | None = None
        self._voter_index = 0
        self.fenced = True

    # -- host API ------------------------------------------------------------------

    def start(self) -> None:
        self._send_registration()

    def on_message(self, src: str, msg: Message) -> bool:
        if isinstance(msg, BrokerRegistrationResponse):
            self.on_broker_registration_response(src, msg)
        elif isinstance(msg, BrokerHeartbeatResponse):
            self.on_broker_heartbeat_response(src, msg)
        else:
            return False
        return True

    def begin_controlled_shutdown(self) -> None:
        """Ask the controller to move leadership away; `on_shutdown_complete` runs when
        it says the broker may stop."""
        if self.state in (PENDING_CONTROLLED_SHUTDOWN, SHUTTING_DOWN):
            return
        if self.state in (STARTING,):
            self._set_state(SHUTTING_DOWN)
            if self.on_shutdown_complete is not None:
                self.on_shutdown_complete()
            return
        self._set_state(PENDING_CONTROLLED_SHUTDOWN)
        if self._inflight is None:
            self._send_heartbeat()

    # -- internals -----------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.rt.emit("broker_lifecycle", broker=self.broker_id, state=state)
            if self.on_state_change is not None:
                self.on_state_change(state)

    def _target(self) -> str:
        if self._target_hint is not None:
            return self._target_hint
        leader = self.metadata.controller_id
        if leader is not None:
            return leader
        voters = self.metadata.quorum.voters
        return sorted(voters)[self._voter_index % len(voters)]

    def _next_id(self) -> int:
        self._correlation_id += 1
        return self._correlation_id

    def _arm(self, delay_us: int, fn: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.rt.set_timer(delay_us, fn)

    def _on_timeout(self) -> None:
        self._timer = None
        self._inflight = None
        self._target_hint = None
        self._voter_index += 1
        if self.state == STARTING:
            self._send_registration()
        else:
            self._send_heartbeat()

    def _send_registration(self) -> None:
        cid = self._next_id()
        self._inflight = cid
        self.rt.send(self._target(), BrokerRegistrationRequest(
            correlation_id=cid, broker_id=self.broker_id, incarnation_id=self.incarnation_id,
            host=self.rt.node_id, rack=self.rack,
            previous_broker_epoch=self.previous_broker_epoch))
        self._arm(self.request_timeout_us, self._on_timeout)

    def _send_heartbeat(self) -> None:
        if self.state in (STARTING, SHUTTING_DOWN):
            return
        cid = self._next_id()
        self._inflight = cid
        self.rt.send(self._target(), BrokerHeartbeatRequest(
            correlation_id=cid, broker_id=self.broker_id, broker_epoch=self.broker_epoch,
            current_metadata_offset=self.metadata.metadata_offset,
            want_shut_down=self.state == PENDING_CONTROLLED_SHUTDOWN))
        self._arm(self.request_timeout_us, self._on_timeout)

    def _retry(self, hint: str | None, send: Callable[[], None]) -> None:
        self._inflight = None
        self._target_hint = hint
        if hint is None:
            self._voter_index += 1
        self._arm(self.retry_backoff_us, send)

    def on_broker_registration_response(self, src: str,
                                        resp: BrokerRegistrationResponse) -> None:
        if resp.correlation_id != self._inflight or self.state != STARTING:
            return
        if resp.error_code != Errors.NONE:
            self._retry(resp.controller_id if resp.error_code == Errors.NOT_CONTROLLER
                        else None, self._send_registration)
            return
        self._inflight = None
        self._target_hint = None
        self.broker_epoch = resp.broker_epoch
        self.previous_broker_epoch = resp.broker_epoch
        self._set_state(RECOVERY)
        self._send_heartbeat()

    def on_broker_heartbeat_response(self, src: str, resp: BrokerHeartbeatResponse) -> None:
        if resp.correlation_id != self._inflight:
            return
        self._inflight = None
        code = resp.error_code
        if code == Errors.NOT_CONTROLLER:
            self._retry(resp.controller_id, self._send_heartbeat)
            return
        if code in (Errors.STALE_BROKER_EPOCH, Errors.BROKER_ID_NOT_REGISTERED):
            self.rt.emit("broker_reregister", broker=self.broker_id, error=code.name)
            self._set_state(STARTING)
            self._retry(None, self._send_registration)
            return
        if code != Errors.NONE:
            self._retry(None, self._send_heartbeat)
            return
        self._target_hint = src
        self.fenced = resp.is_fenced
        if self.state == PENDING_CONTROLLED_SHUTDOWN:
            if resp.should_shut_down:
                self._set_state(SHUTTING_DOWN)
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if self.on_shutdown_complete is not None:
                    self.on_shutdown_complete()
                return
            # poll quickly while leadership moves away
            self._arm(min(self.heartbeat_interval_us, ms_to_us(50)), self._send_heartbeat)
            return
        if self.state == RECOVERY and not resp.is_fenced:
            self._set_state(RUNNING)
        elif self.state == RUNNING and resp.is_fenced:
            self._set_state(RECOVERY)
        # while fenced, heartbeat faster so unfencing follows catching up closely
        delay = self.heartbeat_interval_us if not resp.is_fenced else min(
            self.heartbeat_interval_us, ms_to_us(100))
        self._arm(delay, self._send_heartbeat)


__all__ = ["PENDING_CONTROLLED_SHUTDOWN", "RECOVERY", "RUNNING", "SHUTTING_DOWN", "STARTING",
           "BrokerLifecycleManager"]
