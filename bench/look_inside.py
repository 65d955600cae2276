"""What the look-inside views cost, measured in one run (issue 9's figures).

    CIFAR10_ROOT=.cache/cifar10-dev .venv/bin/python -m bench.look_inside [--epochs 2] [--train-subset 10000]

1. history overhead: core.engine.fit of cpu_cnn with and without on_predictions=HistoryRecorder.record
   (the time spent inside the callback over the epoch's time; target <= 2%), plus the file size per epoch;
2. scrubber: one epoch's Summary + the four figures of dashboard.evaluation.history (target < 300 ms);
3. saliency: one image, predicted and true class, cpu_cnn Grad-CAM / LayerCAM and MLP gradient x input
   (target < 300 ms per image);
4. feature map: penultimate features + PCA of the whole test split, MLP (< 5 s) and cpu_cnn (< 40 s),
   then a cached revisit (< 0.5 s); the features and the PCA also timed apart;
5. what the model has learned (core.evaluate.learned): cpu_cnn activation maps of one image (the
   "feature maps" of every conv group) and stem filters, the MLP's 1,000 unit pictures with their norms
   and class drives, and the class patterns (gradient ascent, 40 steps, all 10 classes) of both.
Threads: torch.set_num_threads(--threads, default 2), as on the two-core target machine. Every part
prints the 1-minute load average when it starts (the machine is shared; 2 would be both cores busy).
--mlp-checkpoint / --cnn-checkpoint reuse trained checkpoints and skip parts 1-2 (no training).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core import data
from core.evaluate import features, history as hist, learned, saliency as sal
from core.evaluate.predictions import load_model
from core.train.config import PRESETS
from core.train.engine import fit
from core.train.history import HistoryRecorder, history_path, read_history


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.look_inside", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("CIFAR10_ROOT")
                    or str(Path(__file__).resolve().parent.parent / ".cache" / "cifar10-dev"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mlp-checkpoint", help="a trained tutorial_mlp checkpoint: skip training (parts 1-2 skipped)")
    ap.add_argument("--cnn-checkpoint", help="a trained cpu_cnn checkpoint: skip training (parts 1-2 skipped)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = data.load_cifar10(args.data_root)
    test = dataset.test
    print(f"test split: {len(test):,} images; torch threads {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.mlp_checkpoint and args.cnn_checkpoint:
            for name, source in (("mlp", args.mlp_checkpoint), ("with", args.cnn_checkpoint)):
                (tmp / name).mkdir()
                shutil.copy(source, tmp / name / "last.pt")      # a copy: the feature-map cache goes beside it
            look_at_checkpoints(test, tmp / "mlp", tmp / "with")
            return 0
        cfg = PRESETS["cpu_cnn"].config.replace(epochs=args.epochs, train_subset=args.train_subset, device="cpu")
        recorder = HistoryRecorder(tmp / "with")
        spent = []

        def timed(epoch, logits, labels):
            t = time.perf_counter()
            recorder.record(epoch, logits, labels)
            spent.append(time.perf_counter() - t)

        epochs = []
        fit(cfg, dataset, tmp / "with", on_predictions=timed, on_epoch=lambda e, s, m: epochs.append(m))
        epoch_s = np.diff([0.0] + [m["elapsed_s"] for m in epochs])
        share = np.array(spent) / epoch_s
        size = history_path(tmp / "with").stat().st_size
        print(f"1. history: {1000 * np.mean(spent):.1f} ms per epoch of {np.mean(epoch_s):.1f} s "
              f"= {100 * share.max():.3f}% at most (target <= 2%); file {size / len(epochs) / 1024:.1f} kB per epoch "
              f"({size / len(epochs) / len(test):.2f} bytes per image)")

        history = read_history(tmp / "with")
        from dashboard.figures import evaluation as figs
        classes = dataset.classes
        times = []
        for i in list(range(history.num_epochs)) * 3:
            t = time.perf_counter()
            s = hist.epoch_summary(history, i, classes)
            per_class = hist.per_class_over_epochs(history, len(classes))
            figs.per_class_over_epochs(classes, history.epochs, per_class, int(history.epochs[i])).to_json()
            figs.per_class_accuracy_bar(classes, s.per_class_accuracy, s.accuracy, s.support).to_json()
            figs.confusion_heatmap(s.confusion, s.confusion_normalized, classes).to_json()
            figs.forgotten_bar(classes, hist.forgotten_per_class(history, len(classes)), s.support).to_json()
            times.append(time.perf_counter() - t)
        print(f"2. scrubber: {1000 * np.median(times):.0f} ms to recompute and serialise one epoch's views "
              f"(target < 300 ms)")

        mlp_dir = tmp / "mlp"
        fit(PRESETS["fast_mlp"].config.replace(epochs=1, train_subset=args.train_subset, device="cpu"), dataset, mlp_dir)
        look_at_checkpoints(test, mlp_dir, tmp / "with")
    return 0


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def look_at_checkpoints(test, mlp_dir: Path, cnn_dir: Path) -> None:
    """Parts 3-5 on a trained MLP and cpu_cnn (each folder holds last.pt)."""
    cnn = load_model(cnn_dir / "last.pt", "cpu")
    mlp = load_model(mlp_dir / "last.pt", "cpu")
    print(f"3. saliency ({load()})")
    for name, loaded, layer in (("cpu_cnn Grad-CAM (last)", cnn, "last"), ("cpu_cnn LayerCAM (finer)", cnn, "finer"),
                                ("MLP gradient x input", mlp, "last")):
        sal.saliency_maps(loaded.model, test.images[0], [0, 1], layer=layer)   # warm-up
        t = time.perf_counter()
        for i in range(20):
            sal.saliency_maps(loaded.model, test.images[i], [int(test.labels[i]), (int(test.labels[i]) + 1) % 10],
                              layer=layer)
        print(f"   {name}: {1000 * (time.perf_counter() - t) / 20:.0f} ms per image, both maps "
              f"(target < 300 ms)")

    for name, folder in (("MLP", mlp_dir), ("cpu_cnn", cnn_dir)):
        print(f"4. feature map, {name} ({load()})")
        t = time.perf_counter()
        proj = features.projection_for_checkpoint(folder / "last.pt", test.images, test.labels, which="last")
        first = time.perf_counter() - t
        t = time.perf_counter()
        again = features.projection_for_checkpoint(folder / "last.pt", test.images, test.labels, which="last")
        print(f"   first {first:.1f} s ({proj.dims} features, {100 * proj.explained.sum():.0f}% "
              f"of the variance in 2-D), cached revisit {time.perf_counter() - t:.2f} s ({again.source})")
        loaded = load_model(folder / "last.pt", "cpu")
        t = time.perf_counter()
        feats = features.penultimate_features(loaded, test.images)
        t_feats = time.perf_counter() - t
        t = time.perf_counter()
        features.pca_2d(feats)
        print(f"   apart, once more: features {t_feats:.2f} s, PCA {time.perf_counter() - t:.2f} s ({load()})")

    print(f"5. what the model has learned ({load()})")
    images = test.images[:20]
    learned.activation_maps(cnn, images[0])                                   # warm-up
    times = []
    for image in images:
        t = time.perf_counter()
        learned.activation_maps(cnn, image)
        times.append(time.perf_counter() - t)
    print(f"   cpu_cnn activation maps (stem + 3 groups, every channel) of one image: "
          f"{1000 * np.median(times):.1f} ms (median of {len(images)} images)")
    t = time.perf_counter()
    stem = learned.first_layer_filters(cnn)
    print(f"   cpu_cnn stem filters ({stem.kind}, {len(stem.weights)}): {1000 * (time.perf_counter() - t):.1f} ms")
    t = time.perf_counter()
    units = learned.first_layer_units(mlp)
    print(f"   MLP unit pictures ({units.units:,}, norms, class drives): {1000 * (time.perf_counter() - t):.0f} ms")
    for name, loaded in (("MLP", mlp), ("cpu_cnn", cnn)):
        t = time.perf_counter()
        patterns = learned.class_patterns(loaded, 10, steps=learned.ASCENT_STEPS)
        rise = patterns.scores[-1] - patterns.scores[0]
        print(f"   {name} class patterns, 10 classes x {patterns.steps} steps: {time.perf_counter() - t:.2f} s "
              f"(scores rose by {rise.min():.1f} to {rise.max():.1f}; {load()})")


if __name__ == "__main__":
    raise SystemExit(main())
