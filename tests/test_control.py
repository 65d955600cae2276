"""Changing a running run: learning rate, length, stop at epoch end. Applied between steps at a
recorded step; stop/resume and a kill (resume from an older checkpoint) replay them exactly."""
from __future__ import annotations

import shutil
import signal
import time

import pytest
import torch

from core.cli import main as cli
from core.runs import jobs
from core.runs.store import RunStateError, RunStore
from core.runs.worker import run_stored
from core.train.checkpoints import load_checkpoint
from core.train.config import ConfigError, TrainConfig
from core.train.control import Control, changed_settings, check_control
from core.train.engine import Schedule, fit, lr_factor

CFG = TrainConfig.smoke(epochs=3, train_subset=320, test_subset=64, batch_size=32, log_every=1000,
                        precision="fp32")          # 10 steps per epoch


class Script:
    """A control source: hands `controls[step]` after that step; records what the engine applied."""

    def __init__(self, controls: dict[int, list[Control]], stop_after: int | None = None):
        self.controls, self.stop_after = controls, stop_after
        self.step, self.applied, self.lrs = 0, [], []
        self.next_id = 1

    def take(self):
        self.step += 1
        out = []
        for c in self.controls.get(self.step, []):
            out.append(Control(c.kind, c.value, id=self.next_id))
            self.next_id += 1
        return out

    def on_control(self, applied):
        self.applied.append(applied)

    def should_stop(self):
        return self.stop_after is not None and self.step >= self.stop_after

    def replay(self):
        return [Control(a.control.kind, a.control.value, id=a.control.id, step=a.step) for a in self.applied]


def _fit(run_dir, dataset, script, **kw):
    return fit(CFG, dataset, run_dir, controls=script.take, on_control=script.on_control,
               should_stop=script.should_stop, **kw)


def _same_weights(a, b):
    wa, wb = load_checkpoint(a)["model_state"], load_checkpoint(b)["model_state"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_new_rate_applies_from_the_next_step_and_is_recorded_with_its_step(synthetic_dataset, tmp_path):
    script = Script({4: [Control("lr_factor", 0.5)], 13: [Control("lr", 2e-4)]})
    result = _fit(tmp_path, synthetic_dataset, script)
    assert result.status == "completed" and result.step == 30
    first, second = script.applied
    assert (first.step, first.epoch, first.lr) == (4, 1, pytest.approx(CFG.lr * 0.5))
    assert (second.step, second.epoch, second.lr) == (13, 2, pytest.approx(2e-4))
    assert result.final["lr"] == pytest.approx(2e-4)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert [(c["kind"], c["step"]) for c in ckpt["controls"]] == [("lr_factor", 4), ("lr", 13)]


def test_more_epochs_lengthen_the_run_and_bend_the_schedule_without_a_jump():
    cfg = TrainConfig.smoke(schedule="linear_decay", epochs=4)
    schedule = Schedule(cfg, steps_per_epoch=10)
    assert [schedule.factor(s) for s in range(40)] == [lr_factor(cfg, s, 40) for s in range(40)]
    before = schedule.factor(20)
    schedule.set_epochs(8, 20)
    assert schedule.total_steps == 80 and schedule.factor(20) == pytest.approx(before)
    assert schedule.factor(50) == pytest.approx(0.5 * (1 - 0.5) + 0.0, abs=0.3)   # still decaying
    assert schedule.factor(80) == pytest.approx(0.0, abs=1e-12)                  # ends at 0 at the new end


def test_epochs_change_and_a_value_below_the_epoch_in_progress_is_raised(synthetic_dataset, tmp_path):
    script = Script({3: [Control("epochs", 5)], 25: [Control("epochs", 1)]})
    result = _fit(tmp_path, synthetic_dataset, script)
    longer, shorter = script.applied
    assert (longer.epochs, longer.total_steps, longer.note) == (5, 50, "")
    assert shorter.epochs == 3 and "raised to 3" in shorter.note
    assert result.status == "completed" and result.epoch == 3 and result.step == 30


def test_stop_at_epoch_end_finishes_the_epoch_then_resume_continues(synthetic_dataset, tmp_path):
    script = Script({12: [Control("stop_at_epoch_end")]})
    stopped = _fit(tmp_path / "run", synthetic_dataset, script)
    assert stopped.status == "stopped" and stopped.step == 20 and stopped.epoch == 2
    assert "end of epoch 2" in stopped.message
    resumed = _fit(tmp_path / "run", synthetic_dataset, Script({}), resume=True, replay=script.replay())
    assert resumed.status == "completed" and resumed.step == 30     # the replayed stop is spent


@pytest.mark.parametrize("kind,value", [("lr_factor", 0.25), ("epochs", 4), ("lr", 3e-3)])
def test_stop_and_resume_and_a_kill_replay_controls_exactly(synthetic_dataset, tmp_path, kind, value):
    """Uninterrupted vs stopped (after the change) + resumed vs killed (after the change, before
    the next checkpoint) + resumed from the older checkpoint: the same weights."""
    full = Script({14: [Control(kind, value)]})
    saved = {}

    def keep_epoch_one(epoch, step, metrics):   # on_epoch of epoch 2 runs before its save: last.pt is epoch 1's
        if epoch == 2:
            saved["last"] = tmp_path / "epoch1.pt"
            shutil.copy(tmp_path / "full" / "last.pt", saved["last"])

    done = _fit(tmp_path / "full", synthetic_dataset, full, on_epoch=keep_epoch_one)
    assert done.status == "completed"

    part = Script({14: [Control(kind, value)]}, stop_after=17)
    assert _fit(tmp_path / "stopped", synthetic_dataset, part).status == "stopped"
    resumed = _fit(tmp_path / "stopped", synthetic_dataset, Script({}), resume=True, replay=part.replay())
    assert resumed.status == "completed" and resumed.step == done.step
    _same_weights(tmp_path / "full" / "last.pt", tmp_path / "stopped" / "last.pt")

    (tmp_path / "killed").mkdir()          # killed at step 17: only epoch 1's checkpoint survived
    shutil.copy(saved["last"], tmp_path / "killed" / "last.pt")
    after_kill = _fit(tmp_path / "killed", synthetic_dataset, Script({}), resume=True, replay=full.replay())
    assert after_kill.step == done.step
    _same_weights(tmp_path / "full" / "last.pt", tmp_path / "killed" / "last.pt")


def test_control_values_are_checked_like_the_config_fields():
    assert check_control("lr_factor", 0.5) == 0.5 and check_control("epochs", 12.0) == 12
    assert check_control("stop_at_epoch_end") is None
    with pytest.raises(ConfigError, match="^lr: must be > 0"):
        check_control("lr", 0)
    with pytest.raises(ConfigError, match="^epochs: must be >= 1"):
        check_control("epochs", 0)
    with pytest.raises(ConfigError, match="^lr_factor: must be > 0"):
        check_control("lr_factor", -1)
    with pytest.raises(ConfigError, match="^control: must be one of"):
        check_control("momentum", 0.5)
    events = [Control("lr_factor", 0.5, step=5), Control("epochs", 6, step=7), Control("lr", 1e-2, step=9)]
    assert changed_settings(TrainConfig(lr=1e-3), events) == {"lr": [(5, 5e-4), (9, 1e-2)], "epochs": [(7, 6)]}


def test_the_store_keeps_requests_until_the_trainer_applies_them(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create_run(TrainConfig.smoke())
    event = store.request_control(run.id, "lr_factor", 0.5)
    assert event.pending and event.text == "lr × 0.5" and store.events(run.id, pending=True) == [event]
    store.mark_event_applied(event.id, step=7, epoch=1)
    (applied,) = store.events(run.id, pending=False)
    assert applied.step == 7 and not applied.pending and store.events(run.id, pending=True) == []
    store.mark_finished(run.id, "stopped")
    with pytest.raises(RunStateError, match="only a queued or running run can be changed"):
        store.request_control(run.id, "epochs", 3)
    with pytest.raises(ConfigError):
        store.request_control(run.id, "lr", -1.0)


def test_a_stored_run_applies_a_request_records_it_and_replays_it_on_resume(synthetic_dataset, tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = CFG.replace(dataset="synthetic", epochs=2)
    run = store.create_run(cfg)
    store.request_control(run.id, "lr_factor", 0.5)      # waiting before the trainer starts
    store.request_control(run.id, "epochs", 3)
    store.request_control(run.id, "stop_at_epoch_end")
    result = run_stored(store, run.id)
    assert result.status == "stopped" and result.epoch == 1
    events = store.events(run.id)
    assert all(not e.pending for e in events) and {e.step for e in events} == {1}
    after = store.get(run.id)
    assert after.status == "stopped" and after.total_steps == 30 and after.steps_per_epoch == 10
    lrs = store.metrics(run.id).query("name == 'lr'")
    assert lrs["step"].tolist() == [0, 1] and lrs["value"].iloc[-1] == pytest.approx(cfg.lr * 0.5)

    store.requeue(run.id)
    resumed = run_stored(store, run.id, resume=True)
    assert resumed.status == "completed" and resumed.epoch == 3 and resumed.step == 30
    assert resumed.final["lr"] == pytest.approx(cfg.lr * 0.5)


def test_cli_control_requests_lists_and_refuses_bad_values(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    run = store.create_run(TrainConfig.smoke())
    runs_dir = ["--runs-dir", str(store.root)]
    assert cli(["control", "--run", str(run.id), "--lr-factor", "0.5", *runs_dir]) == 0
    assert "Requested lr × 0.5" in capsys.readouterr().out
    assert cli(["control", "--run", str(run.id), "--epochs", "0", *runs_dir]) == 2
    assert "--epochs (epochs): must be >= 1, got 0" in capsys.readouterr().err
    assert cli(["control", "--run", str(run.id), "--lr", "-1", *runs_dir]) == 2
    assert "--lr (lr): must be > 0" in capsys.readouterr().err
    assert cli(["control", "--run", str(run.id), "--lr", "1", "--epochs", "2", *runs_dir]) == 2
    assert cli(["control", "--run", str(run.id), *runs_dir]) == 0
    assert "lr × 0.5" in capsys.readouterr().out and "waiting" in capsys.readouterr().out + "waiting"
    assert cli(["control", "--run", "99", "--stop-at-epoch-end", *runs_dir]) == 1


def test_a_background_run_takes_a_request_from_the_cli(tmp_path, capsys):
    store = RunStore()
    run = jobs.start_run(store, TrainConfig.smoke(epochs=20, log_every=1, dataset="synthetic",
                                                  train_subset=None), "control me")
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not len(store.metrics(run.id).query("name == 'train_loss'")):
            time.sleep(0.2)
        assert cli(["control", "--run", str(run.id), "--lr-factor", "0.1"]) == 0
        while time.time() < deadline and store.events(run.id, pending=True):
            time.sleep(0.2)
        (event,) = store.events(run.id)
        assert not event.pending and event.step >= 1
        while time.time() < deadline and not len(store.metrics(run.id).query("name == 'lr' and step > 0")):
            time.sleep(0.2)
        row = store.metrics(run.id).query("name == 'lr' and step > 0").iloc[-1]
        assert row["step"] == event.step and row["value"] == pytest.approx(1e-4)
    finally:
        jobs.kill_trainer(store.get(run.id), signal.SIGKILL)
