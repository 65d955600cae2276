"""The Evaluation page in Chinese (and English): every word from the catalogues in its richer states (a
finished run, the misclassified browser, the image dialog, a comparison, the look-inside sections, an
upload), class names as "cat (猫)", and a one-line reading guide under every chart.

Runs are trained in this process by core.engine on a CIFAR-10-format folder of synthetic pictures that
carries CIFAR-10's class names, so the class names are the real ones without needing the real data."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from core import data, i18n
from core.data.dataset import Split
from core.evaluate import history as hist, learned, saliency, upload as core_upload
from core.runs.store import STATUSES, RunStore
from core.train.checkpoints import CHECKPOINT_LABELS
from core.train.config import TrainConfig
from core.train.models import MODELS
from evaluate_fixtures import chart, history_config, open_page, page_constants, png, train_run
from i18n_checks import english_leftovers

K = page_constants()
# the named folder is a CIFAR-10 copy that is not the official one: the loader says so, once
pytestmark = pytest.mark.filterwarnings("ignore::core.data.ChecksumWarning")
LANGS = list(i18n.LANGUAGES)
CJK = re.compile(r"[\u4e00-\u9fff]")
# every chart the page can draw (widget key), in the richest state the tests below open
ALL_CHARTS = ("PER_CLASS_CHART_KEY", "CONFUSION_KEY", "TOPK_CHART_KEY", "MAP_CHART_KEY", "PATTERN_CHART_KEY",
              "COMPARE_CHART_KEY", "UPLOAD_CHART_KEY")
HISTORY_CHARTS = ("per_class", "bar", "confusion", "forgotten")


# ---- runs on CIFAR-10's class names ------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar_named(tmp_path_factory, session_dirs) -> Path:
    """A CIFAR-10-format folder (1,000 training, 500 test images) of the synthetic set's pictures, under
    CIFAR-10's class names: the page treats it as CIFAR-10."""
    synthetic = data.load_synthetic(session_dirs["synthetic"])
    root = tmp_path_factory.mktemp("cifar-named")
    train = Split(synthetic.train.images[:1000], synthetic.train.labels[:1000])
    test = Split(synthetic.test.images[:500], synthetic.test.labels[:500])
    data.write_batch_folder(root, train, test, data.CLASSES)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar_named):
    """Two finished MLP runs: 1 epoch with a validation split, and 3 epochs with the prediction history
    (the newest, so the page opens on it)."""
    dataset = data.load_cifar10(cifar_named, download=False)
    root = tmp_path_factory.mktemp("zh-runs") / "runs"
    store = RunStore(root)
    first = train_run(store, dataset, history_config(dataset="cifar10", epochs=1, val_images=200), "one epoch")
    second = train_run(store, dataset, history_config(dataset="cifar10"), "three epochs", history=True)
    return root, dataset, first.id, second.id


@pytest.fixture
def runs(trained, cifar_named, monkeypatch):
    """A copy of the trained runs in this test's run store, with the page reading the named folder."""
    root, dataset, first, second = trained
    monkeypatch.setenv("CIFAR10_ROOT", str(cifar_named))
    shutil.copytree(root, Path(os.environ["CIFARLAB_RUNS_DIR"]))
    return dataset, first, second


def page(lang: str, **state):
    return open_page(lang=lang, **state)


# ---- what the checks read ----------------------------------------------------------------------
def _children(block) -> list:
    return [block.children[i] for i in sorted(block.children)] if hasattr(block, "children") else []


def charts_without_caption(at) -> list[str]:
    """The chart keys (ids) of charts that are not directly followed by a caption in their container."""
    missing = []

    def walk(block) -> None:
        kids = _children(block)
        for i, node in enumerate(kids):
            if getattr(node, "type", "") == "plotly_chart":
                after = kids[i + 1] if i + 1 < len(kids) else None
                if getattr(after, "type", "") != "caption":
                    missing.append(node.proto.id)
            walk(node)

    walk(at._tree)
    return missing


def captions_under_charts(at) -> list[str]:
    """The caption right under each chart, in page order."""
    found = []

    def walk(block) -> None:
        kids = _children(block)
        for i, node in enumerate(kids):
            if getattr(node, "type", "") == "plotly_chart" and i + 1 < len(kids):
                found.append(str(kids[i + 1].value))
            walk(node)

    walk(at._tree)
    return found


_PLOTLY_FIELD = re.compile(r"%\{[^}]*\}|<[^>]+>")   # plotly's fields and its few HTML tags


def chart_texts(fig: dict) -> list[str]:
    """What a plotly figure writes: title, axis and colour-bar titles, legend names, hover text."""
    layout = fig.get("layout", {})
    texts = [layout.get("title", {}).get("text", "")]
    for name, axis in layout.items():
        if name.startswith(("xaxis", "yaxis")):
            texts.append((axis.get("title") or {}).get("text", ""))
    for trace in fig.get("data", []):
        texts.append(str(trace.get("name", "")))
        texts.append(str(trace.get("hovertemplate", "")))
        texts.append(((trace.get("colorbar") or {}).get("title") or {}).get("text", ""))
    return [_PLOTLY_FIELD.sub(" ", t) for t in texts if t]


def english_in_charts(at) -> list[str]:
    left = []
    for element in at.get("plotly_chart"):
        import json

        for text in chart_texts(json.loads(element.proto.spec)):
            left.extend(m.group(0) for m in re.finditer(r"\b[A-Za-z][a-z]+(?:[ ,'-]+[A-Za-z][a-z]+){3,}\b", text))
    return left


def chart_ids(at) -> list[str]:
    return [el.proto.id for el in at.get("plotly_chart")]


# ---- the tests -----------------------------------------------------------------------------------
def test_every_dynamic_key_of_the_page_is_in_every_catalogue():
    """Keys the page builds at run time (f-strings) that the scan of literal calls cannot see."""
    ui = [f"evaluation.status.{s}" for s in STATUSES]
    ui += [f"evaluation.dataset.{k}" for k in data.KINDS]
    ui += [f"evaluation.checkpoint.{w}" for w in ("best", "last")]
    ui += [f"evaluation.browser.sort_{s}" for s in ("confidence", "loss")]
    ui += [f"evaluation.per_class.col_{c}" for c in ("precision", "recall", "f1")]
    ui += [f"evaluation.saliency.{role}" for role in ("predicted", "true")]
    core = [f"evaluate.checkpoint.{w}_{'val' if v else 'noval'}" for w, v in CHECKPOINT_LABELS]
    core += [f"model.{m}.title" for m in MODELS]   # translated once, with the models (core/train/models.py)
    core += [f"evaluate.history_filter.{f}" for f in hist.HISTORY_FILTERS]
    core += [f"evaluate.learned.order.{o}" for o in learned.UNIT_ORDERS]
    core += [f"evaluate.learned.{name.removeprefix('HOW_TO_READ_').lower()}" for name in vars(learned)
             if name.startswith("HOW_TO_READ_")]
    core += [f"evaluate.saliency.layer.{layer}" for layer in saliency.LAYERS]
    core += [f"evaluate.saliency.method.{m}" for m in ("grad-cam", "layercam", "gradient_x_input", "smoothgrad")]
    core += [f"evaluate.upload.{kind}" for kind in core_upload.UPLOAD_ERROR_KINDS]
    for lang in LANGS:
        assert not [k for k in ui if k not in i18n.catalogue(lang)], lang
    assert not [k for k in core if f"core.{k}" not in i18n.catalogue("zh")]


def test_a_finished_run_in_chinese_shows_no_english_and_chinese_class_names(runs):
    dataset, first, second = runs
    at = page("zh")
    assert at.title[0].value == i18n.t("evaluation.page.title", "zh")
    assert english_leftovers(at) == []
    assert english_in_charts(at) == []
    zh_names = [i18n.class_name(c, "zh") for c in dataset.classes]
    assert "cat (猫)" in zh_names
    heat = chart(at, K["CONFUSION_KEY"])
    assert heat["data"][0]["x"] == zh_names and heat["data"][0]["y"] == zh_names
    assert heat["layout"]["xaxis"]["title"]["text"] == "预测类别"
    assert sorted(chart(at, K["PER_CLASS_CHART_KEY"])["data"][0]["x"]) == sorted(zh_names)
    assert list(at.dataframe[0].value["class"]) == zh_names
    true_filter = at.selectbox(key=K["TRUE_KEY"])
    assert true_filter.options == [i18n.t("evaluation.browser.any_class", "zh"), *zh_names]
    assert true_filter.value == -1                              # the values stay class ids
    assert {m.label for m in at.metric} >= {"测试集准确率", "模型", "数据集"}
    assert any(m.value == "教程 MLP" for m in at.metric)        # the model's title, not its id
    assert not at.selectbox(key=K["RUN_KEY"]).options[0].isascii()   # '#2 three epochs · 已完成 · CIFAR-10'


@pytest.mark.parametrize("lang", LANGS)
def test_every_chart_has_a_caption_under_it_in_the_richest_state(runs, lang):
    """The browser filtered, an image open with its saliency maps, the feature map, the learned units and
    class patterns, the numpy replay, a comparison and an upload with its saliency maps, all at once."""
    dataset, first, second = runs
    at = page(lang, **{K["LEARNED_SHOW_KEY"]: True, K["COMPARE_KEY"]: first, K["SORT_KEY"]: "loss"})
    at.button(key=K["MAP_BUTTON_KEY"]).click().run()
    at.button(key=K["PATTERN_BUTTON_KEY"]).click().run()
    at.button(key=K["REPLAY_KEY"]).click().run()
    at.file_uploader(key=K["UPLOAD_KEY"]).set_value(("photo.png", png(), "image/png")).run()
    at.toggle(key="upload_" + K["SHOW_KEY"]).set_value(True).run()
    show = [b for b in at.button if b.key and b.key.startswith(K["INSPECT_PREFIX"])]
    show[0].click().run()
    at.toggle(key=K["SHOW_KEY"]).set_value(True).run()
    assert not at.exception, at.exception

    ids = " ".join(chart_ids(at))
    assert all(K[name] in ids for name in ALL_CHARTS), ids
    assert all(f"{K['HISTORY_PREFIX']}_{c}" in ids for c in HISTORY_CHARTS), ids
    assert charts_without_caption(at) == []
    under = captions_under_charts(at)
    assert len(under) == len(chart_ids(at)) == len(ALL_CHARTS) + len(HISTORY_CHARTS)
    assert i18n.t("evaluation.confusion.caption_counts", lang) in under
    # the picture grids: misclassified thumbnails, saliency maps, units, class patterns
    captions = [c.value for c in at.caption]
    for key in ("evaluation.browser.grid_caption", "evaluation.learned.norm_caption"):
        assert i18n.t(key, lang) in captions
    assert i18n.core_text("evaluate.saliency.how_to_read", saliency.HOW_TO_READ, lang) in captions
    assert any(c.startswith(i18n.t("evaluation.learned.patterns_caption", lang, steps=learned.ASCENT_STEPS))
               for c in captions)
    if lang == "zh":
        assert all(CJK.search(c) for c in under)
        assert english_leftovers(at) == [], english_leftovers(at)
        assert english_in_charts(at) == [], english_in_charts(at)
        images = [c for img in at.image for c in img.captions]
        assert any(c.startswith("预测类别：") for c in images) and any(c.startswith("真实类别：") for c in images)
        assert any(" (" in c and "→" in c for c in images)       # thumbnails name classes as 'cat (猫)'


@pytest.mark.parametrize("lang, card", [("en", r"Loss: ([\d.]+) = −ln ([\d.e-]+)"),
                                        ("zh", r"损失：([\d.]+) = −ln ([\d.e-]+)")])
def test_the_image_dialog_says_the_loss_is_minus_ln_of_the_true_class_probability(runs, lang, card):
    at = page(lang, **{K["SORT_KEY"]: "loss"})
    show = [b for b in at.button if b.key and b.key.startswith(K["INSPECT_PREFIX"])]
    show[0].click().run()
    assert not at.exception
    loss, p_true = (float(v) for v in next(re.search(card, m.value) for m in at.markdown
                                           if re.search(card, m.value)).groups())
    assert loss == pytest.approx(-np.log(p_true), abs=1.5e-3)
    explained = i18n.t("evaluation.dialog.loss_caption", lang)
    assert "−ln" in explained and "2.303" in explained and explained in [c.value for c in at.caption]
    assert chart(at, K["TOPK_CHART_KEY"])["layout"]["xaxis"]["title"]["text"] == i18n.t("evaluation.fig.probability",
                                                                                        lang)
    if lang == "zh":
        assert english_leftovers(at) == []


def test_the_browser_filtered_in_chinese_names_classes_in_both_languages(runs):
    dataset, first, second = runs
    at = page("zh")
    at.selectbox(key=K["TRUE_KEY"]).set_value(3).run()               # cat
    at.selectbox(key=K["HISTORY_FILTER_KEY"]).set_value("never").run()
    assert not at.exception
    thumbs = [c for img in at.image for c in img.captions if "→" in c]
    assert thumbs and all(c.startswith("cat (猫) →") for c in thumbs)
    assert at.selectbox(key=K["HISTORY_FILTER_KEY"]).options[2] == "从没学会"
    assert english_leftovers(at) == []


def test_the_learned_section_of_a_conv_net_in_chinese(tmp_path_factory, cifar_named, monkeypatch):
    """The whitening filters, the activation maps, the class patterns and the saliency layer choice."""
    dataset = data.load_cifar10(cifar_named, download=False)
    monkeypatch.setenv("CIFAR10_ROOT", str(cifar_named))
    cfg = TrainConfig.smoke(dataset="cifar10", model="cpu_cnn", whiten_init=True, train_subset=1000,
                            test_subset=None, batch_size=100, lr=2e-3)
    train_run(RunStore(), dataset, cfg, "small cnn")
    at = page("zh", **{K["LEARNED_SHOW_KEY"]: True, K["SORT_KEY"]: "loss"})
    at.button(key=K["PATTERN_BUTTON_KEY"]).click().run()
    show = [b for b in at.button if b.key and b.key.startswith(K["INSPECT_PREFIX"])]
    show[0].click().run()
    at.toggle(key=K["SHOW_KEY"]).set_value(True).run()
    assert not at.exception, at.exception
    assert at.radio(key=K["LAYER_KEY"]).options == ["Grad-CAM，最后一个卷积组", "LayerCAM，前一个卷积组（更细）"]
    assert any(c.value.startswith("**第 1 组**") for c in at.caption)
    assert K["VARIANCE_CHART_KEY"] in " ".join(chart_ids(at))
    assert charts_without_caption(at) == []
    assert english_leftovers(at) == [], english_leftovers(at)
    assert english_in_charts(at) == [], english_in_charts(at)


def test_a_bad_upload_is_explained_in_chinese(runs):
    at = page("zh")
    at.file_uploader(key=K["UPLOAD_KEY"]).set_value(("notes.png", b"not an image\n" * 10, "image/png")).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["notes.png: 这个文件不是 PNG 或 JPEG 图片。"]
    assert english_leftovers(at) == []


def test_upload_messages_read_the_same_numbers_in_both_languages():
    big = png() + b"\0" * 2000
    with pytest.raises(core_upload.UploadError) as caught:
        core_upload.image_from_bytes(big, max_bytes=1000)
    error = caught.value
    assert str(error) == error.text("en") == f"The file is {len(big):,} bytes; images up to 0.000953674 MB (1,000 bytes) are accepted."
    assert error.text("zh") == f"文件有 {len(big):,} 字节；只接受最大 0.000953674 MB（1,000 字节）的图片。"
    assert core_upload.limits_text("zh").startswith("PNG 或 JPEG，最大 5 MB（5,242,880 字节）")
