"""Encode and decode any registered `Message` as msgpack, tagged by class name.

This is the node-to-node codec of the real world (length-prefixed frames over TCP)
and the reference for message sizes. It never pickles: only registered message types
decode, with their declared field types checked.
"""

from __future__ import annotations

from typing import Union

import msgspec

from simlog.runtime import Message

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder | None = None
_decoder_types = 0


def encode(msg: Message) -> bytes:
    return _encoder.encode(msg)


def decode(data: bytes) -> Message:
    """Decode one message; raises msgspec.DecodeError / ValidationError on bad input."""
    global _decoder, _decoder_types
    # Message types register on import; rebuild the decoder when new ones appear.
    if _decoder is None or _decoder_types != len(Message.registry):
        types = tuple(Message.registry[name] for name in sorted(Message.registry))
        if not types:
            raise msgspec.DecodeError("no message types registered")
        _decoder = msgspec.msgpack.Decoder(Union[types])  # noqa: UP007 - runtime union of classes
        _decoder_types = len(types)
    return _decoder.decode(data)
