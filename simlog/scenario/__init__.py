"""Scenario files: loading and validation, workloads, nemesis, the run loop."""
