"""Broker: replica manager, partition state, ISR, high watermark, purgatories."""
