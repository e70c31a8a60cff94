"""BrokerNode: a Kafka broker as a simlog node (KRaft mode).

It registers with the active controller and heartbeats (BrokerRegistration,
BrokerHeartbeat), follows the metadata log (a MetadataFollower, as an observer or, in
combined mode, a voter), and turns metadata into replica roles through its
ReplicaManager. It answers clients: Produce, Fetch, ListOffsets, OffsetsForLeaderEpoch,
Metadata (from its metadata image) and InitProducerId.

Lifecycle (the controller package's BrokerLifecycleManager does the talking):
- start: logs open lazily, when metadata names a replica here; the broker follows the
  metadata log, registers, and heartbeats every broker.heartbeat.interval.ms.
- replicas start only after the initial catch-up: when the controller first unfences
  the broker (it does so once the broker's applied metadata reached its registration),
  the whole image is published to the replica manager, and every later delta after it.
  A restarted broker therefore never acts on a stale prefix of the metadata log.
- `shutdown()` (graceful stop) asks for a controlled shutdown; when the controller says
  should_shut_down (leadership moved away) the broker checkpoints high watermarks and
  halts (after CONTROLLED_SHUTDOWN_MAX_WAIT_US at the latest).

Producer ids (InitProducerId) come from a broker-local block scheme instead of Kafka's
AllocateProducerIds: id = broker_epoch * 2^16 + n, n counting from 0 within one
registration. Broker epochs are metadata-log offsets, unique across brokers and
registrations, so ids never collide; a broker hands out 65,536 ids per registration and
then answers COORDINATOR_NOT_AVAILABLE until it re-registers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from simlog.broker.config import BrokerConfig
from simlog.broker.replica_log import ReplicaLog
from simlog.broker.replica_manager import PartitionState, ReplicaManager
from simlog.broker.storage_adapter import StorageReplicaLog
from simlog.controller.config import ControllerConfig
from simlog.controller.controller import QuorumController
from simlog.controller.follower import MetadataFollower
from simlog.controller.image import MetadataDelta, MetadataImage, PartitionRegistration
from simlog.controller.lifecycle import RUNNING, BrokerLifecycleManager
from simlog.coordinator import BrokerCoordinatorHost, GroupCoordinator, GroupCoordinatorConfig
from simlog.protocol.errors import Errors
from simlog.protocol.fetch import FetchRequest
from simlog.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from simlog.protocol.list_offsets import ListOffsetsRequest
from simlog.protocol.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from simlog.protocol.offsets_for_leader_epoch import OffsetsForLeaderEpochRequest
from simlog.protocol.produce import ProduceRequest
from simlog.runtime import ConnectionReset, Message, NodeBase, Runtime, Timer, ms_to_us
from simlog.storage.config import LogConfig
from simlog.storage.log import PartitionLog
from simlog.storage.types import LogError

PRODUCER_IDS_PER_REGISTRATION = 1 << 16
CONTROLLED_SHUTDOWN_MAX_WAIT_US = 30_000_000
FLUSH_CHECK_INTERVAL_US = 100_000  # how often flush.ms is checked (Kafka: scheduler)
RETENTION_CHECK_INTERVAL_MS = 300_000  # log.retention.check.interval.ms
CLEANER_BACKOFF_MS = 15_000  # log.cleaner.backoff.ms

# Broker-level log settings and the topic settings they default (Kafka's mapping).
_BROKER_TO_TOPIC = {
    "log.segment.bytes": "segment.bytes",
    "log.roll.ms": "segment.ms",
    "log.retention.ms": "retention.ms",
    "log.retention.bytes": "retention.bytes",
    "log.cleanup.policy": "cleanup.policy",
    "log.flush.interval.messages": "flush.messages",
    "log.flush.interval.ms": "flush.ms",
    "log.index.interval.bytes": "index.interval.bytes",
    "message.max.bytes": "max.message.bytes",
    "log.cleaner.delete.retention.ms": "delete.retention.ms",
}


def partition_state(reg: PartitionRegistration) -> PartitionState:
    return PartitionState(reg.topic, reg.partition, tuple(reg.replicas), tuple(reg.isr),
                          reg.leader, reg.leader_epoch, reg.partition_epoch)


class BrokerNode(NodeBase):
    def __init__(self, rt: Runtime, config: BrokerConfig,
                 controller_config: ControllerConfig | None = None) -> None:
        super().__init__(rt)
        self.config = config
        self.broker_id = config.broker_id
        self.controller_config = controller_config or ControllerConfig.from_kafka(
            config.controller_nodes, dict(config.extra))
        self.quorum = self.controller_config.quorum
        self.metadata = MetadataFollower(rt, self.quorum, on_delta=self._on_metadata)
        # combined mode (`controllers: 0`): this broker is also a controller voter
        self.controller = (QuorumController(rt, self.controller_config, self.metadata)
                           if rt.node_id in self.quorum.voters else None)
        self.lifecycle = BrokerLifecycleManager(
            rt, self.broker_id, self.metadata,
            heartbeat_interval_us=config.broker_heartbeat_interval_us,
            request_timeout_us=config.controller_request_timeout_us,
            on_state_change=self._on_lifecycle, on_shutdown_complete=self._halt)
        self.rm = ReplicaManager(rt, config, self)
        # Every broker can be a group coordinator: for the groups whose
        # __consumer_offsets partition it leads (checked on each request).
        self.group_coordinator = GroupCoordinator(
            rt, GroupCoordinatorConfig.from_kafka(config.extra), BrokerCoordinatorHost(self))
        self.caught_up = False
        self._halted = False
        self._producer_ids_used = 0
        self._producer_id_epoch = -1
        self._logs: dict[tuple[str, int], StorageReplicaLog] = {}
        self._flush_timer: Timer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.rm.start()
        self.lifecycle.start()
        self.metadata.start()
        extra = self.config.extra
        self._retention_interval_us = ms_to_us(int(extra.get(
            "log.retention.check.interval.ms", RETENTION_CHECK_INTERVAL_MS)))
        self._cleaner_interval_us = ms_to_us(int(extra.get("log.cleaner.backoff.ms",
                                                           CLEANER_BACKOFF_MS)))
        self.rt.set_timer(self._retention_interval_us, self._retention_tick)
        self.rt.set_timer(self._cleaner_interval_us, self._cleaner_tick)

    def _retention_tick(self) -> None:
        """Kafka's LogManager cleanup task: delete segments past retention, on every
        replica independently (never past the HW)."""
        now = self.rt.now()
        for key in sorted(self._logs):
            log = self._logs[key]
            start = log.log_start_offset
            log.plog.apply_retention(now)
            if log.log_start_offset != start:
                self.rm.log_start_moved(key)  # fetch sessions and fetchers look again
        self.rt.set_timer(self._retention_interval_us, self._retention_tick)

    def _cleaner_tick(self) -> None:
        """Kafka's log cleaner: compact logs whose cleanup.policy includes compact."""
        now = self.rt.now()
        for key in sorted(self._logs):
            plog = self._logs[key].plog
            if plog.config.compact:
                plog.compact(now)
        self.rt.set_timer(self._cleaner_interval_us, self._cleaner_tick)

    def shutdown(self) -> None:
        """Controlled shutdown: the controller moves leadership away, then we halt."""
        self.rt.set_timer(CONTROLLED_SHUTDOWN_MAX_WAIT_US, self._halt)
        self.lifecycle.begin_controlled_shutdown()

    def _halt(self) -> None:
        if self._halted:
            return
        self._halted = True
        self.rm.stop()
        self.rt.halt("shutdown")

    def _on_lifecycle(self, state: str) -> None:
        # The controller unfences a broker once its metadata reached its registration:
        # that is the initial catch-up after which replicas may act on metadata.
        if state == RUNNING and not self.caught_up:
            self.caught_up = True
            self._publish_image()

    @property
    def broker_epoch_value(self) -> int:
        return self.lifecycle.broker_epoch

    # ------------------------------------------------------------------ ReplicaManagerHost

    def open_log(self, topic: str, partition: int, topic_config: Mapping[str, Any]) -> ReplicaLog:
        key = (topic, partition)
        if key in self._logs:
            return self._logs[key]
        props: dict[str, Any] = {}
        for broker_key, topic_key in _BROKER_TO_TOPIC.items():
            if broker_key in self.config.extra:
                props[topic_key] = self.config.extra[broker_key]
        props.update(topic_config)
        log_config = LogConfig.from_kafka(props)
        # flush.messages is the adapter's (it gates acks on the forced fsync, see there)
        log = PartitionLog.open(self.rt.disk, f"{topic}-{partition}",
                                replace(log_config, flush_messages=None), now_us=self.rt.now(),
                                topic=topic, partition=partition)
        if isinstance(log, LogError):
            self.rt.halt(f"cannot open log {topic}-{partition}: {log}")
            raise RuntimeError(str(log))
        adapter = StorageReplicaLog(log, self.rt.now, self._disk_failed,
                                    flush_messages=log_config.flush_messages)
        self._logs[key] = adapter
        if "flush.ms" in props and self._flush_timer is None:
            self._flush_timer = self.rt.set_timer(FLUSH_CHECK_INTERVAL_US, self._flush_tick)
        return adapter

    def _flush_tick(self) -> None:
        """flush.ms / log.flush.interval.ms: fsync logs whose interval has passed."""
        now = self.rt.now()
        for key in sorted(self._logs):
            self._logs[key].maybe_flush(now)
        self._flush_timer = self.rt.set_timer(FLUSH_CHECK_INTERVAL_US, self._flush_tick)

    def _disk_failed(self, detail: str) -> None:
        # Kafka halts a broker whose log directory fails (it is its only log dir).
        self.rt.emit("disk_failure", detail=detail)
        self.rt.halt(f"disk failure: {detail}")

    def send_to_controller(self, msg: Message) -> None:
        self.rt.send(self._controller_target(), msg)

    def broker_host(self, broker_id: int) -> str | None:
        return self.metadata.image.broker_host(broker_id)

    def broker_epoch(self) -> int:
        return self.broker_epoch_value

    def broker_eligible(self, broker_id: int) -> bool:
        reg = self.metadata.image.broker(broker_id)
        return reg is not None and reg.eligible

    def _controller_target(self) -> str:
        known = self.metadata.controller_id
        return known if known is not None else sorted(self.quorum.voters)[0]

    # ------------------------------------------------------------------ metadata

    def _on_metadata(self, image: MetadataImage, delta: MetadataDelta) -> None:
        if not self.caught_up:
            return
        for topic in sorted(set(delta.created_topics) | {t for t, _ in delta.config_changes}):
            t = image.topic(topic)
            if t is not None:
                self.rm.set_topic_config(topic, t.configs)
        changes = delta.local_changes(self.broker_id)
        for tp in changes.deletes:
            self.rm.remove_partition(tp)
        for reg in (*changes.leaders, *changes.followers, *changes.isr_changes):
            self.rm.apply_partition_state(partition_state(reg))

    def _publish_image(self) -> None:
        """First publication after catch-up: every replica this broker hosts."""
        image = self.metadata.image
        for name in sorted(image.topics):
            self.rm.set_topic_config(name, image.topics[name].configs)
        for reg in image.partitions_on(self.broker_id):
            self.rm.apply_partition_state(partition_state(reg))
        self.rt.emit("broker_caught_up", broker=self.broker_id, metadata_offset=image.offset)

    # ------------------------------------------------------------------ messages

    def on_message(self, src: str, msg: Message) -> None:
        if self.controller is not None and self.controller.on_message(src, msg):
            return
        if self.metadata.on_message(src, msg) or self.lifecycle.on_message(src, msg):
            return
        if self.group_coordinator.on_message(src, msg):
            return
        if isinstance(msg, ConnectionReset):
            self.rm.on_connection_reset(src)
        elif isinstance(msg, ProduceRequest):
            self.rm.handle_produce(src, msg)
        elif isinstance(msg, FetchRequest):
            self.rm.handle_fetch(src, msg)
        elif isinstance(msg, MetadataRequest):
            self._handle_metadata(src, msg)
        elif isinstance(msg, ListOffsetsRequest):
            self.rm.handle_list_offsets(src, msg)
        elif isinstance(msg, OffsetsForLeaderEpochRequest):
            self.rm.handle_offsets_for_leader_epoch(src, msg)
        elif isinstance(msg, InitProducerIdRequest):
            self._handle_init_producer_id(src, msg)
        else:
            self.rm.on_response(msg)

    def _handle_metadata(self, src: str, req: MetadataRequest) -> None:
        self.rt.charge_cpu(self.config.request_cost_us(0))
        image = self.metadata.image
        brokers = tuple(MetadataResponseBroker(node_id=b.broker_id, host=b.host, port=b.port,
                                               rack=b.rack)
                        for b in image.sorted_brokers() if not b.fenced)
        names = sorted(image.topics) if req.topics is None else list(req.topics)
        topics = []
        for name in names:
            t = image.topic(name)
            if t is None:
                topics.append(MetadataResponseTopic(
                    name=name, error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            parts = []
            for reg in t.sorted_partitions():
                offline = tuple(r for r in reg.replicas
                                if (b := image.broker(r)) is None or b.fenced)
                parts.append(MetadataResponsePartition(
                    partition_index=reg.partition,
                    error_code=Errors.NONE if reg.online else Errors.LEADER_NOT_AVAILABLE,
                    leader_id=reg.leader, leader_epoch=reg.leader_epoch,
                    replica_nodes=tuple(reg.replicas), isr_nodes=tuple(reg.isr),
                    offline_replicas=offline))
            topics.append(MetadataResponseTopic(name=name, partitions=tuple(parts)))
        self.rt.send(src, MetadataResponse(correlation_id=req.correlation_id, brokers=brokers,
                                           topics=tuple(topics)))

    def _handle_init_producer_id(self, src: str, req: InitProducerIdRequest) -> None:
        self.rt.charge_cpu(self.config.request_cost_us(0))
        if req.transactional_id is not None:
            resp = InitProducerIdResponse(correlation_id=req.correlation_id,
                                          error_code=Errors.COORDINATOR_NOT_AVAILABLE)
        elif req.producer_id >= 0 and req.producer_epoch >= 0:
            # KIP-360: an idempotent producer bumps its own epoch and keeps its id.
            resp = InitProducerIdResponse(correlation_id=req.correlation_id,
                                          producer_id=req.producer_id,
                                          producer_epoch=req.producer_epoch + 1)
        elif (self.broker_epoch_value < 0
              or (self._producer_id_epoch == self.broker_epoch_value
                  and self._producer_ids_used >= PRODUCER_IDS_PER_REGISTRATION)):
            resp = InitProducerIdResponse(correlation_id=req.correlation_id,
                                          error_code=Errors.COORDINATOR_NOT_AVAILABLE)
        else:
            if self._producer_id_epoch != self.broker_epoch_value:
                self._producer_id_epoch, self._producer_ids_used = self.broker_epoch_value, 0
            pid = self.broker_epoch_value * PRODUCER_IDS_PER_REGISTRATION + self._producer_ids_used
            self._producer_ids_used += 1
            resp = InitProducerIdResponse(correlation_id=req.correlation_id, producer_id=pid,
                                          producer_epoch=0)
        self.rt.send(src, resp)


def broker_factory(broker_id: int, settings: Mapping[str, Any] | None = None,
                   controller_nodes: tuple[str, ...] | list[str] = ()):
    """factory(rt) -> BrokerNode for World.add_node: `settings` are Kafka broker settings
    (cluster.config of a scenario), `controller_nodes` the quorum voters."""
    config = BrokerConfig.from_kafka(broker_id, settings, controller_nodes)
    controller_config = ControllerConfig.from_kafka(controller_nodes, settings)
    return lambda rt: BrokerNode(rt, config, controller_config)


__all__ = ["BrokerNode", "broker_factory", "partition_state"]
