"""Sample images: a reproducible, captioned grid of the chosen split, its class balance, and augmentation."""
from __future__ import annotations

import secrets


import numpy as np
import pandas as pd
import streamlit as st

from core.train.config import PRESETS
from dashboard import common
from dashboard.figures import samples as figs

# widget keys (session_state), addressable from tests
SPLIT_KEY, COUNT_KEY, CLASSES_KEY, SEED_KEY = "sm_split", "sm_count", "sm_classes", "sm_seed"
SHUFFLE_KEY, AUGMENT_KEY, ZOOM_KEY = "sm_shuffle", "sm_augment", "sm_zoom"
SPLIT_LABELS = {"train": "Training split", "test": "Test split"}
MIN_COUNT, MAX_COUNT, DEFAULT_COUNT = 16, 100, 40
DEFAULT_SEED = 0
ZOOMS = (2, 3, 4, 5, 6)
# Grids are drawn no wider than this (pixels), so the browser shows them at their own size, unscaled
GRID_WIDTH, GRID_WIDTH_SIDE_BY_SIDE = 900, 440


# The augmentation preview: none (the tutorial's recipe), or as a preset that augments trains on its images.
AUGMENT_CHOICES = (None, *(name for name, p in PRESETS.items() if p.config.augment))


def _augment_label(name: str | None) -> str:
    if name is None:
        return "Off (the tutorial's recipe does not augment)"
    return f"As {PRESETS[name].title}: {figs.augmentation_text(PRESETS[name].config.crop_padding)}"


def new_seed() -> None:
    """Shuffle: a fresh seed, written into the seed box so this grid can be brought back later."""
    st.session_state[SEED_KEY] = secrets.randbelow(1_000_000)


dataset = common.get_dataset()
if dataset is None:  # get_dataset() has explained what is missing and the ways out
    st.stop()

synthetic = dataset.synthetic
st.title("Sample images" + (" · synthetic demo set" if synthetic else ""))
if synthetic:
    st.caption(f"**Synthetic** images drawn by the app (not CIFAR-10): {len(dataset.train):,} training and "
               f"{len(dataset.test):,} test images of {len(dataset.classes)} classes, from `{dataset.root}`.")
else:
    st.caption(f"{dataset.label}: {len(dataset.train):,} training and {len(dataset.test):,} test images "
               f"from `{dataset.root}`.")
    if dataset.note:
        st.caption(f"ℹ️ {dataset.note}")

c1, c2, c3 = st.columns([1.2, 2, 2.6])
split = c1.radio("Split", list(SPLIT_LABELS), format_func=SPLIT_LABELS.get, key=SPLIT_KEY, horizontal=True)
count = c2.slider("Number of images", MIN_COUNT, MAX_COUNT, DEFAULT_COUNT, key=COUNT_KEY)
chosen = c3.multiselect("Classes", list(dataset.classes), key=CLASSES_KEY, placeholder="All classes",
                        help="Show only these classes (none chosen: all of them).")

c4, c5, c6, c7 = st.columns([1.3, 1, 1.7, 2])
seed = c4.number_input("Seed", min_value=DEFAULT_SEED, max_value=2**31 - 1, step=1, key=SEED_KEY,  # starts at 0
                       help="The same seed, split and classes always show the same images.")
c5.button("Shuffle", icon=":material/shuffle:", key=SHUFFLE_KEY, on_click=new_seed,
          help="Draw other images (picks a new seed).")
zoom = c6.select_slider("Pixel size", options=ZOOMS, value=3, key=ZOOM_KEY,
                        help="Each image pixel becomes a sharp square this many screen pixels wide.")
augment_as = c7.selectbox("Training augmentation", AUGMENT_CHOICES, key=AUGMENT_KEY, format_func=_augment_label,
                          help="Show the same images as a preset's training sees them: each preset that "
                               "augments has its own shift (or none) and flips. The tutorial's recipe does not "
                               "augment at all.")
show_augment = augment_as is not None

part = dataset.split(split)
class_ids = [dataset.classes.index(c) for c in chosen]
indices = figs.sample_indices(part.labels, int(count), int(seed), class_ids)
images = part.images[indices]
names = [dataset.classes[int(y)] for y in part.labels[indices]]
what = "synthetic " if synthetic else ""
if len(indices) < count:
    st.info(f"Only {len(indices)} {what}{split} images belong to the chosen classes.")

title = f"{dataset.label} · {split} split · seed {seed}"  # the label says "Synthetic demo set" for the demo set
if show_augment:
    columns = figs.columns_to_fit(GRID_WIDTH_SIDE_BY_SIDE, zoom)
    left, right = st.columns(2)
    left.image(figs.image_grid(images, names, columns=columns, scale=zoom, title=title, accent=synthetic),
               caption=f"{len(indices)} {what}{split} images as stored", output_format="PNG")
    padding = PRESETS[augment_as].config.crop_padding
    right.image(figs.image_grid(figs.augmented(images, int(seed), padding=padding), names, columns=columns,
                                scale=zoom, title=f"as {PRESETS[augment_as].title} trains on them", accent=synthetic),
                caption=f"The same {what}images after the {PRESETS[augment_as].title} preset's training augmentation: "
                        f"{figs.augmentation_text(padding)} (seed {seed}). A new draw every epoch.",
                output_format="PNG")
else:
    st.image(figs.image_grid(images, names, columns=figs.columns_to_fit(GRID_WIDTH, zoom), scale=zoom, title=title,
                             accent=synthetic),
             caption=f"{len(indices)} {what}{split} images, each captioned with its class", output_format="PNG")

with st.expander("Which images are these?"):
    st.dataframe(pd.DataFrame({"position": np.arange(1, len(indices) + 1), f"index in {split} split": indices,
                               "class": names}), hide_index=True)

counts = np.bincount(part.labels, minlength=len(dataset.classes))
st.plotly_chart(figs.class_balance_bar(dataset.classes, counts, split=split, highlight=chosen or None,
                                       synthetic=synthetic),
                config={"displayModeBar": False})
