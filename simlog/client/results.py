"""What a client tells its workload about each operation: ok, fail or info.

These are the completions of SCENARIOS.md's history. `fail` must mean *certainly not
written*: the producer reports it only when no attempt of the batch can have reached
a log (never sent, or every attempt got a definite rejection before append). Anything
else that ends without an acknowledgement is `info` (indefinite).
"""

from __future__ import annotations

from dataclasses import dataclass

from simlog.protocol.errors import Errors

OK = "ok"
FAIL = "fail"
INFO = "info"


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one `Producer.send`.

    status: "ok" | "fail" | "info". On ok, offset is the record's offset (None when the
    broker could not say, e.g. a duplicate beyond its sequence cache). error is the
    Kafka error behind a fail/info (None for a client-side reason, see `reason`).
    """

    status: str
    topic: str
    partition: int | None
    offset: int | None = None
    error: Errors | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def history_value(self, record_id: str) -> dict[str, object]:
        """The `value` of this send's completion in history.jsonl (SCENARIOS.md)."""
        value: dict[str, object] = {"id": record_id, "topic": self.topic}
        if self.partition is not None:
            value["partition"] = self.partition
        if self.offset is not None:
            value["offset"] = self.offset
        if self.status != OK:
            value["error"] = self.error.name if self.error is not None else self.reason
        return value


__all__ = ["FAIL", "INFO", "OK", "SendResult"]
