"""The same observable behaviour of the replicated-log program in both worlds.

Each test takes the `cluster` fixture (conftest.py) and so runs once in the
simulation and once as real processes on 127.0.0.1. Timeouts are bounds, not
expectations: in both worlds the cluster normally settles in tens of milliseconds.
"""

from __future__ import annotations

from simlog.examples.replicated_log import encode_entry

SETTLE_S = 5.0


def values(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{i:03d}".encode() for i in range(n)]


def assert_prefixes_of_leader(cluster) -> None:
    """Every replica's log is a prefix of the leader's (no divergence, ever)."""
    lead = cluster.log(cluster.leader)
    for node in cluster.replicas:
        log = cluster.log(node)
        assert log == lead[:len(log)], f"{node} diverged from the leader"


def test_acknowledged_writes_are_readable_from_the_leader(cluster) -> None:
    written = values("w", 20)
    assert cluster.write_all(written, SETTLE_S)
    acked = cluster.acked_values()
    assert sorted(acked.values()) == list(range(20))  # one index each, no gaps
    result = cluster.read()
    assert result is not None
    commit, read = result
    assert commit >= 20
    for value, index in acked.items():
        assert read[index] == value
    assert read == written  # one client, one leader: log order is submit order
    assert cluster.read(start=15)[1] == written[15:]


def test_acked_writes_reach_every_live_follower(cluster) -> None:
    written = values("f", 10)
    assert cluster.write_all(written, SETTLE_S)
    assert cluster.wait_until(
        lambda: all(cluster.log(n) == written for n in cluster.replicas), SETTLE_S)


def test_heartbeat_keeps_followers_quiet(cluster) -> None:
    cluster.sleep(1.5)  # > 3 leader timeouts, with no client traffic at all
    for node in ("n2", "n3"):
        assert cluster.events(node, "leader_suspected") == []
        assert [e["role"] for e in cluster.events(node, "started")] == ["follower"]


def test_followers_detect_a_dead_leader_and_its_return(cluster) -> None:
    assert cluster.write_all(values("a", 3), SETTLE_S)
    cluster.crash("n1")
    assert cluster.wait_until(
        lambda: all(cluster.events(n, "leader_suspected") for n in ("n2", "n3")), SETTLE_S)
    for node in ("n2", "n3"):
        (event,) = cluster.events(node, "leader_suspected")
        assert event["leader"] == "n1"
        assert event["silent_us"] >= cluster.config.leader_timeout_us
    cluster.restart("n1")
    assert cluster.wait_until(
        lambda: all(cluster.events(n, "leader_back") for n in ("n2", "n3")), SETTLE_S)
    assert cluster.write_all(values("b", 3), SETTLE_S)  # the restarted leader serves
    assert cluster.read()[1] == values("a", 3) + values("b", 3)


def test_a_crashed_follower_does_not_block_the_majority(cluster) -> None:
    assert cluster.write_all(values("before", 5), SETTLE_S)
    cluster.crash("n3")
    assert cluster.write_all(values("during", 10), SETTLE_S)
    assert len(cluster.log("n3")) <= 5
    cluster.restart("n3")
    everything = values("before", 5) + values("during", 10)
    assert cluster.wait_until(lambda: cluster.log("n3") == everything, SETTLE_S)
    assert_prefixes_of_leader(cluster)


def test_a_restarted_node_recovers_its_file_from_disk(cluster) -> None:
    written = values("r", 12)
    assert cluster.write_all(written, SETTLE_S)
    assert cluster.wait_until(lambda: cluster.log("n2") == written, SETTLE_S)
    cluster.crash("n2")
    cluster.restart("n2")
    assert cluster.wait_until(lambda: len(cluster.events("n2", "recovered")) == 2, SETTLE_S)
    first, second = cluster.events("n2", "recovered")
    assert first["entries"] == 0 and second["entries"] == 12
    assert cluster.write_all(values("s", 2), SETTLE_S)
    assert cluster.wait_until(lambda: cluster.log("n2") == written + values("s", 2), SETTLE_S)


def test_acked_writes_survive_power_loss_on_a_majority(cluster) -> None:
    acked_written = values("p", 15)
    assert cluster.write_all(acked_written, SETTLE_S)
    for v in values("late", 5):  # in flight when the power goes
        cluster.write(v)
    acked = cluster.acked_values()
    for node in cluster.replicas:
        cluster.crash(node, power_loss=True)
    for value, index in acked.items():
        holders = [n for n in cluster.replicas
                   if len(cluster.log(n)) > index and cluster.log(n)[index] == value]
        assert len(holders) >= 2, f"{value!r} durable only on {holders}"
    assert_prefixes_of_leader(cluster)
    for node in cluster.replicas:
        cluster.restart(node)
    assert cluster.wait_until(
        lambda: (r := cluster.read(timeout_s=0.5)) is not None and r[0] >= len(acked),
        SETTLE_S)
    _, read = cluster.read()
    for value, index in acked.items():
        assert read[index] == value


def test_a_paused_follower_catches_up_after_resume(cluster) -> None:
    cluster.pause("n2")
    written = values("z", 10)
    assert cluster.write_all(written, SETTLE_S)  # n1 + n3 are a majority
    cluster.resume("n2")
    assert cluster.wait_until(lambda: cluster.log("n2") == written, SETTLE_S)
    assert_prefixes_of_leader(cluster)


def test_a_paused_leader_is_suspected_then_welcomed_back(cluster) -> None:
    cluster.pause("n1")
    cluster.sleep(2 * cluster.config.leader_timeout_us / 1e6)  # silence
    cluster.resume("n1")
    assert cluster.wait_until(
        lambda: all(cluster.events(n, "leader_back") for n in ("n2", "n3")), SETTLE_S)
    for node in ("n2", "n3"):
        assert len(cluster.events(node, "leader_suspected")) == 1
    assert cluster.write_all(values("q", 3), SETTLE_S)


def test_no_write_is_acknowledged_without_a_majority(cluster) -> None:
    cluster.pause("n2")
    cluster.pause("n3")
    for v in values("m", 3):
        cluster.write(v)
    cluster.sleep(0.5)
    assert cluster.acked_values() == {}  # the leader alone is not a majority
    cluster.resume("n3")
    assert cluster.wait_until(lambda: len(cluster.acked_values()) == 3, SETTLE_S)
    cluster.resume("n2")


def test_acks_wait_for_the_followers_fsync(cluster) -> None:
    for node in ("n2", "n3"):
        cluster.slow_fsync(node, 0.3)
    written = values("slow", 3)
    assert cluster.write_all(written, SETTLE_S)
    for node in cluster.replicas:  # at once: a follower that acked early loses them
        cluster.crash(node, power_loss=True)
    for value, index in cluster.acked_values().items():
        holders = [n for n in cluster.replicas
                   if len(cluster.log(n)) > index and cluster.log(n)[index] == value]
        assert len(holders) >= 2, f"{value!r} durable only on {holders}"


def test_a_full_disk_halts_a_follower_and_the_majority_goes_on(cluster) -> None:
    assert cluster.write_all(values("ok", 2), SETTLE_S)
    assert cluster.wait_until(lambda: cluster.log("n3") == values("ok", 2), SETTLE_S)
    cluster.disk_full("n3")
    assert cluster.write_all(values("full", 5), SETTLE_S)
    assert cluster.wait_until(lambda: cluster.events("n3", "disk_error"), SETTLE_S)
    (event,) = cluster.events("n3", "disk_error")
    assert "no_space" in event["error"]
    assert cluster.log("n3") == values("ok", 2)  # nothing half-written
    cluster.disk_full("n3", full=False)
    cluster.restart("n3")
    everything = values("ok", 2) + values("full", 5)
    assert cluster.wait_until(lambda: cluster.log("n3") == everything, SETTLE_S)


def test_a_torn_tail_is_cut_on_recovery(cluster) -> None:
    written = values("t", 6)
    assert cluster.write_all(written, SETTLE_S)
    assert cluster.wait_until(lambda: cluster.log("n2") == written, SETTLE_S)
    cluster.crash("n2")
    size = sum(len(encode_entry(v)) for v in written)
    cluster.append_to_log("n2", encode_entry(b"half-written")[:-3])
    cluster.restart("n2")
    assert cluster.wait_until(lambda: len(cluster.events("n2", "recovered")) == 2, SETTLE_S)
    (cut,) = cluster.events("n2", "log_truncated")
    assert cut["bytes_after"] == size and cut["bytes_before"] > size
    assert cluster.events("n2", "recovered")[-1]["entries"] == 6
    assert cluster.write_all(values("u", 2), SETTLE_S)
    assert cluster.wait_until(lambda: cluster.log("n2") == written + values("u", 2), SETTLE_S)


def test_clock_skew_changes_when_a_dead_leader_is_noticed_not_whether(cluster) -> None:
    # n2's clock is an hour behind and runs four times too fast: heartbeats still
    # keep it quiet, and its leader timeout passes in a quarter of the real time.
    cluster.set_clock("n2", offset_us=-3_600_000_000, drift=3.0)
    assert cluster.write_all(values("k", 3), SETTLE_S)
    cluster.sleep(1.0)
    assert cluster.events("n2", "leader_suspected") == []
    cluster.crash("n1")
    assert cluster.wait_until(lambda: cluster.events("n2", "leader_suspected"), SETTLE_S)
    assert cluster.events("n3", "leader_suspected") == []  # its own clock is not there yet
    assert cluster.wait_until(lambda: cluster.events("n3", "leader_suspected"), SETTLE_S)
    assert cluster.log("n2") == values("k", 3)


def test_a_lossy_duplicating_link_slows_a_follower_but_it_catches_up(cluster) -> None:
    cluster.degrade_link("n1", "n3", loss=0.3, duplicate=0.3)
    written = values("l", 40)
    assert cluster.write_all(written, SETTLE_S)
    assert cluster.wait_until(lambda: cluster.log("n3") == written, SETTLE_S)
    assert cluster.events("n3", "leader_suspected") == []
    cluster.degrade_link("n1", "n3")  # healed
    assert cluster.write_all(values("h", 2), SETTLE_S)
    assert cluster.wait_until(lambda: cluster.log("n3") == written + values("h", 2), SETTLE_S)


def test_a_leader_cut_off_from_its_followers_commits_nothing_until_healed(cluster) -> None:
    before = values("i", 2)
    assert cluster.write_all(before, SETTLE_S)
    cluster.partition([["n1", "c1"], ["n2", "n3"]])
    during = values("j", 3)
    for v in during:
        cluster.write(v)
    assert cluster.wait_until(
        lambda: all(cluster.events(n, "leader_suspected") for n in ("n2", "n3")), SETTLE_S)
    assert set(cluster.acked_values()) == set(before)  # appended by n1, not committed
    assert cluster.log("n1") == before + during
    cluster.heal()
    assert cluster.wait_until(lambda: set(cluster.acked_values()) == set(before + during),
                              SETTLE_S)
    assert cluster.wait_until(
        lambda: all(cluster.log(n) == before + during for n in cluster.replicas), SETTLE_S)
    assert all(cluster.events(n, "leader_back") for n in ("n2", "n3"))
