"""Broker: replica manager, partition state, ISR, high watermark, purgatories.

Public API: `BrokerNode` and `broker_factory` (node.py), `BrokerConfig` (config.py).
Start a cluster in the sim World:

    from simlog.broker.node import broker_factory
    from simlog.controller.config import ControllerConfig
    from simlog.controller.node import controller_factory
    voters = ("c1", "c2", "c3")
    for c in voters:
        world.add_node(c, controller_factory(ControllerConfig.from_kafka(voters, settings)))
    for i in (1, 2, 3):
        world.add_node(f"b{i}", broker_factory(i, settings, voters))

(combined mode: name brokers as the voters, e.g. voters = ("b1", "b2", "b3")).
"""
