"""One batch, step by step: the tutorial's nine training steps taken one click at a time on a real
batch, with the real numbers of a fresh model or of a run's checkpoint (core.train.walkthrough).

Each step shows the tutorial's own code line beside a plain explanation, the numbers below it, a
caption under every chart and picture, and the jargon in a "details" line."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from core.data.dataset import Dataset
from core.data.images import MEAN, STD
from core.runs.store import RunStore
from core.train.checkpoints import CheckpointError, checkpoint_key
from core.train.config import PRESETS, TrainConfig
from core.train.models import MODELS
from core.train.walkthrough import (STEPS, BatchWalk, TutorialStep, channel_arithmetic, channel_stats,
                                    epoch_counts, flat_index, pick_batch, walk_batch, walkthrough_model)
from dashboard import common
from dashboard.common import plain
from dashboard.figures import samples as sample_figs
from dashboard.figures import walkthrough as figs
from dashboard.lang import class_name, lang, tr

SOURCE_KEY, BATCH_SIZE_KEY, BATCH_KEY, SEED_KEY, STEP_KEY = "wt_source", "wt_batch_size", "wt_batch", "wt_seed", "wt_step"
BACK_KEY, NEXT_KEY = "wt_back", "wt_next"
WALK = "wt_walk"   # (inputs, BatchWalk) of the last computation, so stepping through does not recompute
BATCH_SIZES = (4, 8, 16, 32, 64)
FRESH = {"tutorial_mlp": PRESETS["tutorial_mlp"].config, "cpu_cnn": PRESETS["cpu_cnn"].config}
EPOCHS = 10        # the tutorial's num_epochs
CHANNELS = ("red", "green", "blue")
NO_BAR = {"displayModeBar": False}
PICTURE_SCALE = 6  # one image shown alone: each pixel a 6 x 6 square (192 px), drawn at its own size
GRID_WIDTH = 820   # px: the main column at 1280 x 720 with the sidebar open


class Problem(Exception):
    """Something the page explains to the learner (already in their language) instead of a traceback."""


class Page(NamedTuple):
    walk: BatchWalk
    dataset: Dataset
    cfg: TrainConfig
    batch: int
    seed: int
    checkpoint: bool


def step_name(step: TutorialStep, short: bool = False) -> str:
    """A step's name: the plain English title, or in Chinese the tutorial's own words ("完整步骤")."""
    if lang() == "en":
        return step.title.split(":")[0] if short else step.title
    return step.chinese.split(",")[0] if short else step.chinese


def model_title(name: str) -> str:
    return MODELS[name].text("title", lang())


def preset_title(name: str) -> str:
    return PRESETS[name].text("title", lang())


def details(key: str, **values: object) -> None:
    """The jargon, after the plain explanation: one caption line starting with "Details"."""
    st.caption(f"**{tr('common.words.details')}:** " + tr(key, **values))


def _go(delta: int) -> None:
    st.session_state[STEP_KEY] = min(max(st.session_state.get(STEP_KEY, 1) + delta, 1), len(STEPS))


def _sources(store: RunStore) -> dict[str, str]:
    """The model select's options: a fresh tutorial MLP or CPU CNN, or the last checkpoint of a stored run."""
    options = {f"fresh:{name}": tr("walkthrough.source.fresh", model=model_title(name), preset=preset_title(name))
               for name in FRESH}
    for run in store.list_runs():
        if store.checkpoint_path(run.id, "last"):
            options[f"run:{run.id}"] = tr("walkthrough.source.run", run=run.label,
                                          status=tr(f"walkthrough.status.{run.status}"),
                                          dataset=common.kind_label(run.dataset))
    return options


@st.cache_data(show_spinner=False, max_entries=4)
def _channel_stats(kind: str, root: str, _images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return channel_stats(_images)  # one pass over a dataset's training images (kind, root), shared by every session


def _walk(source: str, batch_size: int, batch: int, seed: int) -> tuple[Dataset, BatchWalk, TrainConfig]:
    """The walk for these inputs: computed once, kept in the session while the learner steps through it."""
    store = common.run_store()
    if source.startswith("run:"):
        run = store.get(int(source.split(":")[1]))
        path = store.checkpoint_path(run.id, "last")
        if path is None:
            raise Problem(tr("walkthrough.errors.no_checkpoint", run=plain(run.label)))
        dataset = common.get_dataset(run.dataset, show_problems=False)
        if dataset is None:
            raise Problem(tr("walkthrough.errors.no_dataset", run=plain(run.label),
                             dataset=common.kind_label(run.dataset)))
        inputs = (source, checkpoint_key(path), dataset.kind, batch_size, batch, seed)
        make = lambda: walkthrough_model(checkpoint=path)  # noqa: E731
    else:
        dataset = common.get_dataset()
        if dataset is None:
            st.stop()
        inputs = (source, None, dataset.kind, batch_size, batch, seed)
        cfg = FRESH[source.split(":")[1]].replace(dataset=dataset.kind)
        make = lambda: walkthrough_model(cfg, train_images=dataset.train.images)  # noqa: E731
    per_pass = len(dataset.train) // batch_size
    if batch >= per_pass:
        raise Problem(tr("walkthrough.errors.batch_range", last=per_pass - 1, batch=batch, size=batch_size,
                         images=len(dataset.train)))
    kept = st.session_state.get(WALK)
    if kept and kept[0] == inputs:
        return dataset, kept[1], kept[2]
    images, labels, _ = pick_batch(dataset.train, batch_size=batch_size, batch=batch, seed=seed)
    model, optimizer, criterion, cfg = make()
    walk = walk_batch(model, optimizer, criterion, images, labels, dataset.classes)
    st.session_state[WALK] = (inputs, walk, cfg)
    return dataset, walk, cfg


def _names(walk: BatchWalk) -> list[str]:
    return [class_name(c) for c in walk.classes]


# ---- the nine steps: each writes its plain explanation in `left`, its numbers and charts below -------------

def _epochs(left, p: Page) -> None:
    counts = epoch_counts(len(p.dataset.train), batch_size=len(p.walk.labels), epochs=EPOCHS)
    left.markdown(tr("walkthrough.step1.text", images=counts.images, batch=counts.batch_size,
                     steps=counts.steps_per_epoch, total=counts.total_steps, epochs=EPOCHS))
    if counts.last_batch != counts.batch_size:
        left.caption(tr("walkthrough.step1.last_batch", last=counts.last_batch))
    one = p.walk.weight
    if p.checkpoint and one is not None and one.step:
        left.markdown(tr("walkthrough.step1.checkpoint", steps=one.step - 1))
    with left:
        details("walkthrough.step1.details")


def _batches(left, p: Page) -> None:
    walk, n = p.walk, len(p.walk.labels)
    left.markdown(tr("walkthrough.step2.text", n=n, batch=p.batch, seed=p.seed))
    with left:
        details("walkthrough.step2.details", n=n)
    names = _names(walk)
    columns = sample_figs.columns_to_fit(GRID_WIDTH, 3)          # drawn at its own size, unscaled, at 1280 px
    st.image(sample_figs.image_grid(walk.raw, [names[int(k)] for k in walk.labels], columns=columns, scale=3),
             output_format="PNG", width="content")
    st.caption(tr("walkthrough.step2.caption", n=n))   # below: in st.image, a long caption widens the picture


def _zero_grad(left, p: Page) -> None:
    before = p.walk.grads_before
    left.markdown(tr("walkthrough.step3.text", total=before) + " "
                  + tr("walkthrough.step3.fresh" if before == 0 else "walkthrough.step3.checkpoint"))
    with left:
        details("walkthrough.step3.details")


def _normalize_tables(p: Page) -> None:
    """Why Normalize's constants: each channel's mean and spread over the training images, and this
    batch after Normalize (centred near 0, spread near 1); then one pixel's arithmetic."""
    walk, train = p.walk, p.dataset.train
    mean, std = _channel_stats(p.dataset.kind, str(p.dataset.root), train.images)
    # Normalize is affine, so the whole training set's mean and std after it follow from the measured ones.
    after_mean, after_std = (mean - np.array(MEAN)) / np.array(STD), std / np.array(STD)
    cols = [tr(f"walkthrough.table.{k}") for k in ("channel", "mean_constant", "mean_measured", "std_constant",
                                                    "std_measured", "after_mean", "after_std")]
    rows = [(tr(f"walkthrough.channel.{CHANNELS[c]}"), MEAN[c], mean[c], STD[c], std[c], after_mean[c], after_std[c])
            for c in range(3)]
    st.markdown(tr("walkthrough.step4.why", images=len(train)))
    st.dataframe(pd.DataFrame(rows, columns=cols), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in cols[1:5]}
                 | {c: st.column_config.NumberColumn(format="%.3f") for c in cols[5:]})
    batch_mean, batch_std = walk.normalized.mean(axis=(0, 2, 3)), walk.normalized.std(axis=(0, 2, 3))
    st.caption(tr("walkthrough.step4.stats_caption_synthetic" if p.dataset.synthetic
                  else "walkthrough.step4.stats_caption", images=len(train), n=len(walk.labels),
                  means=", ".join(f"{v:+.2f}" for v in batch_mean), stds=", ".join(f"{v:.2f}" for v in batch_std)))
    names = _names(walk)
    st.markdown(tr("walkthrough.step4.pixel", name=names[int(walk.labels[0])]))
    arith = [(tr(f"walkthrough.channel.{name}"), *numbers) for name, *numbers in channel_arithmetic(walk.raw[0, 0, 0])]
    st.dataframe(pd.DataFrame(arith, columns=[tr(f"walkthrough.table.{k}") for k in (
        "channel", "stored", "scaled", "mean", "std", "normalized")]), hide_index=True)


def _normalize_pictures(p: Page) -> None:
    """What an image looks like after Normalize, and how the batch's values move."""
    walk = p.walk
    as_pixels, rescaled = sample_figs.normalised_views(walk.raw[0])
    for col, picture, key in zip(st.columns(3), (walk.raw[0], as_pixels, rescaled), ("stored", "as_pixels", "rescaled")):
        col.image(sample_figs.pixelated(picture, PICTURE_SCALE), output_format="PNG", width="content")
        col.caption(tr(f"samples.numbers.caption_{key}"))   # below, not in st.image: a long one would stretch it
    st.plotly_chart(figs.value_histograms(walk.scaled, walk.normalized, lang=lang()), config=NO_BAR, key="wt_hist")
    st.caption(tr("walkthrough.step4.hist_caption"))


def _reshape(left, p: Page) -> None:
    walk, n = p.walk, len(p.walk.labels)
    left.markdown(tr("walkthrough.step4.text"))
    _normalize_tables(p)
    _normalize_pictures(p)
    if walk.flattens:
        st.markdown(tr("walkthrough.step4.flatten", n=n, example=flat_index(1, 5, 7)))
        st.image(sample_figs.channel_planes(walk.raw[0], scale=PICTURE_SCALE), output_format="PNG", width="content")
        st.caption(tr("samples.numbers.caption_planes"))
        st.plotly_chart(figs.input_vector(walk.model_input[0], lang=lang()), config=NO_BAR, key="wt_vector")
        st.caption(tr("walkthrough.step4.vector_caption"))
    else:
        st.markdown(tr("walkthrough.step4.conv", n=n))
    details("walkthrough.step4.details")


def _forward(left, p: Page) -> None:
    walk = p.walk
    left.markdown(tr("walkthrough.step5.text", weights=walk.param_count))
    with left:
        details("walkthrough.step5.details")
    rows = [(layer.name, layer.kind, " × ".join(map(str, layer.shape)), layer.mean, layer.minimum, layer.maximum,
             100 * layer.zero_share) for layer in walk.layers]
    cols = [tr(f"walkthrough.table.{k}") for k in ("layer", "kind", "shape", "mean", "min", "max", "zeros")]
    st.dataframe(pd.DataFrame(rows, columns=cols), hide_index=True, height=min(36 + 35 * len(rows), 480),
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in cols[3:6]}
                 | {cols[6]: st.column_config.NumberColumn(format="%.1f")})
    names = _names(walk)
    st.markdown(tr("walkthrough.step5.logits", scores=", ".join(f"{names[k]} {walk.logits[0, k]:.2f}"
                                                                for k in range(len(names)))))


def _predict(left, p: Page) -> None:
    walk, n = p.walk, len(p.walk.labels)
    left.markdown(tr("walkthrough.step6.text", correct=int((walk.predicted == walk.labels).sum()), n=n))
    with left:
        details("walkthrough.step6.details")
    names = _names(walk)
    st.plotly_chart(figs.scores(names, walk.logits[0], walk.probs[0], int(walk.labels[0]), lang=lang()),
                    config=NO_BAR, key="wt_scores")
    st.caption(tr("walkthrough.step6.caption", true=names[int(walk.labels[0])],
                  predicted=names[int(walk.predicted[0])], p=float(walk.probs[0].max())))


def _loss(left, p: Page) -> None:
    walk, n = p.walk, len(p.walk.labels)
    left.markdown(tr("walkthrough.step7.text", loss=walk.mean_neg_log_p))
    if walk.label_smoothing:
        left.caption(tr("walkthrough.step7.smoothing", smoothing=walk.label_smoothing, loss=walk.loss))
    with left:
        details("walkthrough.step7.details")
    names = _names(walk)
    cols = [tr(f"walkthrough.table.{k}") for k in ("true", "predicted", "p_true", "loss")]
    table = pd.DataFrame({cols[0]: [names[int(t)] for t in walk.labels], cols[1]: [names[int(k)] for k in walk.predicted],
                          cols[2]: walk.probs[np.arange(n), walk.labels], cols[3]: walk.losses})
    st.dataframe(table, hide_index=True, height=min(38 + 35 * n, 600),     # a batch of 16 whole, no scrolling
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in cols[2:]})


def _backward(left, p: Page) -> None:
    walk = p.walk
    left.markdown(tr("walkthrough.step8.text", weights=walk.param_count))
    with left:
        details("walkthrough.step8.details")
    cols = [tr(f"walkthrough.table.{k}") for k in ("parameter", "param_shape", "count", "grad_norm", "grad_max")]
    st.dataframe(pd.DataFrame([(r.name, " × ".join(map(str, r.shape)), r.count, r.grad_norm, r.grad_max)
                               for r in walk.grads], columns=cols),
                 hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.3e") for c in cols[3:]}
                 | {cols[2]: st.column_config.NumberColumn(format="localized")})
    st.plotly_chart(figs.gradient_sizes(walk.grads, lang=lang(), show_change=False), config=NO_BAR, key="wt_grads")
    st.caption(tr("walkthrough.step8.caption"))


def _rule(one) -> str:
    """One weight's update, written out with the optimiser's rule and its numbers."""
    where = dict(name=f"{one.name}{list(one.index)}", grad=one.grad, before=one.before, after=one.after,
                 change=one.change, rule=one.rule_change, lr=one.lr)
    if one.adam:
        text = tr("walkthrough.step9.adam_rule", t=one.step, m=one.exp_avg, v=one.exp_avg_sq, b1=one.betas[0],
                  b2=one.betas[1], mhat=one.m_hat, vhat=one.v_hat, sqrt=float(np.sqrt(one.v_hat)), eps=one.eps, **where)
        if one.optimizer == "AdamW" and one.weight_decay:
            text += "\n" + tr("walkthrough.step9.adamw_decay", wd=one.weight_decay, decay=-one.lr * one.weight_decay * one.before)
    elif one.momentum:
        d = one.grad + one.weight_decay * one.before
        text = tr("walkthrough.step9.sgd_rule" if one.nesterov else "walkthrough.step9.sgd_rule_plain_momentum",
                  d=d, wd=one.weight_decay, mom=one.momentum, buf=one.momentum_buffer, **where)
    else:
        text = tr("walkthrough.step9.sgd_plain", **where)
    return text + "\n\n" + tr("walkthrough.step9.result", **where)


def _update(left, p: Page) -> None:
    walk, one = p.walk, p.walk.weight
    adam = walk.optimizer in ("Adam", "AdamW")
    lr = one.lr if one is not None else float("nan")
    left.markdown(tr("walkthrough.step9.adam" if adam else "walkthrough.step9.sgd", optimizer=walk.optimizer, lr=lr))
    with left:
        details("walkthrough.step9.details")
    if one is not None:
        st.markdown(_rule(one))
    st.plotly_chart(figs.gradient_sizes(walk.grads, lang=lang()), config=NO_BAR, key="wt_changes")
    st.caption(tr("walkthrough.step9.caption"))
    # a finished run's one-cycle schedule ends at learning rate 0: its last checkpoint's step moves nothing
    why = "lower" if walk.loss_after < walk.loss else "zero_lr" if lr == 0 else "not_lower"
    st.markdown(tr("walkthrough.step9.after", before=walk.loss, after=walk.loss_after)
                + " " + tr(f"walkthrough.step9.{why}"))


VIEWS = {1: _epochs, 2: _batches, 3: _zero_grad, 4: _reshape, 5: _forward, 6: _predict, 7: _loss, 8: _backward,
         9: _update}


# ---- the page ------------------------------------------------------------------------------------------------

st.title(tr("walkthrough.page.title"))
st.markdown(tr("walkthrough.page.intro"))

store = common.run_store()
sources = _sources(store)
c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
source = c1.selectbox(tr("walkthrough.controls.model"), list(sources), format_func=sources.get, key=SOURCE_KEY,
                      help=tr("walkthrough.controls.model_help"))
batch_size = c2.selectbox(tr("walkthrough.controls.batch_size"), BATCH_SIZES, index=BATCH_SIZES.index(16),
                          key=BATCH_SIZE_KEY, help=tr("walkthrough.controls.batch_size_help"))
batch = c3.number_input(tr("walkthrough.controls.batch"), min_value=0, max_value=1000, value=0, step=1, key=BATCH_KEY,
                        help=tr("walkthrough.controls.batch_help"))
seed = c4.number_input(tr("walkthrough.controls.seed"), min_value=0, max_value=1_000_000, value=0, step=1,
                       key=SEED_KEY, help=tr("walkthrough.controls.seed_help"))
try:
    dataset, walk, cfg = _walk(source, int(batch_size), int(batch), int(seed))
except Problem as exc:
    st.error(str(exc))
    st.stop()
except (CheckpointError, ValueError) as exc:   # core's own words, in English: named as such in other languages
    st.error(plain(str(exc)) if lang() == "en" else tr("walkthrough.errors.core", message=plain(str(exc))))
    st.stop()
if dataset.synthetic:
    st.info(tr("walkthrough.page.synthetic"), icon=":material/science:")

st.session_state.setdefault(STEP_KEY, 1)
nav = st.columns([1, 6, 1])
nav[0].button(tr("walkthrough.nav.back"), key=BACK_KEY, on_click=_go, args=(-1,),
              disabled=st.session_state[STEP_KEY] == 1, width="stretch")
nav[2].button(tr("walkthrough.nav.next"), key=NEXT_KEY, on_click=_go, args=(1,),
              disabled=st.session_state[STEP_KEY] == len(STEPS), width="stretch", type="primary")
# Option labels made now, in this run's language (a format_func reading the language later could disagree).
step_labels = {s.number: f"{s.number} · {step_name(s, short=True)}" for s in STEPS}
number = nav[1].select_slider(tr("walkthrough.nav.step"), options=list(step_labels), key=STEP_KEY,
                              label_visibility="collapsed", format_func=step_labels.get)
step = STEPS[number - 1]
st.subheader(tr("walkthrough.nav.heading", n=step.number, name=step_name(step)))
left, right = st.columns(2, gap="medium")   # the right column fits the tutorial's code lines (39 characters) at 1280 px
with right:
    st.caption(tr("walkthrough.nav.tutorial_step", n=step.number, chinese=step.chinese))
    st.code(step.code, language="python", wrap_lines=True)
VIEWS[number](left, Page(walk, dataset, cfg, int(batch), int(seed), source.startswith("run:")))
