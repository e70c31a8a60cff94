"""Group coordinator: membership, rebalance protocols, assignors, committed offsets.

- `assignors`: range, roundrobin, sticky, cooperative-sticky; protocol selection.
- `coordinator`: `GroupCoordinator(rt, config, host)`, the component a broker embeds,
  and the `CoordinatorHost` protocol it needs from the broker.
- `broker_host`: `BrokerCoordinatorHost(broker_node)`, that protocol over a BrokerNode.
- `records`: what is written to `__consumer_offsets`, and which partition a group uses.
"""

from simlog.coordinator.broker_host import BrokerCoordinatorHost
from simlog.coordinator.coordinator import (
    CoordinatorHost,
    GroupCoordinator,
    GroupCoordinatorConfig,
)
from simlog.coordinator.records import OFFSETS_TOPIC, partition_for

__all__ = [
    "OFFSETS_TOPIC",
    "BrokerCoordinatorHost",
    "CoordinatorHost",
    "GroupCoordinator",
    "GroupCoordinatorConfig",
    "partition_for",
]
