"""One batch, step by step: the tutorial's nine training steps taken one click at a time on a real
batch, with the real numbers of a fresh model or of a run's checkpoint (core.train.walkthrough)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.train.checkpoints import CheckpointError, checkpoint_key
from core.train.config import PRESETS
from core.train.models import MODELS
from core.train.walkthrough import STEPS, channel_arithmetic, flat_index, pick_batch, walk_batch, walkthrough_model
from dashboard import common
from dashboard.common import plain
from dashboard.figures import samples as sample_figs
from dashboard.figures import walkthrough as figs

SOURCE_KEY, BATCH_SIZE_KEY, BATCH_KEY, SEED_KEY, STEP_KEY = "wt_source", "wt_batch_size", "wt_batch", "wt_seed", "wt_step"
WALK = "wt_walk"   # (inputs, BatchWalk) of the last computation, so stepping through does not recompute
BATCH_SIZES = (4, 8, 16, 32, 64)
FRESH = {"tutorial_mlp": PRESETS["tutorial_mlp"].config, "cpu_cnn": PRESETS["cpu_cnn"].config}


def _go(delta: int) -> None:
    st.session_state[STEP_KEY] = min(max(st.session_state.get(STEP_KEY, 1) + delta, 1), len(STEPS))


def _sources(store) -> dict[str, str]:
    options = {f"fresh:{name}": f"A fresh {MODELS[name].title}, untrained ({PRESETS[name].title})"
               for name in FRESH}
    for run in store.list_runs():
        if store.checkpoint_path(run.id, "last"):
            options[f"run:{run.id}"] = f"{run.label} · {run.status} · last checkpoint ({run.dataset_label})"
    return options


def _walk(source: str, batch_size: int, batch: int, seed: int):
    """The walk for these inputs: computed once, kept in the session while the learner steps through it."""
    store = common.run_store()
    if source.startswith("run:"):
        run = store.get(int(source.split(":")[1]))
        path = store.checkpoint_path(run.id, "last")
        if path is None:
            raise CheckpointError(f"{run.label} has no checkpoint any more.")
        dataset = common.get_dataset(run.dataset, show_problems=False)
        if dataset is None:
            raise CheckpointError(f"{run.label} was trained on {run.dataset_label}, which is not available here.")
        inputs = (source, checkpoint_key(path), dataset.kind, batch_size, batch, seed)
        make = lambda: walkthrough_model(checkpoint=path)  # noqa: E731
    else:
        dataset = common.get_dataset()
        if dataset is None:
            st.stop()
        inputs = (source, None, dataset.kind, batch_size, batch, seed)
        cfg = FRESH[source.split(":")[1]].replace(dataset=dataset.kind)
        make = lambda: walkthrough_model(cfg, train_images=dataset.train.images)  # noqa: E731
    kept = st.session_state.get(WALK)
    if kept and kept[0] == inputs:
        return dataset, kept[1], kept[2]
    images, labels, _ = pick_batch(dataset.train, batch_size=batch_size, batch=batch, seed=seed)
    model, optimizer, criterion, cfg = make()
    walk = walk_batch(model, optimizer, criterion, images, labels, dataset.classes)
    st.session_state[WALK] = (inputs, walk, cfg)
    return dataset, walk, cfg


st.title("One batch, step by step")
st.markdown(
    "The tutorial trains its network with nine steps repeated thousands of times. Here they run **once**, on one "
    "real batch of training images, one click at a time: every number on this page is what the model really "
    "computed (on the CPU, in float32), so you can follow an image from its pixels to the weight update it causes.")

store = common.run_store()
sources = _sources(store)
c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
source = c1.selectbox("Model", list(sources), format_func=sources.get, key=SOURCE_KEY,
                      help="A fresh model shows the very first step of training; a run's last checkpoint shows a "
                           "step of a model that has already learned (with its optimiser's memory).")
batch_size = c2.selectbox("Batch size", BATCH_SIZES, index=BATCH_SIZES.index(16), key=BATCH_SIZE_KEY,
                          help="How many images go through together. The tutorial uses 16.")
batch = c3.number_input("Batch number", min_value=0, max_value=1000, value=0, step=1, key=BATCH_KEY,
                        help="Which batch of the shuffled training set: 0 is the first of the epoch.")
seed = c4.number_input("Shuffle seed", min_value=0, max_value=1_000_000, value=0, step=1, key=SEED_KEY,
                       help="The shuffle of the training set this epoch; another seed gives other batches.")
try:
    dataset, walk, cfg = _walk(source, int(batch_size), int(batch), int(seed))
except (CheckpointError, ValueError) as exc:
    st.error(plain(str(exc)))
    st.stop()
if dataset.synthetic:
    st.info("These are **synthetic** demo images drawn by the app, not CIFAR-10.", icon=":material/science:")

st.session_state.setdefault(STEP_KEY, 1)
nav = st.columns([1, 6, 1])
nav[0].button("◂ Back", on_click=_go, args=(-1,), disabled=st.session_state[STEP_KEY] == 1, width="stretch")
nav[2].button("Next ▸", on_click=_go, args=(1,), disabled=st.session_state[STEP_KEY] == len(STEPS),
              width="stretch", type="primary")
number = nav[1].select_slider("Step", options=[s.number for s in STEPS], key=STEP_KEY, label_visibility="collapsed",
                              format_func=lambda n: f"{n} · {STEPS[n - 1].title.split(':')[0]}")
step = STEPS[number - 1]
st.subheader(f"Step {step.number}. {step.title}")
left, right = st.columns([3, 2], gap="large")
with right:
    st.caption(f"The tutorial's step {step.number}: {step.chinese}")
    st.code(step.code, language="python", wrap_lines=True)

n = len(walk.labels)
names = walk.classes
train_n = len(dataset.train.labels)
per_epoch = train_n // n
with left:
    if number == 1:
        st.markdown(
            f"An **epoch** is one pass over all {train_n:,} training images. The tutorial trains for 10 epochs, "
            f"so every image is seen 10 times. Within an epoch the images come in **batches** of {n}: "
            f"{train_n:,} ÷ {n} = **{per_epoch:,} steps per epoch** (one *step* = one batch = one weight update), "
            f"{10 * per_epoch:,} steps in 10 epochs. This page takes one of those steps.")
    elif number == 2:
        st.markdown(
            f"The data loader shuffles the training set at the start of every epoch and hands out {n} images at a "
            f"time. This is batch {int(batch)} of the shuffle with seed {int(seed)}: each image is stored as "
            f"32 × 32 pixels × 3 colours, whole numbers from 0 to 255 (uint8), with its true class.")
        captions = [names[int(label)] for label in walk.labels]
        st.image(sample_figs.image_grid(walk.raw, captions, columns=min(n, 8), scale=3), width="content")
    elif number == 3:
        st.markdown(
            "PyTorch **adds** each new gradient to whatever is stored in `.grad`, so the old ones must be cleared "
            "first; otherwise this batch's gradient would be mixed with the last one's. "
            f"Before clearing, the gradients left over summed to **{walk.grads_before:.4g}** in absolute value "
            + ("(a fresh model has none yet)." if walk.grads_before == 0 else "(from the checkpoint's last step).")
            + " After `zero_grad()` there are none.")
    elif number == 4:
        pixel = walk.raw[0, 0, 0]
        st.markdown(
            "**ToTensor** turns each image into numbers between 0 and 1 (÷ 255) and reorders them as channel, "
            "row, column (C, H, W). **Normalize** then subtracts each channel's mean over the CIFAR-10 training "
            "images and divides by its standard deviation, so every input is centred near 0 with a spread near 1: "
            "the first layer's weights then start in a range where learning is quick. For the top-left pixel "
            f"of the first image ({names[int(walk.labels[0])]}):")
        st.dataframe(pd.DataFrame(channel_arithmetic(pixel),
                                  columns=["channel", "stored (0-255)", "÷ 255", "mean", "std", "(x − mean) ÷ std"]),
                     hide_index=True)
        if walk.flattens:
            st.markdown(
                f"The MLP reads one long vector, so `view(-1, 32*32*3)` lays the {n} × 3 × 32 × 32 numbers out as "
                f"{n} rows of **3,072**: all 1,024 red values row by row, then the green, then the blue. "
                f"Pixel (row h, column w) of channel c lands at position c·1024 + h·32 + w; e.g. the green value "
                f"of pixel (5, 7) is at {flat_index(1, 5, 7):,}. Flattening throws away which pixels are neighbours: "
                "the MLP must learn that from scratch.")
            st.plotly_chart(figs.input_vector(walk.model_input[0]), config={"displayModeBar": False})
            st.caption("The first image's 3,072 inputs after normalisation, the three channels one after the other.")
        else:
            st.markdown(
                f"A convolutional net keeps the {n} × 3 × 32 × 32 grid instead of flattening it: its filters slide "
                "over neighbouring pixels, and the same small filter is used at every position.")
    elif number == 5:
        rows = [(layer.name, layer.kind, " × ".join(map(str, layer.shape)), layer.mean, layer.minimum, layer.maximum,
                 100 * layer.zero_share) for layer in walk.layers]
        st.markdown(
            "The forward pass sends the batch through the layers in order. Each row is one layer's output for the "
            f"whole batch ({walk.param_count:,} trainable weights in all). A **Linear** layer computes weighted sums "
            "(x·Wᵀ + b); **ReLU** keeps positive values and sets negative ones to 0, so the share of zeros shows "
            "how many units are switched off for these images.")
        st.dataframe(pd.DataFrame(rows, columns=["layer", "kind", "output shape", "mean", "min", "max", "zeros (%)"]),
                     hide_index=True, height=min(36 + 35 * len(rows), 480),
                     column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "min", "max")}
                     | {"zeros (%)": st.column_config.NumberColumn(format="%.1f")})
        st.markdown("The last layer gives each image **10 scores (logits)**, one per class: for the first image "
                    + ", ".join(f"{names[k]} {walk.logits[0, k]:.2f}" for k in range(len(names))) + ".")
    elif number == 6:
        correct = int((walk.predicted == walk.labels).sum())
        st.markdown(
            "`torch.max(outputs, 1)` picks the class with the highest score. **Softmax** turns the scores into "
            "probabilities that add up to 1 (e^score ÷ the sum of all e^score); it does not change which class "
            f"wins. In this batch **{correct} of {n}** predictions are right.")
        st.plotly_chart(figs.scores(names, walk.logits[0], walk.probs[0], int(walk.labels[0])),
                        config={"displayModeBar": False})
        st.caption(f"The first image: true class {names[int(walk.labels[0])]} (green). Solid bars: scores; "
                   "hatched: probabilities (right axis).")
    elif number == 7:
        k = np.arange(n)
        p_true = walk.probs[k, walk.labels]
        table = pd.DataFrame({"true class": [names[int(t)] for t in walk.labels],
                              "predicted": [names[int(p)] for p in walk.predicted],
                              "p(true class)": p_true, "loss = −ln p": walk.losses})
        st.markdown(
            "**Cross-entropy** asks: how much probability did the model give the right answer? Each image's loss "
            "is **−ln p(true class)**: 0 when the model is sure and right, large when it gave the truth little "
            f"chance (a guess among 10 classes, p = 0.1, costs −ln 0.1 = 2.303). The batch's loss is the mean: "
            f"**{walk.mean_neg_log_p:.4f}**.")
        if walk.label_smoothing:
            st.caption(f"This run uses label smoothing {walk.label_smoothing:g}: its training loss mixes in the "
                       f"other classes a little, so it is {walk.loss:.4f} rather than the plain mean above.")
        st.dataframe(table, hide_index=True, column_config={
            "p(true class)": st.column_config.NumberColumn(format="%.4f"),
            "loss = −ln p": st.column_config.NumberColumn(format="%.4f")})
    elif number == 8:
        st.markdown(
            "`loss.backward()` works backwards through the layers (the chain rule) and finds, for every one of the "
            f"{walk.param_count:,} weights, how much the loss would change if that weight grew a little: its "
            "**gradient**. The bars show the size of each weight tensor's gradient.")
        st.dataframe(pd.DataFrame([(r.name, " × ".join(map(str, r.shape)), r.count, r.grad_norm, r.grad_max)
                                   for r in walk.grads],
                                  columns=["parameter", "shape", "weights", "‖gradient‖", "largest |gradient|"]),
                     hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.3e")
                                                     for c in ("‖gradient‖", "largest |gradient|")})
    else:
        one = walk.weight
        st.markdown(
            f"`optimizer.step()` moves every weight against its gradient. This model uses **{walk.optimizer}** "
            f"at learning rate {one.lr:g}. " + (
                "Adam keeps a running mean of each weight's gradient (m) and of its square (v) and moves each weight "
                "by about lr × m ÷ √v: at the first step that is lr × g ÷ |g|, so **every weight moves by about the "
                "learning rate**, whatever the size of its gradient." if walk.optimizer in ("Adam", "AdamW")
                else "Plain SGD moves each weight by lr × gradient (with momentum: a running sum of past steps)."))
        if one is not None:
            extra = (f" Adam's memory after the step: m = {one.exp_avg:.3e}, v = {one.exp_avg_sq:.3e} "
                     f"(step {one.step})." if one.exp_avg is not None else "")
            st.markdown(
                f"The weight with the largest gradient, `{one.name}{list(one.index)}`: gradient {one.grad:.3e}, "
                f"before {one.before:.6f}, after {one.after:.6f}, a change of {one.after - one.before:+.3e}.{extra}")
        st.plotly_chart(figs.gradient_sizes(walk.grads), config={"displayModeBar": False})
        st.caption("Per weight tensor: the gradient's size (L2 norm) and how far the step moved the weights (log scale).")
        better = walk.loss_after < walk.loss
        st.markdown(
            f"**The same batch after the step:** loss {walk.loss:.4f} → **{walk.loss_after:.4f}** "
            f"({'lower' if better else 'not lower'}). "
            + ("One step helps the batch it was computed on; training repeats this thousands of times, on every batch."
               if better else "A step can overshoot when the learning rate is large for where the weights are."))
