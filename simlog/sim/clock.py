"""A node's own clock: true simulated time plus an offset and a drift, in integer µs.

local(g) = g + offset_us + drift accumulated since the last change, where drift is
kept in parts per billion so every computation is integer. Timers are set in local
µs, so a fast clock (drift > 0) fires them early in true time. Changing the offset
makes the clock jump (it may go backwards, as a wall clock set by hand does); pending
timers keep their true due times, as monotonic timers would.
"""

from __future__ import annotations

PPB = 1_000_000_000


class NodeClock:
    __slots__ = ("_acc_us", "_base_us", "drift_ppb", "offset_us", "shift_us")

    def __init__(self) -> None:
        self.offset_us = 0
        self.drift_ppb = 0
        self.shift_us = 0  # offset_us + _acc_us: local = global + shift_us while no drift
        self._base_us = 0  # true time at which the current drift rate began
        self._acc_us = 0  # drift accumulated before _base_us

    def local(self, global_us: int) -> int:
        if self.drift_ppb == 0:
            return global_us + self.shift_us
        drifted = (global_us - self._base_us) * self.drift_ppb // PPB
        return global_us + self.offset_us + self._acc_us + drifted

    def set(self, now_us: int, offset_us: int | None = None, drift: float | None = None) -> None:
        """Set the offset (absolute: local = true + offset_us from now on, drift so far
        forgotten) and/or the drift rate (0.01 = 1% fast; must be > -1)."""
        self._acc_us += (now_us - self._base_us) * self.drift_ppb // PPB
        self._base_us = now_us
        if offset_us is not None:
            self.offset_us = int(offset_us)
            self._acc_us = 0
        if drift is not None:
            if drift <= -1:
                raise ValueError("drift must be > -1")
            self.drift_ppb = round(drift * PPB)
        self.shift_us = self.offset_us + self._acc_us

    def to_global_delay(self, local_delay_us: int) -> int:
        """True µs until a timer of local_delay_us local µs fires (rounded up)."""
        if self.drift_ppb == 0 or local_delay_us <= 0:
            return local_delay_us
        return -(-local_delay_us * PPB // (PPB + self.drift_ppb))
