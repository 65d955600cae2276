"""Data-parallel runs (core.train.distributed) on the CPU with gloo and 2 processes under torchrun.

The process tests start real torchrun process groups through the same paths a user takes
(`python -m core train --nproc 2`, jobs.start_run / resume_run from the dashboard), on small
synthetic subsets; the others check the pieces without a process group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core import cli
from core.runs import jobs
from core.runs.store import RunStore, process_alive
from core.train import batches, distributed
from core.train.checkpoints import load_checkpoint
from core.train.config import ConfigError, TrainConfig
from core.train.distributed import ShardedBatches, World
from core.train.engine import fit

WAIT_S = 240          # a torchrun start under a loaded 2-core machine can take a while
KILL_TIMEOUT_S = 20   # the process group's timeout in the kill test (CIFARLAB_DIST_TIMEOUT_S)
# After a rank is killed: the others notice at their next collective (at most the timeout),
# then torchrun ends what is left (its 30 s grace at most); the run is recorded at once.
KILL_BOUND_S = KILL_TIMEOUT_S + 30 + 15


def _cfg(**changes) -> TrainConfig:
    """fp32 MLP on 512 synthetic images, augmented: 8 steps of 64 images per epoch. SGD: its step
    is proportional to the gradient, so float rounding stays rounding (Adam divides tiny
    gradients by their own size, which turns last-bit differences into lr-sized ones)."""
    base = TrainConfig.smoke(precision="fp32", augment=True, crop_padding=2, log_every=4, seed=3,
                             optimizer="sgd", lr=0.05, momentum=0.9)
    return base.replace(**changes)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model_state"]


def _assert_close(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key in a:
        diff = (a[key].double() - b[key].double()).abs().max().item()
        assert diff <= atol, f"{key}: largest difference {diff:.3g}"


def _wait(condition, what: str, timeout: float = WAIT_S, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _cli(*args: str, runs_dir: Path, timeout: float = WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "train", *args, "--runs-dir", str(runs_dir), "--no-progress"],
                          capture_output=True, text=True, timeout=timeout)


def _rank_pids(run_id: int, *, launcher: bool = False) -> dict[int, int]:
    """{rank: pid} of the trainer processes torchrun started for `run_id` (from /proc); with
    `launcher`, torchrun itself too (as rank -1)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
            env = dict(line.split(b"=", 1) for line in (entry / "environ").read_bytes().split(b"\0") if b"=" in line)
        except OSError:
            continue
        if b"--run" not in words or str(run_id).encode() not in words:
            continue
        if b"torch.distributed.run" in words:
            if launcher:
                found[-1] = int(entry.name)
        elif b"RANK" in env:
            found[int(env[b"RANK"])] = int(entry.name)
    return found


# ---- the pieces --------------------------------------------------------------------------------

def test_the_slices_of_every_rank_make_up_the_one_process_batch():
    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(96) % 10
    kwargs = dict(shuffle=True, drop_last=True, augment=True, crop_padding=2, alternate_flip=True, flip_seed=5)
    whole = batches.BatchIterator(images, labels, 32, generator=torch.Generator().manual_seed(7), **kwargs)
    shards = [ShardedBatches(images, labels, 32, generator=torch.Generator().manual_seed(7),
                             world=World(rank, 2, rank, 2, "gloo", torch.device("cpu")), **kwargs) for rank in range(2)]
    assert len(shards[0]) == len(whole) == 3
    for epoch in range(2):   # alternate flips: odd epochs mirror the other way
        expected = list(whole.epoch(epoch_index=epoch))
        parts = [list(s.epoch(epoch_index=epoch)) for s in shards]
        for b, (x, y) in enumerate(expected):
            assert torch.equal(torch.cat([parts[0][b][0], parts[1][b][0]]), x)
            assert torch.equal(torch.cat([parts[0][b][1], parts[1][b][1]]), y)
        assert torch.equal(shards[0].get_state(), whole.get_state())   # checkpoints resume at any N


def test_processes_must_split_the_batch_and_fit_the_machine(tmp_path, capsys):
    distributed.check_processes(2, "cpu", 64)
    with pytest.raises(ConfigError, match="must divide the batch size") as err:
        distributed.check_processes(3, "cpu", 64)        # 64 images do not split in 3
    assert err.value.field == "nproc"
    runs = tmp_path / "runs"                             # the CLI refuses before storing anything
    assert cli.main(["train", "--dry-run", "--nproc", "3", "--runs-dir", str(runs)]) == cli.EXIT_USAGE
    assert "--nproc (nproc): must divide the batch size (64 images" in capsys.readouterr().err
    assert RunStore(runs).list_runs() == []
    too_many = distributed.max_processes("cpu") * 2
    with pytest.raises(ConfigError, match="CPU cores: choose at most"):
        distributed.check_processes(too_many, "cpu", 64 * too_many)


def test_the_torchrun_command_passes_run_to_the_trainer_not_to_torchrun():
    from torch.distributed.run import get_args_parser

    cmd = distributed.torchrun_command(7, "/shared/runs", 2, resume=True)
    args = get_args_parser().parse_args(cmd[3:])         # torchrun's own parser, as torchrun reads it
    assert args.nproc_per_node == "2" and args.standalone and args.module
    assert args.training_script == "core"
    assert args.training_script_args == ["train", "--run", "7", "--runs-dir", "/shared/runs", "--resume"]
    several = distributed.multinode_command(7, "/shared/runs", nnodes=2, nproc_per_node=4, endpoint="node1:29500")
    args = get_args_parser().parse_args(several.split()[1:])
    assert (args.nnodes, args.nproc_per_node, args.rdzv_backend, args.rdzv_endpoint) == ("2", "4", "c10d", "node1:29500")
    assert args.training_script_args[:3] == ["train", "--run", "7"]


def test_several_machines_get_the_command_to_type(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = cli.main(["train", "--dry-run", "--nproc", "4", "--nnodes", "2", "--rdzv-endpoint", "head:29400",
                     "--runs-dir", str(runs)])
    assert code == cli.EXIT_OK
    out = capsys.readouterr().out
    run = RunStore(runs).list_runs()[0]
    assert run.status == "stopped" and run.config.nproc == 4
    assert (f"torchrun --nnodes 2 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint head:29400 "
            f"--rdzv-id cifarlab-run-{run.id} -m core -- train --run {run.id} --runs-dir {runs} --resume") in out


# ---- real process groups ------------------------------------------------------------------------

def test_two_processes_take_the_same_steps_as_one_with_the_same_global_batch(tmp_path, synthetic_dataset):
    runs = tmp_path / "runs"
    done = _cli("--dry-run", "--precision", "fp32", "--augment", "--crop-padding", "2", "--log-every", "4",
                "--seed", "3", "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--nproc", "2",
                runs_dir=runs)
    assert done.returncode == 0, done.stdout + done.stderr
    run = RunStore(runs).list_runs()[0]
    assert run.status == "completed" and run.config.nproc == 2
    assert run.device.startswith("2 processes × cpu (gloo")
    assert load_checkpoint(run.dir / "last.pt")["processes"] == 2
    one = fit(_cfg(), synthetic_dataset, tmp_path / "one")
    assert one.step == run.final_metrics["step"] == 8
    _assert_close(_weights(run.dir / "last.pt"), _weights(tmp_path / "one" / "last.pt"))
    # Test evaluation is sharded and gathered: the same figures as one process computes.
    assert run.final_test_acc == pytest.approx(one.final["test_acc"], abs=1e-9)
    assert run.final_metrics["test_loss"] == pytest.approx(one.final["test_loss"], abs=1e-5)
    assert run.final_metrics["train_loss"] == pytest.approx(one.final["train_loss"], abs=1e-5)


def test_a_two_process_run_stops_and_resumes_with_two_then_one_process(tmp_path, synthetic_dataset):
    store = RunStore(tmp_path / "runs")
    cfg = _cfg(epochs=3, nproc=2, train_subset=640)      # 10 steps an epoch, 30 in all; stops agreed every 8
    run = jobs.start_run(store, cfg, name="ddp")
    store.request_stop(run.id)                           # read at the first agreement: step 8
    _wait(lambda: store.get(run.id).status == "stopped", "the first stop")
    first = load_checkpoint(run.dir / "last.pt")
    assert (first["step"], first["step_in_epoch"], first["processes"]) == (8, 8, 2)

    jobs.resume_run(store, run.id)                       # again on 2 processes (the run's nproc)
    store.request_stop(run.id)
    _wait(lambda: store.get(run.id).status == "stopped", "the second stop")
    second = load_checkpoint(run.dir / "last.pt")
    assert (second["epoch"], second["step"], second["step_in_epoch"]) == (1, 16, 6)   # mid-epoch 2
    _wait(lambda: not process_alive(store.get(run.id).pid), "the trainers to exit", timeout=60)

    code = cli.main(["train", "--run", str(run.id), "--resume", "--nproc", "1",
                     "--runs-dir", str(store.root), "--no-progress"])   # the rest on one process
    assert code == cli.EXIT_OK
    done = store.get(run.id)
    assert done.status == "completed" and done.final_metrics["step"] == 30

    fit(cfg.replace(nproc=1), synthetic_dataset, tmp_path / "one")   # uninterrupted, one process
    _assert_close(_weights(run.dir / "last.pt"), _weights(tmp_path / "one" / "last.pt"))
    steps = store.metrics(run.id).query("name == 'train_loss'")["step"].tolist()
    assert steps == list(range(4, 29, 4))   # every 4 steps across the three sessions, no gap or repeat


def test_killing_one_rank_ends_the_run_within_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv(distributed.TIMEOUT_ENV, str(KILL_TIMEOUT_S))
    store = RunStore(tmp_path / "runs")
    run = jobs.start_run(store, _cfg(epochs=200, nproc=2, log_every=1), name="doomed")
    _wait(lambda: store.get(run.id).status == "running" and len(store.metrics(run.id)) > 10, "steps to be logged")
    pids = _wait(lambda: (p := _rank_pids(run.id)) and len(p) == 2 and p, "both ranks")
    killed = time.monotonic()
    os.kill(pids[1], signal.SIGKILL)
    ended = _wait(lambda: (r := store.get(run.id)).status not in ("running", "queued") and r,
                  "the run to end", timeout=KILL_BOUND_S)
    assert ended.status == "interrupted", ended.message
    assert "another training process ended or stopped answering" in ended.message
    _wait(lambda: not any(process_alive(p) for p in pids.values()) and not _rank_pids(run.id, launcher=True),
          "every process of the run to exit", timeout=KILL_BOUND_S - (time.monotonic() - killed))
    assert ended.can_resume
