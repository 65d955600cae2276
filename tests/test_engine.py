"""The training engine on the synthetic demo set: learning, reporting, stopping, resuming."""
from __future__ import annotations

import dataclasses
import math
import time

import pytest
import torch

from core.data.images import normalize
from core.train import batches
from core.train.checkpoints import load_checkpoint
from core.train.config import PRESETS, TrainConfig
from core.train.engine import Plan, evaluate, fit, lr_factor, resolve_precision
from core.train.models import build_model

STEP_KEYS = {"train_loss", "train_acc"}
EPOCH_KEYS = {"train_loss", "train_acc", "test_loss", "test_acc", "images_per_sec", "elapsed_s", "lr"}


class Recorder:
    def __init__(self, stop_after: int | None = None):
        self.steps, self.epochs, self.stop_after, self.calls = [], [], stop_after, 0

    def on_step(self, step, epoch, metrics):
        self.steps.append((step, epoch, dict(metrics)))

    def on_epoch(self, epoch, step, metrics):
        self.epochs.append((epoch, step, dict(metrics)))

    def should_stop(self):
        self.calls += 1
        return self.stop_after is not None and self.calls >= self.stop_after


def _fit(cfg, dataset, run_dir, rec=None, **kw):
    rec = rec or Recorder()
    result = fit(cfg, dataset, run_dir, on_step=rec.on_step, on_epoch=rec.on_epoch,
                 should_stop=rec.should_stop, **kw)
    return result, rec


def _weights(path):
    return load_checkpoint(path)["model_state"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_loss_falls_and_accuracy_beats_chance_on_the_synthetic_set(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=3, log_every=100)
    result, rec = _fit(cfg, synthetic_dataset, tmp_path)
    assert result.status == "completed" and result.epoch == 3 and result.step == 3 * 8
    losses = [m["train_loss"] for _, _, m in rec.epochs]
    assert losses[-1] < losses[0] - 0.1
    assert result.final["test_acc"] > 0.25
    # No validation split: no "best" (it would be chosen on the test set); last.pt is the model.
    assert result.best_test_acc is None and not (tmp_path / "best.pt").exists()


def test_callbacks_get_the_documented_keys_at_the_documented_cadence(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=2, log_every=3)          # 512 images / 64 = 8 steps an epoch
    result, rec = _fit(cfg, synthetic_dataset, tmp_path)
    assert [(s, e) for s, e, _ in rec.steps] == [(3, 1), (6, 1), (9, 2), (12, 2), (15, 2)]
    assert all(set(m) == STEP_KEYS for _, _, m in rec.steps)
    assert all(math.isfinite(m["train_loss"]) and 0 <= m["train_acc"] <= 1 for _, _, m in rec.steps)
    assert [(e, s) for e, s, _ in rec.epochs] == [(1, 8), (2, 16)]
    for _, _, m in rec.epochs:
        assert set(m) == EPOCH_KEYS
        assert 0 <= m["test_acc"] <= 1 and m["images_per_sec"] > 0 and m["elapsed_s"] > 0 and m["lr"] == cfg.lr
    assert rec.epochs[1][2]["elapsed_s"] > rec.epochs[0][2]["elapsed_s"]
    assert result.final == rec.epochs[-1][2]


class SlowSteps(Recorder):
    """Every step takes at least `seconds` (the pause sits in should_stop, asked after each step)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def should_stop(self):
        time.sleep(self.seconds)
        return False


def test_report_every_s_reports_sooner_when_steps_are_slow_and_changes_nothing_when_they_are_fast(
        synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=2, log_every=100)        # 8 steps an epoch: no step report at all
    _, rec = _fit(cfg, synthetic_dataset, tmp_path / "plain", SlowSteps(0.03))
    assert rec.steps == []
    # A step that waits 0.03 s passes 0.025 s: a report after every step (the first of an epoch can
    # come a step later: its clock starts with the epoch), each the mean since the previous one.
    _, rec = _fit(cfg, synthetic_dataset, tmp_path / "timed", SlowSteps(0.03), report_every_s=0.025)
    steps = [s for s, _, _ in rec.steps]
    assert len(steps) >= 14 and all(1 <= b - a <= 2 for a, b in zip([0] + steps, steps))
    assert {e for _, e, _ in rec.steps} == {1, 2}
    assert all(set(m) == STEP_KEYS and math.isfinite(m["train_loss"]) for _, _, m in rec.steps)
    # Fast steps never wait that long: the documented cadence, unchanged.
    cfg = TrainConfig.smoke(epochs=2, log_every=3)
    _, rec = _fit(cfg, synthetic_dataset, tmp_path / "fast", report_every_s=3600.0)
    assert [(s, e) for s, e, _ in rec.steps] == [(3, 1), (6, 1), (9, 2), (12, 2), (15, 2)]


def test_progress_bars_go_to_stderr_only_when_asked(synthetic_dataset, tmp_path, capfd):
    fit(TrainConfig.smoke(train_subset=128), synthetic_dataset, tmp_path / "quiet")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    fit(TrainConfig.smoke(train_subset=128), synthetic_dataset, tmp_path / "loud", progress=True)
    out, err = capfd.readouterr()
    assert out == "" and "epoch 1/1" in err


CNN = dict(model="cpu_cnn", optimizer="sgd", lr=0.05, schedule="onecycle", warmup=0.3, momentum=0.85,
           weight_decay=5e-4, label_smoothing=0.2, augment=True, crop_padding=2, alternate_flip=True, tta=True, ema=True,
           whiten_init=True, bias_lr_scale=4.0, train_subset=128, test_subset=64, batch_size=32)


def test_same_seed_gives_identical_runs_on_cpu(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(**CNN, log_every=2)
    a, rec_a = _fit(cfg, synthetic_dataset, tmp_path / "a")
    b, rec_b = _fit(cfg, synthetic_dataset, tmp_path / "b")
    assert [m for *_, m in rec_a.steps] == [m for *_, m in rec_b.steps]
    assert a.final["test_loss"] == b.final["test_loss"] and a.final["test_acc"] == b.final["test_acc"]
    _assert_same_weights(_weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt"))
    c, _ = _fit(cfg.replace(seed=1), synthetic_dataset, tmp_path / "c")
    assert c.final["test_loss"] != a.final["test_loss"]


@pytest.mark.parametrize("settings,stop_after", [
    (dict(CNN, epochs=2), 6),                           # mid epoch 2: augmentation, EMA, one-cycle
    (dict(epochs=2, train_subset=320, test_subset=64, batch_size=32), 4),   # MLP + Adam, mid epoch 1
    (dict(epochs=2, train_subset=320, test_subset=64, batch_size=32), 10),  # right at an epoch's end
])
def test_stop_then_resume_matches_an_uninterrupted_run(synthetic_dataset, tmp_path, settings, stop_after):
    cfg = TrainConfig.smoke(**settings, log_every=1000)
    full, full_rec = _fit(cfg, synthetic_dataset, tmp_path / "full")

    part, _ = _fit(cfg, synthetic_dataset, tmp_path / "part", Recorder(stop_after=stop_after))
    assert part.status == "stopped" and part.step == stop_after
    ckpt = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert ckpt["step"] == stop_after and ckpt["step_in_epoch"] == stop_after - ckpt["epoch"] * (full.step // 2)

    resumed, res_rec = _fit(cfg, synthetic_dataset, tmp_path / "part", resume=True)
    assert resumed.status == "completed"
    assert resumed.step == full.step and resumed.epoch == full.epoch
    _assert_same_weights(_weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt"))
    final_full, final_res = full_rec.epochs[-1][2], res_rec.epochs[-1][2]
    assert final_res["test_loss"] == final_full["test_loss"] and final_res["test_acc"] == final_full["test_acc"]
    assert final_res["train_loss"] == pytest.approx(final_full["train_loss"], rel=1e-5)
    assert final_res["train_acc"] == pytest.approx(final_full["train_acc"])
    assert resumed.best_test_acc == full.best_test_acc

    again, _ = _fit(cfg, synthetic_dataset, tmp_path / "part", resume=True)    # nothing left to do
    assert again.status == "completed" and again.step == full.step


def test_stop_saves_last_checkpoint_and_no_best_before_an_epoch_ends(synthetic_dataset, tmp_path):
    result, rec = _fit(TrainConfig.smoke(), synthetic_dataset, tmp_path, Recorder(stop_after=3))
    assert result.status == "stopped" and result.step == 3 and result.epoch == 0 and "resume" in result.message
    assert (tmp_path / "last.pt").is_file() and not (tmp_path / "best.pt").exists()
    assert rec.epochs == []


@pytest.mark.parametrize("log_every", [1, 1000])          # caught at a report, or at the epoch's end
def test_exploding_loss_ends_the_run_as_diverged(synthetic_dataset, tmp_path, log_every):
    cfg = TrainConfig.smoke(optimizer="sgd", lr=1e6, log_every=log_every)
    result, rec = _fit(cfg, synthetic_dataset, tmp_path)
    assert result.status == "diverged"
    assert "NaN or infinite" in result.message and "lr=1e+06" in result.message
    assert rec.epochs == []


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_a_few_steps_on_the_demo_set(synthetic_dataset, tmp_path, name):
    base = PRESETS[name].config
    cfg = base.replace(dataset="synthetic", device="cpu", epochs=1, train_subset=96, test_subset=64,
                       batch_size=min(base.batch_size, 32), log_every=1)
    result, rec = _fit(cfg, synthetic_dataset, tmp_path)
    assert result.status == "completed" and result.step == 96 // cfg.batch_size
    assert len(rec.steps) == result.step and len(rec.epochs) == 1
    assert all(math.isfinite(v) for v in result.final.values())


def test_checkpoints_load_with_weights_only_and_rebuild_the_model(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=2, test_subset=200, val_images=128)   # a split: best.pt is written
    result, rec = _fit(cfg, synthetic_dataset, tmp_path)
    for name in ("last.pt", "best.pt"):
        payload = torch.load(tmp_path / name, weights_only=True)
        assert {"model", "model_state", "config", "epoch", "step", "step_in_epoch", "metrics", "optimizer_state",
                "scheduler_state", "rng", "best_test_acc"} <= set(payload)
        assert TrainConfig.from_dict(payload["config"]) == cfg
        assert all(isinstance(v, torch.Tensor) for v in payload["rng"].values())
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["epoch"] == 2 and last["step"] == result.step and last["metrics"] == result.final
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    chosen = max(rec.epochs, key=lambda e: e[2]["val_acc"])[2]      # the first epoch with the highest val_acc
    assert best["best_test_acc"] == result.best_test_acc == chosen["test_acc"]
    # The file alone rebuilds a model that scores what the run reported.
    model = build_model(best["model"])
    model.load_state_dict(best["model_state"])
    x, y = batches.to_device(synthetic_dataset.test.images[:200], synthetic_dataset.test.labels[:200])
    assert evaluate(model, x, y)["acc"] == pytest.approx(best["metrics"]["test_acc"])


def test_evaluate_sums_the_loss_then_divides_by_n_and_leaves_train_mode(synthetic_dataset):
    torch.manual_seed(0)
    model = build_model("cpu_cnn").train()
    x, y = batches.to_device(synthetic_dataset.test.images[:30], synthetic_dataset.test.labels[:30])
    got = evaluate(model, x, y, batch_size=7)
    assert model.training
    model.eval()
    with torch.no_grad():
        logits = model(normalize(x))
    assert got["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert got["acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    flipped = evaluate(model, x, y, tta=True)
    assert flipped["loss"] != pytest.approx(got["loss"])


def test_learning_rate_schedules_have_the_documented_shapes():
    total = 100
    one = TrainConfig(schedule="onecycle", warmup=0.2)
    f = [lr_factor(one, s, total) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and max(f) == pytest.approx(1.0) and f.index(max(f)) == 20
    assert f[-1] == pytest.approx(1 / 80) and all(a >= b for a, b in zip(f[20:], f[21:]))
    assert all(lr_factor(TrainConfig(), s, total) == 1.0 for s in range(total))
    cos = [lr_factor(TrainConfig(schedule="cosine"), s, total) for s in range(total)]
    assert cos[0] == 1.0 and cos[50] == pytest.approx(0.5) and cos[-1] < 0.01
    lin = [lr_factor(TrainConfig(schedule="linear_decay"), s, total) for s in range(total)]
    assert lin[0] == 1.0 and lin[50] == pytest.approx(0.5)


def test_whitening_stem_is_fixed_and_its_bias_learns_only_for_the_first_epochs(synthetic_dataset, tmp_path):
    base = TrainConfig.smoke(**dict(CNN, ema=False, train_subset=64, batch_size=32), epochs=1)
    fit(base.replace(whiten_bias_epochs=0), synthetic_dataset, tmp_path / "frozen")
    fit(base.replace(whiten_bias_epochs=1), synthetic_dataset, tmp_path / "learnt")
    frozen, learnt = _weights(tmp_path / "frozen" / "last.pt"), _weights(tmp_path / "learnt" / "last.pt")
    assert torch.count_nonzero(frozen["whiten.bias"]) == 0
    assert torch.count_nonzero(learnt["whiten.bias"]) > 0
    model = build_model("cpu_cnn")
    model.init_whitening(normalize(batches.to_device(synthetic_dataset.train.images[:64],
                                                             synthetic_dataset.train.labels[:64])[0]))
    torch.testing.assert_close(learnt["whiten.weight"], model.whiten.weight.detach(), rtol=0, atol=0)


def test_precision_resolves_per_device_and_both_kinds_train_reproducibly(synthetic_dataset, tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("bf16", torch.device("mps")) == "fp32"
    assert resolve_precision("auto", cpu) in ("fp32", "bf16")
    cfg = TrainConfig.smoke(**dict(CNN, ema=False), epochs=1)
    runs = {}
    for name, precision in (("fp32", "fp32"), ("bf16", "bf16"), ("bf16-again", "bf16")):
        result, _ = _fit(cfg.replace(precision=precision), synthetic_dataset, tmp_path / name)
        assert result.status == "completed" and math.isfinite(result.final["train_loss"])
        assert torch.load(tmp_path / name / "last.pt", weights_only=True)["precision"] == precision
        runs[name] = _weights(tmp_path / name / "last.pt")
    _assert_same_weights(runs["bf16"], runs["bf16-again"])
    assert not torch.equal(runs["fp32"]["head.weight"], runs["bf16"]["head.weight"])


@pytest.mark.parametrize("settings,per_epoch", [
    (dict(train_subset=100, batch_size=32), 3),      # 100 = 3 x 32 + 4: the short last batch is dropped
    (dict(train_subset=64, batch_size=64), 1),       # exactly one batch: nothing is dropped
])
def test_on_start_reports_the_plan_the_engine_follows(synthetic_dataset, tmp_path, settings, per_epoch):
    cfg = TrainConfig.smoke(**settings, epochs=2, test_subset=48, log_every=1)
    plans = []
    result, rec = _fit(cfg, synthetic_dataset, tmp_path, on_start=plans.append)
    assert len(plans) == 1
    plan = plans[0]
    assert plan == Plan(steps_per_epoch=per_epoch, total_steps=2 * per_epoch, epochs=2,
                        train_images=settings["train_subset"], test_images=48, device="cpu",
                        precision=resolve_precision(cfg.precision, torch.device("cpu")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps_per_epoch = 0
    # log_every=1: one on_step report per optimiser step, as many per epoch as the plan says.
    assert [e for _, e, _ in rec.steps] == [1] * per_epoch + [2] * per_epoch
    assert [s for _, s, _ in rec.epochs] == [per_epoch, 2 * per_epoch] and result.step == plan.total_steps


def test_on_start_is_called_before_the_first_step_and_again_on_resume(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=2, train_subset=128, batch_size=32, log_every=1)
    events = []
    rec = Recorder(stop_after=3)
    rec.on_step = lambda step, epoch, metrics: events.append(("step", step))
    fit(cfg, synthetic_dataset, tmp_path, on_start=lambda plan: events.append(("start", plan.total_steps)),
        on_step=rec.on_step, should_stop=rec.should_stop)
    assert events == [("start", 8), ("step", 1), ("step", 2), ("step", 3)]
    events.clear()
    result = fit(cfg, synthetic_dataset, tmp_path, resume=True, on_step=rec.on_step,
                 on_start=lambda plan: events.append(("start", plan.total_steps)))
    assert result.status == "completed" and events[0] == ("start", 8) and events[1:] == [("step", s) for s in range(4, 9)]


# ---- checkpoints the machine can break: full disk, damage, leftovers ---------------------------

def _disk_full_after(monkeypatch, saves: int):
    """Checkpoint writes fail with ENOSPC after `saves` successful checkpoint files."""
    import errno
    import os

    from core.train import checkpoints

    real = checkpoints.atomic_write_bytes

    count = {"n": 0}

    def write(path, data, **kwargs):
        count["n"] += 1
        if count["n"] > saves:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data, **kwargs)

    monkeypatch.setattr(checkpoints, "atomic_write_bytes", write)


def test_best_and_last_are_separate_files_and_previous_keeps_the_epoch_before(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=2, train_subset=128, test_subset=64, batch_size=32, log_every=100, val_images=64)
    result, rec = _fit(cfg, synthetic_dataset, tmp_path)
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    assert result.status == "completed"
    assert last.stat().st_ino != best.stat().st_ino and last.stat().st_nlink == 1 == best.stat().st_nlink
    assert not (tmp_path / "previous.pt").exists()      # a completed run needs no fallback

    stopped, _ = _fit(cfg, synthetic_dataset, tmp_path / "stopped", Recorder(stop_after=6))   # mid epoch 2
    assert stopped.status == "stopped"
    previous = load_checkpoint(tmp_path / "stopped" / "previous.pt")
    assert (previous["epoch"], previous["step"]) == (1, 4)
    assert load_checkpoint(tmp_path / "stopped" / "last.pt")["step"] == 6


def test_a_full_disk_at_an_epoch_end_raises_a_clear_error_and_resume_finishes_the_same_run(
        synthetic_dataset, tmp_path, monkeypatch):
    from core.train.checkpoints import CheckpointWriteError

    cfg = TrainConfig.smoke(epochs=3, train_subset=128, test_subset=64, batch_size=32, log_every=100, val_images=64)
    full, _ = _fit(cfg, synthetic_dataset, tmp_path / "full")
    with monkeypatch.context() as mp:
        _disk_full_after(mp, saves=2)                    # epoch 1: best.pt and last.pt; epoch 2 fails
        with pytest.raises(CheckpointWriteError) as err:
            _fit(cfg, synthetic_dataset, tmp_path / "part")
    message = str(err.value)
    assert f"the disk holding {tmp_path / 'part'} is full" in message
    assert "Free some space there, then Resume" in message and "epoch 1, step 4" in message
    assert load_checkpoint(tmp_path / "part" / "last.pt")["step"] == 4
    assert sorted(p.name for p in (tmp_path / "part").iterdir()) == ["best.pt", "last.pt"]

    resumed, _ = _fit(cfg, synthetic_dataset, tmp_path / "part", resume=True)
    assert resumed.status == "completed" and resumed.step == full.step
    _assert_same_weights(_weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt"))


def test_a_damaged_last_pt_resumes_from_the_previous_checkpoint_exactly(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=3, train_subset=128, test_subset=64, batch_size=32, log_every=100)
    full, _ = _fit(cfg, synthetic_dataset, tmp_path / "full")
    part = tmp_path / "part"
    _fit(cfg, synthetic_dataset, part, Recorder(stop_after=10))      # mid epoch 3: previous.pt is epoch 2
    (part / "last.pt").write_bytes(b"not a checkpoint")
    resumed, rec = _fit(cfg, synthetic_dataset, part, resume=True)
    assert resumed.status == "completed" and resumed.step == full.step
    assert [e for e, _, _ in rec.epochs] == [3]
    _assert_same_weights(_weights(tmp_path / "full" / "last.pt"), _weights(part / "last.pt"))


def test_temporary_checkpoint_files_are_removed_at_start_and_completion(synthetic_dataset, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    stale = tmp_path / ".last.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    seen = []
    rec = Recorder()
    rec.on_epoch = lambda *a: seen.append(stale.exists())
    fit(TrainConfig.smoke(train_subset=128, test_subset=64), synthetic_dataset, tmp_path, on_epoch=rec.on_epoch)
    assert seen == [False]                               # gone before the first epoch ended
    assert not list(tmp_path.glob(".*.tmp"))
