"""What a check returns: pass or fail, and the first witnesses of what went wrong.

Witnesses are JSON-ready dicts with a `kind` first, then the offsets, message ids, nodes
and times that show the anomaly; a check keeps the first `MAX_WITNESSES` (in the order
the anomalies happened, or partition then offset order) and counts them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_WITNESSES = 10


@dataclass(frozen=True)
class CheckResult:
    name: str
    result: str                                   # "pass" | "fail"
    witnesses: tuple[dict[str, Any], ...] = ()
    anomalies: int = 0                            # how many, witnesses or not
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.result == "pass"

    def to_json(self) -> dict[str, Any]:
        """The summary.json entry: `{"result", "witnesses", ...}`."""
        return {"result": self.result, "witnesses": list(self.witnesses),
                "anomalies": self.anomalies, **({"stats": self.stats} if self.stats else {})}


def verdict(name: str, witnesses: list[dict[str, Any]], **stats: Any) -> CheckResult:
    """Fail when any witness was found; keep the first MAX_WITNESSES."""
    return CheckResult(name, "fail" if witnesses else "pass",
                       tuple(witnesses[:MAX_WITNESSES]), len(witnesses), dict(stats))
