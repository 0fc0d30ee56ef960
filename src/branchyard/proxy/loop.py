"""The event loop the proxy runs on: uvloop when it is installed, else asyncio's."""

from __future__ import annotations

import asyncio
import importlib
import os


def new_event_loop() -> asyncio.AbstractEventLoop:
    """``BRANCHYARD_PROXY_LOOP=asyncio`` forces the standard loop."""
    if os.environ.get("BRANCHYARD_PROXY_LOOP", "auto") != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()
