"""Runs: the SQLite run store, background jobs (start, stop, resume) and the worker that glues a
stored run to the training engine. Imports core.data and core.train; never core.evaluate."""
