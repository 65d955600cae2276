"""`python -m core …`: train, prepare data, list runs, all from a terminal.

    python -m core train --preset fast_mlp                 # CIFAR-10 (downloads it when online)
    python -m core train --demo --epochs 2 --lr 3e-4       # the synthetic demo set, tutorial recipe
    python -m core train --dry-run                         # TrainConfig.smoke(): a few seconds
    python -m core train --run 3 --resume                  # continue stored run #3
    python -m core data [--demo] [--data-root DIR]         # show (and fetch) the data
    python -m core runs                                    # the run store, newest first

Every training run is stored (settings.runs_dir(), or --runs-dir) exactly like one started from
the dashboard, so the dashboard shows it live. Errors a user can fix (a bad value, missing data, a
run in the wrong state) print one line to stderr and exit non-zero, without a traceback.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, Sequence

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

# option name -> TrainConfig field
TRAIN_OPTIONS = {
    "model": "model", "optimizer": "optimizer", "lr": "lr", "schedule": "schedule", "warmup": "warmup",
    "batch_size": "batch_size", "epochs": "epochs", "weight_decay": "weight_decay", "momentum": "momentum",
    "label_smoothing": "label_smoothing", "augment": "augment", "seed": "seed", "device": "device",
    "train_subset": "train_subset", "test_subset": "test_subset", "log_every": "log_every",
}


class UsageError(Exception):
    """A bad command line (printed as one line, exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise UsageError(f"{message} (see `python -m core {self.prog.split()[-1]} --help`)"
                         if " " in self.prog else f"{message} (see `python -m core --help`)")


def build_parser() -> argparse.ArgumentParser:
    from core.train.config import DEVICES, OPTIMIZERS, PRESETS, SCHEDULES
    from core.train.models import MODELS

    parser = _Parser(prog="python -m core", description="CIFAR Lab from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="{train,data,runs}", parser_class=_Parser)

    train = sub.add_parser("train", help="train a model (stored as a run the dashboard shows)",
                           description="Train a model on CIFAR-10 or the synthetic demo set. Without "
                           "--preset the tutorial's recipe is the starting point; options override it.")
    train.add_argument("--preset", choices=list(PRESETS), help="start from a named preset")
    train.add_argument("--model", choices=list(MODELS))
    train.add_argument("--optimizer", choices=list(OPTIMIZERS))
    train.add_argument("--lr", type=float, help="(peak) learning rate")
    train.add_argument("--schedule", choices=list(SCHEDULES))
    train.add_argument("--warmup", type=float, help="fraction of steps spent warming up")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--momentum", type=float)
    train.add_argument("--label-smoothing", type=float)
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random crop + horizontal flip of training images")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", choices=list(DEVICES))
    train.add_argument("--train-subset", type=int, help="use only the first N training images")
    train.add_argument("--test-subset", type=int, help="evaluate on the first N test images")
    train.add_argument("--log-every", type=int, help="optimiser steps between loss reports")
    train.add_argument("--demo", action="store_true", help="use the synthetic demo set (works offline)")
    train.add_argument("--dry-run", action="store_true",
                       help="a tiny smoke run: 512 synthetic images, 1 epoch, CPU (options still apply)")
    train.add_argument("--data-root", help="folder holding cifar-10-batches-py/ (with --demo: the synthetic set)")
    train.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")
    train.add_argument("--name", help="a name for the run")
    train.add_argument("--run", type=int, metavar="ID", help="train the stored run ID (as the dashboard does)")
    train.add_argument("--resume", action="store_true", help="with --run: continue from its last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")

    data_cmd = sub.add_parser("data", help="show where the data is; download CIFAR-10 when missing",
                              description="Show the dataset's folder and size; download CIFAR-10 when it "
                              "is missing and downloads are allowed; --demo writes the synthetic set.")
    data_cmd.add_argument("--demo", action="store_true", help="the synthetic demo set instead of CIFAR-10")
    data_cmd.add_argument("--data-root", help="folder holding (or to hold) cifar-10-batches-py/")

    runs_cmd = sub.add_parser("runs", help="list stored runs", description="List the run store, newest first.")
    runs_cmd.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from core.train.config import ConfigError
    from core.data import DataError
    from core.runs.store import RunError
    from core.train.checkpoints import CheckpointError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return {"train": cmd_train, "data": cmd_data, "runs": cmd_runs}[args.command](args)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except ConfigError as exc:
        _error(_config_message(exc))
        return EXIT_USAGE
    except (DataError, RunError, CheckpointError) as exc:
        _error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _config_message(exc) -> str:
    flag = "--" + exc.field.replace("_", "-")
    known = {v for v in TRAIN_OPTIONS.values()}
    where = f"{flag} ({exc.field})" if exc.field in known else exc.field
    return f"{where}: {exc.message}"


# ---- train ----------------------------------------------------------------------------------

def config_from_args(args: argparse.Namespace):
    """The TrainConfig the options describe (ConfigError names the bad field)."""
    from core.train.config import PRESETS, TrainConfig

    if args.dry_run:
        base = TrainConfig.smoke()
    elif args.preset:
        base = PRESETS[args.preset].config
    else:
        base = TrainConfig()
    changes: dict[str, Any] = {}
    for option, fieldname in TRAIN_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            changes[fieldname] = value
    if args.demo:
        changes["dataset"] = "synthetic"
    return base.replace(**changes) if changes else base


def _apply_data_root(args: argparse.Namespace, synthetic: bool) -> None:
    if args.data_root:
        var = "CIFARLAB_SYNTHETIC_ROOT" if synthetic else "CIFAR10_ROOT"
        os.environ[var] = str(os.path.abspath(os.path.expanduser(args.data_root)))


def cmd_train(args: argparse.Namespace) -> int:
    from core import settings
    from core.runs.store import RunStore
    from core.runs.worker import run_stored

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    if args.run is not None:
        explicit = [o for o in (*TRAIN_OPTIONS, "preset", "name") if getattr(args, o) is not None]
        if explicit or args.demo or args.dry_run:
            raise UsageError("--run trains a stored run with its stored settings; "
                             f"drop {', '.join('--' + o.replace('_', '-') for o in explicit) or '--demo/--dry-run'}")
        run = store.get(args.run)
        _apply_data_root(args, run.config.dataset == "synthetic")
        resume = args.resume
    else:
        if args.resume:
            raise UsageError("--resume needs --run ID (the run to continue)")
        cfg = config_from_args(args)
        _apply_data_root(args, cfg.dataset == "synthetic")
        _ensure_data(cfg.dataset)
        run = store.create_run(cfg, args.name, max_active=settings.max_active_runs())
        resume = False
    return _train(store, run, resume=resume, progress=not args.no_progress, run_stored=run_stored)


def _ensure_data(kind: str) -> None:
    """Before a run is created: CIFAR-10 present, or downloaded now (with a progress bar)."""
    from core import data, settings

    if kind != "cifar10" or data.cifar10_status(settings.data_root()).present:
        return
    data.load_cifar10(settings.data_root(), download=True, progress=_download_bar())


def _download_bar():
    from tqdm.auto import tqdm

    bar: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total or None, unit="B", unit_scale=True, desc="CIFAR-10")
        bar["bar"].n = done
        bar["bar"].refresh()
        if total and done >= total:
            bar["bar"].close()

    return progress


def _train(store, run, *, resume: bool, progress: bool, run_stored) -> int:
    cfg = run.config
    from core.data import kind_label
    from core.train.device import describe_device

    dataset_label = kind_label(cfg.dataset)
    try:
        device = describe_device(cfg.device)
    except ValueError:  # a run recorded on another machine: the trainer fails it with the reason
        device = cfg.device
    print(f"Run #{run.id} '{run.name}': {cfg.model} on the {dataset_label}, {cfg.epochs} epochs, "
          f"batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g}, device {device}"
          + (" (resuming)" if resume else ""), flush=True)
    print(f"Run folder: {store.run_dir(run.id)}", flush=True)

    def on_epoch(epoch: int, step: int, m: dict[str, float]) -> None:
        _write(f"Epoch {epoch}/{cfg.epochs}")
        _write("-" * 10)
        _write(f"train loss: {m['train_loss']:.4f} Acc: {m['train_acc']:.4f}")
        _write(f"test loss: {m['test_loss']:.4f} Acc: {m['test_acc']:.4f}   "
               f"({m['images_per_sec']:.0f} images/s, step {step})")
        _write("")

    started = time.perf_counter()
    result = run_stored(store, run.id, resume=resume, progress=progress, on_epoch=on_epoch)
    took = time.perf_counter() - started
    final = store.get(run.id)
    if result.status == "completed":
        print(f"Training complete in {format_duration(took)}")
    else:
        print(f"Training {result.status} after {format_duration(took)}: {result.message}")
    if final.best_test_acc is not None:
        print(f"Best test Acc: {final.best_test_acc:.4f}")
    if final.final_test_acc is not None:
        print(f"Final test accuracy: {100 * final.final_test_acc:.2f}% (test split of the {kind_label(cfg.dataset)})")
    if result.status == "stopped":
        print(f"Resume with: python -m core train --run {run.id} --resume --runs-dir {store.root}")
    return EXIT_OK if result.status in ("completed", "stopped") else EXIT_ERROR


def _write(line: str) -> None:
    try:
        from tqdm.auto import tqdm
        tqdm.write(line)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(line)
    sys.stdout.flush()


def format_duration(seconds: float) -> str:
    """'1m 23s', as the tutorial prints it (hours when needed)."""
    seconds = max(0.0, float(seconds))
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m}m {s}s" if h else f"{m}m {s}s"


# ---- data -----------------------------------------------------------------------------------

def cmd_data(args: argparse.Namespace) -> int:
    from core import data, settings

    _apply_data_root(args, args.demo)
    if args.demo:
        ds = data.load_synthetic(settings.synthetic_root())
    else:
        status = data.cifar10_status(settings.data_root())
        print(status.message)
        ds = data.load_cifar10(settings.data_root(), download=not settings.offline(), progress=_download_bar())
    print(f"{ds.label} in {ds.root}: {len(ds.train.labels)} training and {len(ds.test.labels)} test images, "
          f"classes: {', '.join(ds.classes)}")
    if getattr(ds, "note", ""):
        print(f"note: {ds.note}")
    return EXIT_OK


# ---- runs -----------------------------------------------------------------------------------

def cmd_runs(args: argparse.Namespace) -> int:
    from core.runs.store import RunStore

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    store.reconcile()
    runs = store.list_runs()
    if not runs:
        print(f"No runs yet in {store.root}. Start one with: python -m core train --demo --dry-run")
        return EXIT_OK
    header = f"{'id':>4}  {'status':<11} {'dataset':<9} {'best acc':>8}  {'time':>8}  {'device':<18} name"
    print(header)
    for r in runs:
        acc = f"{100 * r.best_test_acc:.2f}%" if r.best_test_acc is not None else "–"
        print(f"{r.id:>4}  {r.status:<11} {r.dataset_label:<9} {acc:>8}  {format_duration(r.train_seconds):>8}  "
              f"{(r.device or '–')[:18]:<18} {r.name}")
    return EXIT_OK
