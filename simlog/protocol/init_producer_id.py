"""InitProducerId (API key 22): an idempotent or transactional producer gets its id.

Fields are those of Kafka's InitProducerIdRequest/Response v0 (WIRE.md), plus
`producer_id` / `producer_epoch` on the request (v3+, KIP-360: an idempotent producer
may ask to bump its epoch after an unresolvable sequence error, keeping its id), and
`correlation_id`. A non-transactional producer sends `transactional_id=None` to any
broker; the broker hands out a cluster-unique id (Kafka allocates blocks of ids from
the controller) with epoch 0.
"""

from __future__ import annotations

from simlog.protocol.errors import Errors
from simlog.runtime import Message


class InitProducerIdRequest(Message, frozen=True, kw_only=True):
    correlation_id: int
    transactional_id: str | None = None
    transaction_timeout_ms: int = 60_000
    producer_id: int = -1
    producer_epoch: int = -1


class InitProducerIdResponse(Message, frozen=True, kw_only=True):
    correlation_id: int
    throttle_time_ms: int = 0
    error_code: Errors = Errors.NONE
    producer_id: int = -1
    producer_epoch: int = -1


__all__ = ["InitProducerIdRequest", "InitProducerIdResponse"]
