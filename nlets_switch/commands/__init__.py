"""Sub-commands of ``nlets-switch``: one module each, with ``register(subparsers)``."""
