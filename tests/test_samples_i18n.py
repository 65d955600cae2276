"""The "Sample images" page in Chinese, in its richer states (each preset's augmentation preview, the
test split, a class filter, too few images, the table of shown images), a caption under every chart
and picture in both languages, and the grid's class captions drawn in a font that has the Chinese."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import data, i18n
from core.data import synthetic
from core.train.config import PRESETS
from dashboard.figures import samples as figs
from tests.i18n_checks import assert_all_chinese, uncaptioned
from tests.test_page_samples import grid_captions

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "dashboard" / "views" / "samples.py")
TIMEOUT = 60
AUGMENT_KEY, SPLIT_KEY, CLASSES_KEY, COUNT_KEY = "sm_augment", "sm_split", "sm_classes", "sm_count"
AUGMENTING = [name for name, p in PRESETS.items() if p.config.augment]

pytestmark = pytest.mark.filterwarnings("ignore::core.data.ChecksumWarning")  # the development copy


def open_page(lang: str, kind: str = "synthetic", **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["dataset_kind"] = kind
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def test_the_page_in_chinese_with_every_presets_augmentation(synthetic_dataset):
    at = open_page("zh")
    assert_all_chinese(at, "default")
    assert at.title[0].value == i18n.t("samples.page.title", "zh") + i18n.t("samples.page.title_synthetic", "zh")
    box = at.selectbox(key=AUGMENT_KEY)
    assert box.options[0] == i18n.t("samples.augment.off", "zh")
    for name in AUGMENTING:
        box.set_value(name).run()
        assert_all_chinese(at, name)
        cfg = PRESETS[name].config
        what = figs.augmentation_text(cfg.crop_padding, cfg.alternate_flip, "zh")
        _, augmented = grid_captions(at)
        assert what in augmented and PRESETS[name].text("title", "zh") in augmented
        box = at.selectbox(key=AUGMENT_KEY)


def test_the_test_split_a_class_filter_and_too_few_images_in_chinese(synthetic_dataset, tmp_path, monkeypatch):
    at = open_page("zh")
    at.radio(key=SPLIT_KEY).set_value("test").run()
    assert_all_chinese(at, "test split")
    assert at.radio(key=SPLIT_KEY).options == [i18n.t("samples.split.train", "zh"), i18n.t("samples.split.test", "zh")]
    at.multiselect(key=CLASSES_KEY).set_value(["circle", "ring"]).run()
    assert_all_chinese(at, "two classes")
    table = at.dataframe[0].value
    assert set(table[i18n.t("samples.table.class", "zh")]) == {"circle (圆形)", "ring (圆环)"}
    assert i18n.t("samples.table.index", "zh", split=i18n.t("samples.split.test_short", "zh")) in table.columns

    tiny_train, tiny_test = synthetic.generate(n_train=100, n_test=30)
    data.write_batch_folder(tmp_path / "tiny", tiny_train, tiny_test, synthetic.SYNTHETIC_CLASSES,
                            extra_meta={"generator": synthetic.GENERATOR, "version": synthetic.VERSION})
    monkeypatch.setenv("CIFARLAB_SYNTHETIC_ROOT", str(tmp_path / "tiny"))
    few = open_page("zh", **{SPLIT_KEY: "test", CLASSES_KEY: ["triangle"]})
    assert_all_chinese(few, "too few")
    assert few.info[0].value == i18n.t("samples.grid.only_synthetic", "zh", n=3,
                                       split=i18n.t("samples.split.test_short", "zh"), seed=0)


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_every_chart_and_picture_has_a_caption(lang, synthetic_dataset):
    at = open_page(lang)
    assert not uncaptioned(at)
    assert len(at.get("plotly_chart")) == 1 and len(at.get("image")) == 5    # grid, image three ways, planes
    at.selectbox(key=AUGMENT_KEY).set_value("cpu_cnn").run()
    assert not uncaptioned(at) and len(at.get("image")) == 6


def test_what_the_network_reads_is_explained_with_this_images_numbers(synthetic_dataset):
    from core.train.walkthrough import channel_arithmetic

    at = open_page("en")
    first = synthetic_dataset.train.images[figs.sample_indices(synthetic_dataset.train.labels, 40, 0)[0]]
    text = "\n".join(m.value for m in at.markdown)
    rows = channel_arithmetic(first[0, 0])
    assert f"stored ({', '.join(str(r[1]) for r in rows)})" in text
    assert f"Normalize ({', '.join(f'{r[5]:+.3f}' for r in rows)})" in text
    n = len(synthetic_dataset.train)
    assert f"{n:,} ÷ 16 = **{-(-n // 16):,} steps per epoch**" in text
    assert "**3,072**" in text


def test_normalised_views_and_channel_planes(synthetic_dataset):
    from core.data.images import normalize, to_nchw

    image = synthetic_dataset.train.images[3]
    as_pixels, rescaled = figs.normalised_views(image)
    x = normalize(to_nchw(image[None]))[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(as_pixels == 0, x * 255 < 0.5)              # below the average: black
    np.testing.assert_allclose(rescaled, np.clip((x + 2.5) / 5, 0, 1) * 255, atol=0.51)
    planes = np.asarray(figs.channel_planes(image, scale=2))
    tile = 64
    for c in range(3):
        plane = planes[:, c * (tile + figs.GAP):c * (tile + figs.GAP) + tile]
        np.testing.assert_array_equal(plane[::2, ::2, c], image[..., c])       # only its own colour
        assert not plane[..., [k for k in range(3) if k != c]].any()


def test_alternate_flips_mirror_each_image_the_other_way_next_epoch(synthetic_dataset):
    images = synthetic_dataset.train.images[:16]
    even = figs.augmented(images, seed=5, padding=0, alternate_flip=True, epoch=0)
    odd = figs.augmented(images, seed=5, padding=0, alternate_flip=True, epoch=1)
    mirrored = [not np.array_equal(e, im) for e, im in zip(even, images)]
    assert 0 < sum(mirrored) < len(images)
    for im, e, o, m in zip(images, even, odd, mirrored):
        np.testing.assert_array_equal(e, im[:, ::-1] if m else im)
        np.testing.assert_array_equal(o, im if m else im[:, ::-1])         # the other way round


def test_augmentation_words_only_say_what_a_preset_does():
    """Settings that are off are not described as applied: no shift at 0 pixels, the right kind of flip."""
    for lang in i18n.LANGUAGES:
        flip_only = figs.augmentation_text(0, False, lang)
        assert flip_only == i18n.t("samples.augment.flip_only", lang, flip=i18n.t("samples.augment.flip_random", lang))
        shifted = figs.augmentation_text(2, True, lang)
        assert "2" in shifted and i18n.t("samples.augment.flip_alternate", lang) in shifted
    assert "shift" not in figs.augmentation_text(0).replace("no shift", "")
    assert "every other epoch" in figs.augmentation_text(2, True) and "random" not in figs.augmentation_text(0, True)


def test_class_captions_are_drawn_with_a_chinese_font_or_without_the_chinese(monkeypatch):
    if figs.cjk_font_path():                                   # fonts-noto-cjk is installed here
        text, font = figs.fit_caption("automobile (汽车)", 96)
        assert text == "automobile (汽车)" and font.getlength(text) <= 96
        assert "CJK" in " ".join(font.getname())
    monkeypatch.setattr(figs, "cjk_font_path", lambda: None)   # a machine without one: no empty boxes
    assert figs.drawable("cat (猫)") == "cat" and figs.drawable("cat") == "cat"


@pytest.mark.cifar
def test_cifar_in_chinese_shows_class_names_with_their_chinese(cifar_root, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(cifar_root))
    at = open_page("zh", kind="cifar10")
    assert_all_chinese(at, "CIFAR-10")
    options = at.multiselect(key=CLASSES_KEY).options
    assert options == [i18n.class_name(c, "zh") for c in data.CLASSES]          # "cat (猫)", ids underneath
    at.multiselect(key=CLASSES_KEY).set_value(["cat", "dog"]).run()
    assert_all_chinese(at, "cat and dog")
    assert set(at.dataframe[0].value[i18n.t("samples.table.class", "zh")]) == {"cat (猫)", "dog (狗)"}
    if data.load_cifar10(cifar_root, download=False).note:                    # a copy that is not the official files
        assert any(i18n.t("samples.page.checksum_note", "zh") in c.value for c in at.caption)


def test_the_catalogue_names_every_preset_the_page_can_show():
    """The page builds these keys from preset ids (f-strings), so the key scan cannot see them."""
    for name in PRESETS:
        assert f"core.preset.{name}.title" in i18n.catalogue("zh")   # the preset's own title, translated once
        for lang in i18n.LANGUAGES:
            assert f"samples.augment.name.{name}" in i18n.catalogue(lang)
