"""History recorder and Jepsen-style checkers: pure functions of history + final state."""
