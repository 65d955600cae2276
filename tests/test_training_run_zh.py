"""The Training page's run side in Chinese (AppTest): every state it can be in (a finished run with
its comparison and every expander, a run training with changes asked, a run waiting in the queue)
shows no English sentence, and the charts' titles, axes, legends, hover text and notes are Chinese."""
from __future__ import annotations

import os

import pytest

from core.i18n import catalogue, t
from core.runs import jobs
from core.runs.progress import PHASES, phase_row
from core.runs.store import RunStore
from core.train.config import TrainConfig
from dashboard import live_feed, run_panel
from dashboard.figures import training as ft
from dashboard.training_keys import ALL_SETTINGS, COMPARE
from tests.i18n_checks import english_in_charts, english_leftovers
from tests.run_checks import live_views, progress_shown
from tests.test_training_run_page import page, stored_run

ALLOWED = frozenset({"EMA", "pts"})   # the tutorial's own Latin words, and units


@pytest.fixture
def store(stand_in_store):
    return stand_in_store


def chart_words(at) -> list[str]:
    """English words in the charts' own text, apart from the Latin words the tutorial keeps, the
    units and the runs' own names."""
    names = frozenset(f"#{r.id} {r.name}" for r in RunStore().list_runs())
    return english_in_charts(at, allowed=ALLOWED, skip_names=names)


def test_a_finished_run_with_its_comparison_speaks_chinese(store):
    first = stored_run(store, "甲", [(0.30, 0.33), (0.45, 0.44), (0.55, 0.48), (0.64, 0.50)], label_smoothing=0.2,
                       schedule="onecycle", warmup=0.2)
    second = stored_run(store, "乙", [(0.35, 0.38), (0.45, 0.44)], augment=True, batch_size=32)
    for axis in ft.COMPARE_AXES:   # set before the page runs (a second run would ask the widgets'
        # format functions outside the page, in English)
        at = page("zh", selected=first, **{COMPARE: [first, second], ALL_SETTINGS: True, run_panel.COMPARE_X: axis})
        assert english_leftovers(at) == []
        assert chart_words(at) == []
    assert any("过拟合" in w.value for w in at.warning)                          # the gap is flagged, in Chinese
    ((percent, progress),) = progress_shown(at)
    assert percent == 100
    assert progress.startswith("已完成 · epoch 4/4 · step 32/32")
    assert [m.label for m in at.metric][:3] == ["Epoch", "Step", "图片/秒"]
    table = at.dataframe[0].value
    assert table.loc[0, "状态"] == "已完成" and "测试准确率 (%)" in table.columns
    diff = at.dataframe[1].value
    assert diff.loc["crop_padding", f"#{first} 甲"] == "未启用（augment 关闭）"


def test_a_training_run_with_changes_speaks_chinese(store):
    run_id = stored_run(store, "训练中", [(0.30, 0.34)], finish=False, epochs=3)
    store.log_metrics(run_id, [(8, 2, phase_row("training"), 1.0), (10, 2, "train_loss", 1.5)])
    applied = store.request_control(run_id, "lr_factor", 0.5)
    store.mark_event_applied(applied.id, step=10, epoch=2)
    store.request_control(run_id, "stop_at_epoch_end")
    at = page("zh")
    assert english_leftovers(at) == [] and chart_words(at) == []
    assert progress_shown(at)[0][1].startswith("训练中 · epoch 2/3 · step 10/24")
    (live,) = live_views(at)
    assert live["view"]["now"]["badge"] == "正在进行" and live["view"]["now"]["text"].startswith("**第 1–9 步：训练循环。**")
    assert [e["text"] for e in live["view"]["loss"]["events"]] == ["学习率 × 0.5"]
    assert live["words"] == live_feed.loss_words("zh") and live["words"]["raw"] != live_feed.loss_words("en")["raw"]
    events = at.dataframe[0].value
    assert events["修改"].tolist() == ["学习率 × 0.5", "本 epoch 结束后停止"]
    assert events["生效位置"].tolist() == ["第 10 个 step 之后（第 2 个 epoch）", "等待训练程序执行"]
    assert any(c.value.startswith("训练中的修改：lr 0.001 → 0.0005（第 10 个 step）") for c in at.caption)


def test_a_run_waiting_in_the_queue_speaks_chinese(store, monkeypatch):
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "1")
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: os.getpid())   # no trainer processes
    jobs.start_run(store, TrainConfig.smoke(), name="先")
    waiting = jobs.start_run(store, TrainConfig.smoke(), name="后")
    at = page("zh", selected=waiting.id)
    assert english_leftovers(at) == []
    assert "**排队等待：第 1 位**（下一个就是它）" in "\n".join(m.value for m in at.markdown)
    assert at.dataframe[0].value.set_index("运行").loc[waiting.id, "状态"] == "排队中（第 1 位）"


def test_every_word_the_run_side_builds_from_a_name_is_in_both_catalogues():
    """Keys made at run time (a status, a phase, an axis...) exist in every language."""
    names = [f"training.run.status.{s}" for s in ft.STATUSES]
    names += [f"training.run.steps.now_{p}" for p in (*PHASES, "running")]
    names += [f"training.run.steps.{p}_{part}" for p in ("testing", "saving") for part in ("name", "text")]
    names += [f"training.run.compare.{group}.{axis}" for group in ("axis_option", "axis_title", "reading")
              for axis in ft.COMPARE_AXES]
    names += [f"training.run.compare.table.{c}" for c in ("run", "test_acc", "epochs", "images", "wall_time", "speed")]
    names += [f"training.run.table.{c}" for c in ft.RUNS_COLUMNS]
    names += [f"training.run.schedules.{s}" for s in ("constant", "onecycle", "linear_decay", "cosine")]
    names += [f"training.run.chart.{c}" for c in ("loss_title", "acc_title", "lr_title", "train_acc", "test_acc",
                                                  "val_acc")]
    names += [f"training.run.events.col_{c}" for c in ("change", "asked", "applied", "note")]
    names += [f"training.run.controls.{f}" for f in ("lr_factor", "lr", "epochs")]
    for lang in ("en", "zh"):
        assert [n for n in names if n not in catalogue(lang)] == [], lang
    assert t("training.run.status.completed", "zh") == "已完成"
