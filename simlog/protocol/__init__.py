"""Messages between nodes: one frozen type per request/response, named after the Kafka
API it mirrors. Fields are a subset of that API's, so the real world's wire codec is a
mapping. The base class and registry live in `simlog.runtime.Message`."""

from simlog.runtime import Message

__all__ = ["Message"]
