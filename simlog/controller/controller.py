"""The quorum controller: what the Raft leader does with the metadata log.

The active controller is the Raft leader once its own LeaderChangeRecord is committed
and applied (so it has applied every entry committed before its epoch). It then keeps a
*working image*: the committed image plus the records it appended and not yet saw
committed, so that back-to-back requests see each other's effects (KRaft keeps the same
in its snapshot registry). Requests are answered when their records are committed,
never before; losing leadership answers every pending request with NOT_CONTROLLER.

It serves:
- BrokerRegistration: a RegisterBrokerRecord whose offset becomes the broker epoch; the
  broker starts fenced. A live session of another incarnation refuses the registration
  (DUPLICATE_BROKER_REGISTRATION) until it expires.
- BrokerHeartbeat: keeps the session (broker.session.timeout.ms); unfences a broker
  whose applied metadata offset reached its registration; want_shut_down starts a
  controlled shutdown (leadership and ISR move away first, should_shut_down once it
  leads nothing).
- Session expiry: FenceBrokerRecord, and for every partition with the broker in its ISR
  a PartitionChangeRecord removing it and electing another ISR member (leader epoch +1).
  With no eligible ISR member left the partition goes offline (leader -1, ISR keeps its
  last member) unless unclean.leader.election.enable lets a live out-of-sync replica
  lead (ISR becomes just that replica). Unfencing a broker re-elects offline partitions.
- AlterPartition: ISR changes from partition leaders, validated against the broker
  epoch (STALE_BROKER_EPOCH), leader epoch (FENCED_LEADER_EPOCH), leadership
  (INVALID_REQUEST), partition epoch (INVALID_UPDATE_VERSION) and eligibility of added
  replicas (INELIGIBLE_REPLICA).
- auto.leader.rebalance.enable: every leader.imbalance.check.interval.seconds,
  leadership returns to the preferred (first) replica where it is an eligible ISR member.
- CreateTopics: replicas placed round-robin over eligible brokers (sorted ids, start
  index = number of existing partitions: deterministic and spread). DeleteTopics:
  a RemoveTopicRecord per topic (brokers see the partitions in `delta.local_changes`
  deletes).

Events (rt.emit, only by the node that is Raft leader when a record commits):
broker_registered, broker_fenced, broker_unfenced, broker_controlled_shutdown,
topic_created, topic_deleted, partition_change, unclean_leader_election, controller_active.
"""

from __future__ import annotations

from collections.abc import Callable

from simlog.controller.config import ControllerConfig
from simlog.controller.follower import MetadataFollower
from simlog.controller.image import MetadataDelta, MetadataImage, PartitionRegistration
from simlog.controller.records import (
    NO_LEADER,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FenceBrokerRecord,
    LeaderChangeRecord,
    LogEntry,
    MetadataRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
)
from simlog.protocol.controller import (
    AlterPartitionRequest,
    AlterPartitionResponse,
    AlterPartitionResponsePartition,
    AlterPartitionResponseTopic,
    BrokerHeartbeatRequest,
    BrokerHeartbeatResponse,
    BrokerRegistrationRequest,
    BrokerRegistrationResponse,
    CreatableTopicResult,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeletableTopicResult,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from simlog.protocol.errors import Errors
from simlog.runtime import Message, Runtime, Timer

UNCLEAN_CONFIG = "unclean.leader.election.enable"


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def _preview(image: MetadataImage, records: list[MetadataRecord]) -> MetadataImage:
    """A copy of image with records applied (to decide follow-up records)."""
    after = image.copy()
    after.apply([LogEntry(offset=after.offset + 1 + i, epoch=0, record=r)
                 for i, r in enumerate(records)])
    return after


class QuorumController:
    """The controller logic of one voter; acts only while it is the active controller."""

    def __init__(self, rt: Runtime, config: ControllerConfig,
                 metadata: MetadataFollower) -> None:
        self.rt = rt
        self.cfg = config
        self.metadata = metadata
        self.raft = metadata.raft
        self.active = False
        self.working: MetadataImage | None = None
        self._pending: list[tuple[int, Callable[[], None], Callable[[], None]]] = []
        self._sessions_us: dict[int, int] = {}  # broker id -> last heartbeat (our clock)
        self._incarnations: dict[int, str] = {}
        self._session_timer: Timer | None = None
        self._rebalance_timer: Timer | None = None
        metadata.add_commit_listener(self._on_committed)
        metadata.add_leader_listener(self._on_leader_change)
        self._handlers: dict[type, Callable[[str, Message], None]] = {
            BrokerRegistrationRequest: self.on_broker_registration_request,
            BrokerHeartbeatRequest: self.on_broker_heartbeat_request,
            AlterPartitionRequest: self.on_alter_partition_request,
            CreateTopicsRequest: self.on_create_topics_request,
            DeleteTopicsRequest: self.on_delete_topics_request,
        }

    def on_message(self, src: str, msg: Message) -> bool:
        handler = self._handlers.get(type(msg))
        if handler is None:
            return False
        handler(src, msg)
        return True

    @property
    def controller_hint(self) -> str | None:
        leader = self.raft.leader_id
        return leader if leader != self.rt.node_id or self.active else None

    # ------------------------------------------------------------------ activation

    def _on_leader_change(self, leader_id: str | None, epoch: int) -> None:
        if leader_id != self.rt.node_id and self.active:
            self._deactivate()

    def _on_committed(self, entries: tuple[LogEntry, ...], delta: MetadataDelta) -> None:
        if self.raft.is_leader:
            self._emit_committed(entries, delta)
        if self.active:
            offset = self.metadata.image.offset
            ready = [p for p in self._pending if p[0] <= offset]
            self._pending = [p for p in self._pending if p[0] > offset]
            for _offset, respond, _fail in ready:
                respond()
            return
        if not self.raft.is_leader:
            return
        for entry in entries:
            r = entry.record
            if (isinstance(r, LeaderChangeRecord) and r.leader_id == self.rt.node_id
                    and r.leader_epoch == self.raft.epoch):
                self._activate()
                return

    def _activate(self) -> None:
        self.active = True
        self.working = self.metadata.image.copy()
        now = self.rt.now()
        self._sessions_us = {b.broker_id: now for b in self.working.sorted_brokers()}
        self.rt.emit("controller_active", epoch=self.raft.epoch, offset=self.working.offset)
        self._arm_session_timer()
        self._elect_offline_partitions()
        self._arm_rebalance_timer()

    def _deactivate(self) -> None:
        self.active = False
        self.working = None
        for timer in (self._session_timer, self._rebalance_timer):
            if timer is not None:
                timer.cancel()
        self._session_timer = self._rebalance_timer = None
        pending, self._pending = self._pending, []
        for _offset, _respond, fail in pending:
            fail()
        self.rt.emit("controller_inactive", epoch=self.raft.epoch)

    # ------------------------------------------------------------------ writing

    def _write(self, records: list[MetadataRecord], respond: Callable[[], None],
               fail: Callable[[], None]) -> None:
        """Append records, apply them to the working image, answer once committed."""
        if not records:
            if self._pending:  # answer no earlier than what it may have observed
                self._pending.append((self._pending[-1][0], respond, fail))
            else:
                respond()
            return
        base = self.raft.log.end_offset
        last = self.raft.append(records)
        if last is None or self.working is None:
            fail()
            return
        entries = [LogEntry(offset=base + i, epoch=self.raft.epoch, record=r)
                   for i, r in enumerate(records)]
        self.working.apply(entries)
        self._pending.append((last, respond, fail))

    def _emit_committed(self, entries: tuple[LogEntry, ...], delta: MetadataDelta) -> None:
        for entry in entries:
            r = entry.record
            if isinstance(r, RegisterBrokerRecord):
                self.rt.emit("broker_registered", broker=r.broker_id, broker_epoch=r.broker_epoch,
                             offset=entry.offset)
            elif isinstance(r, FenceBrokerRecord):
                self.rt.emit("broker_fenced", broker=r.id, broker_epoch=r.epoch,
                             offset=entry.offset)
            elif isinstance(r, UnfenceBrokerRecord):
                self.rt.emit("broker_unfenced", broker=r.id, broker_epoch=r.epoch,
                             offset=entry.offset)
            elif isinstance(r, BrokerRegistrationChangeRecord) and r.in_controlled_shutdown == 1:
                self.rt.emit("broker_controlled_shutdown", broker=r.broker_id,
                             offset=entry.offset)
            elif isinstance(r, TopicRecord):
                self.rt.emit("topic_created", topic=r.name, topic_id=r.topic_id,
                             offset=entry.offset)
            elif isinstance(r, RemoveTopicRecord):
                self.rt.emit("topic_deleted", topic_id=r.topic_id, offset=entry.offset)
            elif isinstance(r, PartitionRecord | PartitionChangeRecord):
                name = self.metadata.image.topic_names.get(r.topic_id, r.topic_id)
                self.rt.emit("partition_change", topic=name, partition=r.partition_id,
                             leader=r.leader, isr=list(r.isr), leader_epoch=r.leader_epoch,
                             partition_epoch=r.partition_epoch, offset=entry.offset)

    # ------------------------------------------------------------------ elections

    def _unclean_enabled(self, image: MetadataImage, topic: str) -> bool:
        value = image.topic_config(topic, UNCLEAN_CONFIG)
        if value is None:
            return self.cfg.unclean_leader_election_enable
        return _truthy(value)

    def _change(self, image: MetadataImage, p: PartitionRegistration,
                remove: int | None) -> PartitionChangeRecord | None:
        """Kafka's PartitionChangeBuilder, reduced: remove `remove` from the ISR (never
        emptying it), keep the leader if still eligible, else elect the first eligible
        ISR replica in assignment order, else (unclean) the first eligible replica."""

        def eligible(b: int) -> bool:
            reg = image.broker(b)
            return b != remove and reg is not None and reg.eligible

        isr = tuple(r for r in p.isr if r != remove) or p.isr
        if p.leader != NO_LEADER and eligible(p.leader) and p.leader in isr:
            leader = p.leader
        else:
            leader = next((r for r in p.replicas if r in isr and eligible(r)), NO_LEADER)
            if leader == NO_LEADER and self._unclean_enabled(image, p.topic):
                leader = next((r for r in p.replicas if eligible(r)), NO_LEADER)
                if leader != NO_LEADER:
                    isr = (leader,)
                    self.rt.emit("unclean_leader_election", topic=p.topic,
                                 partition=p.partition, leader=leader)
        if leader == p.leader and isr == p.isr:
            return None
        return PartitionChangeRecord(
            partition_id=p.partition, topic_id=p.topic_id, leader=leader, isr=isr,
            leader_epoch=p.leader_epoch + (1 if leader != p.leader else 0),
            partition_epoch=p.partition_epoch + 1)

    def _move_away(self, image: MetadataImage, broker_id: int) -> list[MetadataRecord]:
        records: list[MetadataRecord] = []
        for p in image.partitions():
            if broker_id in p.isr or p.leader == broker_id:
                change = self._change(image, p, broker_id)
                if change is not None:
                    records.append(change)
        return records

    def _fence(self, broker_id: int, reason: str) -> None:
        image = self.working
        reg = image.broker(broker_id) if image is not None else None
        if reg is None or reg.fenced:
            return
        self.rt.emit("broker_fence_decided", broker=broker_id, reason=reason)
        records: list[MetadataRecord] = [FenceBrokerRecord(id=broker_id, epoch=reg.broker_epoch)]
        # decide the partition changes on the image as it will be after the fence
        after = image.copy()
        after.apply([LogEntry(offset=after.offset + 1, epoch=0, record=records[0])])
        records.extend(self._move_away(after, broker_id))
        self._write(records, lambda: None, lambda: None)

    def _elect_offline_partitions(self) -> None:
        image = self.working
        if image is None:
            return
        records: list[MetadataRecord] = []
        for p in image.partitions():
            if p.leader == NO_LEADER:
                change = self._change(image, p, None)
                if change is not None:
                    records.append(change)
        self._write(records, lambda: None, lambda: None)

    def _arm_rebalance_timer(self) -> None:
        if self.cfg.auto_leader_rebalance_enable:
            self._rebalance_timer = self.rt.set_timer(
                self.cfg.leader_imbalance_check_interval_us, self._on_rebalance_timer)

    def _on_rebalance_timer(self) -> None:
        """auto.leader.rebalance.enable: move leadership back to the preferred replica
        (the first in the assignment) where it is an eligible ISR member. As in KRaft,
        every imbalanced partition is balanced (leader.imbalance.per.broker.percentage
        is not consulted)."""
        self._rebalance_timer = None
        image = self.working
        if not self.active or image is None:
            return
        records: list[MetadataRecord] = []
        for p in image.partitions():
            preferred = p.replicas[0] if p.replicas else NO_LEADER
            reg = image.broker(preferred)
            if (p.leader != preferred and preferred in p.isr and reg is not None
                    and reg.eligible):
                self.rt.emit("preferred_leader_election", topic=p.topic, partition=p.partition,
                             leader=preferred, previous=p.leader)
                records.append(PartitionChangeRecord(
                    partition_id=p.partition, topic_id=p.topic_id, leader=preferred, isr=p.isr,
                    leader_epoch=p.leader_epoch + 1, partition_epoch=p.partition_epoch + 1))
        self._write(records, lambda: None, lambda: None)
        self._arm_rebalance_timer()

    # ------------------------------------------------------------------ sessions

    def _arm_session_timer(self) -> None:
        if self._session_timer is not None or not self._sessions_us:
            return
        now = self.rt.now()
        earliest = min(self._sessions_us.values()) + self.cfg.broker_session_timeout_us
        self._session_timer = self.rt.set_timer(max(1, earliest - now), self._on_session_timer)

    def _on_session_timer(self) -> None:
        self._session_timer = None
        if not self.active or self.working is None:
            return
        now = self.rt.now()
        for broker_id in sorted(self._sessions_us):
            if now - self._sessions_us[broker_id] >= self.cfg.broker_session_timeout_us:
                del self._sessions_us[broker_id]
                self._fence(broker_id, "session_expired")
        self._arm_session_timer()

    def _session_alive(self, broker_id: int) -> bool:
        last = self._sessions_us.get(broker_id)
        return last is not None and self.rt.now() - last < self.cfg.broker_session_timeout_us

    # ------------------------------------------------------------------ handlers

    def _not_active(self, src: str, msg: Message) -> bool:
        if self.active and self.working is not None:
            return False
        hint = self.raft.leader_id if self.raft.leader_id != self.rt.node_id else None
        cid = getattr(msg, "correlation_id", 0)
        if isinstance(msg, BrokerRegistrationRequest):
            resp: Message = BrokerRegistrationResponse(
                correlation_id=cid, error_code=Errors.NOT_CONTROLLER, controller_id=hint)
        elif isinstance(msg, BrokerHeartbeatRequest):
            resp = BrokerHeartbeatResponse(correlation_id=cid, error_code=Errors.NOT_CONTROLLER,
                                           controller_id=hint)
        elif isinstance(msg, AlterPartitionRequest):
            resp = AlterPartitionResponse(correlation_id=cid, error_code=Errors.NOT_CONTROLLER,
                                          controller_id=hint)
        elif isinstance(msg, DeleteTopicsRequest):
            resp = DeleteTopicsResponse(correlation_id=cid, controller_id=hint, responses=tuple(
                DeletableTopicResult(name=n, error_code=Errors.NOT_CONTROLLER)
                for n in msg.topic_names))
        else:
            assert isinstance(msg, CreateTopicsRequest)
            resp = CreateTopicsResponse(correlation_id=cid, controller_id=hint, topics=tuple(
                CreatableTopicResult(name=t.name, error_code=Errors.NOT_CONTROLLER)
                for t in msg.topics))
        self.rt.send(src, resp)
        return True

    def on_broker_registration_request(self, src: str, req: BrokerRegistrationRequest) -> None:
        if self._not_active(src, req):
            return
        image = self.working
        assert image is not None
        existing = image.broker(req.broker_id)
        cid = req.correlation_id

        def reply(code: Errors, epoch: int = -1) -> Callable[[], None]:
            return lambda: self.rt.send(src, BrokerRegistrationResponse(
                correlation_id=cid, error_code=code, broker_epoch=epoch,
                controller_id=self.rt.node_id))

        if existing is not None and not existing.fenced and self._session_alive(req.broker_id):
            if self._incarnations.get(req.broker_id) == req.incarnation_id:
                reply(Errors.NONE, existing.broker_epoch)()
                return
            if req.previous_broker_epoch != existing.broker_epoch:
                reply(Errors.DUPLICATE_BROKER_REGISTRATION)()
                return
        records: list[MetadataRecord] = []
        if existing is not None and not existing.fenced:
            # a new incarnation replaces a live one: it may have lost unflushed data, so
            # it leaves every ISR first (KIP-966's unclean-shutdown handling, simplified)
            after = image.copy()
            after.apply([LogEntry(offset=after.offset + 1, epoch=0, record=FenceBrokerRecord(
                id=req.broker_id, epoch=existing.broker_epoch))])
            records.append(FenceBrokerRecord(id=req.broker_id, epoch=existing.broker_epoch))
            records.extend(self._move_away(after, req.broker_id))
        epoch = self.raft.log.end_offset + len(records)
        records.append(RegisterBrokerRecord(
            broker_id=req.broker_id, broker_epoch=epoch, host=req.host, port=req.port,
            rack=req.rack, incarnation_id=req.incarnation_id, fenced=True))
        self._incarnations[req.broker_id] = req.incarnation_id
        self._sessions_us[req.broker_id] = self.rt.now()
        self._arm_session_timer()
        self._write(records, reply(Errors.NONE, epoch), reply(Errors.NOT_CONTROLLER))

    def on_broker_heartbeat_request(self, src: str, req: BrokerHeartbeatRequest) -> None:
        if self._not_active(src, req):
            return
        image = self.working
        assert image is not None
        cid = req.correlation_id
        reg = image.broker(req.broker_id)
        if reg is None or reg.broker_epoch != req.broker_epoch:
            code = Errors.BROKER_ID_NOT_REGISTERED if reg is None else Errors.STALE_BROKER_EPOCH
            self.rt.send(src, BrokerHeartbeatResponse(correlation_id=cid, error_code=code,
                                                      controller_id=self.rt.node_id))
            return
        self._sessions_us[req.broker_id] = self.rt.now()
        self._arm_session_timer()
        caught_up = req.current_metadata_offset >= reg.broker_epoch
        records: list[MetadataRecord] = []
        if req.want_shut_down:
            if not reg.fenced:
                after = image
                if not reg.in_controlled_shutdown:
                    change = BrokerRegistrationChangeRecord(
                        broker_id=req.broker_id, broker_epoch=reg.broker_epoch,
                        in_controlled_shutdown=1)
                    after = _preview(image, [change])
                    records = [change, *self._move_away(after, req.broker_id)]
                    after = _preview(after, records[1:])
                if not after.partitions_led_by(req.broker_id):
                    # it leads nothing: it may stop now, fenced, so that its next
                    # incarnation can register at once (Kafka fences on SHUTDOWN_NOW)
                    records.append(BrokerRegistrationChangeRecord(
                        broker_id=req.broker_id, broker_epoch=reg.broker_epoch, fenced=1))
        elif req.want_fence:
            if not reg.fenced:
                self._fence(req.broker_id, "requested")
        elif reg.fenced and caught_up:
            unfence = UnfenceBrokerRecord(id=req.broker_id, epoch=reg.broker_epoch)
            after = image.copy()
            after.apply([LogEntry(offset=after.offset + 1, epoch=0, record=unfence)])
            records = [unfence]
            for p in after.partitions():
                if p.leader == NO_LEADER:
                    change = self._change(after, p, None)
                    if change is not None:
                        records.append(change)

        def respond() -> None:
            now_image = self.working if self.working is not None else self.metadata.image
            cur = now_image.broker(req.broker_id)
            fenced = cur.fenced if cur is not None else True
            leads = bool(now_image.partitions_led_by(req.broker_id))
            shut = req.want_shut_down and (fenced or (
                cur is not None and cur.in_controlled_shutdown and not leads))
            self.rt.send(src, BrokerHeartbeatResponse(
                correlation_id=cid, is_caught_up=caught_up, is_fenced=fenced,
                should_shut_down=shut, controller_id=self.rt.node_id))

        def fail() -> None:
            self.rt.send(src, BrokerHeartbeatResponse(correlation_id=cid,
                                                      error_code=Errors.NOT_CONTROLLER))

        self._write(records, respond, fail)

    def on_alter_partition_request(self, src: str, req: AlterPartitionRequest) -> None:
        if self._not_active(src, req):
            return
        image = self.working
        assert image is not None
        cid = req.correlation_id
        reg = image.broker(req.broker_id)
        if reg is None or reg.broker_epoch != req.broker_epoch:
            self.rt.send(src, AlterPartitionResponse(correlation_id=cid,
                                                     error_code=Errors.STALE_BROKER_EPOCH,
                                                     controller_id=self.rt.node_id))
            return
        records: list[MetadataRecord] = []
        results: list[tuple[str, int, Errors]] = []
        for topic in req.topics:
            for part in topic.partitions:
                code, change = self._validate_alter(image, req.broker_id, topic.topic_name, part)
                results.append((topic.topic_name, part.partition_index, code))
                if change is not None:
                    records.append(change)

        def respond() -> None:
            now_image = self.working if self.working is not None else self.metadata.image
            by_topic: dict[str, list[AlterPartitionResponsePartition]] = {}
            for name, index, code in results:
                p = now_image.partition(name, index)
                if code == Errors.NONE and p is not None:
                    item = AlterPartitionResponsePartition(
                        partition_index=index, leader_id=p.leader, leader_epoch=p.leader_epoch,
                        isr=p.isr, partition_epoch=p.partition_epoch)
                else:
                    item = AlterPartitionResponsePartition(partition_index=index, error_code=code)
                by_topic.setdefault(name, []).append(item)
            self.rt.send(src, AlterPartitionResponse(
                correlation_id=cid, controller_id=self.rt.node_id, topics=tuple(
                    AlterPartitionResponseTopic(topic_name=name, partitions=tuple(parts))
                    for name, parts in sorted(by_topic.items()))))

        def fail() -> None:
            self.rt.send(src, AlterPartitionResponse(correlation_id=cid,
                                                     error_code=Errors.NOT_CONTROLLER))

        self._write(records, respond, fail)

    def _validate_alter(self, image: MetadataImage, broker_id: int, topic: str,
                        part) -> tuple[Errors, PartitionChangeRecord | None]:
        p = image.partition(topic, part.partition_index)
        if p is None:
            return Errors.UNKNOWN_TOPIC_OR_PARTITION, None
        if part.leader_epoch != p.leader_epoch:
            return Errors.FENCED_LEADER_EPOCH, None
        if p.leader != broker_id:
            return Errors.INVALID_REQUEST, None
        if part.partition_epoch != p.partition_epoch:
            return Errors.INVALID_UPDATE_VERSION, None
        new_isr = tuple(sorted(set(part.new_isr), key=list(p.replicas).index)) \
            if set(part.new_isr) <= set(p.replicas) else None
        if new_isr is None or broker_id not in new_isr or len(new_isr) != len(part.new_isr):
            return Errors.INVALID_REQUEST, None
        for r in new_isr:
            if r not in p.isr:
                reg = image.broker(r)
                if reg is None or not reg.eligible:
                    return Errors.INELIGIBLE_REPLICA, None
        if new_isr == p.isr:
            return Errors.NONE, None
        return Errors.NONE, PartitionChangeRecord(
            partition_id=p.partition, topic_id=p.topic_id, leader=p.leader, isr=new_isr,
            leader_epoch=p.leader_epoch, partition_epoch=p.partition_epoch + 1)

    def on_create_topics_request(self, src: str, req: CreateTopicsRequest) -> None:
        if self._not_active(src, req):
            return
        image = self.working
        assert image is not None
        brokers = image.eligible_broker_ids()
        placed = sum(len(t.partitions) for t in image.topics.values())
        records: list[MetadataRecord] = []
        results: list[CreatableTopicResult] = []
        seen: set[str] = set()
        for t in req.topics:
            partitions = self.cfg.num_partitions if t.num_partitions == -1 else t.num_partitions
            rf = (self.cfg.default_replication_factor if t.replication_factor == -1
                  else t.replication_factor)
            error = None
            if image.topic(t.name) is not None or t.name in seen:
                error = (Errors.TOPIC_ALREADY_EXISTS, f"Topic '{t.name}' already exists.")
            elif not t.name:
                error = (Errors.INVALID_TOPIC_EXCEPTION, "empty topic name")
            elif partitions <= 0:
                error = (Errors.INVALID_PARTITIONS, "Number of partitions must be positive.")
            elif rf <= 0 or rf > len(brokers):
                error = (Errors.INVALID_REPLICATION_FACTOR,
                         f"Replication factor: {rf} larger than available brokers: "
                         f"{len(brokers)}." if rf > 0 else "Replication factor must be positive.")
            if error is not None:
                results.append(CreatableTopicResult(name=t.name, error_code=error[0],
                                                    error_message=error[1]))
                continue
            seen.add(t.name)
            topic_id = f"{t.name}-{self.raft.log.end_offset + len(records)}"
            if not req.validate_only:
                records.append(TopicRecord(name=t.name, topic_id=topic_id))
                for c in sorted(t.configs, key=lambda c: c.name):
                    records.append(ConfigRecord(resource_name=t.name, name=c.name,
                                                value=c.value))
                n = len(brokers)
                for index in range(partitions):
                    replicas = tuple(brokers[(placed + index + k) % n] for k in range(rf))
                    records.append(PartitionRecord(
                        partition_id=index, topic_id=topic_id, replicas=replicas, isr=replicas,
                        leader=replicas[0], leader_epoch=0, partition_epoch=0))
                placed += partitions
            results.append(CreatableTopicResult(name=t.name, topic_id=topic_id,
                                                num_partitions=partitions,
                                                replication_factor=rf))
        cid = req.correlation_id

        def respond() -> None:
            self.rt.send(src, CreateTopicsResponse(correlation_id=cid, topics=tuple(results),
                                                   controller_id=self.rt.node_id))

        def fail() -> None:
            self.rt.send(src, CreateTopicsResponse(correlation_id=cid, topics=tuple(
                CreatableTopicResult(name=r.name, error_code=Errors.NOT_CONTROLLER)
                for r in results)))

        self._write(records, respond, fail)

    def on_delete_topics_request(self, src: str, req: DeleteTopicsRequest) -> None:
        if self._not_active(src, req):
            return
        image = self.working
        assert image is not None
        records: list[MetadataRecord] = []
        results: list[DeletableTopicResult] = []
        for name in req.topic_names:
            t = image.topic(name)
            if t is None or any(r.topic_id == t.topic_id for r in records
                                if isinstance(r, RemoveTopicRecord)):
                results.append(DeletableTopicResult(
                    name=name, error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            records.append(RemoveTopicRecord(topic_id=t.topic_id))
            results.append(DeletableTopicResult(name=name, topic_id=t.topic_id))
        cid = req.correlation_id

        def respond() -> None:
            self.rt.send(src, DeleteTopicsResponse(correlation_id=cid, responses=tuple(results),
                                                   controller_id=self.rt.node_id))

        def fail() -> None:
            self.rt.send(src, DeleteTopicsResponse(correlation_id=cid, responses=tuple(
                DeletableTopicResult(name=r.name, error_code=Errors.NOT_CONTROLLER)
                for r in results)))

        self._write(records, respond, fail)


__all__ = ["QuorumController"]
