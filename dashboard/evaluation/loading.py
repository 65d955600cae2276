"""Which runs can be evaluated, on which dataset, and their evaluation (cached for every session)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import data, evaluate, settings
from core.runs.store import Run, RunStore
from core.train.checkpoints import CheckpointError, checkpoint_key, checkpoint_label, model_checkpoints
from dashboard import common
from dashboard.common import plain


def evaluable_runs(store: RunStore) -> list[Run]:
    """Runs with at least one saved checkpoint, newest first (the store's order)."""
    return [r for r in store.list_runs() if checkpoint_names(store, r)]


def checkpoint_names(store: RunStore, run: Run) -> list[str]:
    """The checkpoints a run has on disk, "best" and "last", the run's model first: best.pt with a
    validation split, else last.pt (core.train.checkpoints.model_checkpoints)."""
    return model_checkpoints(store.run_dir(run.id), run.config.val_images)


def label_for(run: Run):
    """format_func for the checkpoint choice of `run`: what each checkpoint is, honestly."""
    return lambda which: checkpoint_label(which, run.config.val_images)


def run_label(run: Run) -> str:
    return f"{run.label} · {run.status} · {run.dataset_label}"


def dataset_for(run: Run) -> data.Dataset | None:
    """The dataset the run was trained on (not the sidebar's choice), or None after saying it is missing."""
    dataset = common.get_dataset(run.dataset, show_problems=False)
    if dataset is None:
        where = settings.synthetic_root() if run.dataset == "synthetic" else data.cifar10_status(settings.data_root()).message
        st.error(f"{plain(run.label)} was trained on **{run.dataset_label}**, which is not available here, so it "
                 f"cannot be evaluated. {where}")
    return dataset


@st.cache_resource(max_entries=4, show_spinner=False)
def load_model(path: str, key: str) -> evaluate.LoadedModel:
    """A read-only inference model, shared by sessions; `key` changes when the file is replaced."""
    return evaluate.load_model(path)


@st.cache_data(max_entries=16, show_spinner=False)
def _evaluation(run_id: int, which: str, key: str, path: str, kind: str, _dataset: data.Dataset):
    """(Predictions, Summary) for one checkpoint version: keyed by run id + checkpoint key."""
    test = _dataset.test
    preds = evaluate.predictions_for_checkpoint(path, test.images, test.labels, _dataset.classes, which=which)
    return preds, evaluate.summarize(preds.labels, preds.predicted, preds.classes)


def checkpoint_path(store: RunStore, run: Run, which: str) -> Path:
    path = store.checkpoint_path(run.id, which)
    if path is None:
        raise CheckpointError(f"{run.label} has no {which} checkpoint any more.")
    return path


def evaluate_checkpoint(store: RunStore, run: Run, which: str,
                        dataset: data.Dataset) -> tuple[evaluate.Predictions, evaluate.Summary]:
    """Evaluate (with a progress bar the first time; afterwards from the run folder's cache)."""
    path = checkpoint_path(store, run, which)
    key = checkpoint_key(path)
    if not evaluate.cache_path(path, key, which).is_file():
        bar = st.progress(0.0, text=f"Evaluating {plain(run.label)} on {len(dataset.test):,} test images…")
        evaluate.predictions_for_checkpoint(
            path, dataset.test.images, dataset.test.labels, dataset.classes, which=which,
            progress=lambda done, total: bar.progress(done / total, text=f"Evaluating… {done:,} / {total:,} images"))
        bar.empty()
    return _evaluation(run.id, which, key, str(path), dataset.kind, dataset)
