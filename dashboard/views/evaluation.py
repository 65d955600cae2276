"""Evaluation: how a trained run does on the test split, class by class and image by image."""
from __future__ import annotations



import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core import data, evaluate, settings
from core.train.checkpoints import CheckpointError, checkpoint_key
from core.train.models import MODELS
from dashboard import common
from dashboard.figures import evaluation as figs, pixelated

# widget keys (session_state), addressable from tests
RUN_KEY, CKPT_KEY, NORMALIZED_KEY, CONFUSION_KEY = "ev_run", "ev_checkpoint", "ev_normalized", "ev_confusion"
TRUE_KEY, PRED_KEY, SORT_KEY, PAGE_KEY = "ev_true_class", "ev_predicted_class", "ev_sort", "ev_page"
INSPECT_KEY, COMPARE_KEY, UPLOAD_KEY, REPLAY_KEY = "ev_inspect", "ev_compare", "ev_upload", "ev_replay"
PAIR_PREFIX, INSPECT_PREFIX = "ev_pair_", "ev_show_"
PAGE_SIZE, GRID_COLUMNS, THUMB_SCALE, BIG_SCALE, TOP_K = 24, 6, 4, 8, 5
ANY = -1  # the class filters' "Any class" (None would show as an empty select box)
SORT_LABELS = {"confidence": "Most confident mistakes first", "loss": "Highest loss first"}
CHECKPOINT_LABELS = {"best": "Best (highest test accuracy)", "last": "Last (end of training)"}


@st.cache_resource(max_entries=4, show_spinner=False)
def load_model(path: str, key: str) -> evaluate.LoadedModel:
    """A read-only inference model, shared by sessions; `key` changes when the file is replaced."""
    return evaluate.load_model(path)


@st.cache_data(max_entries=16, show_spinner=False)
def evaluation(run_id: int, which: str, key: str, path: str, kind: str, _dataset: data.Dataset):
    """(Predictions, Summary) for one checkpoint version: keyed by run id + checkpoint key."""
    test = _dataset.test
    preds = evaluate.predictions_for_checkpoint(path, test.images, test.labels, _dataset.classes, which=which)
    return preds, evaluate.summarize(preds.labels, preds.predicted, preds.classes)


def evaluate_checkpoint(run, which: str, dataset: data.Dataset):
    """Evaluate (with a progress bar the first time; afterwards from the run folder's cache)."""
    path = store.checkpoint_path(run.id, which)
    if path is None:
        raise CheckpointError(f"{run.label} has no {which} checkpoint any more.")
    key = checkpoint_key(path)
    if not evaluate.cache_path(path, key, which).is_file():
        bar = st.progress(0.0, text=f"Evaluating {run.label} on {len(dataset.test):,} test images…")
        evaluate.predictions_for_checkpoint(
            path, dataset.test.images, dataset.test.labels, dataset.classes, which=which,
            progress=lambda done, total: bar.progress(done / total, text=f"Evaluating… {done:,} / {total:,} images"))
        bar.empty()
    return evaluation(run.id, which, key, str(path), dataset.kind, dataset)


def set_pair(true_class: int, predicted_class: int) -> None:
    """Filter the misclassified browser to one cell of the confusion matrix (ANY: no filter)."""
    st.session_state.update({TRUE_KEY: true_class, PRED_KEY: predicted_class, PAGE_KEY: 1, INSPECT_KEY: None})


def reset_browser() -> None:
    st.session_state.update({TRUE_KEY: ANY, PRED_KEY: ANY, PAGE_KEY: 1, INSPECT_KEY: None})


def on_cell_selected() -> None:
    event = st.session_state.get(CONFUSION_KEY)
    for point in (event or {}).get("selection", {}).get("points", []):
        custom = point.get("customdata")
        if custom:
            set_pair(int(custom[0]), int(custom[1]))
            return


def link_to_training() -> None:
    try:
        st.page_link("views/training.py", label="Go to the Training page", icon=":material/monitoring:")
    except StreamlitAPIException:  # the page is not registered (e.g. this file run on its own)
        st.markdown("[Go to the Training page](training)")


def dataset_for(run) -> data.Dataset | None:
    dataset = common.get_dataset(run.dataset, show_problems=False)
    if dataset is None:
        where = settings.synthetic_root() if run.dataset == "synthetic" else data.cifar10_status(settings.data_root()).message
        st.error(f"{run.label} was trained on **{run.dataset_label}**, which is not available here, so it "
                 f"cannot be evaluated. {where}")
    return dataset


@st.dialog("Misclassified test image", width="large", on_dismiss=lambda: st.session_state.update({INSPECT_KEY: None}))
def show_image(index: int) -> None:
    """One test image, enlarged, with its top-k probabilities."""
    a, b = st.columns([1, 2])
    a.image(pixelated(dataset.test.images[index], BIG_SCALE), width=32 * BIG_SCALE)
    a.markdown(f"**Test image #{index}**  \nTrue class: **{classes[preds.labels[index]]}**  \n"
               f"Predicted: **{classes[preds.predicted[index]]}** ({preds.confidence[index]:.1%})  \n"
               f"Loss: {preds.loss[index]:.3f}")
    b.plotly_chart(figs.topk_bar(evaluate.top_k(preds.probs[index], classes, TOP_K), int(preds.labels[index])),
                   key="ev_topk_chart")
    if a.button("Close", key="ev_close"):
        st.session_state[INSPECT_KEY] = None
        st.rerun()


st.set_page_config(layout="wide")  # the image grid needs the room, also when this page runs on its own
st.title("Evaluation")
store = common.run_store()
runs = [r for r in store.list_runs() if store.checkpoint_path(r.id, "best") or store.checkpoint_path(r.id, "last")]
if not runs:
    st.info("No finished run yet: evaluation needs a run with a saved checkpoint. Train one first — even a "
            "one-epoch run of the tutorial MLP is enough.")
    link_to_training()
    st.stop()

by_id = {r.id: r for r in runs}
run_labels = {r.id: f"{r.label} · {r.status} · {r.dataset_label}" for r in runs}
if st.session_state.get(RUN_KEY) not in by_id:  # default: the latest completed run
    st.session_state[RUN_KEY] = next((r.id for r in runs if r.status == "completed"), runs[0].id)
top = st.columns([2, 2, 3], vertical_alignment="bottom")
run = by_id[top[0].selectbox("Run", list(by_id), format_func=run_labels.get, key=RUN_KEY, on_change=reset_browser)]
available = [w for w in ("best", "last") if store.checkpoint_path(run.id, w)]
if st.session_state.get(CKPT_KEY) not in available:
    st.session_state[CKPT_KEY] = available[0]
which = top[1].radio("Checkpoint", available, format_func=CHECKPOINT_LABELS.get, key=CKPT_KEY, horizontal=True)

dataset = dataset_for(run)
if dataset is None:
    st.stop()
try:
    preds, summary = evaluate_checkpoint(run, which, dataset)
except (CheckpointError, OSError) as exc:
    st.error(f"The {which} checkpoint of {run.label} could not be evaluated: {exc}")
    st.stop()
classes = dataset.classes

# ---- headline -----------------------------------------------------------------------------
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

# ---- per class ----------------------------------------------------------------------------
st.subheader("Per class")
left, right = st.columns([3, 2])
left.plotly_chart(figs.per_class_accuracy_bar(classes, summary.per_class_accuracy, summary.accuracy, summary.support),
                  key="ev_per_class_chart")
table = pd.DataFrame(summary.table())[["class", "images", "precision", "recall", "f1"]]
table[["precision", "recall", "f1"]] *= 100
right.dataframe(table, hide_index=True, key="ev_class_table", column_config={
    "class": "Class", "images": st.column_config.NumberColumn("Images", format="%d"),
    **{c: st.column_config.NumberColumn(label, format="%.1f%%") for c, label in
       (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"))}})
right.caption("Recall of a class is its accuracy: the share of its test images classified correctly. Precision: "
              "the share of images predicted as the class that really are it (0 for a class never predicted). "
              "F1 is their harmonic mean.")

# ---- confusion matrix ---------------------------------------------------------------------
st.subheader("Confusion matrix")
normalized = st.toggle("Row-normalised (share of each true class)", key=NORMALIZED_KEY)
left, right = st.columns([3, 1])
selected = (st.session_state.get(TRUE_KEY, ANY), st.session_state.get(PRED_KEY, ANY))
left.plotly_chart(figs.confusion_heatmap(summary.confusion, classes, normalized=normalized,
                                         selected=selected if ANY not in selected else None),
                  key=CONFUSION_KEY, on_select=on_cell_selected, selection_mode="points")
right.markdown("**Most confused pairs**")
right.caption("Click a pair, or a cell of the matrix, to see those images below.")
for pair in summary.most_confused(8):
    right.button(f"{pair.true_name} → {pair.predicted_name}: {pair.count} ({pair.fraction:.0%})",
                 key=f"{PAIR_PREFIX}{pair.true_class}_{pair.predicted_class}", on_click=set_pair,
                 args=(pair.true_class, pair.predicted_class), width="stretch")

# ---- misclassified browser ----------------------------------------------------------------
st.subheader("Misclassified test images")
options = [ANY, *range(len(classes))]
name_of = lambda i: "Any class" if i == ANY else classes[i]  # noqa: E731
reset_page = lambda: st.session_state.update({PAGE_KEY: 1, INSPECT_KEY: None})  # noqa: E731
for key in (TRUE_KEY, PRED_KEY):
    if st.session_state.get(key) not in options:
        st.session_state[key] = ANY
f = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
true_class = f[0].selectbox("True class", options, format_func=name_of, key=TRUE_KEY, on_change=reset_page)
pred_class = f[1].selectbox("Predicted class", options, format_func=name_of, key=PRED_KEY, on_change=reset_page)
sort = f[2].selectbox("Sort", list(SORT_LABELS), format_func=SORT_LABELS.get, key=SORT_KEY, on_change=reset_page)
true_class = None if true_class == ANY else true_class
pred_class = None if pred_class == ANY else pred_class
total = evaluate.misclassified(preds, true_class=true_class, predicted_class=pred_class, limit=0).total
pages = max(1, -(-total // PAGE_SIZE))
st.session_state[PAGE_KEY] = min(max(1, st.session_state.get(PAGE_KEY, 1)), pages)
page_no = f[3].number_input(f"Page (of {pages})", 1, pages, key=PAGE_KEY)
hits = evaluate.misclassified(preds, true_class=true_class, predicted_class=pred_class, sort=sort,
                              offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
mistakes = int((~preds.correct).sum())
st.caption(f"{total:,} misclassified images match (of {mistakes:,} mistakes in {len(preds.labels):,} test images). "
           "Pixels are the raw test images, enlarged without smoothing.")

inspect = st.session_state.get(INSPECT_KEY)
if inspect is not None and 0 <= inspect < len(preds.labels):
    show_image(inspect)

if total == 0:
    st.info("No misclassified images match these filters." + (" Cells on the diagonal are correct predictions."
            if true_class is not None and true_class == pred_class else ""))
for start in range(0, len(hits), GRID_COLUMNS):
    for col, row in zip(st.columns(GRID_COLUMNS), hits.rows(classes)[start:start + GRID_COLUMNS]):
        col.image(pixelated(dataset.test.images[row["index"]], THUMB_SCALE), width=32 * THUMB_SCALE,
                  caption=f"{row['true_name']} →  \n**{row['predicted_name']}** · {row['confidence']:.0%}")
        col.button(f"#{row['index']}", key=f"{INSPECT_PREFIX}{row['index']}", help="Show larger, with its top classes",
                   on_click=lambda i=row["index"]: st.session_state.update({INSPECT_KEY: i}))

# ---- numpy replay (MLP only) --------------------------------------------------------------
if cfg.model == "tutorial_mlp":
    with st.expander("Check: replay this MLP in numpy"):
        st.caption("Loads fc1/fc2/fc3 into the hand-written numpy network (core/numpy_net.py) and compares it with "
                   "PyTorch on the first 1,000 test images.")
        if st.button("Run the replay", key=REPLAY_KEY):
            loaded = load_model(str(store.checkpoint_path(run.id, which)), preds.key)
            for dtype in ("float32", "float64"):
                r = evaluate.numpy_replay(loaded, dataset.test.images[:1000], dataset.test.labels[:1000], dtype=dtype)
                st.write(f"**{r.dtype}**: identical predicted class for {r.agreement:.2%} of {r.n:,} images; "
                         f"largest logit difference {r.max_abs_logit_diff:.2e}")

# ---- compare two runs ---------------------------------------------------------------------
st.subheader("Compare with another run")
others = [r.id for r in runs if r.id != run.id]
other_id = st.selectbox("Other run", [None, *others], format_func=lambda i: "—" if i is None else run_labels[i],
                        key=COMPARE_KEY)
if other_id is not None:
    other = by_id[other_id]
    other_which = next(w for w in (which, "best", "last") if store.checkpoint_path(other.id, w))
    if other.dataset != run.dataset:
        st.warning(f"{other.label} was tested on {other.dataset_label} and {run.label} on {run.dataset_label}: "
                   "their classes differ, so there is nothing to compare class by class.")
    else:
        _, other_summary = evaluate_checkpoint(other, other_which, dataset)
        st.plotly_chart(figs.compare_per_class(classes, [
            (f"{run.label} ({which})", summary.per_class_accuracy, summary.accuracy),
            (f"{other.label} ({other_which})", other_summary.per_class_accuracy, other_summary.accuracy)]),
            key="ev_compare_chart")

# ---- predict an uploaded image ------------------------------------------------------------
st.subheader("Try your own image")
upload = st.file_uploader("A PNG or JPEG image (up to 5 MB)", type=["png", "jpg", "jpeg"], key=UPLOAD_KEY)
if upload is not None:
    try:
        loaded = load_model(str(store.checkpoint_path(run.id, which)), preds.key)
        result = evaluate.predict_image(loaded, upload.getvalue(), classes=classes, k=TOP_K)
    except ValueError as exc:
        st.error(f"{upload.name}: {exc}")
    else:
        a, b, c = st.columns([1, 1, 2])
        a.image(upload.getvalue(), caption=f"your image ({result.original_size[0]}x{result.original_size[1]})", width=160)
        b.image(pixelated(result.image, 5), caption="what the model sees (32x32)", width=160)
        c.plotly_chart(figs.topk_bar(result.top), key="ev_upload_chart")
        if dataset.synthetic:
            st.caption("This run learned the synthetic demo set, so real photos mean little to it.")
