"""One module per CLI verb (or group of verbs); each exposes ``register(subparsers)``."""
