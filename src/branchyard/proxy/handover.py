"""A connection's first moment: the protocol that serves it is made with its
transport, so no protocol of the proxy exists without one.

asyncio makes a protocol before its connection and gives it the transport only
later, in ``connection_made``; a :class:`Handover` takes that call, makes the
real protocol from the transport and hands the transport over to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

Make = Callable[[asyncio.Transport], asyncio.Protocol]


class Handover(asyncio.Protocol):
    """Stands in for a connection's protocol until its transport exists."""

    __slots__ = ("_make",)

    def __init__(self, make: Make) -> None:
        self._make = make

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream connection's transport is an asyncio.Transport (uvloop's too)
        transport.set_protocol(self._make(cast(asyncio.Transport, transport)))
