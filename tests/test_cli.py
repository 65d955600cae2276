"""`python -m core`: options generated from TrainConfig's description, one-line errors without
tracebacks, a tiny demo run with the tutorial's lines."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import build_parser, config_from_args, main
from core.runs.store import RunStore
from core.train.config import PRESETS, TrainConfig, config_fields
from core.train.device import available_devices

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize(("args", "fragments"), [
    (["--demo", "--lr", "0"], ["--lr (lr): must be > 0"]),
    (["--demo", "--batch-size", "abc"], ["--batch-size", "invalid int value: 'abc'"]),
])
def test_bad_arguments_exit_non_zero_with_one_line_naming_the_option(args, fragments):
    result = cli("train", *args)
    assert result.returncode == 2
    assert_one_line_error(result, *fragments)
    assert len(result.stderr.strip().splitlines()) == 1
    assert RunStore().list_runs() == []  # nothing was stored


@pytest.mark.parametrize(("args", "fragments"), [
    (["--demo", "--lr", "-0.1"], ["--lr (lr): must be > 0"]),
    (["--demo", "--batch-size", "0"], ["--batch-size (batch_size): must be >= 1"]),
    (["--demo", "--label-smoothing", "1.5"], ["--label-smoothing (label_smoothing): must be in [0, 1)"]),
    (["--demo", "--epochs", "two"], ["--epochs", "invalid int value: 'two'"]),
    (["--preset", "no_such_preset"], ["--preset", "invalid choice"]),
    (["--resume"], ["--resume needs --run ID"]),
    (["--run", "1", "--lr", "0.1"], ["--run trains a stored run with its stored settings; drop --lr"]),
    (["--run", "1", "--tta", "--no-ema"], ["--run trains a stored run with its stored settings; drop --tta, --ema"]),
    (["--demo", "--dataset", "cifar10"], ["--demo means --dataset synthetic; drop one of them"]),
    (["--demo", "--train-subset", "some"], ["--train-subset", "expected a whole number or 'all', got 'some'"]),
    (["--demo", "--precision", "fp16"], ["--precision", "invalid choice: 'fp16'"]),
    (["--demo", "--crop-padding", "17"], ["--crop-padding (crop_padding): must be between 0 and 16 pixels, got 17"]),
    (["--demo", "--ema-decay", "1"], ["--ema-decay (ema_decay): must be in (0, 1), got 1"]),
    # Numbers too large for SQLite's integers or torch's seeds: a field-named message, no run, no traceback.
    (["--demo", "--seed", "99999999999999999999999"], ["--seed (seed): must be at most 4,294,967,295"]),
    (["--demo", "--epochs", "9223372036854775807"], ["--epochs (epochs): must be at most 10,000, got"]),
    (["--demo", "--batch-size", "1000000"], ["--batch-size (batch_size): must be at most 65,536 images"]),
    (["--demo", "--train-subset", "100000000"], ["--train-subset (train_subset): must be at most 10,000,000"]),
    (["--demo", "--log-every", "99999999"], ["--log-every (log_every): must be at most 1,000,000 steps"]),
])
def test_more_bad_arguments_through_main(args, fragments, capsys):
    # main() is what `python -m core` calls, in this process for speed
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in err
    assert RunStore().list_runs() == []


def test_missing_cifar10_offline_says_what_to_do_and_stores_no_run(no_cifar):
    result = cli("train", "--epochs", "1")
    assert result.returncode == 1
    assert_one_line_error(result, "CIFAR-10 was not found", os.environ["CIFAR10_ROOT"], "--demo")
    assert RunStore().list_runs() == []
    data = cli("data")
    assert data.returncode == 1
    assert_one_line_error(data, "CIFAR-10 was not found")


def test_unknown_or_finished_run_is_refused_with_a_message():
    missing = cli("train", "--run", "999")
    assert missing.returncode == 1
    assert_one_line_error(missing, "there is no run #999")


def test_tiny_demo_run_prints_the_tutorials_lines_and_is_stored():
    result = cli("train", "--dry-run", "--epochs", "2", "--name", "from the cli")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Synthetic demo set" in out
    for epoch in (1, 2):
        assert f"Epoch {epoch}/2" in out
    assert len(re.findall(r"^train loss: \d+\.\d{4} Acc: \d\.\d{4}$", out, re.M)) == 2
    assert len(re.findall(r"^test loss: \d+\.\d{4} Acc: \d\.\d{4}", out, re.M)) == 2
    assert re.search(r"^Training complete in \d+m \d+s$", out, re.M)
    final = re.search(r"^Final test accuracy: (\d+\.\d\d)% \(test split of the Synthetic demo set\)$", out, re.M)
    assert final
    assert "epoch 1/2" in result.stderr  # the tqdm bar of each epoch
    assert "Traceback" not in result.stderr

    (run,) = RunStore().list_runs()
    assert (run.name, run.status, run.dataset) == ("from the cli", "completed", "synthetic")
    assert float(final.group(1)) == pytest.approx(100 * run.final_test_acc, abs=0.006)
    again = cli("train", "--run", str(run.id))
    assert again.returncode == 1
    assert_one_line_error(again, f"run '#{run.id} from the cli' is completed, not queued")
    listing = cli("runs")
    assert listing.returncode == 0
    assert re.search(rf"^\s+{run.id}\s+completed\s+synthetic\s+\d+\.\d\d%.*from the cli$", listing.stdout, re.M)


def test_data_demo_writes_and_describes_the_synthetic_set():
    result = cli("data", "--demo")
    assert result.returncode == 0, result.stderr
    assert "Synthetic demo set" in result.stdout
    assert "5000 training and 1000 test images" in result.stdout


# ---- options generated from TrainConfig's description ----------------------------------------

def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def parse_train(*args: str):
    return config_from_args(build_parser().parse_args(["train", *args]))


def test_every_config_field_is_an_option_with_its_flag():
    options = {a.dest: a.option_strings for a in _train_parser()._actions}
    for spec in config_fields():
        assert spec.name in options, f"{spec.name} has no option"
        assert spec.flag in options[spec.name]
        if spec.kind == "bool":
            assert "--no-" + spec.flag[2:] in options[spec.name]


def test_help_lists_every_setting_with_its_help_unit_and_bounds(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, also at hyphens

    def squeezed(words: str) -> str:
        return "".join(words.split())

    for spec in config_fields():
        assert spec.flag in text
        if spec.name != "preset":  # --preset: "start from a named preset"
            assert squeezed(spec.help) in text
            assert squeezed(spec.bounds_text()) in text and spec.unit in text
    for other in ("--demo", "--dry-run", "--data-root", "--runs-dir", "--name", "--run", "--resume", "--no-progress"):
        assert other in text


def _other_value(spec):
    """A valid value for the field that differs from TrainConfig()'s."""
    if spec.kind == "choice":
        return next(c for c in spec.choices if c != spec.default)
    if spec.kind == "bool":
        return not spec.default
    if spec.kind in ("int", "optional_int"):
        return (spec.default or 0) + 1 if spec.kind == "int" else 123
    if spec.maximum is not None:
        return (spec.minimum + spec.maximum) / 4
    return spec.default + 0.25


def _option(spec, value) -> list[str]:
    if spec.kind == "bool":
        return [spec.flag if value else "--no-" + spec.flag[2:]]
    return [spec.flag, repr(value) if isinstance(value, float) else str(value)]


SETTINGS = [s for s in config_fields() if s.name != "preset"]  # --preset: its own test below


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda s: s.name)
def test_every_field_round_trips_through_its_option(spec):
    value = _other_value(spec)
    assert value != spec.default
    assert parse_train(*_option(spec, value)) == TrainConfig().replace(**{spec.name: value})


def test_all_options_at_once_make_one_config():
    values = {spec.name: _other_value(spec) for spec in SETTINGS}
    args = [arg for spec in SETTINGS for arg in _option(spec, values[spec.name])]
    assert parse_train(*args) == TrainConfig(**values)


def test_tricks_that_had_no_option_now_reach_the_config():
    cfg = parse_train("--precision", "fp32", "--tta", "--ema", "--alternate-flip", "--ema-decay", "0.95",
                      "--whiten-init", "--whiten-bias-epochs", "1", "--bias-lr-scale", "64", "--crop-padding", "2")
    assert (cfg.precision, cfg.tta, cfg.ema, cfg.alternate_flip) == ("fp32", True, True, True)
    assert (cfg.ema_decay, cfg.whiten_init, cfg.whiten_bias_epochs, cfg.bias_lr_scale, cfg.crop_padding) == (
        0.95, True, 1, 64.0, 2)


def test_presets_demo_dry_run_and_all_set_the_starting_point():
    assert parse_train("--preset", "cpu_cnn") == PRESETS["cpu_cnn"].config
    assert parse_train("--preset", "fast_mlp", "--no-augment").augment is False
    assert parse_train("--preset", "cpu_cnn", "--epochs", "2") == PRESETS["cpu_cnn"].config.replace(epochs=2)
    assert parse_train("--demo").dataset == "synthetic" == parse_train("--dataset", "synthetic").dataset
    assert parse_train("--dry-run") == TrainConfig.smoke()
    assert parse_train("--dry-run", "--train-subset", "all", "--test-subset", "ALL").train_subset is None
    assert parse_train("--dry-run", "--train-subset", "all", "--test-subset", "ALL").test_subset is None
    assert parse_train() == TrainConfig()


def _missing_device() -> str:
    missing = [d for d in ("cuda", "mps") if d not in available_devices()]
    if not missing:
        pytest.skip("every device is present here")
    return missing[0]


def test_a_device_this_machine_lacks_is_one_line_and_no_run():
    missing = _missing_device()
    result = cli("train", "--dry-run", "--device", missing)
    assert result.returncode == 2
    assert_one_line_error(result, f"--device (device): device '{missing}' is not available on this machine",
                          'choose "auto"')
    assert len(result.stderr.strip().splitlines()) == 1
    assert RunStore().list_runs() == []


def test_a_stored_run_on_a_device_this_machine_lacks_fails_with_the_reason(capsys):
    missing = _missing_device()
    store = RunStore()
    run = store.create_run(TrainConfig.smoke(device=missing), name="from the gpu box")  # readable here
    assert main(["train", "--run", str(run.id), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert f"device {missing} (not on this machine)" in out
    assert err.startswith(f"error: device '{missing}' is not available on this machine")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    failed = store.get(run.id)
    assert failed.status == "failed" and "not available on this machine" in failed.message
