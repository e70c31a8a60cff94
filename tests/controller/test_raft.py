"""Raft core: election, replication, check-quorum, pre-vote, persistence, snapshots."""

from __future__ import annotations

from ctl_harness import Cluster
from ctl_raftnode import committed_names, leaders, raft_factory

from simlog.controller.raft import FOLLOWER
from simlog.protocol.quorum import VoteRequest, VoteResponse

VOTERS = ["c1", "c2", "c3"]
S = 1_000_000


def three(seed=1, **kw) -> Cluster:
    c = Cluster(seed=seed)
    for v in VOTERS:
        c.add(v, raft_factory(VOTERS, **kw))
    return c


def elect(c: Cluster) -> str:
    assert c.run_until_true(lambda: len(leaders(c)) == 1 and all(
        n.raft.leader_id == leaders(c)[0] for n in c.nodes.values()), 10 * S)
    return leaders(c)[0]


def test_three_voters_elect_one_leader_and_replicate():
    c = three()
    leader = elect(c)
    elected = c.events_of("raft_leader_elected")
    assert len(elected) == 1 and elected[0]["leader"] == leader
    for name in ["a", "b", "c"]:
        assert c.node(leader).propose(name) is not None
    c.run_for(S)
    for v in VOTERS:
        assert committed_names(c.node(v)) == ["a", "b", "c"]


def test_follower_cannot_append():
    c = three()
    leader = elect(c)
    follower = next(v for v in VOTERS if v != leader)
    assert c.node(follower).propose("x") is None


def test_leader_crash_elects_new_leader_and_keeps_committed():
    c = three()
    leader = elect(c)
    c.node(leader).propose("a")
    c.run_for(S)
    epoch = c.node(leader).raft.epoch
    c.crash(leader)
    new = elect(c)
    assert new != leader and c.node(new).raft.epoch > epoch
    c.node(new).propose("b")
    c.run_for(S)
    c.restart(leader)
    c.run_for(5 * S)
    for v in VOTERS:
        assert committed_names(c.node(v)) == ["a", "b"], v


def test_isolated_follower_rejoins_without_disrupting_the_leader():
    c = three()
    leader = elect(c)
    epoch = c.node(leader).raft.epoch
    follower = next(v for v in VOTERS if v != leader)
    c.isolate(follower)
    c.run_for(20 * S)  # many election timeouts: pre-votes fail, no epoch bump
    assert c.node(follower).raft.epoch == epoch
    c.heal()
    c.run_for(5 * S)
    assert leaders(c) == [leader]
    assert all(c.node(v).raft.epoch == epoch for v in VOTERS)
    assert c.node(follower).raft.role == FOLLOWER


def test_isolated_leader_resigns_by_check_quorum_and_majority_moves_on():
    c = three()
    leader = elect(c)
    epoch = c.node(leader).raft.epoch
    c.isolate(leader)
    c.run_for(5 * S)
    assert not c.node(leader).raft.is_leader  # resigned: 1.5 x fetch timeout
    others = [v for v in VOTERS if v != leader]
    new = [v for v in others if c.node(v).raft.is_leader]
    assert len(new) == 1 and c.node(new[0]).raft.epoch > epoch
    assert c.node(leader).propose("lost") is None
    c.heal()
    c.run_for(5 * S)
    assert leaders(c) == new
    assert c.node(leader).raft.leader_id == new[0]


def test_vote_survives_restart_no_double_vote():
    c = three()
    c.crash("c2")
    c.crash("c3")
    c.restart("c3")
    voter = c.node("c3")
    epoch = voter.raft.epoch + 5
    replies = []
    c.drop_filter = lambda s, d, m: (replies.append(m) or True) if d in ("c1", "c2") \
        and isinstance(m, VoteResponse) else False
    voter.on_message("c1", VoteRequest(candidate_id="c1", candidate_epoch=epoch,
                                       last_offset_epoch=99, last_offset=99))
    assert replies == []  # not answered before the vote is durable
    c.run_for(10_000)
    assert [r.vote_granted for r in replies] == [True]
    c.crash("c3")
    voter = c.restart("c3")
    assert voter.raft.epoch == epoch and voter.raft.voted_for == "c1"
    voter.on_message("c2", VoteRequest(candidate_id="c2", candidate_epoch=epoch,
                                       last_offset_epoch=99, last_offset=99))
    c.run_for(10_000)
    assert [r.vote_granted for r in replies] == [True, False]


def test_restart_recovers_log_from_disk():
    c = three()
    leader = elect(c)
    for name in ["a", "b"]:
        c.node(leader).propose(name)
    c.run_for(S)
    for v in VOTERS:
        c.crash(v, lose_unsynced=True)
    for v in VOTERS:
        c.restart(v)
    elect(c)
    c.run_for(2 * S)
    for v in VOTERS:
        assert committed_names(c.node(v)) == ["a", "b"]


def test_observer_follows_the_log():
    c = three()
    c.add("b1", raft_factory(VOTERS))
    leader = elect(c)
    c.node(leader).propose("a")
    c.run_for(2 * S)
    assert committed_names(c.node("b1")) == ["a"]
    assert c.node("b1").raft.leader_id == leader
    assert not c.node("b1").raft.is_voter


def test_snapshot_bounds_the_log_and_catches_up_a_lagging_follower():
    c = three(snapshot_interval_records=10)
    leader = elect(c)
    lagging = next(v for v in VOTERS if v != leader)
    c.crash(lagging)
    for i in range(30):
        c.node(leader).propose(f"t{i}")
    c.run_for(S)
    node = c.node(leader)
    hw = node.raft.high_watermark
    assert node.raft.create_snapshot(hw, [])
    c.run_for(S)
    assert node.raft.log.start_offset == hw and len(node.raft.log.entries) == 0
    c.node(leader).propose("after")
    c.run_for(S)
    c.restart(lagging)
    c.run_for(5 * S)
    f = c.node(lagging)
    assert f.listener.snapshot_end == hw
    assert committed_names(f) == ["after"]
    assert c.events_of("raft_snapshot_loaded")


def test_diverging_suffix_of_an_old_leader_is_truncated_by_epoch():
    c = three()
    leader = elect(c)
    c.node(leader).propose("a")
    c.run_for(S)
    c.isolate(leader)
    for name in ["lost1", "lost2"]:
        assert c.node(leader).propose(name) is not None  # never reaches a majority
    others = [v for v in VOTERS if v != leader]
    assert c.run_until_true(lambda: any(c.node(v).raft.is_leader for v in others), 10 * S)
    new = next(v for v in others if c.node(v).raft.is_leader)
    c.node(new).propose("b")
    c.run_for(S)
    c.heal()
    c.run_for(5 * S)
    truncated = [e for e in c.events_of("raft_truncate") if e["node"] == leader]
    assert truncated
    for v in VOTERS:
        assert committed_names(c.node(v)) == ["a", "b"], v
        log = c.node(v).raft.log
        assert [e.record for e in log.entries] == [e.record for e in c.node(new).raft.log.entries]


def test_torn_log_tail_is_cut_on_recovery():
    from simlog.controller.log import DIR
    c = three()
    leader = elect(c)
    for name in ["a", "b", "c"]:
        c.node(leader).propose(name)
    c.run_for(S)
    follower = next(v for v in VOTERS if v != leader)
    end = c.node(follower).raft.log.end_offset
    c.crash(follower)
    disk = c.disks[follower]
    seg = [p for p in disk.list(DIR + "/") if p.endswith(".log")][-1]
    del disk.files[seg][-3:]  # a torn last frame
    node = c.restart(follower)
    assert node.raft.log.end_offset == end - 1
    c.run_for(3 * S)
    assert node.raft.log.end_offset == c.node(leader).raft.log.end_offset
    assert committed_names(node) == ["a", "b", "c"]


def test_describe_quorum_answers_leader_epoch_and_high_watermark():
    from simlog.protocol.errors import Errors
    from simlog.protocol.quorum import DescribeQuorumRequest, DescribeQuorumResponse
    c = three()
    leader = elect(c)
    c.node(leader).propose("a")
    c.run_for(S)
    got = []
    c.drop_filter = lambda s, d, m: (got.append((s, m)) or True) \
        if isinstance(m, DescribeQuorumResponse) else False
    for v in VOTERS:
        c.node(v).on_message("b9", DescribeQuorumRequest(correlation_id=4))
    answers = {s: m for s, m in got}
    assert answers[leader].error_code == Errors.NONE
    assert answers[leader].high_watermark == c.node(leader).raft.high_watermark == 2
    assert tuple(answers[leader].voters) == tuple(VOTERS)
    assert all(m.leader_id == leader and m.correlation_id == 4 for m in answers.values())
    assert sum(m.error_code == Errors.NOT_LEADER_OR_FOLLOWER for m in answers.values()) == 2
