"""`python -m core …`: train, prepare data, list runs, all from a terminal.

    python -m core train --preset fast_mlp                 # CIFAR-10 (downloads it when online)
    python -m core train --demo --epochs 2 --lr 3e-4       # the synthetic demo set, tutorial recipe
    python -m core train --dry-run                         # TrainConfig.smoke(): a few seconds
    python -m core train --run 3 --resume                  # continue stored run #3
    python -m core data [--demo] [--data-root DIR]         # show (and fetch) the data
    python -m core runs                                    # the run store, newest first
    python -m core control --run 3 --lr-factor 0.5         # change a running run (also --lr X,
                                                           # --epochs N, --stop-at-epoch-end)
    python -m core lr-find --preset fast_mlp --demo        # the learning-rate finder (no run stored)

Every training run is stored (settings.runs_dir(), or --runs-dir) exactly like one started from
the dashboard, so the dashboard shows it live. Errors a user can fix (a bad value, missing data, a
run in the wrong state) print one line to stderr and exit non-zero, without a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Sequence

from core.text import format_duration

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
TRAIN_USAGE = ("%(prog)s [--preset NAME | --dry-run] [--demo] [--SETTING VALUE ...] [--name NAME]\n"
               "       %(prog)s --run ID [--resume]")


class UsageError(Exception):
    """A bad command line (printed as one line, exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise UsageError(f"{message} (see `python -m core {self.prog.split()[-1]} --help`)"
                         if " " in self.prog else f"{message} (see `python -m core --help`)")


def build_parser() -> argparse.ArgumentParser:
    from core.train.config import field_spec

    parser = _Parser(prog="python -m core", description="CIFAR Lab from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="{train,data,runs,control,lr-find}", parser_class=_Parser)

    train = sub.add_parser("train", help="train a model (stored as a run the dashboard shows)", usage=TRAIN_USAGE,
                           description="Train a model on CIFAR-10 or the synthetic demo set. Without "
                           "--preset the tutorial's recipe (the defaults shown below) is the starting point; "
                           "every setting given overrides it.")
    _add_config_options(train, preset_help="start from a named preset's settings (recorded with the run)",
                        demo_help="use the synthetic demo set (works offline); the same as --dataset synthetic",
                        dry_run_help="a tiny smoke run: 512 synthetic images, 1 epoch, CPU (settings still apply)")
    store = train.add_argument_group("run store and output")
    store.add_argument("--data-root", help="folder holding cifar-10-batches-py/ (with --demo: the synthetic set)")
    store.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")
    store.add_argument("--name", help="a name for the run")
    store.add_argument("--run", type=int, metavar="ID", help="train the stored run ID (as the dashboard does)")
    store.add_argument("--resume", action="store_true", help="with --run: continue from its last checkpoint")
    store.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")

    data_cmd = sub.add_parser("data", help="show where the data is; download CIFAR-10 when missing",
                              description="Show the dataset's folder and size; download CIFAR-10 when it "
                              "is missing and downloads are allowed; --demo writes the synthetic set.")
    data_cmd.add_argument("--demo", action="store_true", help="the synthetic demo set instead of CIFAR-10")
    data_cmd.add_argument("--data-root", help="folder holding (or to hold) cifar-10-batches-py/")

    runs_cmd = sub.add_parser("runs", help="list stored runs", description="List the run store, newest first.")
    runs_cmd.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")

    control = sub.add_parser("control", help="change a queued or running run (learning rate, epochs, stop)",
                             description="Ask a run's trainer for a change; it applies it between two steps "
                             "and records the step (the Training page marks it on the charts). Without a "
                             "change: list the run's changes.")
    control.add_argument("--run", type=int, metavar="ID", required=True, help="the run to change")
    control.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")
    change = control.add_mutually_exclusive_group()
    lr, epochs = field_spec("lr"), field_spec("epochs")
    change.add_argument("--lr-factor", type=float, metavar="X",
                        help="multiply the learning rate by X (e.g. 0.5); the schedule's shape continues")
    change.add_argument("--lr", type=float, metavar="X", help=f"set the learning rate (the schedule's peak) to X "
                        f"[{lr.range_text()}]")
    change.add_argument("--epochs", type=int, metavar="N", help=f"make the run N epochs long; the rest of the "
                        f"schedule is stretched or squeezed from now on [{epochs.range_text()}]")
    change.add_argument("--stop-at-epoch-end", action="store_true",
                        help="finish the epoch in progress (test, checkpoints), then stop; Resume continues")

    finder = sub.add_parser("lr-find", help="find a learning rate: a short test run, nothing stored",
                            description="Take at most 300 steps with the learning rate rising exponentially "
                            "from 1e-7 to 10 (stopping when the loss explodes) and suggest the rate where the "
                            "smoothed loss falls fastest. No run is stored.")
    fstart = _add_config_options(finder, preset_help="start from a named preset's settings",
                                 demo_help="use the synthetic demo set (works offline)", dry_run_help=argparse.SUPPRESS)
    fstart.add_argument("--config-file", metavar="FILE", help="a TrainConfig as JSON (what the dashboard passes)")
    fout = finder.add_argument_group("output")
    fout.add_argument("--data-root", help="folder holding cifar-10-batches-py/ (with --demo: the synthetic set)")
    fout.add_argument("--out", metavar="FILE", help="write progress and the result to this JSON file")
    fout.add_argument("--max-steps", type=int, default=300, metavar="N", help="at most N steps [default: 300]")
    return parser


def _add_setting(group, spec) -> None:
    """One TrainConfig field as an option: --batch-size N, --augment/--no-augment, --train-subset N|all."""
    options: dict[str, Any] = dict(dest=spec.name, default=argparse.SUPPRESS, help=_setting_help(spec))
    if spec.kind == "bool":
        options["action"] = argparse.BooleanOptionalAction
    elif spec.kind == "choice":
        options["choices"] = spec.choices
    elif spec.kind == "int":
        options.update(type=int, metavar="N")  # argparse then says "invalid int value: 'abc'"
    elif spec.kind == "float":
        options.update(type=float, metavar="X")
    elif spec.kind == "optional_int":
        options.update(type=_whole_number_or(spec.none_means), metavar=f"N|{spec.none_means}")
    else:
        options["metavar"] = "TEXT"
    group.add_argument(spec.flag, **options)


def _add_config_options(parser: argparse.ArgumentParser, *, preset_help: str, demo_help: str,
                        dry_run_help: str) -> argparse._ArgumentGroup:
    """The starting-point options (--preset, --demo, --dry-run) and one option per TrainConfig
    field, grouped as the config groups them; returns the starting-point group."""
    from core.train.config import GROUPS, PRESETS, config_fields

    start = parser.add_argument_group("starting point")
    start.add_argument("--preset", choices=list(PRESETS), default=argparse.SUPPRESS, help=preset_help)
    start.add_argument("--demo", action="store_true", help=demo_help)
    start.add_argument("--dry-run", action="store_true", help=dry_run_help)
    groups = {group: parser.add_argument_group(f"settings: {group.lower()}") for group in GROUPS}
    for spec in config_fields():
        if spec.name != "preset":  # --preset above: it also picks the starting point
            _add_setting(groups[spec.group], spec)
    return start


def _setting_help(spec) -> str:
    """'How many images each optimiser step learns from. [images; >= 1; default: 16]'."""
    values = spec.range_text()
    if spec.kind == "optional_int":
        values = f"{values} or {spec.none_means}"
    default = ("on" if spec.default else "off") if spec.kind == "bool" else spec.show(spec.default)
    details = "; ".join(filter(None, (spec.unit, values, f"default: {default}")))
    return f"{spec.help} [{details}]".replace("%", "%%")


def _whole_number_or(word: str):
    """An argparse type: a whole number, or `word` (e.g. 'all') for None."""
    def parse(text: str) -> int | None:
        if text.strip().lower() == word:
            return None
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number or '{word}', got {text!r}") from None

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    from core.train.config import ConfigError
    from core.data import DataError
    from core.runs.store import RunError
    from core.train.checkpoints import CheckpointError
    from core.train.device import DeviceError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return {"train": cmd_train, "data": cmd_data, "runs": cmd_runs, "control": cmd_control,
                "lr-find": cmd_lr_find}[args.command](args)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except ConfigError as exc:
        _error(_config_message(exc))
        return EXIT_USAGE
    except (DataError, RunError, CheckpointError, DeviceError) as exc:
        _error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _config_message(exc) -> str:
    from core.train.config import config_fields

    known = {spec.name: spec.flag for spec in config_fields()}
    known.update(lr_factor="--lr-factor", stop_at_epoch_end="--stop-at-epoch-end")
    where = f"{known[exc.field]} ({exc.field})" if exc.field in known else exc.field
    return f"{where}: {exc.message}"


# ---- train ----------------------------------------------------------------------------------

def config_from_args(args: argparse.Namespace):
    """The TrainConfig the options describe (ConfigError names the bad field)."""
    from core.train.config import PRESETS, TrainConfig

    changes = _settings_given(args)
    preset = changes.pop("preset", None)
    if args.demo:
        if changes.get("dataset", "synthetic") != "synthetic":
            raise UsageError("--demo means --dataset synthetic; drop one of them")
        changes["dataset"] = "synthetic"
    if args.dry_run:
        base = TrainConfig.smoke()
    elif preset:
        base = PRESETS[preset].config
    else:
        base = TrainConfig()
    return base.replace(**changes) if changes else base


def _settings_given(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set on the command line (an option not given is absent from args)."""
    from core.train.config import config_fields

    return {spec.name: getattr(args, spec.name) for spec in config_fields() if hasattr(args, spec.name)}


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
        explicit = ["--" + name.replace("_", "-") for name in _settings_given(args)]
        explicit += ["--name"] if args.name is not None else []
        if explicit or args.demo or args.dry_run:
            raise UsageError("--run trains a stored run with its stored settings; "
                             f"drop {', '.join(explicit) or '--demo/--dry-run'}")
        run = store.get(args.run)
        _apply_data_root(args, run.config.dataset == "synthetic")
        resume = args.resume
    else:
        if args.resume:
            raise UsageError("--resume needs --run ID (the run to continue)")
        cfg = config_from_args(args)
        _check_device(cfg.device)
        _apply_data_root(args, cfg.dataset == "synthetic")
        _ensure_data(cfg.dataset)
        run = store.create_run(cfg, args.name, max_active=settings.max_active_runs())
        resume = False
    return _train(store, run, resume=resume, progress=not args.no_progress, run_stored=run_stored)


def _check_device(name: str) -> None:
    """Before a run is created: its device is here (else ConfigError naming --device, and no run)."""
    from core.train.config import ConfigError
    from core.train.device import DeviceError, resolve_device

    try:
        resolve_device(name)
    except DeviceError as exc:
        raise ConfigError("device", str(exc)) from None


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
    from core.train.device import describe_device, usable_devices

    dataset_label = kind_label(cfg.dataset)
    # A stored run recorded on a machine with another device: run_stored fails it, with the reason.
    device = describe_device(cfg.device) if cfg.device in usable_devices() else f"{cfg.device} (not on this machine)"
    print(f"Run #{run.id} '{run.name}': {cfg.model} on the {dataset_label}, {cfg.epochs} epochs, "
          f"batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g}, device {device}"
          + (" (resuming)" if resume else ""), flush=True)
    print(f"Run folder: {store.run_dir(run.id)}", flush=True)

    def on_epoch(epoch: int, step: int, m: dict[str, float]) -> None:
        _write(f"Epoch {epoch}/{cfg.epochs}")
        _write("-" * 10)
        _write(f"train loss: {m['train_loss']:.4f} Acc: {m['train_acc']:.4f}")
        if "val_acc" in m:
            _write(f"validation loss: {m['val_loss']:.4f} Acc: {m['val_acc']:.4f}")
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
    if final.best_test_acc is not None and cfg.val_images:
        print(f"Best test Acc: {final.best_test_acc:.4f} (best.pt: the epoch with the highest validation accuracy, "
              f"{cfg.val_images:,} held-out training images)")
    elif final.best_test_acc is not None:
        print(f"Best test Acc: {final.best_test_acc:.4f} (best.pt: chosen by test accuracy, so optimistic; "
              f"--val-images N holds out a validation split to choose by; last.pt is the final model)")
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
    if store.read_only:
        print(f"note: {store.root} is read-only ({store.read_only}): listing only", file=sys.stderr)
    else:
        store.reconcile()
    runs, unreadable = store.list_runs(), store.unreadable_runs()
    if not runs and not unreadable:
        print(f"No runs yet in {store.root}. Start one with: python -m core train --demo --dry-run")
        return EXIT_OK
    header = f"{'id':>4}  {'status':<11} {'dataset':<9} {'best acc':>8}  {'by':<4} {'time':>8}  {'device':<18} name"
    print(header)
    for r in runs:
        acc = f"{100 * r.best_test_acc:.2f}%" if r.best_test_acc is not None else "–"
        by = "val" if r.config.val_images else "test"
        print(f"{r.id:>4}  {r.status:<11} {r.dataset_label:<9} {acc:>8}  {by:<4} {format_duration(r.train_seconds):>8}  "
              f"{(r.device or '–')[:18]:<18} {r.name}")
        for note in r.notes:
            print(f"      note: {note}")
    for bad in unreadable:
        print(f"{bad.id:>4}  run #{bad.id} '{bad.name}' cannot be read: {bad.reason}")
    print("best acc: the test accuracy of best.pt, chosen by (by) validation accuracy, or by test accuracy "
          "itself (optimistic) when the run has no validation split (--val-images)")
    return EXIT_OK


# ---- control --------------------------------------------------------------------------------

def cmd_control(args: argparse.Namespace) -> int:
    """Request one change of a run (an event row its trainer applies), or list its changes."""
    from core.runs.store import RunStore

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    if not store.read_only:
        store.reconcile()
    if args.lr_factor is not None:
        kind, value = "lr_factor", args.lr_factor
    elif args.lr is not None:
        kind, value = "lr", args.lr
    elif args.epochs is not None:
        kind, value = "epochs", args.epochs
    elif args.stop_at_epoch_end:
        kind, value = "stop_at_epoch_end", None
    else:
        run = store.get(args.run)
        events = store.events(run.id)
        if not events:
            print(f"Run {run.label} has no changes.")
        for e in events:
            where = f"applied after step {e.step} (epoch {e.epoch})" if not e.pending else "waiting"
            print(f"{e.id:>4}  {e.text:<20} {where}" + (f" – {e.note}" if e.note else ""))
        return EXIT_OK
    event = store.request_control(args.run, kind, value)
    run = store.get(args.run)
    print(f"Requested {event.text} for run {run.label}; its trainer applies it between two steps "
          f"(event #{event.id}: `python -m core control --run {run.id}` lists the changes).")
    return EXIT_OK


# ---- lr-find --------------------------------------------------------------------------------

def cmd_lr_find(args: argparse.Namespace) -> int:
    """The learning-rate finder for the settings given; prints the suggestion (nothing is stored)."""
    from core import data
    from core.train.config import TrainConfig
    from core.train.lr_finder import SUGGESTION_RULE, find_lr, run_to_file

    if args.config_file:
        from pathlib import Path
        cfg = TrainConfig.from_json(Path(args.config_file).read_text())
        changes = _settings_given(args)
        cfg = cfg.replace(**changes) if changes else cfg
    else:
        cfg = config_from_args(args)
    if not 1 <= args.max_steps <= 10_000:
        raise UsageError(f"--max-steps must be between 1 and 10000, got {args.max_steps}")
    _check_device(cfg.device)
    _apply_data_root(args, cfg.dataset == "synthetic")
    dataset = data.load_dataset(cfg.dataset)
    print(f"Learning-rate finder: {cfg.model}, {cfg.optimizer}, batch {cfg.batch_size} on the "
          f"{data.kind_label(cfg.dataset)} (at most {args.max_steps} steps, rate 1e-7 -> 10)", flush=True)
    if args.out:
        result = run_to_file(cfg, dataset, args.out, max_steps=args.max_steps)
    else:
        result = find_lr(cfg, dataset, max_steps=args.max_steps)
    print(f"{len(result.lrs)} steps in {format_duration(result.seconds)} ({result.ended}); loss from "
          f"{result.smoothed[0]:.3f} to a lowest {min(result.smoothed):.3f} (smoothed)")
    if result.suggestion is None:
        print("No suggestion: the loss never fell clearly. Try a smaller batch or another optimizer.")
    else:
        print(f"Suggested learning rate: {result.suggestion:.3g} ({SUGGESTION_RULE})")
        print(f"Train with it: python -m core train ... --lr {result.suggestion:.3g}")
    return EXIT_OK
