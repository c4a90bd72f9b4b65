"""The codec: link frames, the input and output headers, per-key schemas and domain rules.

Pure: no asyncio, sockets, clocks, logging or storage; time comes in as an argument.
"""
