"""Which runs can be evaluated, on which dataset, and their evaluation (cached for every session);
the words the page uses to name them (run, checkpoint, model, dataset, class) in the session's language."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import data, evaluate, i18n, settings
from core.runs.store import Run, RunStore
from core.train.checkpoints import CheckpointError, checkpoint_key, checkpoint_label, model_checkpoints
from core.train.config import TrainConfig
from core.train.models import MODELS
from dashboard import common
from dashboard.common import plain
from dashboard.lang import class_name, core_text, lang, tr


def evaluable_runs(store: RunStore) -> list[Run]:
    """Runs with at least one saved checkpoint, newest first (the store's order)."""
    return [r for r in store.list_runs() if checkpoint_names(store, r)]


def checkpoint_names(store: RunStore, run: Run) -> list[str]:
    """The checkpoints a run has on disk, "best" and "last", the run's model first: best.pt with a
    validation split, else last.pt (core.train.checkpoints.model_checkpoints)."""
    return model_checkpoints(store.run_dir(run.id), run.config.val_images)


# ---- names as the page shows them ------------------------------------------------------------
def shown_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The classes as the page writes them: 'cat' in English, 'cat (猫)' in Chinese."""
    return tuple(class_name(c) for c in classes)


def checkpoint_text(which: str, val_images: int) -> str:
    """What checkpoint `which` of a run is (core.train.checkpoints.checkpoint_label), translated."""
    with_val = "val" if val_images else "noval"
    return core_text(f"evaluate.checkpoint.{which}_{with_val}", checkpoint_label(which, val_images))


def label_for(run: Run) -> dict[str, str]:
    """What each checkpoint of `run` is, honestly ({"best": ..., "last": ...}; `.get` is the choice's format_func)."""
    return {which: checkpoint_text(which, run.config.val_images) for which in ("best", "last")}


def checkpoint_word(which: str) -> str:
    """'best' or 'last' as a sentence names the checkpoint."""
    return tr(f"evaluation.checkpoint.{which}")


def dataset_word(kind: str) -> str:
    """The short name of a dataset kind ('synthetic', 'CIFAR-10') for metrics and run lists."""
    return tr(f"evaluation.dataset.{kind}")


def run_label(run: Run) -> str:
    """'#3 baseline · completed · synthetic' in the session's language (the name as the user typed it)."""
    return tr("evaluation.page.run_label", label=run.label, status=tr(f"evaluation.status.{run.status}"),
              dataset=dataset_word(run.dataset))


def model_title(name: str) -> str:
    """A model's title (core.train.models), translated; an unknown id as it is."""
    spec = MODELS.get(name)
    return spec.text("title", lang()) if spec else name


def config_line(cfg: TrainConfig) -> str:
    """The run's recipe in one line: optimiser, lr, batch, epochs, seed and the subsets it used."""
    line = tr("evaluation.page.config", optimizer=cfg.optimizer, lr=cfg.lr, batch=cfg.batch_size, epochs=cfg.epochs,
              seed=cfg.seed)
    if cfg.train_subset:
        line += tr("evaluation.page.train_subset", n=cfg.train_subset)
    if cfg.test_subset:
        line += tr("evaluation.page.test_subset", n=cfg.test_subset)
    return line


# ---- the dataset, the model and the evaluation ------------------------------------------------
def dataset_for(run: Run) -> data.Dataset | None:
    """The dataset the run was trained on (not the sidebar's choice), or None after saying it is missing."""
    dataset = common.get_dataset(run.dataset, show_problems=False)
    if dataset is None:
        where = (settings.synthetic_root() if run.dataset == "synthetic"
                 else data.cifar10_status(settings.data_root()).message)
        missing = tr("evaluation.page.dataset_missing", run=plain(run.label), dataset=common.kind_label(run.dataset))
        if lang() == i18n.DEFAULT_LANGUAGE:
            st.error(f"{missing} {where}")
        else:  # the data module's message (paths, commands) is English: under the translated sentence
            st.error(missing)
            with st.expander(tr("common.words.details")):
                st.markdown(str(where))
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
        raise CheckpointError(tr("evaluation.page.checkpoint_gone", run=run.label, which=checkpoint_word(which)))
    return path


def evaluate_checkpoint(store: RunStore, run: Run, which: str,
                        dataset: data.Dataset) -> tuple[evaluate.Predictions, evaluate.Summary]:
    """Evaluate (with a progress bar the first time; afterwards from the run folder's cache)."""
    path = checkpoint_path(store, run, which)
    key = checkpoint_key(path)
    if not evaluate.cache_path(path, key, which).is_file():
        bar = st.progress(0.0, text=tr("evaluation.page.evaluating", run=plain(run.label), n=len(dataset.test)))
        evaluate.predictions_for_checkpoint(
            path, dataset.test.images, dataset.test.labels, dataset.classes, which=which,
            progress=lambda done, total: bar.progress(
                done / total, text=tr("evaluation.page.evaluating_done", done=done, total=total)))
        bar.empty()
    return _evaluation(run.id, which, key, str(path), dataset.kind, dataset)
