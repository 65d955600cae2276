"""Evaluation: how a trained run does on the test split, class by class and image by image.

The numbers come from core.evaluate, the figures from dashboard.figures.evaluation; the longer
sections (misclassified browser, comparison, upload, numpy replay) live in dashboard.evaluation.
Every word comes from core/i18n/<lang>/evaluation.toml; class names are shown with class_name().
"""
from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.train.checkpoints import CheckpointError
from dashboard import common
from dashboard.evaluation import browser, compare, feature_map, history, learned_view, loading, replay, upload
from dashboard.evaluation.keys import (CKPT_KEY, CLASS_TABLE_KEY, CONFUSION_KEY, HISTORY_PREFIX, NORMALIZED_KEY,
                                       PAIR_PREFIX, PER_CLASS_CHART_KEY, RUN_KEY)
from dashboard.figures import evaluation as figs
from dashboard.lang import lang, tr


def link_to_training() -> None:
    try:
        st.page_link("views/training.py", label=tr("evaluation.page.go_training"), icon=":material/monitoring:")
    except StreamlitAPIException:  # the page is not registered (e.g. this file run on its own)
        st.markdown(f"[{tr('evaluation.page.go_training')}](training)")


st.set_page_config(layout="wide")  # the image grid needs the room, also when this page runs on its own
st.title(tr("evaluation.page.title"))
store = common.run_store()
runs = loading.evaluable_runs(store)
if not runs:
    st.info(tr("evaluation.page.no_runs"))
    link_to_training()
    st.stop()

# ---- which run, which checkpoint ------------------------------------------------------------
by_id = {r.id: r for r in runs}
if st.session_state.get(RUN_KEY) not in by_id:  # default: the latest completed run
    st.session_state[RUN_KEY] = next((r.id for r in runs if r.status == "completed"), runs[0].id)
top = st.columns([3, 2], vertical_alignment="bottom")   # the run's label is long: the wider one
# format_func: labels made now, in this run's language (a test harness may call it outside the run)
run_labels = {i: loading.run_label(r) for i, r in by_id.items()}
run = by_id[top[0].selectbox(tr("evaluation.page.run"), list(by_id), format_func=run_labels.get, key=RUN_KEY,
                             on_change=browser.reset)]
available = loading.checkpoint_names(store, run)
if st.session_state.get(CKPT_KEY) not in available:
    st.session_state[CKPT_KEY] = available[0]
which = top[1].radio(tr("evaluation.page.checkpoint"), available, format_func=loading.label_for(run).get,
                     key=CKPT_KEY, horizontal=True)

dataset = loading.dataset_for(run)
if dataset is None:
    st.stop()
try:
    preds, summary = loading.evaluate_checkpoint(store, run, which, dataset)
    checkpoint = str(loading.checkpoint_path(store, run, which))
except (CheckpointError, OSError) as exc:
    st.error(tr("evaluation.page.cannot_evaluate", which=loading.checkpoint_word(which), run=common.plain(run.label),
                why=common.plain(exc)))
    st.stop()
classes = dataset.classes
names = loading.shown_names(classes)    # as the page shows them: "cat", or "cat (猫)" in Chinese

# ---- headline -------------------------------------------------------------------------------
cfg = run.config
cols = st.columns(4)
cols[0].metric(tr("evaluation.page.test_accuracy"), f"{summary.accuracy:.1%}")
cols[1].metric(tr("evaluation.page.test_images"), f"{summary.total:,}")
cols[2].metric(tr("evaluation.page.model"), loading.model_title(cfg.model))
cols[3].metric(tr("evaluation.page.dataset"), loading.dataset_word(dataset.kind))
if dataset.synthetic:
    st.caption(tr("evaluation.page.synthetic_note"))
st.caption(loading.config_line(cfg))
with st.expander(tr("evaluation.page.full_config")):
    st.json(cfg.to_dict())

# ---- per class ------------------------------------------------------------------------------
st.subheader(tr("evaluation.per_class.title"))
left, right = st.columns(2)   # the table needs about 370 px with Chinese class names
left.plotly_chart(figs.per_class_accuracy_bar(names, summary.per_class_accuracy, summary.accuracy, summary.support,
                                              lang=lang()), key=PER_CLASS_CHART_KEY)
left.caption(tr("evaluation.per_class.chart_caption"))
table = pd.DataFrame(summary.table())[["class", "images", "precision", "recall", "f1"]]
table["class"] = list(names)
table[["precision", "recall", "f1"]] *= 100
right.dataframe(table, hide_index=True, key=CLASS_TABLE_KEY, column_config={
    "class": tr("evaluation.per_class.col_class"),
    "images": st.column_config.NumberColumn(tr("evaluation.per_class.col_images"), format="%d"),
    **{c: st.column_config.NumberColumn(tr(f"evaluation.per_class.col_{c}"), format="%.1f%%")
       for c in ("precision", "recall", "f1")}})
right.caption(tr("evaluation.per_class.table_caption"))

# ---- confusion matrix -----------------------------------------------------------------------
st.subheader(tr("evaluation.confusion.title"))
normalized = st.toggle(tr("evaluation.confusion.normalized"), key=NORMALIZED_KEY)
left, right = st.columns([3, 2])   # the pair buttons name two classes: "deer (鹿) → bird (鸟)"
left.plotly_chart(figs.confusion_heatmap(summary.confusion, summary.confusion_normalized, names,
                                         normalized=normalized, selected=browser.selected_pair(), lang=lang()),
                  key=CONFUSION_KEY, on_select=browser.on_cell_selected, selection_mode="points")
left.caption(tr("evaluation.confusion.caption_shares" if normalized else "evaluation.confusion.caption_counts"))
right.markdown(tr("evaluation.confusion.most_confused"))
right.caption(tr("evaluation.confusion.click_hint"))
for pair in summary.most_confused(8):
    right.button(tr("evaluation.confusion.pair", true=names[pair.true_class], predicted=names[pair.predicted_class],
                    count=pair.count, share=pair.fraction),
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
