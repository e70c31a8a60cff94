"""simlog: a deterministic simulation and research testbed for Kafka-like logs."""

__version__ = "0.1.0"
