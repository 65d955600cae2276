"""What the numpy playground costs: one hand-written SGD step, one playing update, the surface, and
the updates per second a real browser shows while the page plays.

    .venv/bin/python -m bench.numpy_playground [--repeat 2000]
    .venv/bin/python -m bench.numpy_playground --browser 20 [--compare-tree DIR] [--rounds 3]

Without --browser (core only, no drawing): (a) one step on a minibatch of 10 (the page's default),
(b) one step on all 200 points as one batch, (c) Trainer.train with the page's steps per update (10
steps plus measuring loss and accuracy on train and test: one update of the playing page without
drawing), (d) the surface: the output on a 101 x 101 grid, one vectorised forward pass (target
< 20 ms), and (e) the 51 x 51 grid the page draws while playing. Best of 5 rounds, each the mean of
--repeat calls; the 1-minute load average is printed with the numbers.

With --browser SECONDS: the real dashboard (`python -m dashboard`) and a headless chromium on the
Numpy network page, set up as the browser test does (XOR, a 2-4-1 tanh net with biases, 20 SGD
steps per update), then Play for SECONDS after a short warm-up. Measured: updates per second (the
page's own update counter, read in the browser; at most 1 / playground_panel.TICK_S), the server's CPU
and the browser's (every chromium process this bench started, also per update), and the bytes the
page receives per update over its websocket.
--compare-tree DIR (a copy of the repository from before a change, e.g. `git archive HEAD | tar -x
-C DIR`) starts that tree's dashboard too; the two alternate, the order rotated each round, so both
meet the same load, and the ratios this / before are printed (the machine is shared: absolute
numbers move with the load, the ratio much less).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from core import playground as pg

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
SLOW_MS = 180_000  # a loaded 2-core machine takes its time to start a page
STATUS_JS = "document.querySelector('.st-key-pg_status')?.innerText || ''"
COUNT_JS = f"() => {{ const m = ({STATUS_JS}).match(/Playing: (\\d+) updates/); return m ? +m[1] : null; }}"


def best_mean(fn, repeat: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def core_timings(repeat: int) -> None:
    """(a) to (d) of the module's description, printed."""
    data = pg.make_data(pg.DataSpec("spiral", n=400, noise=0.1, train_fraction=0.5, seed=0))  # 200 train points
    arch = pg.Architecture((8, 8), ("tanh", "tanh"), True)
    net = pg.build_network(arch, pg.Parameters.initial(arch, 0))
    x, y = data.train.x, data.train.y
    small = pg.SGDSettings(lr=0.003, batch_size=10)
    full = pg.SGDSettings(lr=0.003, batch_size=len(y))
    trainer = pg.Trainer(data)

    rows = [
        ("sgd_step, batch 10", best_mean(lambda: pg.sgd_step(net, x[:10], y[:10], small), repeat)),
        (f"sgd_step, batch {len(y)} (all points)", best_mean(lambda: pg.sgd_step(net, x, y, full), repeat)),
        ("Trainer.train, 10 steps of 10 + measuring", best_mean(lambda: trainer.train(net, small, 10),
                                                                max(repeat // 10, 1))),
        ("surface, 101 x 101 grid", best_mean(lambda: pg.surface(net, resolution=101), max(repeat // 20, 1))),
        ("surface, 51 x 51 grid (while playing)", best_mean(lambda: pg.surface(net, resolution=51),
                                                             max(repeat // 20, 1))),
    ]
    print(f"2-8-8-1 tanh with biases, {len(y)} training points; load average {os.getloadavg()[0]:.2f}")
    for name, seconds in rows:
        print(f"  {name:<45} {seconds * 1e6:9.1f} µs")


# ---- the browser: updates per second while playing ------------------------------------------------

def set_up_xor_2_4_1(page) -> None:
    """The browser test's playground (tests/test_e2e_numpy_network.py sets it up with this too): biases
    on, one hidden layer of 4 tanh neurons, 20 steps per update."""
    from playwright.sync_api import expect

    page.get_by_text("Add biases").click()
    expect(page.get_by_role("slider", name="bias of h1,1")).to_be_visible(timeout=SLOW_MS)
    layers = page.get_by_role("slider", name="Hidden layers")
    layers.focus()
    layers.press("ArrowLeft")
    expect(page.get_by_text("the 2-2-1 network's output")).to_be_visible(timeout=SLOW_MS)
    for shape in ("2-3-1", "2-4-1"):
        units = page.get_by_role("slider", name="Neurons in hidden layer 1")
        units.focus()
        units.press("ArrowRight")
        expect(page.get_by_text(f"the {shape} network's output")).to_be_visible(timeout=SLOW_MS)
    speed = page.get_by_role("slider", name="Steps per update")
    speed.focus()
    speed.press("ArrowRight")
    expect(speed).to_have_attribute("aria-valuetext", "20", timeout=SLOW_MS)


def play_once(browser, server, seconds: float, warmup: float, viewport: tuple[int, int]) -> dict:
    """One tab: set up, Play, count updates over `seconds`; the server's and browser's CPU meanwhile."""
    from playwright.sync_api import expect

    from bench.live_overhead import browser_cpu_seconds

    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    received = [0]
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload))))
    try:
        page.goto(server.url, timeout=SLOW_MS)
        expect(page.get_by_test_id("stMetricValue")).to_have_text("2.8920827", timeout=SLOW_MS)
        set_up_xor_2_4_1(page)
        page.get_by_role("radio", name="Play").click()
        page.wait_for_function(f"() => ({COUNT_JS})() !== null", timeout=SLOW_MS)
        page.wait_for_timeout(warmup * 1000)  # the first updates also load what the page draws
        n0, bytes0 = page.evaluate(COUNT_JS), received[0]
        t0, server0, browser0 = time.monotonic(), server.cpu(), browser_cpu_seconds()
        page.wait_for_timeout(seconds * 1000)
        n1, bytes1 = page.evaluate(COUNT_JS), received[0]
        dt = time.monotonic() - t0
        result = {"rate": (n1 - n0) / dt, "server": (server.cpu() - server0) / dt,
                  "browser": (browser_cpu_seconds() - browser0) / dt,
                  "kb_per_update": (bytes1 - bytes0) / 1024 / max(n1 - n0, 1)}
        page.get_by_role("radio", name="Pause").click()
        return result
    finally:
        context.close()


def browser_rates(args) -> int:
    chromium = next((c for c in CHROMIUM if Path(c).exists()), None)
    if chromium is None:
        print("no chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from bench.live_overhead import Server

    with tempfile.TemporaryDirectory(prefix="numpy-playground-") as tmp:
        env = dict(os.environ, CIFARLAB_RUNS_DIR=str(Path(tmp) / "runs"), CIFARLAB_OFFLINE="1")
        servers = {"this": Server(env, Path(tmp) / "this.log")}
        if args.compare_tree:
            # started in the old tree's folder: `python -m` imports that tree's dashboard and core
            servers["before"] = Server(env, Path(tmp) / "before.log", args.compare_tree.resolve())
        results: dict[str, list[dict]] = {name: [] for name in servers}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True, args=[
                    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
                for round_ in range(args.rounds):
                    for name in common.rotated(list(servers), round_):
                        r = play_once(browser, servers[name], args.browser, args.warmup, tuple(args.viewport))
                        results[name].append(r)
                        print(f"# {name}: {r['rate']:.2f} updates/s, server {100 * r['server']:.0f}% of a core, "
                              f"browser {100 * r['browser']:.0f}%, {r['kb_per_update']:.0f} kB per update, "
                              f"load {common.load_average():.2f}", flush=True)
                browser.close()
        finally:
            for server in servers.values():
                server.stop()
    report(results, args)
    return 0


def report(results: dict[str, list[dict]], args) -> None:
    print(f"\nPlaying XOR with a 2-4-1 tanh net (20 steps per update), {args.browser:g} s per measurement, "
          f"{args.rounds} round(s), viewport {args.viewport[0]}x{args.viewport[1]}, {os.cpu_count()} CPUs, "
          f"load average now {common.load_average():.2f}")
    print(f"  {'tree':<8} {'updates/s (median, best)':>26} {'server CPU':>11} {'browser CPU':>12} "
          f"{'browser ms/update':>18} {'kB/update':>10}")
    med = {}
    for name, rows in results.items():
        med[name] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        best = max(r["rate"] for r in rows)
        per_update = statistics.median(1000 * r["browser"] / r["rate"] for r in rows)
        print(f"  {name:<8} {med[name]['rate']:>17.2f}, {best:>6.2f} {100 * med[name]['server']:>10.0f}% "
              f"{100 * med[name]['browser']:>11.0f}% {per_update:>18.0f} {med[name]['kb_per_update']:>10.0f}")
    if "before" in med:
        this, before = med["this"], med["before"]
        print(f"  ratio this / before: updates/s {this['rate'] / before['rate']:.2f}x, "
              f"kB per update {this['kb_per_update'] / before['kb_per_update']:.2f}x, "
              f"browser CPU per update {this['browser'] / this['rate'] / (before['browser'] / before['rate']):.2f}x")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.numpy_playground", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2000, help="calls per round of the core timings")
    ap.add_argument("--browser", type=float, metavar="SECONDS",
                    help="measure updates per second in a headless chromium for SECONDS per variant")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of playing before measuring")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--viewport", type=int, nargs=2, default=[1400, 1000], metavar=("WIDTH", "HEIGHT"))
    ap.add_argument("--compare-tree", type=Path, help="a copy of the repository from before a change: its "
                    "dashboard plays too, alternating with this one")
    args = ap.parse_args(argv)
    if args.browser:
        return browser_rates(args)
    core_timings(args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
