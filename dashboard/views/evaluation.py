"""Evaluation: how a trained run does on the test split, class by class and image by image.

The numbers come from core.evaluate, the figures from dashboard.figures.evaluation; the longer
sections (misclassified browser, comparison, upload, numpy replay) live in dashboard.evaluation.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.train.checkpoints import CheckpointError
from core.train.models import MODELS
from dashboard import common
from dashboard.evaluation import browser, compare, feature_map, history, learned_view, loading, replay, upload
from dashboard.evaluation.keys import (CKPT_KEY, CLASS_TABLE_KEY, CONFUSION_KEY, HISTORY_PREFIX, NORMALIZED_KEY,
                                       PAIR_PREFIX, PER_CLASS_CHART_KEY, RUN_KEY)
from dashboard.figures import evaluation as figs


def link_to_training() -> None:
    try:
        st.page_link("views/training.py", label="Go to the Training page", icon=":material/monitoring:")
    except StreamlitAPIException:  # the page is not registered (e.g. this file run on its own)
        st.markdown("[Go to the Training page](training)")


st.set_page_config(layout="wide")  # the image grid needs the room, also when this page runs on its own
st.title("Evaluation")
store = common.run_store()
runs = loading.evaluable_runs(store)
if not runs:
    st.info("No finished run yet: evaluation needs a run with a saved checkpoint. Train one first — even a "
            "one-epoch run of the tutorial MLP is enough.")
    link_to_training()
    st.stop()

# ---- which run, which checkpoint ------------------------------------------------------------
by_id = {r.id: r for r in runs}
if st.session_state.get(RUN_KEY) not in by_id:  # default: the latest completed run
    st.session_state[RUN_KEY] = next((r.id for r in runs if r.status == "completed"), runs[0].id)
top = st.columns([2, 2, 3], vertical_alignment="bottom")
run = by_id[top[0].selectbox("Run", list(by_id), format_func=lambda i: loading.run_label(by_id[i]), key=RUN_KEY,
                             on_change=browser.reset)]
available = loading.checkpoint_names(store, run)
if st.session_state.get(CKPT_KEY) not in available:
    st.session_state[CKPT_KEY] = available[0]
which = top[1].radio("Checkpoint", available, format_func=loading.label_for(run), key=CKPT_KEY,
                     horizontal=True)

dataset = loading.dataset_for(run)
if dataset is None:
    st.stop()
try:
    preds, summary = loading.evaluate_checkpoint(store, run, which, dataset)
    checkpoint = str(loading.checkpoint_path(store, run, which))
except (CheckpointError, OSError) as exc:
    st.error(f"The {which} checkpoint of {common.plain(run.label)} could not be evaluated: {common.plain(exc)}")
    st.stop()
classes = dataset.classes

# ---- headline -------------------------------------------------------------------------------
cfg = run.config
cols = st.columns(4)
cols[0].metric("Test accuracy", f"{summary.accuracy:.1%}")
cols[1].metric("Test images", f"{summary.total:,}")
cols[2].metric("Model", MODELS[cfg.model].title if cfg.model in MODELS else cfg.model)
cols[3].metric("Dataset", "synthetic" if dataset.synthetic else dataset.label)
if dataset.synthetic:
    st.caption("Evaluated on the **synthetic** demo set (procedural images drawn by the app, not CIFAR-10).")
st.caption(f"{cfg.optimizer}, lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs, seed {cfg.seed}"
           + (f" · trained on the first {cfg.train_subset:,} training images" if cfg.train_subset else "")
           + (f" · during training, test accuracy was measured on the first {cfg.test_subset:,} test images only"
              if cfg.test_subset else ""))
with st.expander("Full configuration"):
    st.json(cfg.to_dict())

# ---- per class ------------------------------------------------------------------------------
st.subheader("Per class")
left, right = st.columns([3, 2])
left.plotly_chart(figs.per_class_accuracy_bar(classes, summary.per_class_accuracy, summary.accuracy, summary.support),
                  key=PER_CLASS_CHART_KEY)
table = pd.DataFrame(summary.table())[["class", "images", "precision", "recall", "f1"]]
table[["precision", "recall", "f1"]] *= 100
right.dataframe(table, hide_index=True, key=CLASS_TABLE_KEY, column_config={
    "class": "Class", "images": st.column_config.NumberColumn("Images", format="%d"),
    **{c: st.column_config.NumberColumn(label, format="%.1f%%") for c, label in
       (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"))}})
right.caption("Recall of a class is its accuracy: the share of its test images classified correctly. Precision: "
              "the share of images predicted as the class that really are it (0 for a class never predicted). "
              "F1 is their harmonic mean.")

# ---- confusion matrix -----------------------------------------------------------------------
st.subheader("Confusion matrix")
normalized = st.toggle("Row-normalised (share of each true class)", key=NORMALIZED_KEY)
left, right = st.columns([3, 1])
left.plotly_chart(figs.confusion_heatmap(summary.confusion, summary.confusion_normalized, classes,
                                         normalized=normalized, selected=browser.selected_pair()),
                  key=CONFUSION_KEY, on_select=browser.on_cell_selected, selection_mode="points")
right.markdown("**Most confused pairs**")
right.caption("Click a pair, or a cell of the matrix, to see those images below.")
for pair in summary.most_confused(8):
    right.button(f"{pair.true_name} → {pair.predicted_name}: {pair.count} ({pair.fraction:.0%})",
                 key=f"{PAIR_PREFIX}{pair.true_class}_{pair.predicted_class}", on_click=browser.set_pair,
                 args=(pair.true_class, pair.predicted_class), width="stretch")

# ---- epoch by epoch, then the longer sections -----------------------------------------------
history_record = history.history_section(store.run_dir(run.id), classes, HISTORY_PREFIX, synthetic=dataset.synthetic)
browser.misclassified_browser(preds, dataset.test.images, history_record, (checkpoint, preds.key))
feature_map.feature_map(checkpoint, preds.key, which, preds, dataset.test.images, dataset.kind, dataset.synthetic)
learned_view.learned_section(checkpoint, preds.key, dataset.test.images, preds.labels, preds.predicted, classes,
                             dataset.synthetic)
if cfg.model == "tutorial_mlp":
    replay.numpy_replay_check(checkpoint, preds.key, dataset.test.images, dataset.test.labels)
compare.comparison(store, runs, run, which, summary, dataset)
upload.upload_panel(checkpoint, preds.key, classes, dataset.synthetic)
