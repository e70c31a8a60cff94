"""Client guarantees under a random nemesis on a real cluster (slow): with an
idempotent acks=all producer, min.insync.replicas=2 and clean elections, nothing
acknowledged is lost, nothing is duplicated, per-key order holds, and no send
reported `fail` is in the log."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.client.test_cluster import S, Workload, cluster

BROKERS = ("b1", "b2", "b3")


def nemesis(w: Any, seed: int, start_us: int, end_us: int) -> None:
    rng = random.Random(seed)
    t = start_us
    while t < end_us:
        victim = rng.choice(BROKERS)
        kind = rng.choice(["isolate", "crash", "pause"])
        hold = rng.randint(2, 8) * S

        def begin(victim: str = victim, kind: str = kind) -> None:
            {"isolate": lambda: w.isolate([victim]), "crash": lambda: w.crash(victim),
             "pause": lambda: w.pause(victim)}[kind]()

        def end(victim: str = victim, kind: str = kind) -> None:
            {"isolate": w.heal, "crash": lambda: w.restart(victim),
             "pause": lambda: w.resume(victim)}[kind]()

        w.call_later(t - w.now_us, begin)
        w.call_later(t + hold - w.now_us, end)
        t += hold + rng.randint(1, 5) * S


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_idempotent_producer_under_random_faults(seed: int) -> None:
    w = cluster(seed=seed)
    wl = Workload(w, producer={"request.timeout.ms": 5000, "delivery.timeout.ms": 20000})
    start = w.now_us
    nemesis(w, seed, start + 5 * S, start + 45 * S)
    for _ in range(500):  # 50 records every 100 ms for 50 s
        wl.send(10)
        w.run_for(100_000)
    w.heal()
    w.run_for(60 * S)
    assert len(wl.results) == wl.sent
    ids = [rid for _, _, rid in wl.consumed]
    assert len(ids) == len(set(ids)), "duplicates"
    acked = {rid for rid, r in wl.results.items() if r.ok}
    failed = {rid for rid, r in wl.results.items() if r.status == "fail"}
    assert acked <= set(ids), "acknowledged writes lost"
    assert not (failed & set(ids)), "a send reported fail is in the log"
    assert len(acked) > wl.sent // 4  # the cluster was available part of the time
    by_key: dict[bytes, list[int]] = {}
    for _, _, rid in wl.consumed:
        by_key.setdefault(wl.keys[rid], []).append(int(rid.split("-")[1]))
    assert all(seq == sorted(seq) for seq in by_key.values()), "per-key order broken"
