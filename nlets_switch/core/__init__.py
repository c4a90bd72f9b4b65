"""The switch's engine, sans-IO: the link protocol (``link``), the engine (``engine``:
custody, numbering, windows, read-back, expiry, sign-on), the directory and the
router, typed events (``events``) and effects (``effects``).

Pure: no asyncio, sockets, clocks, logging, storage or configuration loading;
every entry point takes ``now`` and returns what to do.
"""
