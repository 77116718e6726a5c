"""One module per ``finegrain`` subcommand; each defines ``register(subparsers)``."""
