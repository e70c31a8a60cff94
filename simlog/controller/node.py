"""ControllerNode: a dedicated controller process (a voter of the metadata quorum).

Combined mode (`controllers: 0`) runs the same two parts inside a broker instead:
    self.metadata = MetadataFollower(rt, config.quorum, on_delta=self._on_metadata)
    self.controller = QuorumController(rt, config, self.metadata)   # voters only
and in on_message offers each message to `controller.on_message`, then to
`metadata.on_message`, before its own handlers. `start()` starts the follower last,
after every listener is registered (recovery replays the snapshot into them).
"""

from __future__ import annotations

from simlog.controller.config import ControllerConfig
from simlog.controller.controller import QuorumController
from simlog.controller.follower import MetadataFollower
from simlog.runtime import Message, NodeBase, Runtime


class ControllerNode(NodeBase):
    def __init__(self, rt: Runtime, config: ControllerConfig) -> None:
        super().__init__(rt)
        self.config = config
        self.metadata = MetadataFollower(rt, config.quorum)
        self.controller = QuorumController(rt, config, self.metadata)

    def start(self) -> None:
        self.metadata.start()

    def on_message(self, src: str, msg: Message) -> None:
        if self.controller.on_message(src, msg) or self.metadata.on_message(src, msg):
            return
        self.rt.emit("unhandled_message", src=src, type=type(msg).__name__)

    def shutdown(self) -> None:
        """Graceful stop: a leader resigns first so the quorum elects at once."""
        self.metadata.raft.resign()
        self.rt.halt("shutdown")

    @property
    def image(self):
        return self.metadata.image

    @property
    def is_active(self) -> bool:
        return self.controller.active


def controller_factory(config: ControllerConfig):
    """factory(rt) -> ControllerNode, for World.add_node."""
    return lambda rt: ControllerNode(rt, config)


__all__ = ["ControllerNode", "controller_factory"]
