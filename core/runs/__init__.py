"""Runs: the SQLite run store, background jobs (start, stop, resume) and the worker that glues a
stored run to the training engine. Imports core.data and core.train; never core.evaluate."""

# Importing the launcher registers its queue starter with the store (RunStore.reconcile starts
# runs waiting in the queue), whichever module of core.runs a program uses.
from core.runs import jobs as _jobs  # noqa: F401
