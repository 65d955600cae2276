"""Evaluation of a checkpoint on the test split (work in progress: being split into modules)."""
from core.evaluate.predictions import *  # noqa: F401,F403
