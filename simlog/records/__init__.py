"""Kafka record batch v2: codec (CRC-32C, compression), shared by disk and wire."""
