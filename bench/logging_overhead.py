"""What reporting costs: the same training with and without on_step reports (target: < 5%).

    .venv/bin/python -m bench.logging_overhead [--preset fast_mlp] [--train-subset 10000] [--repeat 4]

Runs core.train.engine.fit on the same images with (a) no step reports (log_every larger than the run),
(b) the preset's log_every with a callback that stores every report, (c) a report every step, and
(d) like (b) plus tqdm progress bars. After one warm-up run, the variants alternate (--repeat rounds,
rotating the order) and the best images/s of each variant is compared with (a). On a GPU each
report is a device-to-host sync, so (c) shows its price.
"""
from __future__ import annotations

import argparse
import io
import tempfile
from contextlib import redirect_stderr

import torch

from bench import common
from core.train.config import PRESETS
from core.train.engine import fit


def images_per_sec(cfg, dataset, progress: bool = False) -> float:
    reports, epochs = [], []
    with tempfile.TemporaryDirectory() as run_dir, redirect_stderr(io.StringIO()):
        fit(cfg, dataset, run_dir, on_step=lambda s, e, m: reports.append(m),
            on_epoch=lambda e, s, m: epochs.append(m), progress=progress)
    return sum(m["images_per_sec"] for m in epochs) / len(epochs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.logging_overhead", description=__doc__.split("\n\n")[0])
    common.add_machine_args(ap)
    ap.add_argument("--preset", default="fast_mlp", choices=list(PRESETS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=4)
    args = ap.parse_args(argv)
    dataset = common.setup(args)
    base = PRESETS[args.preset].config.replace(device=args.device, epochs=args.epochs,
                                               train_subset=args.train_subset, test_subset=1000)
    variants = {
        "no step reports": (base.replace(log_every=10**9), False),
        f"log_every={base.log_every} (preset)": (base, False),
        "log_every=1": (base.replace(log_every=1), False),
        f"log_every={base.log_every} + tqdm": (base, True),
    }
    best = {name: 0.0 for name in variants}
    images_per_sec(base, dataset)                          # warm-up: allocator, kernels, caches
    names = list(variants)
    for round_ in range(args.repeat):
        for name in common.rotated(names, round_):
            cfg, progress = variants[name]
            best[name] = max(best[name], images_per_sec(cfg, dataset, progress))
    ref = best["no step reports"]
    print(f"# preset {args.preset}, {args.train_subset} images x {args.epochs} epoch(s), best of {args.repeat}, "
          f"device {base.device}, {torch.get_num_threads()} threads, load average {common.load_average():.2f}")
    for name, ips in best.items():
        print(f"{name:32s} {ips:9.0f} images/s   overhead {100 * (ref / ips - 1):+6.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
