"""Process model: busy time, crash and restart, power loss, pause, clocks, timers,
halt and graceful shutdown, call_in, and the disk faults as a node sees them."""

from __future__ import annotations

import itertools

from simlog.runtime import NodeBase
from simlog.sim import CpuParams, DiskParams, LatencyDist, NetworkParams, World
from simlog.sim.example import LOG, CounterNode, counter_factory
from simlog.sim.testing import ProbeNode, probe_send

NET = NetworkParams(latency=LatencyDist.constant(1_000), bandwidth_bytes_per_s=None)


def probes(*ids: str, **kw) -> World:
    w = World(3, network=NET, **kw)
    for n in ids:
        w.add_node(n, ProbeNode)
    w.run(0)
    return w


def counters(interval_us: int = 10_000, fsync: bool = False, **kw) -> World:
    w = World(5, network=NET, **kw)
    ids = ["n1", "n2"]
    for n in ids:
        w.add_node(n, counter_factory(ids, interval_us=interval_us, fsync=fsync))
    return w


# ---------------------------------------------------------------- busy time


def test_cpu_cost_per_event_queues_events_and_caps_throughput() -> None:
    w = probes("a", "b", cpu=CpuParams(per_event_us=1_000))
    probe_send(w, "a", "b", 100)
    w.run_for(51_000)  # arrivals start at ~2 ms; 1 ms of CPU each
    assert 45 <= len(w.node("b").arrivals) <= 50
    w.run_for(1_000_000)
    times = [t for *_, t in w.node("b").arrivals]
    assert len(times) == 100
    assert all(b - a == 1_000 for a, b in itertools.pairwise(times))


def test_messages_depart_after_the_cost_charged_so_far() -> None:
    w = probes("a", "b")

    def work_then_send(node) -> None:
        node.rt.charge_cpu(5_000)
        probe_send_now(node)

    def probe_send_now(node) -> None:
        from simlog.sim.testing import SimProbe
        node.rt.send("b", SimProbe(seq=1))

    w.call_in("a", work_then_send)
    w.run_for(100_000)
    assert w.node("b").arrivals[0][3] == 5_000 + 1_000


def test_without_cpu_cost_no_queueing() -> None:
    w = probes("a", "b")
    probe_send(w, "a", "b", 100)
    w.run_for(1_000_000)
    assert {t for *_, t in w.node("b").arrivals} == {1_000}


# ---------------------------------------------------------------- crash, restart, power


def test_process_crash_keeps_page_cache() -> None:
    w = counters(disk=DiskParams(dirty_expire_us=None))
    w.run(505_000)
    before = w.node("n1").counter
    assert before == 50
    w.crash("n1")
    assert w.node("n1") is None
    w.restart("n1")
    w.run_for(1)
    assert w.node("n1").recovered == before  # nothing was fsynced: page cache kept it


def test_power_loss_loses_unsynced_keeps_synced() -> None:
    w = counters(disk=DiskParams(dirty_expire_us=None, torn_writes=False))
    w.run(505_000)
    assert w.node("n1").counter == 50
    w.crash("n1", lose_unsynced=True)
    w.restart("n1")
    w.run_for(1)
    assert w.node("n1").recovered == 0

    w2 = counters(fsync=True, disk=DiskParams(dirty_expire_us=None, torn_writes=False))
    w2.run(505_000)
    synced = w2.node("n1").synced_counter
    assert synced >= 49
    w2.crash("n1", lose_unsynced=True)
    w2.restart("n1")
    w2.run_for(1)
    assert w2.node("n1").recovered >= synced


def test_power_loss_torn_write_leaves_a_partial_record_that_recovery_ignores() -> None:
    torn = 0
    for seed in range(10):
        w = World(seed, network=NET, disk=DiskParams(dirty_expire_us=None, torn_writes=True))
        w.add_node("n1", counter_factory(["n1"], interval_us=10_000))
        w.run(505_000)
        w.crash("n1", lose_unsynced=True)
        size = w.disk("n1").size(LOG)
        torn += size % 12 != 0
        w.restart("n1")
        w.run_for(1)
        assert w.node("n1").recovered == size // 12  # the whole records kept, in order
    assert torn >= 5


def test_writeback_makes_old_records_survive_power_loss() -> None:
    w = counters(disk=DiskParams(dirty_expire_us=100_000, torn_writes=False))
    w.run(505_000)
    w.crash("n1", lose_unsynced=True)
    w.restart("n1")
    w.run_for(1)
    assert 39 <= w.node("n1").recovered <= 41  # written before ~0.405 s


def test_crash_drops_timers_and_queued_events_and_call_in() -> None:
    w = probes("a", "b", cpu=CpuParams(per_event_us=10_000))
    old = w.node("b")
    w.call_in("b", lambda n: n.timer("t", 5_000))
    probe_send(w, "a", "b", 5)
    w.run_for(15_000)  # b is busy; some probes wait in its inbox
    handled = len(old.arrivals)
    w.crash("b")
    w.call_in("b", lambda n: n.timer("never", 1))
    w.run_for(100_000)
    assert len(old.arrivals) == handled < 5
    assert old.fired == []
    w.restart("b")
    w.run_for(100_000)
    assert w.node("b").started and w.node("b") is not old and w.node("b").arrivals == []


def test_fsync_callback_dropped_after_crash_but_durability_completes() -> None:
    w = World(1, network=NET, disk=DiskParams(torn_writes=False, dirty_expire_us=None))
    w.add_node("a", ProbeNode)
    w.run(0)

    def write_and_sync(node) -> None:
        node.rt.disk.append("f", b"data")
        node.rt.disk.fsync("f", node.fsynced.append)
    w.call_in("a", write_and_sync)
    old = w.node("a")
    w.run_for(100)
    w.crash("a")
    w.run_for(100_000)
    assert old.fsynced == []
    w.crash("a", lose_unsynced=True)  # already down: only the power loss
    assert w.disk("a").read("f", 0, 10) == b"data"


# ---------------------------------------------------------------- pause, clocks, timers


def test_pause_delays_without_losing_and_keeps_order() -> None:
    w = probes("a", "b")
    w.call_in("b", lambda n: n.timer("t", 20_000))
    w.run_for(1)
    w.pause("b", for_us=100_000)
    probe_send(w, "a", "b", 5)
    w.run_for(50_000)
    assert w.node("b").arrivals == []
    w.run_for(100_000)
    b = w.node("b")
    assert b.seqs_from("a") == [0, 1, 2, 3, 4]
    assert all(t == 100_001 for *_, t in b.arrivals)
    assert b.fired and b.fired[0][1] >= 100_001  # the timer waited too; clock jumped


def test_clock_offset_and_drift_show_in_now_and_timers() -> None:
    w = probes("a", "b")
    w.set_clock("a", offset_us=30_000_000)
    w.set_clock("b", drift=0.01)
    w.run_for(1_000_000)
    assert w.now_of("a") == w.now_us + 30_000_000
    assert w.now_of("b") == w.now_us + 10_000
    w.call_in("b", lambda n: n.timer("t", 1_010_000))
    w.run_for(1_000_001)
    local = w.node("b").fired[0][1]
    assert local == 1_000_000 + 10_000 + 1_010_000  # fired after 1 s of true time
    w.set_clock("b", offset_us=0, drift=0.0)
    assert w.now_of("b") == w.now_us


def test_cancelled_timer_does_not_fire() -> None:
    w = probes("a")
    w.call_in("a", lambda n: n.timer("x", 1_000).cancel())
    w.call_in("a", lambda n: n.timer("y", 2_000))
    w.run_for(10_000)
    assert [name for name, _ in w.node("a").fired] == ["y"]


# ---------------------------------------------------------------- halt, shutdown


class Halter(NodeBase):
    def start(self) -> None:
        self.rt.set_timer(1_000, lambda: self.rt.halt("fatal disk error"))


def test_halt_is_a_process_exit_and_restart_works() -> None:
    w = World(1)
    w.add_node("h", Halter)
    w.run(5_000)
    assert w.node("h") is None
    assert w.stats()["nodes"]["h"]["crashes"] == 1
    w.restart("h")
    w.run_for(10)
    assert w.alive("h")


def test_graceful_shutdown_calls_node_shutdown() -> None:
    w = probes("a")
    w.shutdown("a")
    w.run_for(10)
    assert not w.alive("a")


# ---------------------------------------------------------------- disk faults via the world


def test_full_disk_fails_writes_with_an_error_value_then_recovers() -> None:
    w = counters()
    w.run(100_000)
    w.disk_full("n1", for_us=100_000)
    w.run_for(100_000)
    n1 = w.node("n1")
    assert 9 <= n1.write_errors <= 11
    stuck = n1.counter
    w.run_for(100_000)
    assert n1.counter >= stuck + 9


def test_corruption_is_detected_by_checksum_on_recovery() -> None:
    w = counters(fsync=True)
    w.run(200_000)
    w.corrupt("n1", LOG, 4)
    w.crash("n1")
    w.restart("n1")
    w.run_for(1)
    n1: CounterNode = w.node("n1")  # type: ignore[assignment]
    assert 1 <= n1.corrupt_records <= 4
    assert n1.recovered >= 19 - n1.corrupt_records


def test_slow_disk_makes_fsync_slower_by_the_factor() -> None:
    def fsync_us(factor: float) -> int:
        w = World(1, disk=DiskParams(fsync_latency_us=2_000))
        w.add_node("a", ProbeNode)
        w.run(0)
        w.slow_disk("a", factor, for_us=1_000_000)
        done: list[int] = []
        issued: list[int] = []

        def go(node) -> None:
            node.rt.disk.append("f", bytes(1 << 20))
            issued.append(w.hosts["a"].now_us())  # after the page-cache write's CPU cost
            node.rt.disk.fsync("f", lambda e: done.append(w.now_us))
        w.call_in("a", go)
        w.run_for(900_000)
        assert w.disk("a").slow_factor == factor
        w.run_for(200_000)
        assert w.disk("a").slow_factor == 1.0  # expired
        return done[0] - issued[0]
    base = fsync_us(1)
    assert base > 2_000
    assert abs(fsync_us(5) - 5 * base) <= 5


# ---------------------------------------------------------------- trace


def test_record_events_and_emit() -> None:
    w = World(1, record_events=True)
    w.add_node("n1", counter_factory(["n1"], interval_us=10_000))
    w.run(25_000)
    kinds = [e["kind"] for e in w.events]
    assert kinds[:4] == ["add_node", "boot", "start", "emit"]
    assert kinds.count("timer") == 2 and kinds.count("disk.append") == 2
    emit = next(e for e in w.events if e["kind"] == "emit")
    assert emit["fields"][0] == "recovered"
    assert len(w.events) == len(w.trace)


# ---------------------------------------------------------------- SimPy processes


def test_simpy_generator_processes_drive_nodes_alongside() -> None:
    w = probes("a", "b")
    seen: list[int] = []

    def workload(env):
        for i in range(3):
            yield env.timeout(10_000)
            seen.append(env.now)
            probe_send(w, "a", "b", 1, seq=i)

    w.env.process(workload(w.env))
    w.run_for(100_000)
    assert seen == [10_000, 20_000, 30_000]
    assert [t for *_, t in w.node("b").arrivals] == [11_000, 21_000, 31_000]


def test_per_kib_cost_and_per_node_cpu_override() -> None:
    w = World(3, network=NET)
    w.add_node("a", ProbeNode)
    w.add_node("b", ProbeNode, cpu=CpuParams(per_kib_us=1_000))
    w.run(0)
    probe_send(w, "a", "b", 2, pad=bytes(10 * 1024))
    w.run_for(1_000_000)
    t0, t1 = (t for *_, t in w.node("b").arrivals)
    assert t1 - t0 >= 10_000  # the first one kept b busy ~10 ms
    assert w.stats()["nodes"]["b"]["busy_us"] >= 20_000
    assert w.stats()["nodes"]["a"]["busy_us"] == 0


def test_restarted_node_is_not_held_up_by_its_previous_incarnation() -> None:
    w = probes("a", "b", cpu=CpuParams(per_event_us=1_000))
    w.call_in("b", lambda n: n.rt.charge_cpu(500_000))  # b busy until ~0.5 s
    probe_send(w, "a", "b", 2)
    w.run_for(10_000)
    w.crash("b")
    w.restart("b")
    w.run_for(1)
    probe_send(w, "a", "b", 3, seq=10)
    w.run_for(100_000)
    times = [t for *_, t in w.node("b").arrivals]
    assert w.node("b").seqs_from("a") == [10, 11, 12]
    assert times[-1] < 20_000


def test_events_list_is_complete_across_blocks_and_matches_raw() -> None:
    w = World(2, record_events=True)
    w.add_node("n1", counter_factory(["n1"], interval_us=1_000))
    w.run(1_500_000)  # > 3000 events: several hashed blocks plus a partial one
    first = w.events
    assert len(first) == len(w.trace) > 3_000
    assert [tuple([e["time_us"], e["node"], e["kind"], *e["fields"]]) for e in first] \
        == w.raw_events
    w.run_for(10_000)
    assert w.events[:len(first)] == first and len(w.events) > len(first)


def test_a_newer_timed_disk_fault_is_not_undone_by_an_older_expiry() -> None:
    w = probes("a")
    w.slow_disk("a", 4, for_us=100_000)
    w.run_for(50_000)
    w.slow_disk("a", 8, for_us=100_000)  # replaces the first; lasts until 150 ms
    w.run_for(60_000)
    assert w.disk("a").slow_factor == 8
    w.run_for(50_000)
    assert w.disk("a").slow_factor == 1
    w.disk_full("a", for_us=10_000)
    w.disk_full("a", full=False)
    assert not w.disk("a").full


def test_an_old_timed_pause_does_not_end_a_newer_pause() -> None:
    w = probes("a", "b")
    w.pause("b", for_us=100_000)
    w.run_for(10_000)
    w.resume("b")
    w.pause("b")  # indefinitely
    w.run_for(200_000)
    probe_send(w, "a", "b", 1)
    w.run_for(10_000)
    assert w.node("b").arrivals == []
    w.resume("b")
    w.run_for(1)
    assert len(w.node("b").arrivals) == 1


def test_env_run_drives_the_world_too() -> None:
    a = probes("a", "b")
    probe_send(a, "a", "b", 3)
    a.env.run(until=50_000)
    b = probes("a", "b")
    probe_send(b, "a", "b", 3)
    b.run(50_000)
    assert a.node("b").arrivals == b.node("b").arrivals != []
    assert a.trace_hash == b.trace_hash
