"""`python -m core`: one-line errors without tracebacks, a tiny demo run with the tutorial's lines."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.runs.store import RunStore

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
])
def test_more_bad_arguments_through_main(args, fragments, capsys):
    from core.cli import main  # what `python -m core` calls, in this process for speed

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
