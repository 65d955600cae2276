"""Train presets and print a table against the tutorial pipeline measured in the same process.

    .venv/bin/python -m bench.presets               # fast_mlp and cpu_cnn (+ gpu_cnn on CUDA)
    .venv/bin/python -m bench.presets --presets fast_mlp --epochs 2
    .venv/bin/python -m bench.presets --presets cpu_cnn --train-subset 10000 --test-subset 2000

The baseline is the tutorial's own pipeline (bench.tutorial_pipeline: Dataset + ToTensor/
Normalize + DataLoader, batch 16, Adam 1e-4, the MLP), run for --tutorial-steps steps; its 10-epoch
time is EXTRAPOLATED from that rate (10 x 40,000 images / images per second), and the output says
so. "speed-up" = that extrapolated time / the preset's wall time. "to target" is the wall time at
the first epoch whose test accuracy reaches --target-acc (default: the tutorial recipe's 10-epoch
accuracy, --tutorial-acc, measured separately; see the presets in core.train.config).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from bench import common
from bench.tutorial_pipeline import run_tutorial_steps
from core.train.config import PRESETS
from core.train.device import resolve_device
from core.train.engine import Plan, fit


def images_per_epoch(plan: Plan, batch_size: int) -> int:
    """Images the engine trains on in one epoch, from its own plan (a short last batch is dropped,
    unless it is the only one)."""
    return min(plan.steps_per_epoch * batch_size, plan.train_images)


def run_preset(name: str, dataset, device: str, overrides: dict, target_acc: float | None) -> dict:
    cfg = PRESETS[name].config.replace(device=device, **overrides)
    epochs: list[dict] = []
    plans: list[Plan] = []
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        result = fit(cfg, dataset, run_dir, on_start=plans.append,
                     on_epoch=lambda e, s, m: epochs.append(dict(m, epoch=e)))
        wall = time.perf_counter() - start
    train_time = sum(images_per_epoch(plans[0], cfg.batch_size) / m["images_per_sec"] for m in epochs)
    reached = next((m["elapsed_s"] for m in epochs if target_acc is not None and m["test_acc"] >= target_acc), None)
    return {"preset": name, "device": str(resolve_device(device)), "epochs": result.epoch, "status": result.status,
            "wall": wall, "train_time": train_time,
            "images_per_sec": sum(m["images_per_sec"] for m in epochs) / max(len(epochs), 1),
            "test_acc": result.final.get("test_acc", float("nan")),
            # the model's test accuracy: best.pt's (chosen by validation accuracy) with a split, else last.pt's
            "model_acc": result.best_test_acc if cfg.val_images else result.final.get("test_acc", float("nan")),
            "best_val": max((m["val_acc"] for m in epochs if "val_acc" in m), default=None),
            "to_target": reached,
            "per_epoch": [(m["epoch"], m["test_acc"], m["elapsed_s"], m.get("val_acc")) for m in epochs]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.presets", description=__doc__.split("\n\n")[0])
    common.add_machine_args(ap)
    ap.add_argument("--presets", default=None, help="comma-separated preset names (default: fast_mlp,cpu_cnn"
                    " and gpu_cnn when CUDA is there; tutorial_mlp takes ~12 min on 2 cores, ask for it)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ap.add_argument("--epochs", type=int, help="override every preset's epochs")
    ap.add_argument("--train-subset", type=int, help="override: first N training images")
    ap.add_argument("--test-subset", type=int, help="override: first N test images")
    ap.add_argument("--seed", type=int, help="override the seed")
    ap.add_argument("--val-images", type=int, help="override: hold out N training images as a validation split")
    ap.add_argument("--tutorial-steps", type=int, default=500, help="steps of the tutorial pipeline (0: skip)")
    ap.add_argument("--tutorial-acc", type=float, default=None,
                    help="the tutorial recipe's 10-epoch test accuracy (fraction); tutorial_mlp in --presets measures it")
    ap.add_argument("--target-acc", type=float, default=None, help="accuracy for the 'to target' column")
    args = ap.parse_args(argv)

    dataset = common.setup(args)
    names = args.presets.split(",") if args.presets else (
        ["fast_mlp", "cpu_cnn"] + (["gpu_cnn"] if torch.cuda.is_available() else []))
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        ap.error(f"unknown preset(s) {unknown}; choose from {list(PRESETS)}")
    overrides = {k: v for k, v in {"epochs": args.epochs, "train_subset": args.train_subset,
                                   "test_subset": args.test_subset, "seed": args.seed,
                                   "val_images": args.val_images}.items() if v is not None}
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}, "
          f"load average {common.load_average():.2f}; overrides {overrides or 'none'}", flush=True)

    tutorial = None
    if args.tutorial_steps:
        tutorial = run_tutorial_steps(args.data_root, args.tutorial_steps)
        tutorial["ten_epochs"] = 10 * len(dataset.train.labels) / tutorial["images_per_sec"]
        print(f"# tutorial pipeline: {tutorial['images_per_sec']:.0f} images/s over {tutorial['steps']} steps; "
              f"10 epochs EXTRAPOLATED from that rate: {tutorial['ten_epochs']:.0f} s", flush=True)

    target = args.target_acc if args.target_acc is not None else args.tutorial_acc
    rows = []
    if "tutorial_mlp" in names:                      # its accuracy is the target for the others
        names = ["tutorial_mlp"] + [n for n in names if n != "tutorial_mlp"]
    for name in names:
        row = run_preset(name, dataset, args.device, overrides, target)
        rows.append(row)
        if name == "tutorial_mlp" and target is None and row["status"] == "completed":
            target = row["test_acc"]
            row["to_target"] = row["wall"]
        print(f"# {name}: " + ", ".join(f"ep{e} {100 * a:.2f}%" + (f" (val {100 * v:.2f}%)" if v is not None else "")
                                        + f" @{t:.0f}s" for e, a, t, v in row["per_epoch"]), flush=True)

    print()
    print(f"{'preset':14s} {'device':7s} {'epochs':>6s} {'wall s':>8s} {'train s':>8s} {'images/s':>9s} "
          f"{'test acc':>9s} {'val acc':>8s} {'model':>7s} {'to target':>10s} {'speed-up':>9s}")
    for r in rows:
        speed = f"{tutorial['ten_epochs'] / r['wall']:8.1f}x" if tutorial else "       -"
        to_target = f"{r['to_target']:9.0f}s" if r["to_target"] is not None else "         -"
        print(f"{r['preset']:14s} {r['device']:7s} {r['epochs']:6d} {r['wall']:8.1f} {r['train_time']:8.1f} "
              f"{r['images_per_sec']:9.0f} {100 * r['test_acc']:8.2f}% "
              + (f"{100 * r['best_val']:7.2f}% " if r["best_val"] is not None else "       - ")
              + f"{100 * r['model_acc']:6.2f}% {to_target} {speed}")
    print("test acc: the last epoch's; val acc: the best epoch's validation accuracy (with --val-images); model: the "
          "test accuracy of the run's model, best.pt (chosen by validation accuracy) with a split, else last.pt")
    if tutorial:
        print(f"speed-up = the tutorial pipeline's 10-epoch time, EXTRAPOLATED from {tutorial['steps']} measured "
              f"steps ({tutorial['ten_epochs']:.0f} s), divided by the preset's wall time.")
    if target is not None:
        print(f"to target = wall time when test accuracy first reached {100 * target:.2f}% "
              f"(the tutorial recipe's 10-epoch accuracy or --target-acc); "
              + (f"tutorial pipeline time to that accuracy (10 epochs, extrapolated): {tutorial['ten_epochs']:.0f} s"
                 if tutorial else ""))
        for r in rows:
            if tutorial and r["to_target"] is not None and r["preset"] != "tutorial_mlp":
                print(f"  {r['preset']}: reached it {tutorial['ten_epochs'] / r['to_target']:.1f}x sooner")
    if overrides:
        print(f"NOTE: presets ran with overrides {overrides}: speed-ups and 'to target' compare them with the "
              "tutorial's full 10 epochs, and a tutorial_mlp row's accuracy is not its 10-epoch accuracy.")
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
