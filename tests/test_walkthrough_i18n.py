"""The "One batch, step by step" page in Chinese, in its richer states (every step clicked through, a
conv net, a run's checkpoint, an error), with the tutorial's own step names; and in both languages a
caption under every chart and picture. Figures' words (titles, axes, legends, hover text) are checked
too, since english_leftovers only reads the page's text elements."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import i18n
from core.train.config import PRESETS
from core.train.models import MODELS
from core.train.walkthrough import STEPS
from tests.i18n_checks import assert_all_chinese, english_leftovers, uncaptioned

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "dashboard" / "views" / "walkthrough.py")
TIMEOUT = 120



def open_page(lang: str, **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["dataset_kind"] = "synthetic"
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def click_through(at: AppTest, check) -> None:
    """Every step, by the Next button, as a learner goes; `check(at, step)` after each."""
    for step in STEPS:
        if step.number > 1:
            at.button(key="wt_next").click().run()
        assert not at.exception, at.exception
        assert at.session_state["wt_step"] == step.number
        check(at, step)


def chinese_page_checks(at: AppTest, step) -> None:
    assert at.subheader[0].value == i18n.t("walkthrough.nav.heading", "zh", n=step.number, name=step.chinese)
    assert at.code[0].value == step.code
    assert_all_chinese(at, f"step {step.number}")


def test_every_step_in_chinese_uses_the_tutorials_words(synthetic_dataset):
    at = open_page("zh")
    assert not at.exception, at.exception
    slider = at.select_slider(key="wt_step")
    assert slider.options == [f"{s.number} · {s.chinese.split(',')[0]}" for s in STEPS]   # 大for循环-epochs, ...
    assert at.title[0].value == i18n.t("walkthrough.page.title", "zh")
    click_through(at, chinese_page_checks)
    assert at.button(key="wt_next").disabled
    at.button(key="wt_back").click().run()
    assert at.session_state["wt_step"] == 8 and not english_leftovers(at)


def test_the_conv_net_in_chinese(synthetic_dataset):
    """The fresh CPU CNN: no flattening (its own text), SGD's rule with weight decay, label smoothing."""
    at = open_page("zh", wt_source="fresh:cpu_cnn", wt_batch_size=8)
    assert not at.exception, at.exception
    assert MODELS["cpu_cnn"].text("title", "zh") in at.selectbox(key="wt_source").format_func("fresh:cpu_cnn")
    click_through(at, chinese_page_checks)
    assert "Nesterov" in "\n".join(m.value for m in at.markdown)          # step 9: SGD's rule written out


def test_a_runs_checkpoint_in_chinese(synthetic_dataset):
    from core import settings
    from core.runs.store import RunStore
    from core.runs.worker import run_stored
    from core.train.config import TrainConfig

    store = RunStore(settings.runs_dir())
    run = store.create_run(TrainConfig.smoke(epochs=1, train_subset=256, batch_size=32), name="检查点")
    assert run_stored(store, run.id).status == "completed"
    at = open_page("zh", wt_source=f"run:{run.id}")
    assert not at.exception, at.exception
    label = at.selectbox(key="wt_source").format_func(f"run:{run.id}")
    assert "检查点" in label and i18n.t("walkthrough.status.completed", "zh") in label
    click_through(at, chinese_page_checks)
    assert "(第 9 步)" in "\n".join(m.value for m in at.markdown)       # Adam's memory: its 9th step


def test_a_batch_past_the_end_is_explained_in_chinese(synthetic_dataset):
    at = open_page("zh", wt_batch_size=64, wt_batch=1000)
    assert not at.exception
    (error,) = at.error
    assert "batch 编号必须在 0 到" in error.value and not english_leftovers(at)


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_every_chart_and_picture_has_a_caption(lang, synthetic_dataset):
    at = open_page(lang)
    seen = {"plotly_chart": 0, "image": 0}

    def check(at: AppTest, step) -> None:
        assert not uncaptioned(at), f"step {step.number} ({lang}): {uncaptioned(at)}"
        seen["plotly_chart"] += len(at.get("plotly_chart"))
        seen["image"] += len(at.get("image"))

    click_through(at, check)
    assert seen["plotly_chart"] >= 5 and seen["image"] >= 5     # the check saw the charts and pictures


def test_the_catalogue_names_every_model_preset_and_status_the_page_can_show():
    """The page builds these keys from ids (f-strings), so the key scan cannot see them."""
    from core.runs.store import STATUSES

    zh = i18n.catalogue("zh")
    for name in MODELS:   # titles from core/train/models.py, translated once (see test_training_form_texts)
        assert f"core.model.{name}.title" in zh
    for name in PRESETS:
        assert f"core.preset.{name}.title" in zh
    for lang in i18n.LANGUAGES:
        for status in STATUSES:
            assert f"walkthrough.status.{status}" in i18n.catalogue(lang)
        for channel in ("red", "green", "blue"):
            assert f"walkthrough.channel.{channel}" in i18n.catalogue(lang)
        for why in ("lower", "zero_lr", "not_lower"):                  # step 9: the same batch after the step
            assert f"walkthrough.step9.{why}" in i18n.catalogue(lang)


@pytest.mark.cifar
@pytest.mark.filterwarnings("ignore::core.data.ChecksumWarning")  # the development copy
def test_cifar_class_names_show_their_chinese(cifar_root, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(cifar_root))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["dataset_kind"] = "cifar10"
    at.session_state["lang"] = "zh"
    at.session_state["wt_step"] = 7
    at.run()
    assert not at.exception, at.exception
    (table,) = at.dataframe
    truth = table.value[i18n.t("walkthrough.table.true", "zh")].tolist()
    assert all(re.fullmatch(r"[a-z]+ \(\w+\)", name) for name in truth), truth       # "cat (猫)"
    assert not english_leftovers(at)
