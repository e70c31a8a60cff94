"""Testing aids shipped with simlog: builders for hand-written histories and final states
(`simlog.testing.builders`) and hypothesis strategies for fault schedules and scenarios
(`simlog.testing.strategies`), so users can write property fault tests in their own CI."""
