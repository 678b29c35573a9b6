"""One module per ``python -m core`` subcommand; each exposes ``register(subparsers)``."""
