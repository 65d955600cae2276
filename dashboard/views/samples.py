"""Sample images: a reproducible, captioned grid of the chosen split, its class balance, a preset's
training augmentation, and one image as the network reads it (Normalize, then 3,072 numbers)."""
from __future__ import annotations

import secrets

import numpy as np
import pandas as pd
import streamlit as st

from core.train.config import PRESETS
from core.train.walkthrough import channel_arithmetic, epoch_counts
from dashboard import common
from dashboard.figures import samples as figs
from dashboard.lang import class_name, lang, tr

# widget keys (session_state), addressable from tests
SPLIT_KEY, COUNT_KEY, CLASSES_KEY, SEED_KEY = "sm_split", "sm_count", "sm_classes", "sm_seed"
SHUFFLE_KEY, AUGMENT_KEY, ZOOM_KEY = "sm_shuffle", "sm_augment", "sm_zoom"
SPLITS = ("train", "test")
MIN_COUNT, MAX_COUNT, DEFAULT_COUNT = 16, 100, 40
DEFAULT_SEED = 0
ZOOMS = (2, 3, 4, 5, 6)
TUTORIAL_BATCH = 16
# Grids are drawn no wider than this (pixels), so the browser shows them at their own size, unscaled: the
# main column is 820 px wide at 1280 x 720 with the sidebar open (measured), a half column 400 px.
GRID_WIDTH, GRID_WIDTH_SIDE_BY_SIDE = 820, 400

# The augmentation preview: none (the tutorial's recipe), or as a preset that augments trains on its images.
AUGMENT_CHOICES = (None, *(name for name, p in PRESETS.items() if p.config.augment))


def preset_title(name: str) -> str:
    return PRESETS[name].text("title", lang())


def augment_words(name: str) -> str:
    cfg = PRESETS[name].config
    return figs.augmentation_text(cfg.crop_padding, cfg.alternate_flip, lang())


def _augment_label(name: str | None) -> str:
    """An option of the augmentation select: short enough to show whole in its box and menu."""
    if name is None:
        return tr("samples.augment.off")
    cfg = PRESETS[name].config
    return tr("samples.augment.option", preset=tr(f"samples.augment.name.{name}"),
              what=figs.augmentation_text(cfg.crop_padding, cfg.alternate_flip, lang(), short=True))


def new_seed() -> None:
    """Shuffle: a fresh seed, written into the seed box so this grid can be brought back later."""
    st.session_state[SEED_KEY] = secrets.randbelow(1_000_000)


def image_to_numbers(image: np.ndarray, name: str, n_train: int) -> None:
    """One image as the network reads it: Normalize made visible, its pixel arithmetic, flattening."""
    st.subheader(tr("samples.numbers.title"))
    st.markdown(tr("samples.numbers.normalize", name=name))
    as_pixels, rescaled = figs.normalised_views(image)
    cols = st.columns(3)
    for col, picture, key in zip(cols, (image, as_pixels, rescaled), ("stored", "as_pixels", "rescaled")):
        col.image(figs.pixelated(picture, 6), output_format="PNG", width="content")
        col.caption(tr(f"samples.numbers.caption_{key}"))
    rows = channel_arithmetic(image[0, 0])
    st.markdown(tr("samples.numbers.pixel", stored=", ".join(str(r[1]) for r in rows),
                   scaled=", ".join(f"{r[2]:.3f}" for r in rows), result=", ".join(f"{r[5]:+.3f}" for r in rows)))
    st.markdown(tr("samples.numbers.flatten"))
    st.image(figs.channel_planes(image, scale=6), output_format="PNG", width="content")
    st.caption(tr("samples.numbers.caption_planes"))
    counts = epoch_counts(n_train, batch_size=TUTORIAL_BATCH)
    st.markdown(tr("samples.numbers.epoch", images=counts.images, batch=counts.batch_size,
                   steps=counts.steps_per_epoch, total=counts.total_steps))
    st.caption(f"**{tr('common.words.details')}:** " + tr("samples.numbers.details", page=tr("common.pages.walkthrough")))


dataset = common.get_dataset()
if dataset is None:  # get_dataset() has explained what is missing and the ways out
    st.stop()

synthetic = dataset.synthetic
st.title(tr("samples.page.title") + (tr("samples.page.title_synthetic") if synthetic else ""))
sizes = dict(train=len(dataset.train), test=len(dataset.test), classes=len(dataset.classes), root=dataset.root)
if synthetic:
    st.caption(tr("samples.page.about_synthetic", **sizes))
else:
    st.caption(tr("samples.page.about", dataset=common.kind_label(dataset.kind), **sizes))
    if dataset.note:
        st.caption("ℹ️ " + (dataset.note if lang() == "en" else tr("samples.page.checksum_note")))

# Option labels made now, in this run's language (a format_func reading the language later could disagree).
split_labels = {s: tr(f"samples.split.{s}") for s in SPLITS}
class_labels = {c: class_name(c) for c in dataset.classes}
augment_labels = {name: _augment_label(name) for name in AUGMENT_CHOICES}
c1, c2, c3 = st.columns([1.2, 2, 2.6])
split = c1.radio(tr("samples.controls.split"), SPLITS, format_func=split_labels.get, key=SPLIT_KEY, horizontal=True)
count = c2.slider(tr("samples.controls.count"), MIN_COUNT, MAX_COUNT, DEFAULT_COUNT, key=COUNT_KEY)
chosen = c3.multiselect(tr("samples.controls.classes"), list(dataset.classes), format_func=class_labels.get,
                        key=CLASSES_KEY, placeholder=tr("samples.controls.all_classes"),
                        help=tr("samples.controls.classes_help"))

c4, c5, c6, c7 = st.columns([1.1, 0.9, 1.4, 2.6])
seed = c4.number_input(tr("samples.controls.seed"), min_value=DEFAULT_SEED, max_value=2**31 - 1, step=1,
                       key=SEED_KEY, help=tr("samples.controls.seed_help"))  # starts at 0
c5.button(tr("samples.controls.shuffle"), icon=":material/shuffle:", key=SHUFFLE_KEY, on_click=new_seed,
          help=tr("samples.controls.shuffle_help"))
zoom = c6.select_slider(tr("samples.controls.zoom"), options=ZOOMS, value=3, key=ZOOM_KEY,
                        help=tr("samples.controls.zoom_help"))
augment_as = c7.selectbox(tr("samples.controls.augment"), AUGMENT_CHOICES, key=AUGMENT_KEY,
                          format_func=augment_labels.get, help=tr("samples.controls.augment_help"))

part = dataset.split(split)
class_ids = [dataset.classes.index(c) for c in chosen]
indices = figs.sample_indices(part.labels, int(count), int(seed), class_ids)
images = part.images[indices]
names = [dataset.classes[int(y)] for y in part.labels[indices]]
shown = [class_name(n) for n in names]
where = dict(n=len(indices), split=tr(f"samples.split.{split}_short"), seed=seed)
what = "_synthetic" if synthetic else ""
if len(indices) < count:
    st.info(tr(f"samples.grid.only{what}", **where))

title = tr("samples.grid.title", dataset=common.kind_label(dataset.kind), **where)
# Captions go below the pictures (st.caption), not into st.image: a caption wider than its picture would
# widen the picture's box, and the browser would then scale the pixels up, blurred.
if augment_as is not None:
    cfg = PRESETS[augment_as].config
    columns = figs.columns_to_fit(GRID_WIDTH_SIDE_BY_SIDE, zoom)
    left, right = st.columns(2)
    left.image(figs.image_grid(images, shown, columns=columns, scale=zoom, title=title, accent=synthetic),
               output_format="PNG")
    left.caption(tr(f"samples.grid.caption_stored{what}", **where))
    after = figs.augmented(images, int(seed), padding=cfg.crop_padding, alternate_flip=cfg.alternate_flip)
    right.image(figs.image_grid(after, shown, columns=columns, scale=zoom, accent=synthetic,
                                title=tr("samples.grid.title_augmented", preset=preset_title(augment_as))),
                output_format="PNG")
    right.caption(tr(f"samples.grid.caption_augmented{what}", preset=preset_title(augment_as),
                     what=augment_words(augment_as), **where))
else:
    st.image(figs.image_grid(images, shown, columns=figs.columns_to_fit(GRID_WIDTH, zoom), scale=zoom, title=title,
                             accent=synthetic), output_format="PNG")
    st.caption(tr(f"samples.grid.caption{what}", **where))

with st.expander(tr("samples.table.title")):
    st.dataframe(pd.DataFrame({tr("samples.table.position"): np.arange(1, len(indices) + 1),
                               tr("samples.table.index", split=where["split"]): indices,
                               tr("samples.table.class"): shown}), hide_index=True)

counts = np.bincount(part.labels, minlength=len(dataset.classes))
st.plotly_chart(figs.class_balance_bar(dataset.classes, counts, split=split, highlight=chosen or None,
                                       synthetic=synthetic, lang=lang(),
                                       names=[class_name(c) for c in dataset.classes]),
                config={"displayModeBar": False}, key="sm_balance_chart")
st.caption(tr("samples.page.balance_caption"))

if len(indices):
    image_to_numbers(images[0], shown[0], len(dataset.train))
