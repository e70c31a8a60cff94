"""The real world: asyncio runtime over TCP and real files, Kafka wire codec, broker daemon."""
