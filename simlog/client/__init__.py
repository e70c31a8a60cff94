"""Clients: producer (partitioner, accumulator, sender, idempotence) and consumer."""
