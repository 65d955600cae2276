"""What watching a run live costs it: plain fit vs the stored run (metric rows, heartbeat, stop and
control polls) vs the stored run with a page reading it every second (target: < 5%).

    .venv/bin/python -m bench.live_overhead [--preset fast_mlp] [--train-subset 10000] [--repeat 3]

Variants, each timed by the engine's own images/s (training steps only, as the other benches):
  (a) core.train.engine.fit with no callbacks;
  (b) core.runs.worker.run_stored: metric rows written about once a second, the heartbeat thread,
      the stop flag and pending controls read at most every 0.5 s;
  (c) (b) while another process does what the Training page's live fragment does every second:
      new metric rows since the last read, the run's events, all statuses;
  (d) (c) with a control applied mid-run (lr x 0.5 requested after the first second).
After one warm-up run the variants alternate (--repeat rounds, rotating the order); the best
images/s of each is compared with (a).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import threading
from pathlib import Path

import torch

from core import data
from core.runs.store import RunStore
from core.runs.worker import run_stored
from core.train.config import PRESETS
from core.train.engine import fit


def _page_reader(root: str, run_id: int, done) -> None:
    """The live fragment's reads, once a second, in a process of its own (as the server is)."""
    store, last = RunStore(root), 0
    while not done.is_set():
        frame = store.metrics(run_id, since_id=last)
        if len(frame):
            last = int(frame["id"].max())
        store.events(run_id)
        store.statuses()
        done.wait(1.0)


def plain(cfg, dataset) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        return fit(cfg, dataset, run_dir).final["images_per_sec"]


def stored(cfg, dataset, *, reader: bool, control: bool) -> float:
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root)
        run = store.create_run(cfg)
        ctx = mp.get_context("spawn")
        done = ctx.Event()
        proc = ctx.Process(target=_page_reader, args=(root, run.id, done)) if reader else None
        if proc:
            proc.start()
        timer = threading.Timer(1.0, lambda: store.request_control(run.id, "lr_factor", 0.5)) if control else None
        if timer:
            timer.start()
        import core.data as core_data
        original = core_data.load_dataset
        core_data.load_dataset = lambda kind, root=None: dataset     # the same images in memory
        try:
            result = run_stored(store, run.id)
        finally:
            core_data.load_dataset = original
            done.set()
            if proc:
                proc.join(10)
            if timer:
                timer.cancel()
        if control:
            assert store.events(run.id, pending=False), "the control was not applied"
        return result.final["images_per_sec"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.live_overhead", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("CIFAR10_ROOT")
                    or str(Path(__file__).resolve().parent.parent / ".cache" / "cifar10-dev"))
    ap.add_argument("--preset", default="fast_mlp", choices=list(PRESETS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dataset = data.load_cifar10(args.data_root, download=False)
    cfg = PRESETS[args.preset].config.replace(device=args.device, epochs=args.epochs,
                                              train_subset=args.train_subset, test_subset=1000)
    variants = {
        "(a) fit, no callbacks": lambda: plain(cfg, dataset),
        "(b) stored run": lambda: stored(cfg, dataset, reader=False, control=False),
        "(c) stored run + page reads": lambda: stored(cfg, dataset, reader=True, control=False),
        "(d) (c) + lr control": lambda: stored(cfg, dataset, reader=True, control=True),
    }
    plain(cfg, dataset)                                    # warm-up
    best = {name: 0.0 for name in variants}
    names = list(variants)
    for round_ in range(args.repeat):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            best[name] = max(best[name], variants[name]())
    ref = best[names[0]]
    print(f"# preset {args.preset}, {args.train_subset} images x {args.epochs} epoch(s), best of {args.repeat}, "
          f"device {cfg.device}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    for name, ips in best.items():
        print(f"{name:32s} {ips:9.0f} images/s   overhead {100 * (ref / ips - 1):+6.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
