"""Data-parallel scaling: images/s of one run on N processes (torchrun) against one process.

    .venv/bin/python -m bench.ddp_scaling [--preset fast_mlp] [--nproc 2] [--train-subset 10000] [--repeat 2]

Each variant is a real stored run started the way a user starts it (`python -m core train
--nproc N ...` in a fresh runs folder, so torchrun, gloo or NCCL, DDP and the store are all
in the measurement); its speed is the best `epoch_images_per_sec` the engine reported (training
steps only, every rank's images counted). Variants, alternated over --repeat rounds (best kept):

    one process       the ordinary run: 1 process with all of this machine's threads (or 1 GPU)
    one per device    1 process with one device's share: 1 GPU, or on a CPU the threads one of
                      the N processes gets (cores / N)
    N processes       the run on N processes

scaling efficiency = N processes / (N x one per device): 1.0 is perfect data parallelism (on
GPUs: N GPUs do N times the work of one). speed-up = N processes / one process: what a user of
this machine gains. On a CPU both runs share the same cores, so the speed-up cannot exceed 1.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import common
from core.train.config import PRESETS


def run_variant(args, nproc: int, threads: int | None) -> float:
    """Best epoch images/s of one stored run on `nproc` processes (threads: the run's total)."""
    from core.runs.store import RunStore

    env = dict(os.environ, CIFAR10_ROOT=args.data_root, CIFARLAB_OFFLINE="1")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "-m", "core", "train", "--preset", args.preset, "--nproc", str(nproc),
               "--epochs", str(args.epochs), "--train-subset", str(args.train_subset), "--test-subset", "1000",
               "--device", args.device, "--runs-dir", runs, "--no-progress"]
        if args.demo:
            cmd.append("--demo")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        store = RunStore(Path(runs))
        run = store.list_runs()[0]
        rows = store.metrics(run.id).query("name == 'epoch_images_per_sec'")["value"]
        return float(rows.max())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ddp_scaling", description=__doc__.split("\n\n")[0])
    common.add_machine_args(ap)
    ap.add_argument("--preset", default="fast_mlp", choices=list(PRESETS))
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=2, help="the best epoch counts (the first warms up)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--demo", action="store_true", help="the synthetic set (no CIFAR-10 needed)")
    args = ap.parse_args(argv)

    import torch

    from core.train.distributed import max_processes
    from core.train.device import resolve_device

    device = resolve_device(args.device)
    cores = max_processes("cpu")
    on_cpu = device.type == "cpu"
    variants = {
        "one process": (1, cores if on_cpu else None),
        "one per device": (1, max(1, cores // args.nproc) if on_cpu else None),
        f"{args.nproc} processes": (args.nproc, cores if on_cpu else None),
    }
    best = {name: 0.0 for name in variants}
    loads = []
    for round_ in range(args.repeat):
        for name in common.rotated(list(variants), round_):
            nproc, threads = variants[name]
            best[name] = max(best[name], run_variant(args, nproc, threads))
            loads.append(common.load_average())
    where = (f"cpu, {cores} cores ({cores // args.nproc} thread(s) per process)" if on_cpu
             else f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")
    print(f"# preset {args.preset}, {args.train_subset} images x {args.epochs} epochs, best of {args.repeat}, "
          f"{where}, load average {min(loads):.1f}-{max(loads):.1f}")
    for name, value in best.items():
        print(f"{name:>16}: {value:8.0f} images/s")
    n = best[f"{args.nproc} processes"]
    print(f"scaling efficiency: {n / (args.nproc * best['one per device']):.2f} "
          f"({args.nproc} processes / ({args.nproc} x one per device))")
    print(f"speed-up: {n / best['one process']:.2f}x ({args.nproc} processes / one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
