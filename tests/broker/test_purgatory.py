"""Delayed operations complete once: on their condition or on their timeout."""

from simlog.broker.purgatory import DelayedOperation, Purgatory

from .fakes import FakeRuntime


class Waiter(DelayedOperation):
    def __init__(self, delay_us: int, state: dict) -> None:
        super().__init__(delay_us)
        self.state = state
        self.results: list[str] = []

    def try_complete(self) -> bool:
        if self.state["ready"]:
            return self.force_complete()
        return False

    def on_complete(self) -> None:
        self.results.append("ready" if self.state["ready"] else "timeout")


def test_completes_at_once_when_ready() -> None:
    rt = FakeRuntime()
    p = Purgatory(rt, "produce")
    op = Waiter(1000, {"ready": True})
    assert p.try_complete_else_watch(op, ["t-0"])
    assert op.results == ["ready"] and p.watched("t-0") == 0


def test_completes_on_check_then_never_again() -> None:
    rt = FakeRuntime()
    p = Purgatory(rt, "produce")
    state = {"ready": False}
    op = Waiter(1000, state)
    assert not p.try_complete_else_watch(op, ["t-0", "t-1"])
    assert p.check_and_complete("t-0") == 0
    state["ready"] = True
    assert p.check_and_complete("t-1") == 1
    assert p.check_and_complete("t-0") == 0
    rt.advance(5000)
    assert op.results == ["ready"] and p.expired_count == 0


def test_expires_after_its_delay() -> None:
    rt = FakeRuntime()
    p = Purgatory(rt, "fetch")
    op = Waiter(1000, {"ready": False})
    p.try_complete_else_watch(op, ["t-0"])
    rt.advance(999)
    assert op.results == []
    rt.advance(1)
    assert op.results == ["timeout"] and p.expired_count == 1
    assert p.check_and_complete("t-0") == 0
