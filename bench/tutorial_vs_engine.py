"""The tutorial's pipeline vs our engine: same model, same recipe, same number of steps, one process.

    .venv/bin/python -m bench.tutorial_vs_engine [--data-root DIR] [--steps 1000] [--threads 2]

Both train the tutorial MLP (same initial weights) with Adam lr=1e-4, batch 16, for --steps
optimiser steps on the development split, on the CPU. Prints images/s of both and the ratio
(target: ours >= 2x). The tutorial side is measured with num_workers=2 (the tutorial's value) and,
with --workers0, also with num_workers=0. Ours is core.train.engine.fit with the tutorial_mlp preset;
its images/s is the epoch's training time only (its evaluation and checkpoint are excluded, as the
tutorial side has none), and the whole fit() call's wall time is printed too.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from bench.tutorial_pipeline import run_tutorial_steps
from core import data
from core.train.config import PRESETS
from core.train.engine import fit


def default_root() -> str:
    return os.environ.get("CIFAR10_ROOT") or str(Path(__file__).resolve().parent.parent / ".cache" / "cifar10-dev")


def run_engine_steps(dataset, steps: int, batch_size: int = 16) -> dict[str, float]:
    cfg = PRESETS["tutorial_mlp"].config.replace(device="cpu", epochs=1, train_subset=steps * batch_size,
                                                 batch_size=batch_size, test_subset=1000, log_every=100)
    reports, epochs = [], []
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        result = fit(cfg, dataset, run_dir, on_step=lambda s, e, m: reports.append(m["train_loss"]),
                     on_epoch=lambda e, s, m: epochs.append(m))
        wall = time.perf_counter() - start
    ips = epochs[-1]["images_per_sec"]
    return {"steps": result.step, "seconds": result.step * batch_size / ips, "images_per_sec": ips,
            "final_loss": sum(reports[-2:]) / len(reports[-2:]), "wall": wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.tutorial_vs_engine", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=default_root(), help="folder holding cifar-10-batches-py/")
    ap.add_argument("--steps", type=int, default=1000, help="optimiser steps for each pipeline")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--workers0", action="store_true", help="also time the tutorial with num_workers=0")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the pipelines this many times")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    dataset = data.load_cifar10(args.data_root, download=False)
    print(f"# {args.steps} steps of batch 16, Adam 1e-4, tutorial MLP; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average before "
          f"{os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, dict]] = []
    for _ in range(args.repeat):
        rows.append(("tutorial (DataLoader, num_workers=2)", run_tutorial_steps(args.data_root, args.steps, num_workers=2)))
        if args.workers0:
            rows.append(("tutorial (DataLoader, num_workers=0)", run_tutorial_steps(args.data_root, args.steps, num_workers=0)))
        rows.append(("ours (core.train.engine.fit)", run_engine_steps(dataset, args.steps)))

    def best(prefix: str) -> float:
        return max(r["images_per_sec"] for name, r in rows if name.startswith(prefix))

    print(f"{'pipeline':40s} {'steps':>6s} {'seconds':>8s} {'images/s':>9s} {'loss (last 200)':>16s}")
    for name, r in rows:
        extra = f"   (whole fit() incl. data upload, eval of 1000, checkpoint: {r['wall']:.1f} s)" if "wall" in r else ""
        print(f"{name:40s} {r['steps']:6d} {r['seconds']:8.2f} {r['images_per_sec']:9.0f} {r['final_loss']:16.3f}{extra}")
    ours = best("ours")
    print(f"ratio ours / tutorial (num_workers=2): {ours / best('tutorial (DataLoader, num_workers=2'):.2f}x")
    if args.workers0:
        print(f"ratio ours / tutorial (num_workers=0): {ours / best('tutorial (DataLoader, num_workers=0'):.2f}x")
    print(f"# load average after {os.getloadavg()[0]:.2f}; tutorial epoch (40k images) at that rate: "
          f"{40000 / best('tutorial (DataLoader, num_workers=2'):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
