"""The "One batch, step by step" page in AppTest: every step renders, its numbers are core's
(core.train.walkthrough on the same batch), and a run's checkpoint can be walked."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.train.config import PRESETS
from core.train.walkthrough import STEPS, channel_stats, epoch_counts, pick_batch, walk_batch, walkthrough_model

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "dashboard" / "views" / "walkthrough.py")
TIMEOUT = 90


def open_page(**state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["dataset_kind"] = "synthetic"
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def text(at: AppTest) -> str:
    return "\n".join(m.value for m in [*at.markdown, *at.caption, *at.subheader, *at.info, *at.error])


def table_with(at: AppTest, column: str):
    """The one table on the page that has this column."""
    (table,) = [t for t in at.dataframe if column in t.value.columns]
    return table.value


def expected_walk(dataset, batch_size=16, batch=0, seed=0):
    images, labels, _ = pick_batch(dataset.train, batch_size=batch_size, batch=batch, seed=seed)
    model, optimizer, criterion, _ = walkthrough_model(PRESETS["tutorial_mlp"].config.replace(dataset="synthetic"),
                                                       train_images=dataset.train.images)
    return walk_batch(model, optimizer, criterion, images, labels, dataset.classes)


def test_every_step_renders_with_the_tutorials_words_and_code(synthetic_dataset):
    at = open_page()
    assert not at.exception, at.exception
    assert "synthetic" in text(at).lower()
    for step in STEPS:
        if step.number > 1:
            at.button[1].click().run()      # Next
            assert not at.exception, at.exception
        assert at.session_state["wt_step"] == step.number
        assert at.subheader[0].value == f"Step {step.number}. {step.title}"
        assert at.code[0].value == step.code
        assert step.chinese in text(at)
    assert at.button[1].disabled                      # no step after 9
    at.button[0].click().run()                        # Back
    assert at.session_state["wt_step"] == 8


def test_the_numbers_shown_are_cores_for_the_same_batch(synthetic_dataset):
    walk = expected_walk(synthetic_dataset, batch_size=8, batch=3, seed=4)
    at = open_page(wt_batch_size=8, wt_batch=3, wt_seed=4, wt_step=7)
    assert not at.exception, at.exception
    assert f"**{walk.mean_neg_log_p:.4f}**" in text(at)
    (table,) = at.dataframe
    np.testing.assert_allclose(table.value["loss = −ln p"].to_numpy(), walk.losses, rtol=1e-6)
    assert table.value["true class"].tolist() == [synthetic_dataset.classes[k] for k in walk.labels]

    at.session_state["wt_step"] = 9
    at.run()
    assert f"loss {walk.loss:.4f} → **{walk.loss_after:.4f}**" in text(at)
    assert "every weight moves by about the learning rate" in text(at)
    one = walk.weight                                   # its update written out with Adam's rule
    assert f"`{one.name}{list(one.index)}`" in text(at)
    assert f"= **{one.rule_change:+.3e}**" in text(at) and f"a change of **{one.change:+.3e}**" in text(at)
    assert f"m = {one.exp_avg:.3e}, v = {one.exp_avg_sq:.3e}" in text(at)

    at.session_state["wt_step"] = 8
    at.run()
    grads = table_with(at, "‖gradient‖")
    np.testing.assert_allclose(grads["‖gradient‖"].to_numpy(), [r.grad_norm for r in walk.grads], rtol=1e-6)

    at.session_state["wt_step"] = 1
    at.run()
    n = len(synthetic_dataset.train.labels)
    counts = epoch_counts(n, batch_size=8)                    # a DataLoader keeps a short last batch
    assert f"{n:,} ÷ 8 = **{counts.steps_per_epoch:,} steps per epoch**" in text(at)
    assert f"{counts.total_steps:,} steps in 10 epochs" in text(at)

    at.session_state["wt_step"] = 4
    at.run()
    arith = table_with(at, "stored (0-255)")
    assert arith["stored (0-255)"].tolist() == [int(v) for v in walk.raw[0, 0, 0]]
    assert "3,072" in text(at)
    stats = table_with(at, "measured mean")                  # why the constants: measured on these images
    mean, std = channel_stats(synthetic_dataset.train.images)
    np.testing.assert_allclose(stats["measured mean"].to_numpy(), mean, rtol=1e-9)
    np.testing.assert_allclose(stats["measured std"].to_numpy(), std, rtol=1e-9)
    assert stats["Normalize's mean"].tolist() == [0.4914, 0.4822, 0.4465]


def test_a_runs_checkpoint_can_be_walked(synthetic_dataset, tmp_path):
    from core.runs.worker import run_stored
    from core.runs.store import RunStore
    from core import settings
    from core.train.config import TrainConfig

    store = RunStore(settings.runs_dir())
    run = store.create_run(TrainConfig.smoke(epochs=1, train_subset=256, batch_size=32), name="walk me")
    assert run_stored(store, run.id).status == "completed"
    at = open_page(wt_source=f"run:{run.id}", wt_step=9)
    assert not at.exception, at.exception
    assert "walk me" in at.selectbox[0].format_func(at.selectbox[0].value)
    assert "Adam's memory after the step" in text(at) and "(step 9)" in text(at)


def test_a_batch_number_past_the_end_is_explained_not_a_traceback(synthetic_dataset):
    at = open_page(wt_batch_size=64, wt_batch=1000)
    assert not at.exception
    assert any("batch must be between 0 and" in e.value for e in at.error)


def test_a_finished_one_cycle_runs_checkpoint_steps_at_learning_rate_zero_and_says_why(synthetic_dataset):
    """One-cycle ends at learning rate 0: the last checkpoint's step moves nothing, and the page says
    so instead of blaming a learning rate that is too large."""
    from core.runs.worker import run_stored
    from core.runs.store import RunStore
    from core import i18n, settings
    from core.train.config import TrainConfig

    store = RunStore(settings.runs_dir())
    cfg = TrainConfig.smoke(epochs=1, train_subset=256, batch_size=32, schedule="onecycle", warmup=0.2)
    run = store.create_run(cfg, name="ended")
    assert run_stored(store, run.id).status == "completed"
    at = open_page(wt_source=f"run:{run.id}", wt_step=9)
    assert not at.exception, at.exception
    shown = text(at)
    assert "at learning rate 0." in shown and "a change of **+0.000e+00**" in shown
    assert i18n.t("walkthrough.step9.zero_lr", "en") in shown
    assert i18n.t("walkthrough.step9.not_lower", "en") not in shown
