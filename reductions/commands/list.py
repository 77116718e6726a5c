"""``finegrain list``: not written yet (the CLI skips a module without ``register``)."""
