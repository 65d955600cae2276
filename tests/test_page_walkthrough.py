"""The "One batch, step by step" page in AppTest: every step renders, its numbers are core's
(core.train.walkthrough on the same batch), and a run's checkpoint can be walked."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.train.config import PRESETS
from core.train.walkthrough import STEPS, pick_batch, walk_batch, walkthrough_model

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

    at.session_state["wt_step"] = 1
    at.run()
    n = len(synthetic_dataset.train.labels)
    assert f"{n:,} ÷ 8 = **{n // 8:,} steps per epoch**" in text(at)

    at.session_state["wt_step"] = 4
    at.run()
    (arith,) = at.dataframe
    assert arith.value["stored (0-255)"].tolist() == [int(v) for v in walk.raw[0, 0, 0]]
    assert "3,072" in text(at)


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
