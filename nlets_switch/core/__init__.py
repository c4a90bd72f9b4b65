"""The switch's engine: the directory (ORION), routing plans and the link protocol.

Pure: no asyncio, sockets, clocks, logging or storage; every entry point takes ``now``.
"""
