"""What the look-inside views cost, measured in one run (issue 9's figures).

    CIFAR10_ROOT=.cache/cifar10-dev .venv/bin/python -m bench.look_inside [--epochs 2] [--train-subset 10000]

1. history overhead: core.engine.fit of cpu_cnn with and without on_predictions=HistoryRecorder.record
   (the time spent inside the callback over the epoch's time; target <= 2%), plus the file size per epoch;
2. scrubber: one epoch's Summary + the four figures of dashboard.evaluation.history (target < 300 ms);
3. saliency: one image, predicted and true class, cpu_cnn Grad-CAM / LayerCAM and MLP gradient x input
   (target < 300 ms per image);
4. feature map: penultimate features + PCA of the whole test split, MLP (< 5 s) and cpu_cnn (< 40 s),
   then a cached revisit (< 0.5 s).
Threads: torch.set_num_threads(--threads, default 2), as on the two-core target machine.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core import data
from core.evaluate import features, history as hist, saliency as sal
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
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = data.load_cifar10(args.data_root)
    test = dataset.test
    print(f"test split: {len(test):,} images; torch threads {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
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

        cnn = load_model(tmp / "with" / "last.pt", "cpu")
        mlp_dir = tmp / "mlp"
        fit(PRESETS["fast_mlp"].config.replace(epochs=1, train_subset=args.train_subset, device="cpu"), dataset, mlp_dir)
        mlp = load_model(mlp_dir / "last.pt", "cpu")
        for name, loaded, layer in (("cpu_cnn Grad-CAM (last)", cnn, "last"), ("cpu_cnn LayerCAM (finer)", cnn, "finer"),
                                    ("MLP gradient x input", mlp, "last")):
            sal.saliency_maps(loaded.model, test.images[0], [0, 1], layer=layer)   # warm-up
            t = time.perf_counter()
            for i in range(20):
                sal.saliency_maps(loaded.model, test.images[i], [int(test.labels[i]), (int(test.labels[i]) + 1) % 10],
                                  layer=layer)
            print(f"3. saliency, {name}: {1000 * (time.perf_counter() - t) / 20:.0f} ms per image, both maps "
                  f"(target < 300 ms)")

        for name, folder in (("MLP", mlp_dir), ("cpu_cnn", tmp / "with")):
            t = time.perf_counter()
            proj = features.projection_for_checkpoint(folder / "last.pt", test.images, test.labels, which="last")
            first = time.perf_counter() - t
            t = time.perf_counter()
            again = features.projection_for_checkpoint(folder / "last.pt", test.images, test.labels, which="last")
            print(f"4. feature map, {name}: first {first:.1f} s ({proj.dims} features, {100 * proj.explained.sum():.0f}% "
                  f"of the variance in 2-D), cached revisit {time.perf_counter() - t:.2f} s ({again.source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
