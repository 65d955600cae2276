"""The learning-rate finder: a short rising-rate test run, a smoothed curve and a suggestion."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

from core.cli import main as cli
from core.settings import runs_dir
from core.train.config import TrainConfig
from core.train.lr_finder import END_LR, MAX_STEPS, START_LR, find_lr, lr_at, smooth, suggest


@pytest.fixture(scope="module")
def tutorial_mlp_at_512(synthetic_dataset):
    """The tutorial MLP (Adam) at batch 512 on the synthetic set, timed (wall and CPU)."""
    cfg = TrainConfig(dataset="synthetic", device="cpu", batch_size=512)
    wall, cpu = time.perf_counter(), time.process_time()
    result = find_lr(cfg, synthetic_dataset)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def test_the_rate_rises_exponentially_from_1e_7_to_10_in_at_most_300_steps():
    assert lr_at(0, MAX_STEPS) == START_LR and lr_at(MAX_STEPS - 1, MAX_STEPS) == pytest.approx(END_LR)
    ratios = {round(lr_at(i + 1, MAX_STEPS) / lr_at(i, MAX_STEPS), 12) for i in range(MAX_STEPS - 1)}
    assert len(ratios) == 1                                     # a constant factor per step


def test_the_suggestion_is_the_steepest_descent_of_the_smoothed_curve():
    lrs = [lr_at(i, 200) for i in range(200)]
    # a loss that falls fastest (in log10 lr) at 1e-3, then explodes past 1
    losses = [2.3 - 1.5 / (1 + math.exp(-4 * (math.log10(lr) + 3))) + (5 * (lr - 1) if lr > 1 else 0) for lr in lrs]
    assert suggest(lrs, losses) == pytest.approx(1e-3, rel=0.15)
    assert suggest(lrs, [2.0] * 200) is None                     # flat: no suggestion
    sm = smooth([1.0, 1.0, 1.0])
    assert sm == pytest.approx([1.0, 1.0, 1.0])                  # bias-corrected: no pull towards 0


def test_the_tutorial_mlp_gets_a_sensible_suggestion_and_no_run_is_created(tutorial_mlp_at_512):
    result, _, _ = tutorial_mlp_at_512
    assert 1 <= len(result.lrs) <= MAX_STEPS and result.ended in ("exploded", "end of range")
    assert result.lrs[0] == START_LR and all(b > a for a, b in zip(result.lrs, result.lrs[1:]))
    assert 1e-5 <= result.suggestion <= 3e-2, result.suggestion     # Adam on this MLP: 1e-4 .. 1e-2 train well
    i = result.lrs.index(result.suggestion)
    assert result.smoothed[i] < result.smoothed[0]                   # the loss is falling there
    assert not (runs_dir() / "runs.sqlite").exists()


def test_the_tutorial_mlp_at_batch_512_takes_under_a_minute_on_two_cores(tutorial_mlp_at_512):
    """Wall time on a quiet machine; on a busy one (other processes on the same cores) the process's
    CPU time over its threads stands for it."""
    _, wall, cpu = tutorial_mlp_at_512
    threads = min(torch.get_num_threads(), 2)
    assert min(wall, cpu / threads) < 60, (wall, cpu)


def test_cli_lr_find_writes_its_result_file(tmp_path, capsys):
    out = tmp_path / "finder.json"
    assert cli(["lr-find", "--dry-run", "--max-steps", "40", "--out", str(out)]) == 0
    state = json.loads(out.read_text())
    assert state["status"] == "done" and len(state["lrs"]) <= 40 and state["max_steps"] == 40
    assert np.all(np.diff(state["lrs"]) > 0)
    printed = capsys.readouterr().out
    assert "Learning-rate finder: tutorial_mlp" in printed and ("Suggested learning rate" in printed
                                                                or "No suggestion" in printed)
    assert cli(["lr-find", "--dry-run", "--max-steps", "0"]) == 2
