"""Units of SCENARIOS.md: time -> integer µs, size -> integer bytes, rate -> typed value.

Time: `800us`, `250ms`, `10s`, `5m`, `1h`, or a bare number of seconds (`1.5`).
Size: `200B`, `16KiB`, `1MiB`, `1GiB`, `1TiB` (binary), `KB`/`MB`/`GB`/`TB` (decimal), or a
bare integer of bytes. Rate: `5000/s` (messages per second), `2MiB/s` (bytes per second),
`1Gbps`/`100Mbps`/`10Kbps`/`800bps` (bits per second, decimal), or `max`.

Results are integers (µs, bytes) so nothing downstream touches a float clock; a value that
is not a whole number of the base unit (`0.5us`, `1.5B`) is an error, not a rounding.
Every error says what was found and what is expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from simlog.scenario.errors import UnitError

TIME_UNITS_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
SIZE_UNITS_B = {
    "B": 1,
    "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
}
BIT_RATE_UNITS = {"bps": 1, "Kbps": 10**3, "Mbps": 10**6, "Gbps": 10**9}

_NUMBER = r"(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_TIME_RE = re.compile(rf"^(?P<sign>-?){_NUMBER}\s*(?P<unit>us|ms|s|m|h)$")
_SIZE_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>[KMGT]i?B|B)$")
_MSG_RATE_RE = re.compile(rf"^{_NUMBER}\s*/\s*s$")
_BYTE_RATE_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>[KMGT]i?B|B)\s*/\s*s$")
_BIT_RATE_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>[KMG]?bps)$")

TIME_EXPECTED = "a duration like 800us, 250ms, 10s, 5m, 1h or a number of seconds"
SIZE_EXPECTED = "a size like 200B, 16KiB, 1MiB, 1GiB, 10MB or a number of bytes"
RATE_EXPECTED = "a rate like 5000/s, 2MiB/s, 1Gbps or max"


@dataclass(frozen=True, slots=True)
class MessageRate:
    """Messages per second (open loop)."""

    per_s: float

    def __str__(self) -> str:
        return f"{self.per_s:g}/s"


@dataclass(frozen=True, slots=True)
class ByteRate:
    """Bytes per second (bandwidth). `Gbps` is converted: 1Gbps = 125_000_000 B/s."""

    bytes_per_s: int

    def __str__(self) -> str:
        return f"{self.bytes_per_s}B/s"


@dataclass(frozen=True, slots=True)
class MaxRate:
    """`max`: as fast as possible (closed loop for producers, unlimited for links)."""

    def __str__(self) -> str:
        return "max"


Rate = MessageRate | ByteRate | MaxRate
MAX = MaxRate()


def _found(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _whole(amount: Fraction, value: object, unit: str, expected: str) -> int:
    if amount.denominator != 1:
        raise UnitError(f"{_found(value)} is not a whole number of {unit} (expected {expected})")
    return int(amount)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_time_us(value: object, *, signed: bool = False) -> int:
    """A duration (or, with `signed`, an offset that may be negative) in integer µs."""
    if _is_number(value):
        amount = Fraction(str(value)) * TIME_UNITS_US["s"]
    elif isinstance(value, str) and (m := _TIME_RE.match(value.strip())):
        amount = Fraction(m["num"]) * TIME_UNITS_US[m["unit"]]
        if m["sign"]:
            amount = -amount
    else:
        raise UnitError(f"expected {TIME_EXPECTED}, found {_found(value)}")
    if amount < 0 and not signed:
        raise UnitError(f"expected a duration >= 0, found {_found(value)}")
    return _whole(amount, value, "microseconds", TIME_EXPECTED)


def parse_size_bytes(value: object) -> int:
    """A size in integer bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        amount = Fraction(value)
    elif isinstance(value, str) and (m := _SIZE_RE.match(value.strip())):
        amount = Fraction(m["num"]) * SIZE_UNITS_B[m["unit"]]
    else:
        raise UnitError(f"expected {SIZE_EXPECTED}, found {_found(value)}")
    if amount < 0:
        raise UnitError(f"expected a size >= 0, found {_found(value)}")
    return _whole(amount, value, "bytes", SIZE_EXPECTED)


def parse_rate(value: object) -> Rate:
    """Any rate: messages/s, bytes/s (also from bits/s) or `max`."""
    if isinstance(value, str):
        text = value.strip()
        if text == "max":
            return MAX
        if m := _MSG_RATE_RE.match(text):
            return MessageRate(float(m["num"]))
        if m := _BYTE_RATE_RE.match(text):
            amount = Fraction(m["num"]) * SIZE_UNITS_B[m["unit"]]
            return ByteRate(_whole(amount, value, "bytes per second", RATE_EXPECTED))
        if m := _BIT_RATE_RE.match(text):
            amount = Fraction(m["num"]) * BIT_RATE_UNITS[m["unit"]] / 8
            return ByteRate(_whole(amount, value, "bytes per second", RATE_EXPECTED))
    raise UnitError(f"expected {RATE_EXPECTED}, found {_found(value)}")


def parse_message_rate(value: object) -> MessageRate | MaxRate:
    """A producer's rate: `5000/s` or `max`; a bandwidth here is a mistake worth naming."""
    rate = parse_rate(value)
    if isinstance(rate, ByteRate):
        raise UnitError(f"expected messages per second like 5000/s or max, found {_found(value)}")
    return rate


def parse_byte_rate(value: object) -> ByteRate | MaxRate:
    """A bandwidth: `2MiB/s`, `1Gbps` or `max` (unlimited)."""
    rate = parse_rate(value)
    if isinstance(rate, MessageRate):
        raise UnitError(f"expected a bandwidth like 500MiB/s or 1Gbps, found {_found(value)}")
    return rate


def format_time_us(us: int) -> str:
    """The shortest exact spelling of a duration, so generated files read naturally."""
    sign = "-" if us < 0 else ""
    us = abs(us)
    for unit in ("h", "m", "s", "ms"):
        if us and us % TIME_UNITS_US[unit] == 0:
            return f"{sign}{us // TIME_UNITS_US[unit]}{unit}"
    return f"{sign}{us}us"


def format_size(nbytes: int) -> str:
    """The shortest exact binary spelling of a size (`16KiB`, `200B`)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if nbytes and nbytes % SIZE_UNITS_B[unit] == 0:
            return f"{nbytes // SIZE_UNITS_B[unit]}{unit}"
    return f"{nbytes}B"
