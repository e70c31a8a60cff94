"""The simulated network: one directed link per ordered pair of nodes.

A message sent at `depart_us` on link src→dst
1. is dropped at once if the link is cut, or by a seeded loss draw;
2. waits for the link to be free and occupies it for wire_size / bandwidth (FIFO
   serialisation: a link is busy while it serialises);
3. travels for a latency drawn from the link's lognormal distribution (rounded to
   whole µs);
4. without reorder, never arrives before a message sent earlier on the same link
   (TCP-like); a reordered message gets an extra latency draw and skips that clamp,
   so later ones may overtake it; a duplicated message arrives again after its own
   extra latency;
5. is dropped on arrival if its link was cut at any time while it was in flight
   (the link's cut epoch changed), or if the destination crashed or restarted since
   it was sent (incarnation check);
6. when dropped because the destination's process is down (or was replaced) while
   its machine is up, makes the destination's host send a `runtime.ConnectionReset`
   back over the reverse link (a TCP RST: a refused connection), once per connection
   attempt: messages sent before the last reset on that link (a burst on the same
   connection) get none; a powered-off machine (crash with power loss, until restart)
   stays silent.
7. when a process ends (crash, halt) on a machine that stays up, its kernel closes every
   connection it had: each peer a message ever travelled to or from gets a
   `ConnectionReset` at once over the link from it (lost if that link is cut), so a
   request in flight to it fails as Kafka's clients see a broken connection, not after
   its timeout; messages that were in flight to it then need no reset of their own.

Transport (`NetworkParams.transport`). Items 1 and 5 describe "datagram". With "tcp"
(the default: Kafka and KRaft run over TCP), a cut drops packets and TCP retransmits
them: a message sent into a cut, or caught in flight by one, is held on its link and
resent, in send order and ahead of anything sent after it, at TCP's first retransmission
after the heal (the oldest held message's retransmission timer: 200 ms, doubling, at
most 120 s apart), then travels as usual. A held message is dropped instead if its
sender's process ended meanwhile (its connection went with it), if TCP gave up (15
minutes, Linux's tcp_retries2), and gets a reset if the destination's process changed
meanwhile (the connection it was on is gone). Resets are never held.

Cuts are counted per link, so overlapping faults (a partition and an isolation) heal
independently. Every change of connectivity is logged with its time, so a report can
say who could reach whom at any instant (`connectivity_at`). networkx is used only
for those reports; the hot path reads a flag on the link.
"""

from __future__ import annotations

import random
from bisect import insort
from collections.abc import Callable, Iterable, Sequence
from heapq import heappush
from typing import TYPE_CHECKING, Any

from simlog.runtime import ConnectionReset, Message
from simlog.sim.params import QUANTILE_BITS, LatencyDist, LinkParams, NetworkParams

if TYPE_CHECKING:
    import networkx as nx

    from simlog.sim.node_host import NodeHost

US_PER_S = 1_000_000
TCP_RTO_MIN_US = 200_000        # Linux's minimum retransmission timeout
TCP_RTO_MAX_US = 120_000_000    # and its maximum
TCP_GIVE_UP_US = 924_600_000    # tcp_retries2 = 15 from RTO_MIN: ~15.4 minutes
_QB = QUANTILE_BITS
_LOOPBACK = LinkParams(LatencyDist.constant(0), None)
SER_TABLE = 2_048  # sizes below this find their serialisation time in Link.ser

Pair = tuple[str, str]


class Link:
    """One direction between two nodes, with its current parameters and state."""

    __slots__ = (
        "accept",
        "bandwidth_bytes_per_s",
        "base",
        "caught",
        "conn",
        "cut_count",
        "cut_epoch",
        "degrade_token",
        "deliver_entry",
        "delivered",
        "dst",
        "duplicate",
        "duplicated",
        "eid",
        "flush_at",
        "free_us",
        "gen",
        "getbits",
        "held",
        "held_current",
        "host",
        "last_arrival_us",
        "latency",
        "loss",
        "median_us",
        "net",
        "queue",
        "quirky",
        "reorder",
        "reset_gen",
        "sent",
        "ser",
        "slow",
        "src",
        "src_host",
        "stamps",
        "table",
    )

    def __init__(self, net: Network, src: str, dst: str, params: LinkParams,
                 host: NodeHost, src_host: NodeHost) -> None:
        self.net = net
        self.src = src
        self.dst = dst
        self.host = host
        self.src_host = src_host
        self.getbits = src_host.net_rng.getrandbits
        self.queue = net._queue
        self.eid = net._eid
        self.deliver_entry = self._deliver_entry
        self.delivered = 0  # handed to the destination node
        self.sent = 0  # rt.send calls on this link (drops at send included)
        self.duplicated = 0  # extra copies the link made
        self.base = params
        self.free_us = 0
        self.last_arrival_us = 0
        self.cut_count = 0
        self.cut_epoch = 0
        self.degrade_token = 0
        self.reset_gen = 0  # messages stamped before it travel on a connection already reset
        # tcp: messages caught by a cut, (sent µs, seq, connection, src incarnation,
        # dst incarnation, msg) in send order, until resent after the heal at
        # flush_at[connection]; `conn` is the current connection (disconnect bumps it),
        # `held_current` how many held messages are on it (they hold up new sends)
        self.held: list[tuple[int, int, int, int, int, Message]] = []
        self.flush_at: dict[int, int] = {}
        self.conn = 0
        self.held_current = 0
        self.caught: set[int] = set()  # queue ids of in-flight messages a cut held
        # A message is stamped with the link's generation `gen`, bumped whenever the
        # link is cut or the destination boots or stops; stamps[gen] keeps (cut epoch,
        # destination incarnation) at that generation. On arrival one comparison with
        # `accept` (= gen while the destination runs, -1 while it is down) says
        # "deliver"; anything else takes the slow path, which reads the stamp.
        self.gen = 0
        self.stamps: list[tuple[int, int]] = [(0, host.incarnation)]
        self.accept = 0 if host.node is not None else -1
        self.slow = False  # cut or quirky: Network.send, not the runtime's fast path
        self.ser: list[int] | None = None
        self.set_params(params)

    def set_params(self, p: LinkParams) -> None:
        self.latency = p.latency
        self.median_us = p.latency.median_us
        self.table = p.latency.quantile_table()
        self.bandwidth_bytes_per_s = p.bandwidth_bytes_per_s
        self.loss = p.loss
        self.duplicate = p.duplicate
        self.reorder = p.reorder
        self.quirky = bool(p.loss or p.duplicate or p.reorder)
        bw = p.bandwidth_bytes_per_s
        # serialisation µs by size (exact ceil), for the sizes most messages have
        self.ser = None if not bw else [-(-n * US_PER_S // bw) for n in range(SER_TABLE)]
        self.refresh()

    def refresh(self) -> None:
        """Recompute `slow`; the sender's runtime takes its fast path only for links in
        its host's out_links, which holds exactly the links that are not slow."""
        self.slow = bool(self.cut_count or self.quirky or self.held)
        if self.slow:
            self.src_host.out_links.pop(self.dst, None)
        else:
            self.src_host.out_links[self.dst] = self

    def bump(self) -> None:
        """A new generation: messages stamped before it are checked on arrival."""
        self.gen += 1
        self.stamps.append((self.cut_epoch, self.host.incarnation))
        self.accept = self.gen if self.host.node is not None else -1

    @property
    def params(self) -> LinkParams:
        return LinkParams(self.latency, self.bandwidth_bytes_per_s, self.loss, self.duplicate,
                          self.reorder)

    def _deliver_entry(self, e: tuple[Any, ...]) -> None:
        """Heap entry (arrival, prio, id, fn, stamp, msg, size) came due. One check of
        the stamp (link not cut since, destination's incarnation unchanged and running),
        then the message goes to the node; the idle-node case is NodeHost.deliver
        inlined (this is the hottest path of the simulator)."""
        if e[4] != self.accept:
            self._stale(e)
            return
        host = self.host
        self.delivered += 1
        now = e[0]
        if host.paused or host.inbox or host.busy_until_us > now or host.per_kib_us:
            host.deliver(self.src, e[5], e[6])
            return
        msg = e[5]
        host.cursor_us = now + host.per_event_us
        host.in_handler = True
        host.trace_append((now, self.dst, "deliver", self.src, type(msg).__name__, e[6]))
        try:
            host.node.on_message(self.src, msg)  # type: ignore[union-attr]
        finally:
            host.in_handler = False
            host.events_handled += 1
            host.busy_until_us = host.cursor_us

    def _stale(self, e: tuple[Any, ...]) -> None:
        """The stamp is not the accepted one: cut in flight, or the destination's
        process it was addressed to is gone."""
        time_us, stamp, msg = e[0], e[4], e[5]
        if e[2] in self.caught:
            self.caught.discard(e[2])  # the cut caught it in flight: held already
            return
        epoch = self.stamps[stamp][0]
        if epoch != self.cut_epoch:
            if self.net.tcp and type(msg) is not ConnectionReset:
                # lost in the cut; TCP resends it (sent about one latency ago)
                self.net.hold(self, max(0, time_us - self.median_us), msg,
                              self.stamps[stamp][1])
            else:
                self.net.drop(time_us, self.src, self.dst, "cut_in_flight", msg)
        else:
            self.net.dead(self, time_us, stamp, self.src, msg)

    def draw_latency_us(self, rng: random.Random) -> int:
        table = self.table
        if table is None:
            return self.median_us
        return table[rng.getrandbits(QUANTILE_BITS)]


def _connected(link: Link) -> bool:
    """Whether a message ever went onto this link (past a cut or loss at send: a
    connection was made) or arrived over it."""
    return bool(link.delivered or link.last_arrival_us)


class Network:
    """Links, cuts and the message path. Owned by a World, which provides `at`
    (schedule fn(arg) at a time), `trace` and the node hosts."""

    def __init__(self, params: NetworkParams, hosts: dict[str, NodeHost], queue: list[Any],
                 eid: Any, at: Callable[[int, Callable[[Any], None], Any], None],
                 trace: Callable[[tuple[Any, ...]], None],
                 now: Callable[[], int]) -> None:
        self.params = params
        self.hosts = hosts
        self._queue = queue  # SimPy's event queue and id counter, for the hot path
        self._eid = eid
        self._at = at
        self._trace = trace
        self._now = now
        self.links: dict[Pair, Link] = {}
        self.links_from: dict[str, list[Link]] = {}  # src -> its links, in creation order
        self._ops: list[tuple[tuple[Any, ...], list[Pair]]] = []  # active cuts, in order
        self.log: list[tuple[int, str, frozenset[Pair]]] = [(0, "start", frozenset())]
        self.dropped: dict[str, int] = {}
        self.resets = 0  # ConnectionResets sent by hosts whose process was down
        self.tcp = params.transport == "tcp"
        self.held = 0           # messages a cut held (tcp)
        self.retransmitted = 0  # of those, resent after a heal
        self._hold_seq = 0

    # ------------------------------------------------------------------ links

    def link(self, src: str, dst: str) -> Link:
        """The link src→dst, created on first use. A node's link to itself is a
        loopback: no latency, no bandwidth limit, never cut."""
        link = self.links.get((src, dst))
        if link is None:
            params = _LOOPBACK if src == dst else self.params.for_link(src, dst)
            link = Link(self, src, dst, params, self.hosts[dst], self.hosts[src])
            self.links[(src, dst)] = link
            self.links_from.setdefault(src, []).append(link)
            self.hosts[dst].in_links.append(link)
        return link

    def drop(self, time_us: int, src: str, dst: str, reason: str, msg: Message) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self._trace((time_us, dst, "drop", src, type(msg).__name__, reason))

    def dead(self, link: Link, time_us: int, gen: int, src: str, msg: Message) -> None:
        """A message (stamped with link generation `gen`) reached link.dst after the
        process it was addressed to ended (or while none runs). Dropped; if dst's machine
        is up, its kernel answers with a `ConnectionReset` back to src over the reverse
        link (a refused connection), unless the message was sent before the last reset
        on this link: it travelled on the connection that reset already ended (a burst
        of requests gets one reset; each later attempt gets its own)."""
        self.drop(time_us, src, link.dst, "dead", msg)
        host = link.host
        if host.powered_off or type(msg) is ConnectionReset:
            return  # a machine that is off is silent; a reset never answers a reset
        if gen < link.reset_gen:
            return
        self._reset(link, time_us, type(msg).__name__)

    def _reset(self, link: Link, time_us: int, why: str) -> None:
        """link.dst's kernel resets src's connection to it: a ConnectionReset goes back
        (lost if that link is cut); messages already on their way arrive on the dead
        connection and get none."""
        link.bump()
        link.reset_gen = link.gen
        self.resets += 1
        self._trace((time_us, link.dst, "reset", link.src, why))
        self.send(link.dst, link.src, ConnectionReset(peer=link.dst), time_us,
                  link.host.net_rng)

    def close_connections(self, node: str, time_us: int) -> None:
        """The process on `node` ended and its machine is up: reset every connection it
        had (item 7 of the module docstring), peers in id order."""
        host = self.hosts[node]
        peers = {link.src for link in host.in_links if _connected(link) and link.src != node}
        peers.update(link.dst for link in self.links_from.get(node, ())
                     if _connected(link) and link.dst != node)
        for peer in sorted(peers):
            self._reset(self.link(peer, node), time_us, "close")

    # ------------------------------------------------------------------ message path

    def send(self, src: str, dst: str, msg: Message, depart_us: int, rng: random.Random) -> None:
        link = self.links.get((src, dst))
        if link is None:
            if dst not in self.hosts:
                self.drop(depart_us, src, dst, "unknown", msg)
                return
            link = self.link(src, dst)
        link.sent += 1
        if link.cut_count or link.held_current:
            if self.tcp and type(msg) is not ConnectionReset:
                self.hold(link, depart_us, msg, link.host.incarnation)
                return
            if link.cut_count:
                self.drop(depart_us, src, dst, "cut", msg)
                return
        self._transmit(link, msg, depart_us, rng)

    def _transmit(self, link: Link, msg: Message, depart_us: int, rng: random.Random) -> None:
        """Put msg on the wire (loss, bandwidth, latency, FIFO, reorder, duplicate)."""
        src, dst = link.src, link.dst
        size = msg.wire_size()
        if link.loss and rng.random() < link.loss:
            self.drop(depart_us, src, dst, "loss", msg)
            return
        bw = link.bandwidth_bytes_per_s
        if bw:
            free = link.free_us
            ready = (depart_us if depart_us > free else free) + -(-size * US_PER_S // bw)
            link.free_us = ready
        else:
            ready = depart_us
        table = link.table
        arrival = ready + (link.median_us if table is None else table[rng.getrandbits(_QB)])
        if link.reorder and rng.random() < link.reorder:
            arrival += link.draw_latency_us(rng)
        else:
            if arrival < link.last_arrival_us:
                arrival = link.last_arrival_us
            link.last_arrival_us = arrival
        gen = link.gen
        heappush(self._queue, (arrival, 1, next(self._eid), link.deliver_entry, gen, msg, size))
        if link.duplicate and rng.random() < link.duplicate:
            link.duplicated += 1
            heappush(self._queue, (arrival + link.draw_latency_us(rng), 1, next(self._eid),
                                   link.deliver_entry, gen, msg, size))

    # ------------------------------------------------------------------ tcp

    def hold(self, link: Link, sent_us: int, msg: Message, dst_incarnation: int) -> None:
        """tcp: keep msg, on the link's current connection, for retransmission after
        the heal, in send order."""
        self.held += 1
        self._hold_seq += 1
        insort(link.held, (sent_us, self._hold_seq, link.conn, link.src_host.incarnation,
                           dst_incarnation, msg), key=lambda e: (e[0], e[1]))
        link.held_current += 1
        if len(link.held) == 1:
            link.refresh()
        self._trace((self._now(), link.dst, "hold", link.src, type(msg).__name__))
        if not link.cut_count:
            self._schedule_flushes(link)

    def _catch_in_flight(self, link: Link) -> None:
        """A cut drops the packets on the wire: hold the link's messages in flight (in
        arrival order, which is send order on a FIFO link) for retransmission."""
        now = self._now()
        deliver = link.deliver_entry
        mine = sorted((e for e in self._queue if len(e) == 7 and e[3] is deliver),
                      key=lambda e: (e[0], e[2]))
        for e in mine:
            if type(e[5]) is ConnectionReset:
                continue  # not retransmitted: dropped on arrival
            link.caught.add(e[2])
            self.hold(link, min(e[0] - link.median_us, now - 1), e[5], link.stamps[e[4]][1])

    def _schedule_flushes(self, link: Link) -> None:
        """For each connection with held messages: at its oldest one's first
        retransmission time after now."""
        now = self._now()
        oldest: dict[int, int] = {}
        for entry in link.held:
            oldest.setdefault(entry[2], entry[0])
        for conn, t in sorted(oldest.items()):
            if conn in link.flush_at:
                continue
            rto = TCP_RTO_MIN_US
            while t + rto < now:
                t += rto
                rto = min(2 * rto, TCP_RTO_MAX_US)
            link.flush_at[conn] = t + rto
            self._at(t + rto, self._flush, (link, conn))

    def _flush(self, arg: tuple[Link, int]) -> None:
        link, conn = arg
        link.flush_at.pop(conn, None)
        if link.cut_count:
            return  # cut again: the next heal schedules it
        held = [e for e in link.held if e[2] == conn]
        link.held = [e for e in link.held if e[2] != conn]
        if conn == link.conn:
            link.held_current = 0
        link.refresh()
        now = self._now()
        gen = link.gen
        src_host, host = link.src_host, link.host
        self._trace((now, link.dst, "retransmit", link.src, len(held)))
        for sent_us, _seq, _conn, src_inc, dst_inc, msg in held:
            if src_inc != src_host.incarnation:
                self.drop(now, link.src, link.dst, "sender_gone", msg)
            elif now - sent_us > TCP_GIVE_UP_US:
                self.drop(now, link.src, link.dst, "tcp_gave_up", msg)
            elif dst_inc != host.incarnation or host.node is None:
                self.dead(link, now, gen, link.src, msg)  # its connection is gone
            else:
                self.retransmitted += 1
                self._transmit(link, msg, now, src_host.net_rng)

    def disconnect(self, src: str, dst: str) -> None:
        """src closed its connection to dst (Kafka's NetworkClient does on a request
        timeout). What src had sent that a cut holds is still resent after the heal
        (the kernel finishes a closed socket's sends) but no longer holds up what src
        sends from now on (a new connection); what dst had sent it on that connection
        is discarded (src's socket is gone)."""
        if not self.tcp:
            return
        for a, b in ((src, dst), (dst, src)):
            link = self.links.get((a, b))
            if link is None:
                continue
            old = link.conn
            link.conn += 1
            link.held_current = 0
            if a == dst and link.held:
                gone = [e for e in link.held if e[2] == old]
                link.held = [e for e in link.held if e[2] != old]
                for e in gone:
                    self.drop(self._now(), dst, src, "connection_closed", e[5])
                link.refresh()

    def holding_count(self) -> int:
        """Messages held for retransmission now (tcp)."""
        return sum(len(link.held) for link in self.links.values())

    def delivered_count(self) -> int:
        return sum(link.delivered for link in self.links.values())

    def sent_count(self) -> int:
        return sum(link.sent for link in self.links.values())

    def duplicated_count(self) -> int:
        return sum(link.duplicated for link in self.links.values())

    def in_flight_count(self) -> int:
        """Messages on the wire now (scheduled deliveries not yet due)."""
        return sum(1 for e in self._queue
                   if len(e) == 7 and isinstance(getattr(e[3], "__self__", None), Link))

    # ------------------------------------------------------------------ faults

    def _apply(self, key: tuple[Any, ...], pairs: Iterable[Pair]) -> list[Pair]:
        pairs = sorted({p for p in pairs if p[0] != p[1]})
        for src, dst in pairs:
            link = self.link(src, dst)
            link.cut_count += 1
            link.refresh()
            if link.cut_count == 1:
                link.cut_epoch += 1
                link.bump()
                if self.tcp:
                    self._catch_in_flight(link)
        self._ops.append((key, pairs))
        self._log(key[0])
        return pairs

    def _release(self, pairs: Iterable[Pair]) -> None:
        for pair in pairs:
            link = self.links[pair]
            link.cut_count -= 1
            link.refresh()
            if not link.cut_count and link.held:
                self._schedule_flushes(link)

    def _log(self, what: str) -> None:
        cut = frozenset(p for p, link in self.links.items() if link.cut_count)
        self.log.append((self._now(), what, cut))

    def partition(self, groups: Sequence[Sequence[str]]) -> list[Pair]:
        """Cut every link between nodes of different groups (both ways)."""
        key = ("partition", tuple(tuple(sorted(g)) for g in groups))
        pairs = [(a, b) for i, ga in enumerate(groups) for j, gb in enumerate(groups)
                 if i != j for a in ga for b in gb]
        return self._apply(key, pairs)

    def isolate(self, nodes: Sequence[str]) -> list[Pair]:
        """Cut every link of each node, both ways, to every other known node."""
        others = sorted(self.hosts)
        key = ("isolate", tuple(sorted(nodes)))
        pairs = [p for n in nodes for o in others for p in ((n, o), (o, n))]
        return self._apply(key, pairs)

    def cut(self, srcs: Sequence[str], dsts: Sequence[str]) -> list[Pair]:
        """One-way: drop messages from each of srcs to each of dsts."""
        key = ("cut", tuple(sorted(srcs)), tuple(sorted(dsts)))
        return self._apply(key, [(s, d) for s in srcs for d in dsts])

    def heal(self, key: tuple[Any, ...] | None = None) -> int:
        """Undo the active cut ops equal to key (every op when None). Returns how many."""
        keep, undone = [], 0
        for op_key, pairs in self._ops:
            if key is None or op_key == key:
                self._release(pairs)
                undone += 1
            else:
                keep.append((op_key, pairs))
        self._ops = keep
        if undone:
            self._log("heal" if key is None else f"heal {key[0]}")
        return undone

    def active_cuts(self) -> list[tuple[Any, ...]]:
        return [key for key, _ in self._ops]

    def degrade(self, src: str, dst: str, params: LinkParams) -> int:
        """Replace a link's parameters; returns a token for `restore`."""
        link = self.link(src, dst)
        link.set_params(params)
        link.degrade_token += 1
        return link.degrade_token

    def restore(self, src: str, dst: str, token: int | None = None) -> bool:
        """Back to the link's base parameters, unless a newer degradation replaced
        the one `token` names."""
        link = self.link(src, dst)
        if token is not None and token != link.degrade_token:
            return False
        link.set_params(link.base)
        link.degrade_token += 1
        return True

    # ------------------------------------------------------------------ reports

    def reachable(self, src: str, dst: str) -> bool:
        if src == dst:
            return True
        link = self.links.get((src, dst))
        return link is None or link.cut_count == 0

    def connectivity_at(self, time_us: int | None = None) -> nx.DiGraph:
        """Who could send to whom at time_us (now when None): an edge per working link."""
        import networkx as nx  # reports only: keeps `import simlog.sim` fast

        cut: frozenset[Pair] = frozenset()
        for at, _, c in self.log:
            if time_us is not None and at > time_us:
                break
            cut = c
        g = nx.DiGraph()
        nodes = sorted(self.hosts)
        g.add_nodes_from(nodes)
        g.add_edges_from((a, b) for a in nodes for b in nodes if a != b and (a, b) not in cut)
        return g
