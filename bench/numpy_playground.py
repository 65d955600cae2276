"""What one hand-written SGD step costs: core.playground.sgd_step on a 2-8-8-1 tanh net, 200 points.

    .venv/bin/python -m bench.numpy_playground [--repeat 2000]

Times (a) one step on a minibatch of 10 (the page's default), (b) one step on all 200 points as one
batch, (c) Trainer.train with the page's steps per update (10 steps plus measuring loss and
accuracy on train and test: one update of the playing page without drawing), and (d) the surface:
the output on a 101 x 101 grid, one vectorised forward pass. Best of 5 rounds, each the mean of
--repeat calls; the 1-minute load average is printed with the numbers.
"""
from __future__ import annotations

import argparse
import os
import time

from core import playground as pg


def best_mean(fn, repeat: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.numpy_playground", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2000)
    args = ap.parse_args(argv)

    data = pg.make_data(pg.DataSpec("spiral", n=400, noise=0.1, train_fraction=0.5, seed=0))  # 200 train points
    arch = pg.Architecture((8, 8), ("tanh", "tanh"), True)
    net = pg.build_network(arch, pg.Parameters.initial(arch, 0))
    x, y = data.train.x, data.train.y
    small = pg.SGDSettings(lr=0.003, batch_size=10)
    full = pg.SGDSettings(lr=0.003, batch_size=len(y))
    trainer = pg.Trainer(data)

    rows = [
        ("sgd_step, batch 10", best_mean(lambda: pg.sgd_step(net, x[:10], y[:10], small), args.repeat)),
        (f"sgd_step, batch {len(y)} (all points)", best_mean(lambda: pg.sgd_step(net, x, y, full), args.repeat)),
        ("Trainer.train, 10 steps of 10 + measuring", best_mean(lambda: trainer.train(net, small, 10),
                                                                max(args.repeat // 10, 1))),
        ("surface, 101 x 101 grid", best_mean(lambda: pg.surface(net, resolution=101), max(args.repeat // 20, 1))),
    ]
    print(f"2-8-8-1 tanh with biases, {len(y)} training points; load average {os.getloadavg()[0]:.2f}")
    for name, seconds in rows:
        print(f"  {name:<45} {seconds * 1e6:9.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
