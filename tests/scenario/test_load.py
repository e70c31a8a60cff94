"""Loading scenario files: good files become typed Scenarios; every kind of bad input is
one line naming file, line, key path, the value found and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from simlog.scenario import schema
from simlog.scenario.errors import ScenarioError
from simlog.scenario.load import load, loads
from simlog.scenario.selectors import Leader, Node, NodeSet, Pick, TopicPartition
from simlog.scenario.units import MAX, ByteRate, MessageRate

DATA = Path(__file__).parent / "data"
BASE = (DATA / "contract_example.yaml").read_text()


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as err:
        loads(text, "split_brain.yaml")
    return str(err.value)


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_contract_example_loads_as_typed_values():
    s = load(DATA / "contract_example.yaml")
    assert (s.name, s.seed, s.duration_us) == ("split-brain", 42, 60_000_000)
    assert s.cluster.brokers == ("b1", "b2", "b3")
    assert s.cluster.controllers == ("c1", "c2", "c3")
    assert s.network.latency.median == 500 and s.network.latency.p99 == 5_000
    assert s.network.bandwidth == ByteRate(125_000_000)
    assert s.disk.page_cache == 4 << 30 and s.disk.fsync_latency == 2_000
    p = s.producers[0]
    assert (p.rate, p.value_size_bytes, p.keys.dist, p.keys.n) == (
        MessageRate(5000.0), 200, "zipf", 1000)
    assert s.consumers[0].members == ("analytics-1", "analytics-2", "analytics-3")
    assert s.clients == ("p1", "analytics-1", "analytics-2", "analytics-3")
    assert s.faults[0].op == schema.Isolate(node=Leader(TopicPartition("orders", 0)))
    assert (s.faults[1].kind, s.faults[1].op) == ("heal", schema.Heal(undoes=None))
    assert [c.name for c in s.checks] == ["lost_writes", "duplicates", "order",
                                          "replicas_converge"]
    assert dict(s.expect) == dict.fromkeys(["lost_writes", "duplicates", "order",
                                            "replicas_converge"], "pass")


def test_kafka_configs_merge_over_defaults_per_level():
    s = load(DATA / "contract_example.yaml")
    broker, topic = s.cluster.config, s.topics[0].config
    assert broker["min.insync.replicas"] == 2 and broker["log.segment.bytes"] == 1 << 30
    # the topic inherits the broker's explicit value and Kafka's defaults, and overrides
    assert topic["min.insync.replicas"] == 2
    assert topic["retention.ms"] == 604_800_000
    assert topic["unclean.leader.election.enable"] is False
    assert topic.overrides() == {"min.insync.replicas": 2, "retention.ms": 604_800_000,
                                 "unclean.leader.election.enable": False}
    producer, consumer = s.producers[0].config, s.consumers[0].config
    assert producer["compression.type"] == "lz4" and producer["batch.size"] == 16_384
    assert consumer["partition.assignment.strategy"] == ("cooperative-sticky",)
    assert consumer["session.timeout.ms"] == 45_000


def test_minimal_file_takes_defaults():
    s = load(DATA / "minimal.yaml")
    assert s.cluster.brokers == ("b1", "b2", "b3") and s.topics == () and s.faults == ()
    assert [c.name for c in s.checks] == ["lost_writes", "duplicates", "order",
                                          "replicas_converge"]


def test_every_fault_op_and_selector_form_loads():
    s = load(DATA / "every_fault.yaml")
    kinds = {f.kind for f in s.faults}
    assert kinds == set(schema.OPS)
    heals = [f.op.undoes for f in s.faults if f.kind == "heal"]
    assert heals == [0, 3, None]  # partition, cut, then all
    crash = next(f.op for f in s.faults if f.kind == "crash")
    assert crash.lose_unsynced and crash.node == Pick("random", NodeSet("brokers"))
    assert s.producers[0].rate is MAX
    assert s.topics[0].config["cleanup.policy"] == ("compact", "delete")
    assert s.topics[0].config["simlog.follower.truncation"] == "high-watermark"
    assert s.cluster.combined
    # acks=1 with idempotence left at its default turns idempotence off, as Kafka does
    assert not s.producers[1].idempotent and s.producers[0].idempotent
    assert dict(s.expect)["available"] == "fail"
    assert s.checks[-1].params.max_unavailable_us == 20_000_000


def test_seed_override():
    assert load(DATA / "minimal.yaml").with_seed(9).seed == 9


@pytest.mark.parametrize(("old", "new", "message"), [
    # bad unit
    ("duration: 60s", "duration: 60 sec",
     "split_brain.yaml:5: duration: expected a duration like 800us, 250ms, 10s, 5m, 1h or a "
     "number of seconds, found '60 sec'"),
    ("rate: 5000/s", "rate: 5MiB/s",
     "split_brain.yaml:26: workload.producers[0].rate: expected messages per second like "
     "5000/s or max, found '5MiB/s'"),
    ("value_size: 200B", "value_size: 200b",
     "split_brain.yaml:29: workload.producers[0].value_size: expected a size like 200B, "
     "16KiB, 1MiB, 1GiB, 10MB or a number of bytes, found '200b'"),
    # unknown key, with a did-you-mean
    ("  brokers: 3", "  brokrs: 3",
     "split_brain.yaml:7: cluster.brokrs: unknown key (did you mean 'brokers'?)"),
    ("{at: 10s, isolate:", "{at: 10s, isolat:",
     "split_brain.yaml:37: faults[0].isolat: unknown key (did you mean 'isolate'?)"),
    ("acks: all", "ack: all",
     "split_brain.yaml:30: workload.producers[0].config.ack: unknown producer config 'ack' "
     "(did you mean 'acks'?)"),
    ("retention.ms: 604800000", "log.retention.ms: 1",
     "split_brain.yaml:21: topics[0].config[log.retention.ms]: unknown topic config "
     "'log.retention.ms' ('log.retention.ms' is a broker config; the topic config is "
     "'retention.ms')"),
    ("checks: [lost_writes", "checks: [lost_write",
     "split_brain.yaml:39: checks[0]: unknown check 'lost_write' (did you mean "
     "'lost_writes'?)"),
    # unknown node / partition / topic
    ("isolate: leader(orders/0)", "isolate: b7",
     "split_brain.yaml:37: faults[0].isolate: unknown node 'b7' (cluster has b1..b3, "
     "c1..c3; clients p1, analytics-1..analytics-3)"),
    ("isolate: leader(orders/0)", "isolate: leader(orders/9)",
     "split_brain.yaml:37: faults[0].isolate: unknown partition 'orders/9' (orders has "
     "partitions 0..5)"),
    ("topic: orders", "topic: order",
     "split_brain.yaml:25: workload.producers[0].topic: unknown topic 'order' (did you mean "
     "'orders'?)"),
    # wrong type / range
    ("partitions: 6", "partitions: six",
     "split_brain.yaml:21: topics[0].partitions: expected an integer, found 'six'"),
    ("min.insync.replicas: 2", "min.insync.replicas: 0",
     "split_brain.yaml:9: cluster.config[min.insync.replicas]: expected an integer >= 1, "
     "found 0"),
    ("acks: all", "acks: 2",
     "split_brain.yaml:30: workload.producers[0].config.acks: expected one of all, -1, 0, 1,"
     " found 2"),
    ("compression.type: lz4", "compression.type: brotli",
     "split_brain.yaml:30: workload.producers[0].config[compression.type]: expected one of "
     "none, gzip, snappy, lz4, zstd, found 'brotli'"),
    ("enable.auto.commit: false", "enable.auto.commit: nope",
     "split_brain.yaml:35: workload.consumers[0].config[enable.auto.commit]: expected true "
     "or false, found 'nope'"),
    ("replication_factor: 3", "replication_factor: 4",
     "split_brain.yaml:21: topics[0].replication_factor: expected at most 3 (the cluster has "
     "3 brokers), found 4"),
    ("protocol: kafka-isr", "protocol: paxos",
     "split_brain.yaml:10: cluster.protocol: expected one of kafka-isr, found 'paxos'"),
    # faults out of order / beyond duration / heal with no match
    ("at: 25s", "at: 5s",
     "split_brain.yaml:38: faults[1].at: faults must be in time order: found 5s after 10s "
     "(faults[0])"),
    ("at: 25s", "at: 75s",
     "split_brain.yaml:38: faults[1].at: expected at <= duration 1m, found 75s"),
    ("heal: all", "heal: b2",
     "split_brain.yaml:38: faults[1].heal: expected all or the value of an earlier "
     "partition, isolate, cut or link fault, found 'b2'"),
    ("expect: {lost_writes", "expect: {consumed_all",
     "split_brain.yaml:40: expect.consumed_all: 'consumed_all' is not in checks (checks: "
     "lost_writes, duplicates, order, replicas_converge)"),
    ("name: split-brain\n", "",
     "split_brain.yaml:1: missing required key 'name'"),
    # YAML syntax error, with its line
    ("seed: 42", "seed: [42",
     "split_brain.yaml:5: YAML syntax error: expected ',' or ']', but got ':'"),
])
def test_bad_input_is_one_exact_line(old, new, message):
    assert error_of(edit(old, new)) == message


@pytest.mark.parametrize(("text", "message"), [
    ("", "split_brain.yaml:1: the file is empty (expected a scenario mapping with at least "
         "name and duration)"),
    ("- a\n", "split_brain.yaml:1: expected a mapping at the top level (name:, duration:, "
              "...), found list"),
    ("name: x\nname: y\nduration: 1s\n", "split_brain.yaml:2: YAML syntax error: duplicate "
                                         "key \"name\""),
    ("name: x\nduration: 1s\nfaults:\n  - {at: 1s}\n",
     "split_brain.yaml:4: faults[0]: a fault needs `at:` and exactly one op (add_broker, "
     "add_partitions, client, clock, corrupt, crash, cut, disk_full, heal, isolate, link, "
     "partition, pause, random, reassign, restart, resume, slow_disk), found none"),
    ("name: x\nduration: 1s\nfaults:\n  - {at: 0s, crash: b1}\n  - {at: 0s, restart: b9}\n",
     "split_brain.yaml:5: faults[1].restart: unknown node 'b9' (cluster has b1..b3, c1..c3)"),
    ("name: x\nduration: 1s\ntopics: [{name: t}]\nworkload:\n  consumers:\n"
     "    - {group: g, members: 2, topics: [t], config: {group.instance.id: i1}}\n",
     "split_brain.yaml:6: workload.consumers[0].config[group.instance.id]: group.instance.id "
     "must differ between members (one id, 2 members would fence each other); use "
     "`static: true` to give each member its own (its member id)"),
    ("name: x\nduration: 1s\ntopics: [{name: t}]\nworkload:\n  consumers:\n"
     "    - {group: g, topics: [t], processing: {per_record: 2ms, per_batch: 1ms}}\n",
     "split_brain.yaml:6: workload.consumers[0].processing.per_batch: unknown key (expected "
     "one of jitter, per_poll, per_record)"),
    ("name: x\nduration: 1s\ntopics: [{name: t}]\nworkload:\n  consumers:\n"
     "    - {group: g, topics: [t], processing: fast}\n",
     "split_brain.yaml:6: workload.consumers[0].processing: expected a duration "
     "like 800us, 250ms, 10s, 5m, 1h or a number of seconds, found 'fast'"),
    ("name: x\nduration: 2s\ntopics: [{name: t}]\nworkload:\n  consumers:\n"
     "    - {group: analytics, topics: [t]}\nfaults:\n  - {at: 1s, crash: coordinator(analytcs)}\n",
     "split_brain.yaml:8: faults[0].crash: unknown consumer group 'analytcs' in "
     "coordinator(analytcs) (groups: analytics) (did you mean 'analytics'?)"),
    ("name: x\nduration: 1s\nchecks: [{available: {max_unavailable: soon}}]\n",
     "split_brain.yaml:3: checks[0].available.max_unavailable: expected a duration like "
     "800us, 250ms, 10s, 5m, 1h or a number of seconds, found 'soon'"),
])
def test_bad_whole_files(text, message):
    assert error_of(text) == message


def test_first_error_by_line_wins():
    text = edit("  brokers: 3", "  brokrs: 3").replace("partitions: 6", "partitions: six")
    assert error_of(text).startswith("split_brain.yaml:7: cluster.brokrs")


def test_add_broker_makes_later_references_valid_and_earlier_ones_not():
    ok = ("name: x\nduration: 1m\nfaults:\n  - {at: 1s, add_broker: b4}\n"
          "  - {at: 2s, crash: b4}\n")
    assert load_text(ok).faults[1].op.node == Node("b4")
    early = ("name: x\nduration: 1m\nfaults:\n  - {at: 1s, crash: b4}\n"
             "  - {at: 2s, add_broker: b4}\n")
    assert error_of(early).startswith("split_brain.yaml:4: faults[0].crash: unknown node 'b4'")


def load_text(text: str):
    return loads(text, "split_brain.yaml")


def test_network_link_selectors_are_checked():
    text = ("name: x\nduration: 1m\nnetwork:\n  links:\n    - {from: b1, to: b4, "
            "latency: 5ms}\n")
    assert error_of(text) == ("split_brain.yaml:5: network.links[0].to: unknown node 'b4' "
                              "(cluster has b1..b3, c1..c3)")


def test_selector_typo_of_a_set_name_gets_a_did_you_mean():
    text = "name: x\nduration: 1m\nfaults:\n  - {at: 1s, isolate: broker}\n"
    assert error_of(text).endswith("(cluster has b1..b3, c1..c3) (did you mean 'brokers'?)")


def test_an_op_without_a_value_is_an_error():
    text = "name: x\nduration: 1m\nfaults:\n  - {at: 1s, add_broker: null}\n"
    assert error_of(text) == "split_brain.yaml:4: faults[0]: add_broker needs a value, found null"


def test_a_member_that_joins_can_be_named_by_later_faults():
    text = ("name: x\nduration: 1m\ntopics: [{name: t}]\nworkload:\n  consumers:\n"
            "    - {group: g, members: 2, topics: [t]}\nfaults:\n"
            "  - {at: 1s, client: {join: g-3}}\n  - {at: 2s, client: {crash: g-3}}\n"
            "  - {at: 3s, client: {crash: h-1}}\n")
    assert error_of(text) == ("split_brain.yaml:10: faults[2].client.crash: unknown client "
                              "'h-1' (cluster has b1..b3, c1..c3; clients g-1..g-3) (did you mean 'g-1'?)")


def test_consumer_processing_time_and_static_membership():
    text = BASE.replace("      members: 3\n", "      members: 3\n      processing: 20ms\n"
                        "      static: true\n", 1)
    g = loads(text, "x.yaml").consumers[0]
    assert (g.processing_per_record_us, g.processing_per_poll_us, g.static) == (20_000, 0, True)
    assert g.processing_us(50) == 1_000_000
    text = BASE.replace("      members: 3\n", "      members: 3\n"
                        "      processing: {per_record: 1ms, per_poll: 5ms}\n", 1)
    g = loads(text, "x.yaml").consumers[0]
    assert (g.processing_us(0), g.processing_us(10), g.static) == (5_000, 15_000, False)
    assert loads(BASE, "x.yaml").consumers[0].processing_us(100) == 0
    text = BASE.replace("      members: 3\n", "      members: 3\n"
                        "      processing: {per_record: 10ms, jitter: 0.5}\n", 1)
    g = loads(text, "x.yaml").consumers[0]
    assert g.processing_jitter == 0.5
    assert [g.processing_us(10, d) for d in (0.0, 0.5, 0.75)] == [50_000, 100_000, 125_000]
