"""The "Sample images" page in AppTest, and its figure builders (dashboard/figures/samples.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import data

from core.data import synthetic
from dashboard.figures import samples as figs

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "dashboard" / "views" / "samples.py")
TIMEOUT = 60  # the machine is shared; a run takes a second or two alone
OUT = REPO / "test-output" / "samples"  # pictures for a person to look at

pytestmark = pytest.mark.filterwarnings("ignore::core.data.ChecksumWarning")  # the development copy

SPLIT_KEY, COUNT_KEY, CLASSES_KEY, SEED_KEY = "sm_split", "sm_count", "sm_classes", "sm_seed"
SHUFFLE_KEY, AUGMENT_KEY, ZOOM_KEY = "sm_shuffle", "sm_augment", "sm_zoom"


def open_page(kind: str = "synthetic") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["dataset_kind"] = kind
    return at.run()


NUMBERS_PICTURES = 4  # "What the network reads": the image three ways (stored, normalised twice) and its planes


def grids(at: AppTest):
    """The picture grids of sampled images (one, or two side by side with the augmentation preview),
    without the pictures of one image in the "what the network reads" section below them."""
    images = at.get("image")
    assert len(images) > NUMBERS_PICTURES
    return images[:-NUMBERS_PICTURES]


def grid_captions(at: AppTest) -> list[str]:
    """The caption under each grid: the st.caption right after its picture."""
    found: list[str] = []

    def visit(block) -> None:
        nodes = [block.children[k] for k in sorted(block.children)]
        for node, following in zip(nodes, [*nodes[1:], None]):
            if node.type == "image":
                found.append(following.value if following is not None and following.type == "caption" else "")
            elif hasattr(node, "children"):
                visit(node)

    visit(at.main)
    return found[:len(grids(at))]


def shown(at: AppTest):
    """The table of shown images: (positions, indices into the split, class names)."""
    (df,) = at.dataframe
    index_col = [c for c in df.value.columns if c.startswith("index in")][0]
    return df.value["position"].tolist(), df.value[index_col].tolist(), df.value["class"].tolist()


# --------------------------------------------------------------------------- the page, synthetic set

@pytest.fixture
def at(synthetic_dataset) -> AppTest:  # the fixture writes the demo set once per session
    app = open_page("synthetic")
    assert not app.exception, app.exception
    return app


def test_grid_renders_with_class_captions_and_says_synthetic(at, synthetic_dataset):
    assert "synthetic" in at.title[0].value.lower()
    assert any("synthetic" in c.value.lower() for c in at.caption)
    (image,) = grids(at)
    assert len(image.value) == 1 and image.value[0].endswith(".png")  # one lossless picture
    (caption,) = grid_captions(at)
    assert "synthetic" in caption and "captioned with its class" in caption
    positions, indices, classes = shown(at)
    assert positions == list(range(1, 41)) and len(set(indices)) == 40
    assert set(classes) <= set(synthetic.SYNTHETIC_CLASSES) and len(set(classes)) > 3
    labels = synthetic_dataset.train.labels
    assert classes == [synthetic.SYNTHETIC_CLASSES[labels[i]] for i in indices]
    (chart,) = at.get("plotly_chart")
    assert '"Class"' in chart.proto.spec and '"Images"' in chart.proto.spec and "synthetic" in chart.proto.spec


def test_class_filter_shows_only_chosen_classes(at):
    at.multiselect(key=CLASSES_KEY).set_value(["circle", "ring"]).run()
    assert not at.exception
    _, _, classes = shown(at)
    assert len(classes) == 40 and set(classes) == {"circle", "ring"}
    at.multiselect(key=CLASSES_KEY).set_value(["stripes"]).run()
    _, _, classes = shown(at)
    assert set(classes) == {"stripes"}


def test_count_split_and_seed_reproduce_a_grid(at):
    at.slider(key=COUNT_KEY).set_value(16).run()
    _, first, _ = shown(at)
    assert len(first) == 16
    at.number_input(key=SEED_KEY).set_value(7).run()
    _, other, _ = shown(at)
    assert other != first
    at.number_input(key=SEED_KEY).set_value(0).run()
    assert shown(at)[1] == first  # same seed, same images
    at.radio(key=SPLIT_KEY).set_value("test").run()
    assert not at.exception
    _, test_indices, _ = shown(at)
    assert len(test_indices) == 16 and max(test_indices) < synthetic.N_TEST
    assert "index in test split" in at.dataframe[0].value.columns
    at.slider(key=COUNT_KEY).set_value(100).run()
    assert len(shown(at)[1]) == 100


def test_shuffle_picks_a_new_seed_and_new_images(at):
    _, before, _ = shown(at)
    at.button(key=SHUFFLE_KEY).click().run()
    assert not at.exception
    seed = at.number_input(key=SEED_KEY).value
    _, after, _ = shown(at)
    assert after != before
    # the seed shown brings the same grid back
    at.number_input(key=SEED_KEY).set_value(0).run()
    at.number_input(key=SEED_KEY).set_value(seed).run()
    assert shown(at)[1] == after
    assert not at.warning  # no widget-state warnings from setting the seed


def test_augmentation_preview_shows_the_chosen_presets_own_augmentation(at):
    from core.train.config import PRESETS

    box = at.selectbox(key=AUGMENT_KEY)
    assert box.value is None and len(grids(at)) == 1                # the tutorial's recipe: no augmentation
    augmenting = [name for name, p in PRESETS.items() if p.config.augment]
    assert box.options == [box.format_func(o) for o in [None, *augmenting]]
    for name in augmenting:
        box.set_value(name).run()
        assert not at.exception
        assert len(grids(at)) == 2
        stored, augmented = grid_captions(at)
        cfg = PRESETS[name].config
        assert "as stored" in stored
        what = figs.augmentation_text(cfg.crop_padding, cfg.alternate_flip)
        assert what in augmented and PRESETS[name].title in augmented
    assert "no shift" in at.selectbox(key=AUGMENT_KEY).format_func("fast_mlp")   # the fast MLP only flips
    assert "up to 2 px" in at.selectbox(key=AUGMENT_KEY).format_func("cpu_cnn")
    # the CPU CNN mirrors every image in every other epoch (alternate_flip), not at random
    assert "every other epoch" in at.selectbox(key=AUGMENT_KEY).format_func("cpu_cnn")
    assert "random flip" in at.selectbox(key=AUGMENT_KEY).format_func("fast_mlp")
    assert all(len(o) <= 50 for o in box.options)             # whole in the select's box and menu at 1280 px


def test_small_class_choice_says_how_many_there_are(tmp_path, monkeypatch):
    """A demo-sized set of 30 test images: asking for 40 of one class shows what there is."""
    tiny_train, tiny_test = synthetic.generate(n_train=100, n_test=30)
    data.write_batch_folder(tmp_path / "tiny", tiny_train, tiny_test, synthetic.SYNTHETIC_CLASSES,
                            extra_meta={"generator": synthetic.GENERATOR, "version": synthetic.VERSION})
    monkeypatch.setenv("CIFARLAB_SYNTHETIC_ROOT", str(tmp_path / "tiny"))
    app = open_page("synthetic")
    app.radio(key=SPLIT_KEY).set_value("test").run()
    app.multiselect(key=CLASSES_KEY).set_value(["triangle"]).run()
    assert not app.exception
    _, _, classes = shown(app)
    assert classes == ["triangle"] * 3
    assert "Only 3 synthetic test images" in app.info[0].value


# --------------------------------------------------------------------------- the page, CIFAR-10

def test_missing_cifar10_shows_the_message_and_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "no-cifar-here"))
    app = open_page("cifar10")
    assert not app.exception
    (error,) = app.error
    assert str(tmp_path / "no-cifar-here") in error.value
    assert "CIFARLAB_OFFLINE=1" in error.value
    assert "CIFAR10_ROOT" in error.value and "synthetic demo set" in error.value.lower()
    assert not app.title and not app.get("image")  # the page stopped after the message
    assert app.button(key="use_synthetic")  # the shared way out from dashboard.common


@pytest.mark.cifar
def test_real_cifar10_grid(cifar_root, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(cifar_root))
    app = open_page("cifar10")
    assert not app.exception
    assert app.title[0].value == "Sample images"
    assert not any("synthetic" in c.value.lower() for c in app.caption)
    _, _, classes = shown(app)
    assert set(classes) <= set(data.CLASSES)
    app.multiselect(key=CLASSES_KEY).set_value(["cat", "dog"]).run()
    assert set(shown(app)[2]) == {"cat", "dog"}


# --------------------------------------------------------------------------- figure builders

def test_grid_is_pixelated_with_captions_that_fit(synthetic_dataset):
    ds = synthetic_dataset
    idx = figs.sample_indices(ds.train.labels, 20, seed=3)
    images = ds.train.images[idx]
    names = [ds.classes[y] for y in ds.train.labels[idx]]
    scale = 3
    grid = figs.image_grid(images, names, columns=10, scale=scale, title="Synthetic demo set", accent=True)
    OUT.mkdir(parents=True, exist_ok=True)
    grid.save(OUT / "synthetic_grid.png")  # for a person to look at
    lay = figs.grid_layout(20, 10, scale, title=True)
    assert grid.size == (lay["width"], lay["height"]) and grid.mode == "RGB"
    pixels = np.asarray(grid)
    for i in (0, 7, 19):
        r, c = divmod(i, 10)
        x = figs.GAP + c * (lay["tile"] + figs.GAP)
        y = lay["title_h"] + figs.GAP + r * (lay["tile"] + lay["caption_h"] + figs.GAP)
        tile = pixels[y:y + lay["tile"], x:x + lay["tile"]]
        # nearest neighbour: every screen pixel is exactly its image pixel, no blending at all
        np.testing.assert_array_equal(tile, np.repeat(np.repeat(images[i], scale, 0), scale, 1))
        caption = pixels[y + lay["tile"]:y + lay["tile"] + lay["caption_h"], x:x + lay["tile"]]
        assert (caption != 255).any(), "a caption was drawn under the tile"
        # nothing drawn outside the tile's own column (captions are not cut off or overflowing)
        gap = pixels[y + lay["tile"]:y + lay["tile"] + lay["caption_h"], x + lay["tile"]:x + lay["tile"] + figs.GAP]
        assert (gap == 255).all()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_class_name_fits_its_tile(scale):
    width = 32 * scale
    for name in data.CLASSES + synthetic.SYNTHETIC_CLASSES:
        text, f = figs.fit_caption(name, width)
        assert f.getlength(text) <= width
        if scale >= 3:  # at the default size and up, names are shown whole, in a legible size
            assert text == name and f.size >= 12, (name, f.size)
    text, f = figs.fit_caption("a very long class name that cannot fit", 64)
    assert text.endswith("…") and f.getlength(text) <= 64


@pytest.mark.cifar
def test_cifar_grid_for_a_person_to_look_at(cifar_root):
    ds = data.load_cifar10(cifar_root, download=False)
    idx = figs.sample_indices(ds.test.labels, 30, seed=1)
    names = [ds.classes[y] for y in ds.test.labels[idx]]
    grid = figs.image_grid(ds.test.images[idx], names, columns=10, scale=3, title="CIFAR-10 · test split")
    OUT.mkdir(parents=True, exist_ok=True)
    grid.save(OUT / "cifar10_grid.png")
    again = figs.augmented(ds.test.images[idx[:10]], seed=1)
    figs.image_grid(again, names[:10], columns=5, scale=3, title="after augmentation").save(OUT / "cifar10_aug.png")
    assert Image.open(OUT / "cifar10_grid.png").size == grid.size


def test_sample_indices_respect_classes_and_seed():
    labels = np.arange(1000) % 10
    a = figs.sample_indices(labels, 50, seed=5, classes=[2, 7])
    assert len(a) == 50 and len(set(a.tolist())) == 50 and set(labels[a]) == {2, 7}
    np.testing.assert_array_equal(a, figs.sample_indices(labels, 50, seed=5, classes=[2, 7]))
    assert not np.array_equal(a, figs.sample_indices(labels, 50, seed=6, classes=[2, 7]))
    assert len(figs.sample_indices(labels, 500, seed=0, classes=[3])) == 100  # no more than there are
    assert len(figs.sample_indices(labels, 16, seed=0)) == 16


def test_class_balance_bar_has_axis_titles_and_counts():
    fig = figs.class_balance_bar(["a", "b", "c"], [5, 7, 9], split="train", highlight=["b"], synthetic=True)
    assert fig.layout.xaxis.title.text == "Class" and fig.layout.yaxis.title.text == "Images"
    assert list(fig.data[0].y) == [5, 7, 9]
    assert fig.data[0].marker.color[1] == figs.PRIMARY and fig.data[0].marker.color[0] == figs.MUTED
    assert "21 synthetic train images" in fig.layout.title.text


def test_augmented_images_are_crops_and_flips_of_the_originals(synthetic_dataset):
    images = synthetic_dataset.train.images[:12]
    out = figs.augmented(images, seed=4)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, figs.augmented(images, seed=4))
    assert not np.array_equal(out, images)
    for orig, aug in zip(images, out):
        padded = np.pad(orig, ((4, 4), (4, 4), (0, 0)), mode="reflect")
        candidates = [padded[dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        candidates += [c[:, ::-1] for c in candidates]
        assert any(np.array_equal(aug, c) for c in candidates)


@pytest.mark.parametrize("padding", [0, 2])
def test_augmented_images_shift_by_at_most_the_presets_padding(synthetic_dataset, padding):
    images = synthetic_dataset.train.images[:16]
    out = figs.augmented(images, seed=3, padding=padding)
    flipped = 0
    for orig, aug in zip(images, out):
        padded = np.pad(orig, ((padding, padding), (padding, padding), (0, 0)), mode="reflect")
        k = 2 * padding + 1
        shifts = [padded[dy:dy + 32, dx:dx + 32] for dy in range(k) for dx in range(k)]
        assert any(np.array_equal(aug, c) for c in shifts + [c[:, ::-1] for c in shifts])
        flipped += not any(np.array_equal(aug, c) for c in shifts)
    assert 0 < flipped < len(images)                                         # some flipped, some not
