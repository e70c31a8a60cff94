"""KRaft-style controller quorum: Raft, metadata log, registration, elections.

Public API (what brokers and the sim use):
- `MetadataImage`, `MetadataDelta`, `PartitionRegistration`, `BrokerRegistration`
  (image.py): the committed cluster metadata and what changed.
- `MetadataFollower` (follower.py): follow the metadata log, keep the image, call back
  with deltas. `BrokerLifecycleManager` (lifecycle.py): register, heartbeat, controlled
  shutdown.
- `QuorumController` (controller.py) + `ControllerNode` (node.py): the controller, as a
  component (combined mode) or a node. `ControllerConfig`, `QuorumConfig` (config.py).
- `KafkaRaftClient` (raft.py): the Raft replica underneath.

Names are imported lazily: `simlog.protocol.quorum` imports `simlog.controller.records`,
and an eager import of raft.py here would make that a cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "NO_LEADER": "records",
    "BrokerLifecycleManager": "lifecycle",
    "BrokerRegistration": "image",
    "ControllerConfig": "config",
    "ControllerNode": "node",
    "KafkaRaftClient": "raft",
    "LocalReplicaChanges": "image",
    "MetadataDelta": "image",
    "MetadataFollower": "follower",
    "MetadataImage": "image",
    "PartitionRegistration": "image",
    "QuorumConfig": "config",
    "QuorumController": "controller",
    "controller_factory": "node",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'simlog.controller' has no attribute {name!r}")
    return getattr(importlib.import_module(f"simlog.controller.{module}"), name)
