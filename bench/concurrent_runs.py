"""Two training runs on one CPU at the same time: do they share it, or fight over it?
(target: two together train at least 85% of the images per second that one trains alone).

    .venv/bin/python -m bench.concurrent_runs [--preset tutorial_mlp] [--train-subset 10000]
                                              [--epochs 4] [--repeat 1] [--no-unsplit]

Real trainer processes started the way the dashboard starts them (core.runs.jobs.start_run:
`python -m core train --run ID`, through the queue), in a temporary run store, one after the
other in the same run of this script:
  alone      one run, CIFARLAB_MAX_ACTIVE_RUNS=1: it takes every core's threads;
  split      two runs started together, CIFARLAB_MAX_ACTIVE_RUNS=2: the queue splits the threads
             between them (core.runs.queue.thread_shares: 1 + 1 on 2 cores);
  unsplit    the same two with CIFARLAB_SPLIT_THREADS=0: each takes every core (before the split).
Throughput is each trainer's own `epoch_images_per_sec` rows (training steps only), for the
epochs that ran entirely while both trainers trained (the first epoch, which includes start-up
effects, is never counted); a pair's figure is the sum of its two runs' medians. Printed: each
figure, the ratio to `alone`, and the 1-minute load average before and after each variant (on a
machine shared with other work, 1.0 per busy trainer is what the bench itself adds).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

TARGET = 0.85


def _wait(store, ids: list[int], timeout: float = 1800) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        store.reconcile()
        if all(not store.get(i).is_active for i in ids):
            return
        time.sleep(0.5)
    raise SystemExit(f"runs {ids} did not finish within {timeout:.0f} s")


def _epoch_windows(store, run_id: int) -> list[tuple[float, float, float]]:
    """(start, end, images/s) of each epoch after the first, from the run's epoch rows."""
    frame = store.metrics(run_id)
    rows = frame[frame["name"] == "epoch_images_per_sec"].sort_values("epoch")
    elapsed = frame[frame["name"] == "epoch_elapsed_s"].set_index("epoch")["value"]
    out = []
    for _, row in rows.iterrows():
        epoch = int(row["epoch"])
        if epoch < 2 or epoch not in elapsed.index:
            continue
        end = float(row["time"])
        prev_end = end - float(elapsed[epoch]) + float(elapsed.get(epoch - 1, 0.0))  # elapsed_s is cumulative
        out.append((prev_end, end, float(row["value"])))
    return out


def _variant(name: str, cfg, runs: int, env: dict[str, str], runs_root: Path) -> tuple[float, list[str]]:
    from core.runs import jobs
    from core.runs.store import RunStore

    os.environ.update(env)
    store = RunStore(runs_root / name)
    load_before = os.getloadavg()[0]
    ids = [jobs.start_run(store, cfg.replace(seed=i), name=f"{name} {i}").id for i in range(runs)]
    _wait(store, ids)
    load_after = os.getloadavg()[0]
    for i in ids:
        run = store.get(i)
        if run.status != "completed":
            raise SystemExit(f"{name}: run #{i} ended {run.status}: {run.message}")
    windows = {i: _epoch_windows(store, i) for i in ids}
    if runs > 1:  # only the epochs that ran entirely while every trainer of the pair trained
        both_from = max(w[0][0] for w in windows.values() if w)
        both_to = min(w[-1][1] for w in windows.values() if w)
        windows = {i: [e for e in w if e[0] >= both_from - 0.5 and e[1] <= both_to + 0.5] for i, w in windows.items()}
    medians, notes = [], []
    for i, w in windows.items():
        if not w:
            raise SystemExit(f"{name}: run #{i} has no epoch that overlapped the other run's; use more --epochs")
        medians.append(statistics.median(e[2] for e in w))
        run = store.get(i)
        notes.append(f"run #{i}: {medians[-1]:,.0f} img/s over {len(w)} epoch(s), device {run.device}")
    total = sum(medians)
    print(f"{name:<8} {total:>9,.0f} img/s   load {load_before:.2f} -> {load_after:.2f}   " + "; ".join(notes),
          flush=True)
    return total, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tutorial_mlp")
    ap.add_argument("--data-root", default=None, help="CIFAR-10 folder (default $CIFAR10_ROOT, else "
                    ".cache/cifar10-dev; the synthetic set when neither exists)")
    ap.add_argument("--train-subset", type=int, default=10_000)
    ap.add_argument("--test-subset", type=int, default=1_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="rounds of all variants")
    ap.add_argument("--no-unsplit", action="store_true", help="skip the slow `unsplit` variant")
    args = ap.parse_args()

    from core import settings
    from core.data import cifar10_status
    from core.train.config import PRESETS

    root = args.data_root or os.environ.get("CIFAR10_ROOT") or ".cache/cifar10-dev"
    os.environ["CIFAR10_ROOT"] = str(Path(root).resolve())
    dataset = "cifar10" if cifar10_status(settings.data_root()).usable else "synthetic"
    cfg = PRESETS[args.preset].config.replace(
        dataset=dataset, epochs=args.epochs, train_subset=args.train_subset, test_subset=args.test_subset,
        device="cpu", log_every=1_000_000)
    print(f"# {args.preset} on {dataset} ({args.train_subset:,} training images, {args.epochs} epochs, "
          f"batch {cfg.batch_size}, precision {cfg.precision}); {settings.cpu_threads()} CPU threads for runs; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    os.environ.pop("CIFARLAB_CPU_THREADS", None)
    ratios: dict[str, list[float]] = {"split": [], "unsplit": []}
    with tempfile.TemporaryDirectory(prefix="cifarlab-concurrent-") as tmp:
        for round_ in range(args.repeat):
            base = Path(tmp) / f"round{round_}"
            alone, _ = _variant("alone", cfg, 1, {"CIFARLAB_MAX_ACTIVE_RUNS": "1", "CIFARLAB_SPLIT_THREADS": "1"}, base)
            split, _ = _variant("split", cfg, 2, {"CIFARLAB_MAX_ACTIVE_RUNS": "2", "CIFARLAB_SPLIT_THREADS": "1"}, base)
            ratios["split"].append(split / alone)
            print(f"round {round_ + 1}: split / alone = {split / alone:.2f} (target >= {TARGET})", flush=True)
            if not args.no_unsplit:
                unsplit, _ = _variant("unsplit", cfg, 2, {"CIFARLAB_MAX_ACTIVE_RUNS": "2",
                                                          "CIFARLAB_SPLIT_THREADS": "0"}, base)
                ratios["unsplit"].append(unsplit / alone)
                print(f"round {round_ + 1}: unsplit / alone = {unsplit / alone:.2f}", flush=True)
    for name, values in ratios.items():
        if values:
            print(f"{name} / alone: median {statistics.median(values):.2f} over {len(values)} round(s) "
                  f"({', '.join(f'{v:.2f}' for v in values)})", flush=True)


if __name__ == "__main__":
    main()
