"""A follower cut off from its leader and healed: when it rejoins the ISR.

Over TCP (the default transport) its fetch caught by the cut is retransmitted after the
heal, at TCP's next backed-off retransmission, so it rejoins within about that plus a
fetch round and an AlterPartition. Over a datagram network the fetch is lost for good
and the fetcher waits replica.socket.timeout.ms for it, as Kafka's fetcher waits for its
request; so rejoining takes up to that timeout after the heal.
"""

from __future__ import annotations

from .simcluster import MS, S, SimCluster


def rejoin_delay_us(socket_timeout_ms: int, transport: str = "tcp") -> int:
    c = SimCluster(transport=transport, settings={"min.insync.replicas": 1, "replica.lag.time.max.ms": 3_000,
                             "replica.socket.timeout.ms": socket_timeout_ms},
                   producer_config={"request.timeout.ms": 5_000})
    c.send_every(20 * MS, c.w.now_us + 40 * S)
    c.run_for(1 * S)
    leader = c.leader()
    follower = next(b for b in c.broker_ids if b != f"b{leader}")
    c.w.cut([follower], [f"b{leader}"])
    c.w.cut([f"b{leader}"], [follower])
    c.run_for(12 * S)
    fid = int(follower[1:])
    assert fid not in c.isr()
    healed = c.w.now_us
    c.w.heal()
    c.run_for(35 * S)
    assert fid in c.isr()
    back = [e["time_us"] for e in c.events("isr_expand")
            if e["time_us"] > healed and fid in dict(e["fields"][1])["added"]]
    assert back
    return back[0] - healed


def test_healed_follower_rejoins_after_its_lost_fetch_times_out() -> None:
    quick = rejoin_delay_us(2_000, "datagram")
    assert quick <= 2 * S + 1 * S
    # Kafka's default timeout: the lost fetch was sent 12 s before the heal
    slow = rejoin_delay_us(30_000, "datagram")
    assert 30 * S - 12 * S - 1 * S <= slow <= 30 * S - 12 * S + 1 * S


def test_over_tcp_the_healed_followers_fetch_is_resent_and_it_rejoins_at_once() -> None:
    # sent at ~1 s, the cut held it; retransmission timer 1.2, 1.6, 2.4, 4.0, 7.2,
    # 13.6 s: the heal at 13 s lets the 13.6 s retransmission through
    delay = rejoin_delay_us(30_000)
    assert delay <= 1 * S + 500 * MS
