"""The deterministic SimPy world: network, disk and process models, faults, trace."""
