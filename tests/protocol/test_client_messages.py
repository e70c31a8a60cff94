"""Client-facing message types: codec round trips, error codes, sizing."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simlog.protocol import codec
from simlog.protocol.errors import INVALID_METADATA, RETRIABLE, Errors
from simlog.protocol.fetch import (
    AbortedTransaction,
    FetchEpochEndOffset,
    FetchLeaderIdAndEpoch,
    FetchPartition,
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopic,
    FetchTopicResponse,
)
from simlog.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from simlog.protocol.list_offsets import (
    EARLIEST_TIMESTAMP,
    ListOffsetsPartition,
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
    ListOffsetsTopicResponse,
)
from simlog.protocol.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from simlog.protocol.offsets_for_leader_epoch import (
    EpochEndOffset,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
    OffsetForLeaderTopicResult,
    OffsetsForLeaderEpochRequest,
    OffsetsForLeaderEpochResponse,
)
from simlog.protocol.produce import (
    ProducePartitionData,
    ProducePartitionResponse,
    ProduceRequest,
    ProduceResponse,
    ProduceTopicData,
    ProduceTopicResponse,
)
from simlog.runtime import Message

EXAMPLES: list[Message] = [
    ProduceRequest(correlation_id=1, acks=-1, timeout_ms=30000, topic_data=(
        ProduceTopicData(name="orders", partition_data=(
            ProducePartitionData(index=0, records=b"\x00" * 70),
            ProducePartitionData(index=2, records=b"\x01" * 90))),)),
    ProduceResponse(correlation_id=1, responses=(
        ProduceTopicResponse(name="orders", partition_responses=(
            ProducePartitionResponse(index=0, base_offset=41, log_start_offset=0),
            ProducePartitionResponse(index=2, error_code=Errors.NOT_ENOUGH_REPLICAS,
                                     error_message="isr 1 < 2"))),)),
    FetchRequest(correlation_id=2, replica_id=3, max_wait_ms=500, min_bytes=1, topics=(
        FetchTopic(topic="orders", partitions=(
            FetchPartition(partition=0, fetch_offset=17, current_leader_epoch=4,
                           last_fetched_epoch=3, log_start_offset=0),)),)),
    FetchResponse(correlation_id=2, responses=(
        FetchTopicResponse(topic="orders", partitions=(
            FetchPartitionResponse(partition_index=0, high_watermark=20,
                                   last_stable_offset=20, log_start_offset=0,
                                   records=b"batch-bytes"),
            FetchPartitionResponse(partition_index=1, error_code=Errors.FENCED_LEADER_EPOCH,
                                   current_leader=FetchLeaderIdAndEpoch(leader_id=2,
                                                                         leader_epoch=5)),
            FetchPartitionResponse(partition_index=2,
                                   diverging_epoch=FetchEpochEndOffset(epoch=3, end_offset=9),
                                   aborted_transactions=(
                                       AbortedTransaction(producer_id=7, first_offset=3),)),
        )),)),
    MetadataRequest(correlation_id=3, topics=("orders",)),
    MetadataRequest(correlation_id=4),
    MetadataResponse(correlation_id=3, cluster_id="sim", controller_id=1, brokers=(
        MetadataResponseBroker(node_id=1, host="b1"),
        MetadataResponseBroker(node_id=2, host="b2")), topics=(
        MetadataResponseTopic(name="orders", partitions=(
            MetadataResponsePartition(partition_index=0, leader_id=1, leader_epoch=3,
                                      replica_nodes=(1, 2), isr_nodes=(1,)),)),
        MetadataResponseTopic(name="gone", error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION))),
    ListOffsetsRequest(correlation_id=5, topics=(
        ListOffsetsTopic(name="orders", partitions=(
            ListOffsetsPartition(partition_index=0, timestamp=EARLIEST_TIMESTAMP),)),)),
    ListOffsetsResponse(correlation_id=5, topics=(
        ListOffsetsTopicResponse(name="orders", partitions=(
            ListOffsetsPartitionResponse(partition_index=0, offset=12, leader_epoch=2),)),)),
    OffsetsForLeaderEpochRequest(correlation_id=6, topics=(
        OffsetForLeaderTopic(topic="orders", partitions=(
            OffsetForLeaderPartition(partition=0, leader_epoch=2, current_leader_epoch=3),)),)),
    OffsetsForLeaderEpochResponse(correlation_id=6, topics=(
        OffsetForLeaderTopicResult(topic="orders", partitions=(
            EpochEndOffset(partition=0, leader_epoch=2, end_offset=15),)),)),
    InitProducerIdRequest(correlation_id=7),
    InitProducerIdResponse(correlation_id=7, producer_id=1000, producer_epoch=0),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_through_codec(msg: Message) -> None:
    back = codec.decode(codec.encode(msg))
    assert back == msg
    assert type(back) is type(msg)


def test_error_codes_decode_as_errors_enum() -> None:
    back = codec.decode(codec.encode(EXAMPLES[1]))
    assert isinstance(back, ProduceResponse)
    err = back.responses[0].partition_responses[1].error_code
    assert err is Errors.NOT_ENOUGH_REPLICAS


def test_undeclared_error_code_is_rejected_by_decoder() -> None:
    raw = msgspec.msgpack.encode({"type": "InitProducerIdResponse", "correlation_id": 1,
                                  "error_code": 9999})
    with pytest.raises(msgspec.ValidationError):
        codec.decode(raw)


def test_kafka_numbers_for_the_codes_the_core_relies_on() -> None:
    expected = {
        "NONE": 0, "OFFSET_OUT_OF_RANGE": 1, "CORRUPT_MESSAGE": 2,
        "UNKNOWN_TOPIC_OR_PARTITION": 3, "LEADER_NOT_AVAILABLE": 5,
        "NOT_LEADER_OR_FOLLOWER": 6, "REQUEST_TIMED_OUT": 7, "MESSAGE_TOO_LARGE": 10,
        "NOT_ENOUGH_REPLICAS": 19, "NOT_ENOUGH_REPLICAS_AFTER_APPEND": 20,
        "INVALID_REQUIRED_ACKS": 21, "UNSUPPORTED_VERSION": 35, "NOT_CONTROLLER": 41,
        "OUT_OF_ORDER_SEQUENCE_NUMBER": 45, "DUPLICATE_SEQUENCE_NUMBER": 46,
        "INVALID_PRODUCER_EPOCH": 47, "KAFKA_STORAGE_ERROR": 56, "UNKNOWN_PRODUCER_ID": 59,
        "FENCED_LEADER_EPOCH": 74, "UNKNOWN_LEADER_EPOCH": 75, "STALE_BROKER_EPOCH": 77,
        "OFFSET_NOT_AVAILABLE": 78, "PRODUCER_FENCED": 90, "INCONSISTENT_VOTER_SET": 94,
        "DUPLICATE_BROKER_REGISTRATION": 101, "BROKER_ID_NOT_REGISTERED": 102,
        "INELIGIBLE_REPLICA": 107, "NEW_LEADER_ELECTED": 108,
    }
    assert {name: int(Errors[name]) for name in expected} == expected


def test_retriable_flags_follow_kafka() -> None:
    for e in (Errors.NOT_LEADER_OR_FOLLOWER, Errors.REQUEST_TIMED_OUT,
              Errors.NOT_ENOUGH_REPLICAS, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
              Errors.UNKNOWN_TOPIC_OR_PARTITION, Errors.FENCED_LEADER_EPOCH,
              Errors.CORRUPT_MESSAGE, Errors.NETWORK_EXCEPTION):
        assert e.retriable, e
    for e in (Errors.NONE, Errors.OUT_OF_ORDER_SEQUENCE_NUMBER,
              Errors.DUPLICATE_SEQUENCE_NUMBER, Errors.INVALID_PRODUCER_EPOCH,
              Errors.MESSAGE_TOO_LARGE, Errors.OFFSET_OUT_OF_RANGE,
              Errors.UNKNOWN_PRODUCER_ID, Errors.INVALID_REQUIRED_ACKS):
        assert not e.retriable, e
    assert INVALID_METADATA <= RETRIABLE
    assert Errors.NOT_LEADER_OR_FOLLOWER.invalidates_metadata
    assert not Errors.NOT_ENOUGH_REPLICAS.invalidates_metadata


def test_unknown_wire_code_maps_to_unknown_server_error() -> None:
    assert Errors.for_code(12345) is Errors.UNKNOWN_SERVER_ERROR
    assert Errors.for_code(74) is Errors.FENCED_LEADER_EPOCH


def test_kafka_spelling_aliases_are_the_same_type() -> None:
    assert OffsetForLeaderEpochRequest is OffsetsForLeaderEpochRequest


@given(sizes=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=6))
def test_bulk_wire_size_counts_record_bytes_exactly(sizes: list[int]) -> None:
    """wire_size models Kafka's binary framing: record bytes plus a small fixed
    overhead, never more than the msgpack encoding (which spells out field names)."""

    def produce(extra: int) -> ProduceRequest:
        parts = tuple(ProducePartitionData(index=i, records=bytes(n + extra))
                      for i, n in enumerate(sizes))
        return ProduceRequest(correlation_id=9, topic_data=(
            ProduceTopicData(name="orders", partition_data=parts),))

    def fetch(extra: int) -> FetchResponse:
        parts = tuple(FetchPartitionResponse(partition_index=i, records=bytes(n + extra))
                      for i, n in enumerate(sizes))
        return FetchResponse(correlation_id=9, responses=(
            FetchTopicResponse(topic="orders", partitions=parts),))

    for build in (produce, fetch):
        msg = build(0)
        assert sum(sizes) < msg.wire_size() <= len(codec.encode(msg)) + 4
        assert build(10).wire_size() - msg.wire_size() == 10 * len(sizes)


def test_produce_response_carries_the_current_leader_hint() -> None:
    from simlog.protocol.produce import ProduceLeaderIdAndEpoch
    msg = ProduceResponse(correlation_id=3, responses=(ProduceTopicResponse(
        name="orders", partition_responses=(ProducePartitionResponse(
            index=0, error_code=Errors.NOT_LEADER_OR_FOLLOWER,
            current_leader=ProduceLeaderIdAndEpoch(leader_id=2, leader_epoch=7)),)),))
    assert codec.decode(codec.encode(msg)) == msg
