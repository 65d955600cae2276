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
    python -m core queue [--cancel ID | --move-up ID]      # runs waiting for a slot, first in line first
    python -m core sweep --preset fast_mlp --demo --set seed=0,1,2 --set lr=1e-3,2e-3
                                                           # one queued run per combination
    python -m core sweep --show ID                         # a sweep: mean ± std over seeds per setting

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
    sub = parser.add_subparsers(dest="command", metavar="{train,data,runs,queue,control,lr-find,sweep}",
                                parser_class=_Parser)

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
    several = train.add_argument_group("several machines (--nproc: processes in all)")
    several.add_argument("--nnodes", type=int, metavar="M", help="store the run and print the torchrun command "
                         "to type on each of M machines (--nproc processes in all, split evenly); the runs "
                         "folder must be on a shared file system")
    several.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="with --nnodes: where the machines meet "
                         "(default: this machine's name, port 29500)")

    data_cmd = sub.add_parser("data", help="show where the data is; download CIFAR-10 when missing",
                              description="Show the dataset's folder and size; download CIFAR-10 when it "
                              "is missing and downloads are allowed; --demo writes the synthetic set.")
    data_cmd.add_argument("--demo", action="store_true", help="the synthetic demo set instead of CIFAR-10")
    data_cmd.add_argument("--data-root", help="folder holding (or to hold) cifar-10-batches-py/")

    runs_cmd = sub.add_parser("runs", help="list stored runs", description="List the run store, newest first.")
    runs_cmd.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")

    queue_cmd = sub.add_parser("queue", help="the runs waiting for a slot; cancel one or move it up",
                               description="Runs started while CIFARLAB_MAX_ACTIVE_RUNS runs train wait in line "
                               "and start by themselves when a slot frees. Without an option: list the line and "
                               "the runs holding a slot.")
    queue_cmd.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")
    move = queue_cmd.add_mutually_exclusive_group()
    move.add_argument("--cancel", type=int, metavar="ID", help="take waiting run ID out of the line (it becomes "
                      "stopped; resuming it puts it back at the end)")
    move.add_argument("--move-up", type=int, metavar="ID", help="move waiting run ID one place up the line")
    move.add_argument("--to-front", type=int, metavar="ID", help="move waiting run ID to the front of the line")

    sweep = sub.add_parser("sweep", help="one queued run per combination of one or two settings' values",
                           description="Start a sweep: a preset (and any settings given), and one run for every "
                           "combination of the values listed with --set (one or two settings, e.g. --set "
                           "seed=0,1,2 --set lr=1e-3,2e-3). The runs wait in the queue and start as slots and "
                           "devices free up. --show ID prints a sweep's summary: mean ± std over seeds per setting.")
    sweep_what = sweep.add_argument_group("sweep")
    sweep_what.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2,...", dest="sweep_set",
                            help="a setting and its values (once or twice)")
    sweep_what.add_argument("--name", help="a name for the sweep (its runs are named after it)")
    sweep_what.add_argument("--show", type=int, metavar="ID", help="print sweep ID's summary instead of starting one")
    sweep_what.add_argument("--list", action="store_true", help="list the sweeps")
    sweep_what.add_argument("--runs-dir", help="run store folder (default: CIFARLAB_RUNS_DIR or ./runs)")
    sweep_what.add_argument("--data-root", help="folder holding cifar-10-batches-py/ (with --demo: the synthetic set)")
    _add_config_options(sweep, preset_help="the preset every run starts from [default: fast_mlp]",
                        demo_help="use the synthetic demo set (works offline)", dry_run_help=argparse.SUPPRESS)

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
        argv = list(sys.argv[1:] if argv is None else argv)
        if argv[:1] == ["--"]:   # torchrun ... -m core -- train --run ID (see core.train.distributed)
            argv = argv[1:]
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return {"train": cmd_train, "data": cmd_data, "runs": cmd_runs, "control": cmd_control,
                "lr-find": cmd_lr_find, "queue": cmd_queue, "sweep": cmd_sweep}[args.command](args)
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

    from core.train import distributed

    if distributed.launched_by_torchrun():   # one of torchrun's processes (a data-parallel run)
        return _train_rank(args)
    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    if args.nnodes is not None:
        return _prepare_multinode(args, store)
    if args.run is not None:
        # --nproc M is allowed: the stored run continues (or starts) on M processes this time
        explicit = ["--" + name.replace("_", "-") for name in _settings_given(args) if name != "nproc"]
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
        distributed.check_processes(cfg.nproc, cfg.device, cfg.batch_size)
        _apply_data_root(args, cfg.dataset == "synthetic")
        _ensure_data(cfg.dataset)
        max_active = settings.max_active_runs()
        run = store.create_run(cfg, args.name, queue=True)
        claimed = _claim_for_this_process(store, run, max_active)
        if claimed is None:
            return _report_queued(store, store.get(run.id), max_active)
        run, resume = claimed, False
    nproc = getattr(args, "nproc", run.config.nproc)
    if nproc > 1:
        return _launch_torchrun(store, run, nproc, resume=resume)
    return _train(store, run, resume=resume, progress=not args.no_progress, run_stored=run_stored)


# ---- data-parallel runs (torchrun) ------------------------------------------------------------

def _launch_torchrun(store, run, nproc: int, *, resume: bool) -> int:
    """Train `run` on `nproc` processes of this machine: torchrun in the foreground (rank 0
    prints the epochs here). Ctrl+C asks for a stop that every rank agrees on; a second one
    makes torchrun end the processes."""
    import signal
    import subprocess

    from core import settings
    from core.train import distributed

    cfg = run.config
    distributed.check_processes(nproc, cfg.device, cfg.batch_size)
    cmd = distributed.torchrun_command(run.id, store.root, nproc, resume=resume)
    env = distributed.launch_env({**settings.child_env(), "PYTHONUNBUFFERED": "1"}, nproc, cfg.device)
    print(f"Run #{run.id}: {nproc} processes with torchrun: torchrun {' '.join(cmd[3:])}", flush=True)
    # Its own session: Ctrl+C reaches this process only, which turns it into a stop request.
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    asked = 0
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            asked += 1
            if asked == 1:
                try:
                    store.request_stop(run.id)
                    print("Stopping: every process stops after the same step and last.pt is saved "
                          "(Ctrl+C again ends the processes).", file=sys.stderr, flush=True)
                except Exception:
                    asked += 1
            if asked >= 2:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)   # torchrun passes it on, then kills after 30 s
                except ProcessLookupError:
                    pass
    store.reconcile()     # a rank 0 that died leaves the run `interrupted`
    final = store.get(run.id)
    print(f"Run #{run.id} is {final.status}" + (f": {final.message}" if final.message else "")
          + f" (torchrun exit code {code})", flush=True)
    return EXIT_OK if final.status in ("completed", "stopped") else EXIT_ERROR


def _train_rank(args: argparse.Namespace) -> int:
    """This process is one of torchrun's: rank 0 trains the stored run and talks to the store
    (printing as `train` does), the others follow it (core.runs.worker.train_distributed)."""
    from pathlib import Path

    from core import settings
    from core.runs.store import RunStore
    from core.runs.worker import train_distributed
    from core.train.config import TrainConfig
    from core.train.distributed import RankLostError, RankSetupError

    if args.run is None:
        raise UsageError("under torchrun, train a stored run: --run ID (`python -m core train --nproc N ...` "
                         "creates one and starts torchrun for it)")
    runs_dir = Path(args.runs_dir).expanduser().resolve() if args.runs_dir else settings.runs_dir()
    rank = int(os.environ["RANK"])
    try:
        if rank != 0:   # never opens the run store: rank 0 alone uses it
            cfg = TrainConfig.from_json((runs_dir / str(args.run) / "config.json").read_text())
            _apply_data_root(args, cfg.dataset == "synthetic")
            train_distributed(None, runs_dir, args.run, resume=args.resume, config=cfg)
            return EXIT_OK
        store = RunStore(runs_dir)
        run = store.get(args.run)
        _apply_data_root(args, run.config.dataset == "synthetic")

        def run_stored(store, run_id, **kwargs):
            return train_distributed(store, store.root, run_id, **kwargs)

        return _train(store, run, resume=args.resume, progress=not args.no_progress, run_stored=run_stored)
    except (RankLostError, RankSetupError) as exc:
        _error(f"process {rank}: {exc}")
        return EXIT_ERROR


def _prepare_multinode(args: argparse.Namespace, store) -> int:
    """--nnodes M: store the run (or take stored --run ID) and print what to type on each machine."""
    import socket

    from core.train import distributed

    nnodes = args.nnodes
    if nnodes < 1:
        raise UsageError(f"--nnodes must be at least 1, got {nnodes}")
    if args.run is not None:
        run = store.get(args.run)
        nproc = getattr(args, "nproc", run.config.nproc)
    else:
        cfg = config_from_args(args)
        _check_device(cfg.device)
        nproc = cfg.nproc
    if nproc % nnodes:
        raise UsageError(f"--nproc {nproc} (processes in all) must be a multiple of --nnodes {nnodes}")
    per_node = nproc // nnodes
    distributed.check_processes(nproc, (run.config if args.run is not None else cfg).device,
                                (run.config if args.run is not None else cfg).batch_size, per_machine=per_node)
    if args.run is None:
        run = store.create_run(cfg, args.name)
        store.set_status(run.id, "stopped", f"Waiting for {nnodes} machines to start it with torchrun.")
    endpoint = args.rdzv_endpoint or f"{socket.gethostname()}:29500"
    machines = f"{nnodes} machine{'s' if nnodes != 1 else ''}"
    print(f"Run #{run.id} '{run.name}' ({nproc} process{'es' if nproc != 1 else ''}: {per_node} on each of {machines}). "
          f"Type this on each machine (the runs folder {store.root} on a shared file system, the data on each):")
    print("  " + distributed.multinode_command(run.id, store.root, nnodes=nnodes, nproc_per_node=per_node,
                                               endpoint=endpoint))
    print("Global rank 0 writes the run store: start the dashboard on its machine (c10d gives rank 0 to the "
          "machine whose host name sorts first).")
    return EXIT_OK


def _claim_for_this_process(store, run, max_active: int):
    """Take `run` out of the line to train it here, when it is first and a slot and a device are
    free (the claim is one transaction: a page or a finishing trainer cannot take it too)."""
    from core.runs import jobs, queue

    store.reconcile(start_queued=False)
    gpus = queue.gpu_ids()
    claimed = store.claim_next(max_active, lambda r, held: queue.pick_device(r, held, gpus), only=run.id)
    if claimed is None:
        jobs.start_queued(store)  # runs ahead of it, when slots are free
        return None
    store.set_pid(run.id, os.getpid())
    queue.rebalance_threads(store)
    queue.use_device_here(claimed.devices, gpus)
    return store.get(run.id)


def _report_queued(store, run, max_active: int) -> int:
    if not run.waiting:  # a launcher took it up in the meantime: it trains in the background
        print(f"Run #{run.id} '{run.name}' trains in the background (log: {store.log_path(run.id)}); "
              f"follow it with `python -m core runs` or on the dashboard's Training page.")
        return EXIT_OK
    print(f"Run #{run.id} '{run.name}' is queued, {_ordinal(run.place)} in line: {len(store.slot_holders())} "
          f"run(s) hold the {max_active} slot(s) (CIFARLAB_MAX_ACTIVE_RUNS={max_active}). It starts by itself in "
          f"the background when a slot frees (log: {store.log_path(run.id)}); `python -m core queue` shows the "
          f"line, `python -m core queue --cancel {run.id}` takes it out.")
    return EXIT_OK


def _ordinal(n) -> str:
    from core.runs.store import ordinal

    return ordinal(n)


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
          + (f" × {os.environ['WORLD_SIZE']} processes" if "WORLD_SIZE" in os.environ else "")
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
    if final.final_test_acc is not None:
        print(f"Final test accuracy: {100 * final.final_test_acc:.2f}% (test split of the {kind_label(cfg.dataset)})")
    if not cfg.val_images and result.status == "completed":
        print("No validation split, so no best.pt: last.pt is the model (--val-images N holds out N training "
              "images to choose the best epoch by)")
    if result.status == "stopped":
        processes = f" --nproc {os.environ['WORLD_SIZE']}" if "WORLD_SIZE" in os.environ else ""
        print(f"Resume with: python -m core train --run {run.id} --resume{processes} --runs-dir {store.root}"
              + (" (or any --nproc that divides the batch size)" if processes else ""))
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
    header = (f"{'id':>4}  {'status':<20} {'dataset':<9} {'test acc':>8}  {'of':<4} {'time':>8}  {'holds':<7} "
              f"{'device':<18} name")
    print(header)
    for r in runs:
        model_acc = r.best_test_acc if r.config.val_images else r.final_test_acc
        acc = f"{100 * model_acc:.2f}%" if model_acc is not None else "–"
        by = "best" if r.config.val_images else "last"
        holds = (r.devices or "–") + (f"×{r.threads}" if r.devices == "cpu" and r.threads and r.is_active else "")
        print(f"{r.id:>4}  {r.status_text:<20} {r.dataset_label:<9} {acc:>8}  {by:<4} "
              f"{format_duration(r.train_seconds):>8}  {holds:<7} {(r.device or '–')[:18]:<18} {r.name}")
        for note in r.notes:
            print(f"      note: {note}")
    for bad in unreadable:
        print(f"{bad.id:>4}  run #{bad.id} '{bad.name}' cannot be read: {bad.reason}")
    print("test acc: the test accuracy of the run's model (of): best.pt, the epoch with the highest validation "
          "accuracy, with a validation split (--val-images); without one there is no best: last.pt")
    print("holds: the device a run was given when it left the queue (cpu×N: N CPU threads while it trains)")
    return EXIT_OK


# ---- queue ----------------------------------------------------------------------------------

def cmd_queue(args: argparse.Namespace) -> int:
    """List the line and the slot holders, or cancel / move up a waiting run."""
    from core import settings
    from core.runs import jobs
    from core.runs.store import RunStore, ordinal

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    if not store.read_only:
        store.reconcile()  # also starts waiting runs when slots are free
    if args.cancel is not None:
        run = jobs.cancel(store, args.cancel)
        print(f"Cancelled {run.label}: it is stopped; `python -m core train --run {run.id} --resume` or Resume on "
              "the Training page puts it back at the end of the line.")
        return EXIT_OK
    if args.move_up is not None or args.to_front is not None:
        run = jobs.move_up(store, args.move_up if args.move_up is not None else args.to_front,
                           to_front=args.to_front is not None)
        print(f"{run.label} is now {ordinal(run.place)} in line.")
        return EXIT_OK
    max_active = settings.max_active_runs()
    holders, waiting = store.slot_holders(), store.waiting_runs()
    print(f"{len(holders)} of {max_active} slot(s) in use (CIFARLAB_MAX_ACTIVE_RUNS={max_active})")
    for r in holders:
        threads = f", {r.threads} CPU thread(s)" if r.devices == "cpu" and r.threads else ""
        print(f"  {r.label}: {r.status} on {r.devices or r.device or '–'}{threads}")
    if not waiting:
        print("Nobody is waiting.")
    for r in waiting:
        print(f"{ordinal(r.place):>5}  {r.label} ({r.config.model}, {r.dataset_label}, device {r.config.device})")
    return EXIT_OK


# ---- sweep ----------------------------------------------------------------------------------

def cmd_sweep(args: argparse.Namespace) -> int:
    """Start a sweep (one queued run per combination), or show / list sweeps."""
    from core.runs import sweep as sweeps
    from core.runs.store import RunStore
    from core.train.config import ConfigError

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    if args.list:
        found = store.sweeps()
        if not found:
            print("No sweeps yet. Start one with: python -m core sweep --demo --set seed=0,1,2")
        for sw in found:
            runs = store.sweep_runs(sw.id)
            done = sum(r.status == "completed" for r in runs)
            axes = " × ".join(f"{name} ({len(values)})" for name, values in sw.axes)
            print(f"{sw.id:>4}  {sw.name}  [{sw.preset or 'custom'}: {axes}]  {done}/{len(runs)} completed")
        return EXIT_OK
    if args.show is not None:
        if not store.read_only:
            store.reconcile()
        return _print_sweep(sweeps.summarize(store, args.show))
    if not args.sweep_set:
        raise UsageError("give one or two settings to sweep, e.g. --set seed=0,1,2 --set lr=1e-3,2e-3")
    changes = _settings_given(args)
    preset = changes.pop("preset", "fast_mlp")
    if args.demo:
        if changes.get("dataset", "synthetic") != "synthetic":
            raise UsageError("--demo means --dataset synthetic; drop one of them")
        changes["dataset"] = "synthetic"
    try:
        axes = [sweeps.parse_axis(text) for text in args.sweep_set]
        plan = sweeps.plan_sweep(preset, axes, args.name, **changes)  # every combination checked first
    except ConfigError as exc:
        swept = {text.partition("=")[0].strip().lstrip("-").replace("-", "_") for text in args.sweep_set}
        if exc.field in swept or exc.field == "sweep":
            raise UsageError(f"--set {exc.field}: {exc.message}") from None
        raise
    _check_device(plan[0][1].device)
    _apply_data_root(args, plan[0][1].dataset == "synthetic")
    _ensure_data(plan[0][1].dataset)
    sweep, runs = sweeps.start_sweep(store, preset, axes, name=args.name, **changes)
    print(f"Sweep #{sweep.id} '{sweep.name}': {len(runs)} runs of {preset} on the {runs[0].dataset_label} set")
    for r in runs:
        print(f"  {r.label}: {r.status_text}" + (f" on {r.devices}" if r.devices and not r.waiting else ""))
    print(f"They start by themselves as slots free up (CIFARLAB_MAX_ACTIVE_RUNS). Summary: "
          f"python -m core sweep --show {sweep.id}  (or the Training page's Sweeps section)")
    return EXIT_OK


def _print_sweep(summary) -> int:
    from core.runs.sweep import summary_table

    sw = summary.sweep
    axes = " × ".join(f"{name} = {', '.join(map(str, values))}" for name, values in sw.axes)
    print(f"Sweep #{sw.id} '{sw.name}' ({sw.preset or 'custom'}): {axes}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.status_counts.items()))
    print(f"Runs: {counts or 'none left'}")
    table = summary_table(summary)
    if table:
        columns = list(table[0])
        widths = {c: max(len(c), *(len(str(row[c])) for row in table)) for c in columns}
        print("  ".join(c.ljust(widths[c]) for c in columns))
        for row in table:
            print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print("Mean ± sample standard deviation over each setting's completed runs (seeds). final: the last "
          "epoch's model; best.pt: the epoch with the highest validation accuracy (only runs with a "
          "validation split, --val-images, have one). ★: the highest mean final test accuracy.")
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
