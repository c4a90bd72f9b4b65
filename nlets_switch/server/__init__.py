"""The thin asyncio layer: listeners, TLS, timers, and the switch that
carries out the engine's effects.
"""
