"""The Training page's form side in Streamlit's AppTest: what a preset is for and what it changes
from the tutorial, the model in plain words with its real parameter count, the epochs / batches /
steps line, and the form, the learning-rate finder and sweeps in Chinese."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import data, i18n
from core.runs import jobs
from core.runs.store import RunStore
from core.runs.sweep import parse_axis, start_sweep
from core.train.config import (PRESETS, TrainConfig, changes_from_tutorial, epoch_plan, field_spec,
                               unused_settings)
from core.train.device import usable_devices
from core.train.engine import fit
from core.train.lr_finder import SUGGESTION_RULE, run_to_file
from core.train.models import MODELS, build_model
from dashboard import sweep_panel
from dashboard.config_form import field_key, form_fields
from dashboard.training_keys import FINDER_JOB
from tests.i18n_checks import english_leftovers

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "training.py")
WIDGET = {"choice": "selectbox", "bool": "checkbox", "int": "number_input", "float": "number_input",
          "optional_int": "number_input", "text": "text_input"}
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def page(lang: str = "en", kind: str = "synthetic", **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["dataset_kind"] = kind
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def widget(at: AppTest, name: str):
    return getattr(at, WIDGET[field_spec(name).kind])(key=field_key(name))


def form_column(at: AppTest):
    """The page's left column: the preset, the model, the form, the finder and the sweep form."""
    return at.columns[0]


def expander(at, starts: str):
    (found,) = [e for e in at.expander if e.label.startswith(starts)]
    return found


# ---- oracles: the words the form should show, from core's own descriptions -----------------------

def shown_label(spec) -> str:
    return f"{spec.label} (0 = {spec.none_means})" if spec.kind == "optional_int" else spec.label


def shown_value(spec, value) -> str:
    if spec.kind == "choice":
        return spec.choice_label(value)
    if spec.kind == "bool":
        return "on" if value else "off"
    return spec.show(value)


# ---- presets ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_says_what_it_is_for_and_what_it_changes_from_the_tutorial(name):
    at = page()
    assert at.selectbox(key="train_preset").value == "tutorial_mlp"          # the tutorial's recipe is the default
    at.selectbox(key="train_preset").set_value(name).run()
    assert not at.exception, at.exception
    preset = PRESETS[name]
    assert preset.purpose in [m.value for m in at.markdown]
    changes = expander(at, "What this preset changes from the tutorial")
    expected = [(shown_label(spec), shown_value(spec, old), shown_value(spec, new))
                for spec, old, new in changes_from_tutorial(preset.config)]
    if name == "tutorial_mlp":
        assert expected == [] and changes.label.endswith(": nothing") and not changes.table
        assert any(c.value.startswith("No changes: this is the tutorial's own recipe") for c in changes.caption)
    else:
        (table,) = changes.table
        rows = [tuple(row) for row in table.value.itertuples(index=False)]
        assert rows == expected and len(rows) >= 5 and changes.label.endswith(f"({len(rows)} settings)")
        assert list(table.value.columns) == ["Setting", "Tutorial", "This preset"]
        off = {shown_label(field_spec(n)) for n in unused_settings(preset.config)}
        assert not off & {row[0] for row in rows}                             # settings that are off are not listed
    # the jargon is still there, as the details line under the table
    assert any(c.value == f"**Details:** {preset.description}" for c in changes.caption)


def test_settings_that_are_off_are_left_out_of_the_table():
    rows = {spec.name for spec, _, _ in changes_from_tutorial(PRESETS["cpu_cnn"].config)}
    assert "ema_decay" in unused_settings(PRESETS["cpu_cnn"].config) and "ema_decay" not in rows
    at = page()
    at.selectbox(key="train_preset").set_value("cpu_cnn").run()
    labels = expander(at, "What this preset changes").table[0].value["Setting"].tolist()
    assert "EMA decay" not in labels and "Crop padding" in labels and "Model" in labels


# ---- the model ----------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_the_model_select_shows_titles_not_ids_in_each_language(lang):
    at = page(lang)
    model = at.selectbox(key="train_model")
    assert model.options == [MODELS[name].text("title", lang) for name in MODELS]
    assert not set(MODELS) & set(model.options) and model.value == "tutorial_mlp"
    assert all(CHINESE.search(o) for o in model.options) == (lang == "zh")


@pytest.mark.parametrize("name", list(MODELS))
def test_the_chosen_model_is_described_with_its_real_parameter_count(name):
    at = page()
    at.selectbox(key="train_model").set_value(name).run()
    assert not at.exception, at.exception
    count = sum(p.numel() for p in build_model(name).parameters())
    (line,) = [c.value for c in at.caption if MODELS[name].description in c.value]
    assert line.startswith(f"**{count:,} parameters**")
    why = expander(at, "Why the CNN sees more than the MLP")
    sizes = dict(why.table[0].value.itertuples(index=False))
    assert sizes == {MODELS[n].title: f"{sum(p.numel() for p in build_model(n).parameters()):,}" for n in MODELS}
    shares = why.markdown[0].value
    assert "the same small filter" in shares and "one weight per pixel value" in shares
    assert f"{sum(p.numel() for p in build_model('tutorial_mlp').parameters()):,}" in shares
    assert any(c.value == f"**Details:** {MODELS[name].details}" for c in why.caption)


def test_a_model_chosen_above_the_form_reaches_the_run(monkeypatch):
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: os.getpid())  # no trainer process
    at = page()
    at.selectbox(key="train_model").set_value("cpu_cnn").run()
    widget(at, "epochs").set_value(1)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (run,) = RunStore().list_runs()
    assert run.config.model == "cpu_cnn" and run.config.preset == "tutorial_mlp" and run.config.epochs == 1


# ---- epochs, batches and steps ------------------------------------------------------------------

def _plan_line(at: AppTest) -> str:
    (line,) = [c.value for c in at.caption if "steps per epoch" in c.value]
    return line


@pytest.mark.parametrize("name", list(PRESETS))
def test_the_steps_line_counts_this_presets_batches_on_the_chosen_data(name, synthetic_dataset):
    at = page()
    at.selectbox(key="train_preset").set_value(name).run()
    cfg, images = PRESETS[name].config, len(synthetic_dataset.train)
    steps, left = divmod(images, cfg.batch_size)
    line = _plan_line(at)
    assert line.startswith(f"**batch {cfg.batch_size:,} → {steps:,} steps per epoch × {cfg.epochs:,} epochs** "
                           f"({steps * cfg.epochs:,} steps) over {images:,} training images")
    assert (f"; {left:,} images per epoch are left over" in line) == (left > 0)


def test_the_steps_line_on_real_cifar10_is_the_tutorials_count(cifar_root):
    images = len(data.load_dataset("cifar10", cifar_root).train)     # 50,000, or 40,000 in the development split
    at = page(kind="cifar10")
    assert not at.exception, at.exception
    assert _plan_line(at) == (f"**batch 16 → {images // 16:,} steps per epoch × 10 epochs** "
                              f"({images // 16 * 10:,} steps) over {images:,} training images")


@pytest.mark.parametrize("changes", [dict(train_subset=None, val_images=0, batch_size=512),
                                     dict(train_subset=None, val_images=1000, batch_size=96),
                                     dict(train_subset=300, val_images=0, batch_size=64),
                                     dict(train_subset=3000, val_images=2500, batch_size=128)])
def test_the_plan_counts_steps_as_the_engine_does(changes, synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(**changes)
    seen = []
    fit(cfg, synthetic_dataset, tmp_path / "run", on_start=seen.append, should_stop=lambda: True)
    plan = epoch_plan(cfg, len(synthetic_dataset.train))
    assert (plan.steps_per_epoch, plan.images, plan.total_steps) == (
        seen[0].steps_per_epoch, seen[0].train_images, seen[0].total_steps)
    assert plan.left_over == plan.images - plan.steps_per_epoch * cfg.batch_size
    assert plan.held_out == cfg.val_images and plan.subset == (cfg.train_subset is not None
                                                               and cfg.train_subset < 5000 - cfg.val_images)


def _plan_script(lang: str, val_images: int, train_subset: int | None) -> None:
    import streamlit as st

    from core.train.config import PRESETS, epoch_plan
    from dashboard.config_form import plan_text

    st.session_state["lang"] = lang
    cfg = PRESETS["fast_mlp"].config.replace(val_images=val_images, train_subset=train_subset)
    st.markdown(plan_text(epoch_plan(cfg, 5000)))


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "**batch 512 → 5 steps per epoch × 6 epochs** (30 steps) over the first 3,000 of 4,000 training images; "
           "1,000 more are held out for validation; 440 images per epoch are left over (less than a batch) and "
           "skipped, a different 440 each epoch"),
    ("zh", "**batchsize 512 → 每个 epoch 5 个 step × 6 个 epoch**（共 30 个 step），只用训练集 4,000 张中的前 3,000 张"
           "；另有 1,000 张留作验证集；每个 epoch 最后剩下 440 张，不够一个 batch，跳过（每次打乱后是不同的 440 张）"),
])
def test_the_steps_line_names_the_validation_split_the_subset_and_the_images_left_over(lang, expected):
    at = AppTest.from_function(_plan_script, args=(lang, 1000, 3000)).run()
    assert not at.exception, at.exception
    assert at.markdown[0].value == expected


def test_a_batch_larger_than_the_images_says_so():
    at = AppTest.from_function(_plan_script, args=("en", 4800, None)).run()     # 200 images left, batch 512
    assert at.markdown[0].value == "**batch 512** is more than the 200 training images: not even one step per epoch."


# ---- the form in Chinese ------------------------------------------------------------------------

def _zh_label(spec) -> str:
    label = spec.text("label", "zh")
    return f"{label}（0 = {spec.text('none_means', 'zh')}）" if spec.kind == "optional_int" else label


def test_the_form_speaks_chinese():
    at = page("zh")
    assert not at.exception, at.exception
    assert at.title[0].value == "训练"
    for spec in form_fields():
        drawn = widget(at, spec.name)
        assert drawn.label == _zh_label(spec) and CHINESE.search(drawn.label), spec.name
        assert drawn.help.startswith(spec.text("help", "zh")) and f"命令行：`{spec.flag}`" in drawn.help
        if spec.kind == "choice":
            values = usable_devices() if spec.name == "device" else spec.choices
            assert drawn.options == [spec.choice_title(v, "zh") for v in values]
    assert at.button(key="train_start").label == "开始训练" and at.button(key="train_find_lr").label == "寻找学习率"
    assert {e.label for e in at.expander} >= {"更多设置", "为什么 CNN 比 MLP 看得更多", "这个预设相对教程改了什么：没有改动",
                                              "参数扫描：每种设置组合各训练一次"}
    assert "**模型与数据**" in [c.value for c in at.caption]                 # a group's name under More settings
    purpose = PRESETS["tutorial_mlp"].text("purpose", "zh")
    assert purpose in [m.value for m in at.markdown] and purpose != PRESETS["tutorial_mlp"].purpose
    assert _plan_line_zh(at).startswith("**batchsize 16 → 每个 epoch 312 个 step × 10 个 epoch**")
    assert english_leftovers(form_column(at)) == []
    assert english_leftovers(at) == []


def _plan_line_zh(at: AppTest) -> str:
    (line,) = [c.value for c in at.caption if "个 step" in c.value and "batchsize" in c.value]
    return line


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_reads_in_chinese(name):
    at = page("zh")
    at.selectbox(key="train_preset").set_value(name).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="train_preset").options == [p.text("title", "zh") for p in PRESETS.values()]
    changes = expander(at, "这个预设相对教程改了什么")
    if changes.table:
        assert list(changes.table[0].value.columns) == ["设置", "教程", "这个预设"]
        assert all(CHINESE.search(label) for label in changes.table[0].value["设置"])
    assert english_leftovers(form_column(at)) == []


def test_an_invalid_value_is_explained_in_chinese():
    at = page("zh")
    widget(at, "lr").set_value(0.0)
    at.button(key="train_start").click().run()
    assert not at.exception
    assert [e.value.replace("\\", "") for e in at.error] == ["**学习率**：必须大于 0，当前为 0"]
    widget(at, "lr").set_value(1e-3)
    widget(at, "train_subset").set_value(10)
    at.button(key="train_start").click().run()
    assert [e.value.replace("\\", "") for e in at.error] == ["**batchsize（每批图片数）**：不能超过训练图片数（10），当前为 16"]
    assert RunStore().list_runs() == []


# ---- the learning-rate finder in Chinese --------------------------------------------------------

@pytest.fixture(scope="module")
def finder_file(tmp_path_factory, synthetic_dataset) -> Path:
    """A real finished search (the tutorial MLP, Adam, batch 64, 80 steps on the demo set)."""
    path = tmp_path_factory.mktemp("finder") / "finder.json"
    run_to_file(TrainConfig.smoke(batch_size=64, train_subset=None), synthetic_dataset, path, max_steps=80)
    return path


def finder_page(path: Path, lang: str) -> AppTest:
    job = {"pid": 0, "path": str(path), "batch_size": 64, "optimizer": "adam", "model": "tutorial_mlp"}
    return page(lang, **{FINDER_JOB: job})   # pid 0: no process, so the page draws the stored result


def _chart(at: AppTest, title: str) -> dict:
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    (spec,) = [s for s in specs if s["layout"]["title"]["text"] == title]
    return spec


def test_a_finished_learning_rate_search_reads_in_chinese(finder_file):
    state = json.loads(finder_file.read_text())
    assert state["status"] == "done" and state["suggestion"]
    at = finder_page(finder_file, "zh")
    assert not at.exception, at.exception
    chart = _chart(at, "学习率寻找")
    assert chart["layout"]["xaxis"]["title"]["text"] == "学习率" and chart["layout"]["yaxis"]["title"]["text"] == "训练损失"
    assert [t["name"] for t in chart["data"]] == ["损失（每个 step）", "损失（平滑后）"]
    assert chart["layout"]["annotations"][0]["text"] == f"建议 {state['suggestion']:.3g}"
    assert all(CHINESE.search(t["hovertemplate"]) for t in chart["data"])
    (summary,) = [c.value for c in at.caption if "没有保存任何东西" in c.value]
    assert i18n.t("core.lr_finder.rule", "zh") in summary and "教程 MLP" in summary and "batchsize 64" in summary
    assert at.button(key="train_use_lr").label == f"使用这个学习率（{state['suggestion']:.3g}）"
    assert english_leftovers(form_column(at)) == []

    english = finder_page(finder_file, "en")
    assert _chart(english, "Learning-rate finder")["layout"]["xaxis"]["title"]["text"] == "learning rate"
    assert any(SUGGESTION_RULE in c.value and "Tutorial MLP, Adam, batch 64" in c.value for c in english.caption)


def test_a_search_without_suggestion_or_that_failed_reads_in_chinese(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"status": "done", "lrs": [1e-7, 1e-6], "losses": [2.3, 2.3], "smoothed": [2.3, 2.3],
                                "suggestion": None, "ended": "end of range", "seconds": 1.0}))
    at = finder_page(flat, "zh")
    assert [w.value for w in at.warning] == [i18n.t("training.lr_finder.no_suggestion", "zh")]
    assert any("学习率升到了终点" in c.value for c in at.caption)
    assert english_leftovers(form_column(at)) == []
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"status": "failed", "message": "RuntimeError: out of memory"}))
    at = finder_page(failed, "zh")
    assert [e.value for e in at.error] == ["学习率寻找失败：RuntimeError\\: out of memory"]


# ---- a finished sweep in Chinese ----------------------------------------------------------------

@pytest.fixture
def queue_store(monkeypatch) -> RunStore:
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "1")
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: os.getpid())  # no trainer processes
    return RunStore()


def _finish(store: RunStore, runs, finals: dict) -> None:
    """The runs complete in turn with known accuracies (this process stands in for their trainers)."""
    for run in runs:
        while store.get(run.id).waiting:
            store.claim_next(1, lambda r, held: "cpu")
        store.mark_running(run.id, pid=os.getpid(), device="cpu")
        acc = finals[(run.config.seed, run.config.lr)]
        store.log_metrics(run.id, [(8, 1, "epoch_test_acc", acc - 0.1), (16, 2, "epoch_test_acc", acc)])
        store.mark_finished(run.id, "completed", "ok", best_test_acc=acc, final_test_acc=acc)


def sweep_block(at: AppTest):
    """The sweep section (sweep_panel.view draws it in one container)."""
    (block,) = [b for b in at.main.children.values()
                if hasattr(b, "subheader") and any(s.value in ("Sweeps", "参数扫描") for s in b.subheader)
                and b is not at.main]
    return block


def test_the_sweep_form_starts_a_sweep_in_chinese_and_its_view_reads_in_chinese(queue_store):
    at = page("zh")
    assert at.button(key=sweep_panel.START).label == "开始扫描"
    first_three = [_zh_label(field_spec(n)) for n in ("model", "train_subset", "val_images")]
    assert at.selectbox(key=sweep_panel.FIRST).options[:3] == first_three
    assert at.selectbox(key=sweep_panel.SECOND).options[0] == "（无）"
    at.selectbox(key=sweep_panel.FIRST).set_value("seed")
    at.text_input(key=sweep_panel.FIRST_VALUES).input("0, 1")
    at.selectbox(key=sweep_panel.SECOND).set_value("lr")
    at.text_input(key=sweep_panel.SECOND_VALUES).input("1e-3, 2e-3")
    at.text_input(key=sweep_panel.FIXED).input("epochs=2, train_subset=512, test_subset=256, batch_size=64, device=cpu")
    at.text_input(key=sweep_panel.NAME).input("seeds x lr")
    at.button(key=sweep_panel.START).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value.replace("\\", "") for s in at.success][0].startswith(
        "已开始扫描 #1 seeds x lr，共 4 个运行（1 个在训练，3 个在队列中等待）")
    (sweep,) = queue_store.sweeps()
    _finish(queue_store, queue_store.sweep_runs(sweep.id), {(0, 1e-3): 0.40, (1, 1e-3): 0.44, (0, 2e-3): 0.50,
                                                           (1, 2e-3): 0.56})
    at.run()
    assert not at.exception, at.exception
    block = sweep_block(at)
    table = block.dataframe[0].value
    assert list(table.columns) == ["设置", "随机种子", "已完成", "最终测试准确率 (%)", "best.pt 测试准确率 (%)",
                                   "best.pt 的选择依据", "最佳设置"]
    assert table["最终测试准确率 (%)"].tolist() == ["42.00 ± 2.83", "53.00 ± 4.24"] and table["最佳设置"].tolist() == ["", "★"]
    assert table["best.pt 的选择依据"].tolist() == ["没有验证集", "没有验证集"]
    assert block.selectbox(key=sweep_panel.PICK).options == ["扫描 #1 seeds x lr"]
    (axes,) = [c.value.replace("\\", "") for c in block.caption if " · 运行：" in c.value]
    assert axes == "快速 MLP（同一网络，更好的训练方法）：随机种子 = 0, 1 × 学习率 = 0.001, 0.002 · 运行：4 个已完成"
    chart = _chart(at, "每个 epoch 的测试准确率：每种设置一种颜色，每个随机种子一条线")
    assert chart["layout"]["xaxis"]["title"]["text"] == "epoch"
    assert chart["layout"]["yaxis"]["title"]["text"] == "准确率 (%)"
    assert {t["name"] for t in chart["data"]} == {f"lr={lr} · 种子 {s}" for lr in ("0.001", "0.002") for s in (0, 1)}
    assert english_leftovers(block) == [] and english_leftovers(form_column(at)) == []


def test_a_sweep_of_seeds_only_names_its_row_in_the_chosen_language(queue_store):
    sweep, runs = start_sweep(queue_store, "fast_mlp", [parse_axis("seed=0,1")], name="seeds",
                              dataset="synthetic", epochs=2, train_subset=512, test_subset=256, batch_size=64)
    _finish(queue_store, runs, {(0, 2e-3): 0.5, (1, 2e-3): 0.52})
    for lang, words in (("en", "all runs"), ("zh", "全部运行")):
        block = sweep_block(page(lang))
        assert block.dataframe[0].value.iloc[0, 0] == words
