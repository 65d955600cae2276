"""What watching a run live costs: the real dashboard and a headless chromium on the Training page
while the real trainer process trains (targets: watched >= 90% of unwatched images/s; the server
at most 5% of a core per open tab while a run trains, about 0 when nothing changes).

    .venv/bin/python -m bench.live_overhead [--presets tutorial_mlp cpu_cnn] [--train-subset 20000]
                                            [--tabs 1 3] [--repeat 2] [--idle-s 15]

One dashboard server (`python -m dashboard`, its own run folder) and one chromium for the whole
bench. Per preset (1 epoch on --train-subset training images, --test-subset test images), the
variants alternate (--repeat rounds, the order rotated each round):
  unwatched   no tab open: the run is started as the page starts it (core.runs.jobs.start_run:
              `python -m core train` in its own process) and trains alone beside an idle server;
  N tab(s)    the same with N tabs on the Training page, opened before the run starts, so they
              notice it, pick it and draw it live as a learner would see it.
Throughput is the trainer's own training images/s (the epoch's `epoch_images_per_sec` row:
training steps only). Server CPU is /proc/<pid>/stat user+system time over the training epoch
(from the run's first metric row to its epoch row), divided by wall time and by the tab count; the
browser's CPU (every chromium process) is given beside it. The first tab's progress line is read
every 0.25 s during training: "updates" is the longest gap between two changes of the step it
shows (target: at most 2 s). After each preset, with the tabs still open and nothing changing,
the server's CPU over --idle-s seconds.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import common
from dashboard.training_keys import PROGRESS_CLASS   # the live progress line's element

TICK = os.sysconf("SC_CLK_TCK")
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
STEP_TEXT = re.compile(r"step (\d+)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def browser_cpu_seconds() -> float:
    """CPU seconds of this bench's own chromium processes (descendants of this process, so not
    another browser on a shared machine)."""
    me, total = os.getpid(), 0.0
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = _parent(int(entry))
            except OSError:
                pass
    for pid in parents:
        try:
            with open(f"/proc/{pid}/comm") as fh:
                if "chrom" not in fh.read():
                    continue
        except OSError:
            continue
        up, hops = parents.get(pid), 0
        while up and up != me and hops < 16:
            up, hops = parents.get(up), hops + 1
        if up == me:
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
    return total


class Server:
    """`python -m dashboard` on a free port, with the bench's run folder and data."""

    def __init__(self, env: dict[str, str], log: Path, tree: Path = common.REPO):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://localhost:{self.port}"
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "dashboard", "--server.port", str(self.port)],
                                     cwd=tree, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the dashboard did not start; see {log}")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def open_tabs(browser, url: str, n: int, store=None) -> list:
    """`n` tabs on the Training page. With `store`, the earlier variants' runs are deleted first, so a
    tab shows the next run as soon as it starts (a tab keeps showing the run it has selected)."""
    for run in store.list_runs() if store is not None else ():
        if not run.is_active:
            store.delete(run.id)
    pages = []
    for _ in range(n):
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(url + "/training", timeout=180_000)   # a loaded 2-core machine takes its time
        page.get_by_role("heading", name="All runs").or_(page.get_by_text("No runs yet")).first.wait_for(timeout=90_000)
        pages.append(page)
    return pages


def close_tabs(pages: list) -> None:
    for page in pages:
        page.context.close()


def shown_step(page) -> int | None:
    """The step in the first tab's progress line while it says the run is training (None while no
    progress line is drawn, or while it tests or saves at an epoch's end: no steps are taken then,
    and "charts grow at least every 2 s" is asked of the time during an epoch)."""
    try:
        text = page.evaluate("""(cls) => [...document.getElementsByClassName(cls)]
                                       .map(el => el.innerText).join(' ')""", PROGRESS_CLASS)
    except Exception:
        return None
    found = STEP_TEXT.search(text)
    return int(found.group(1)) if found and text.lstrip().startswith("Training") else None


def one_run(store, server: Server, browser, cfg, tabs: int) -> dict:
    """Start a run with `tabs` tabs watching; wait for it to end; throughput and CPU figures."""
    from core.runs import jobs

    pages = open_tabs(browser, server.url, tabs, store)
    time.sleep(2.0)   # let the pages finish their first run
    run = jobs.start_run(store, cfg, f"bench {cfg.preset} {tabs} tab(s)")
    samples, gaps, last_change, last_step = [], [], None, None
    t_cpu = None
    while True:
        run = store.get(run.id)
        now = time.time()
        frame = store.metrics(run.id)
        training = len(frame) and not (frame["name"] == "epoch_images_per_sec").any()
        if training and t_cpu is None:   # the first reported step: the epoch is under way
            t_cpu = (now, server.cpu(), browser_cpu_seconds())
        if pages and t_cpu is not None and training:
            step = shown_step(pages[0])
            if step is None:            # testing or saving: the clock starts again with the next epoch's steps
                last_change = last_step = None
            elif step != last_step:
                if last_change is not None:
                    gaps.append(now - last_change)
                last_change, last_step = now, step
        if t_cpu is not None and not training:   # the epoch has ended (its row is written)
            samples.append((now, server.cpu(), browser_cpu_seconds()))
            break
        if run.status not in ("queued", "running"):
            raise RuntimeError(f"run #{run.id} ended {run.status} before its first epoch: {run.message}")
        time.sleep(0.25)
    while store.get(run.id).is_active:
        time.sleep(0.25)
    end = samples[-1]
    frame = store.metrics(run.id)
    ips = float(frame.loc[frame["name"] == "epoch_images_per_sec", "value"].iloc[-1])
    wall = end[0] - t_cpu[0]
    close_tabs(pages)
    return {"ips": ips, "wall": wall, "server": (end[1] - t_cpu[1]) / wall, "browser": (end[2] - t_cpu[2]) / wall,
            "max_gap": max(gaps) if gaps else None, "updates": len(gaps)}


def replayed_run(store, cfg, seconds: float, images_per_sec: float, test_s: float, started) -> None:
    """Write what a trainer of `cfg` at `images_per_sec` writes (metric rows flushed every
    worker.FLUSH_EVERY_S, phase rows, epoch rows, heartbeats) for `seconds`, with no training: the server's and
    the browser's cost of watching, free of the trainer's own CPU use (--replay)."""
    from core.runs.progress import phase_row
    from core.runs.worker import FLUSH_EVERY_S

    run = store.create_run(cfg, "replayed run")
    per_epoch = -(-cfg.train_subset // cfg.batch_size)
    store.mark_running(run.id, pid=os.getpid(), device="cpu (replay)")
    epochs = max(2, int(seconds * images_per_sec / cfg.train_subset) + 1)   # about as many as the replay lasts
    store.set_plan(run.id, steps_per_epoch=per_epoch, total_steps=per_epoch * epochs)
    steps_per_sec = images_per_sec / cfg.batch_size
    start, step, epoch, pending, flushed = time.time(), 0, 1, [], time.time()
    store.log_metrics(run.id, [(0, 1, "lr", cfg.lr), (0, 1, phase_row("starting"), 1.0), (0, 1, phase_row("training"), 1.0)])
    started.set()
    while time.time() - start < seconds:
        time.sleep(cfg.log_every / steps_per_sec)
        step += cfg.log_every
        pending += [(step, epoch, "train_loss", 2.0 / (1 + step / 1000)), (step, epoch, "train_acc", 0.3)]
        if time.time() - flushed >= FLUSH_EVERY_S:   # as often as the real trainer writes
            store.log_metrics(run.id, pending)
            store.heartbeat(run.id, train_seconds=time.time() - start)
            pending, flushed = [], time.time()
        if step >= epoch * per_epoch:   # the epoch's end: test, report, checkpoint
            store.log_metrics(run.id, pending + [(step, epoch, phase_row("testing"), 1.0)])
            time.sleep(test_s)
            store.log_metrics(run.id, [(step, epoch, "epoch_" + name, value) for name, value in (
                ("train_loss", 1.5), ("train_acc", 0.4), ("test_loss", 1.6), ("test_acc", 0.38 + 0.01 * epoch),
                ("images_per_sec", images_per_sec), ("lr", cfg.lr))] + [(step, epoch, phase_row("saving"), 1.0)])
            epoch += 1
            store.log_metrics(run.id, [(step, epoch, phase_row("training"), 1.0)])
            pending, flushed = [], time.time()
    store.mark_finished(run.id, "completed", "replay over")


def one_replay(store, server: Server, browser, cfg, tabs: int, args) -> dict:
    """Server and browser CPU while a replayed run is watched by `tabs` tabs."""
    import threading

    pages = open_tabs(browser, server.url, tabs, store)
    time.sleep(2.0)
    started = threading.Event()
    writer = threading.Thread(target=replayed_run, args=(store, cfg, args.replay + 5, args.replay_rate,
                                                         args.replay_test_s, started))
    writer.start()
    started.wait()
    for page in pages:   # every tab has noticed the run and draws it live (a whole page run each)
        page.locator("." + PROGRESS_CLASS).first.wait_for(timeout=180_000)
    time.sleep(2.0)
    start = (time.time(), server.cpu(), browser_cpu_seconds())
    gaps, last_change, last_step = [], None, None
    while time.time() - start[0] < args.replay:
        if pages:
            step = shown_step(pages[0])
            if step is None:
                last_change = last_step = None
            elif step != last_step:
                if last_change is not None:
                    gaps.append(time.time() - last_change)
                last_change, last_step = time.time(), step
        time.sleep(0.25)
    end = (time.time(), server.cpu(), browser_cpu_seconds())
    writer.join()
    close_tabs(pages)
    wall = end[0] - start[0]
    return {"ips": 0.0, "wall": wall, "server": (end[1] - start[1]) / wall, "browser": (end[2] - start[2]) / wall,
            "max_gap": max(gaps) if gaps else None, "updates": len(gaps)}


def idle_cpu(server: Server, browser, tabs: int, seconds: float) -> float:
    """Server CPU (share of one core) with `tabs` tabs open on a page where nothing changes."""
    pages = open_tabs(browser, server.url, tabs)
    time.sleep(10.0)   # the first page run of each tab (seconds on a loaded machine) is not "idle"
    start = (time.time(), server.cpu())
    time.sleep(seconds)
    used = (server.cpu() - start[1]) / (time.time() - start[0])
    close_tabs(pages)
    return used


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.live_overhead", description=__doc__.split("\n\n")[0])
    common.add_machine_args(ap)
    ap.add_argument("--presets", nargs="+", default=["tutorial_mlp", "cpu_cnn"])
    ap.add_argument("--train-subset", type=int, default=20000)
    ap.add_argument("--test-subset", type=int, default=2000)
    ap.add_argument("--tabs", nargs="+", type=int, default=[1, 3])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--idle-s", type=float, default=15.0)
    ap.add_argument("--replay", type=float, default=0.0, metavar="SECONDS",
                    help="instead of training, write a run's rows as a trainer at --replay-rate images/s "
                         "would, for SECONDS per variant: the server's and browser's CPU alone, no throughput")
    ap.add_argument("--replay-rate", type=float, default=3000.0, help="images/s of the replayed run")
    ap.add_argument("--replay-test-s", type=float, default=1.0, help="seconds each replayed epoch end takes")
    ap.add_argument("--compare-tree", type=Path, help="a copy of the repository from before a change: its "
                    "dashboard is watched too, alternating with this one, so both meet the same load")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # a kill still stops the server and the trainer
    chromium = next((c for c in CHROMIUM if Path(c).exists()), None)
    if chromium is None:
        print("no chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from core.runs.store import RunStore
    from core.train.config import PRESETS

    with tempfile.TemporaryDirectory(prefix="live-overhead-") as tmp:
        os.environ.update(CIFARLAB_RUNS_DIR=str(Path(tmp) / "runs"), CIFAR10_ROOT=str(Path(args.data_root).resolve()),
                          CIFARLAB_OFFLINE="1")
        store = RunStore()
        servers = {"": Server(dict(os.environ), Path(tmp) / "streamlit.log")}
        if args.compare_tree:
            tree = args.compare_tree.resolve()
            # started in the old tree's folder: `python -m` puts that folder first on the import path, so
            # its dashboard and core are imported rather than this checkout's installed ones
            servers[" (before)"] = Server(dict(os.environ), Path(tmp) / "before.log", tree)
        loads = [common.load_average()]
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True, args=[
                    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
                for name in args.presets:
                    cfg = PRESETS[name].config.replace(epochs=1, train_subset=args.train_subset,
                                                       test_subset=args.test_subset, device="cpu")
                    variants = [(0, "")] + [(tabs, which) for tabs in args.tabs for which in servers]
                    results: dict[tuple, list[dict]] = {v: [] for v in variants}
                    for round_ in range(args.repeat):
                        for tabs, which in common.rotated(variants, round_):
                            measure = (lambda *a: one_replay(*a, args)) if args.replay else one_run
                            r = measure(store, servers[which], browser, cfg, tabs)
                            results[tabs, which].append(r)
                            print(f"# {name}, {tabs} tab(s){which}: {r['ips']:.0f} images/s, server "
                                  f"{100 * r['server']:.1f}% of a core, browser {100 * r['browser']:.1f}%, longest "
                                  f"gap {r['max_gap']}, load {common.load_average():.2f}", flush=True)
                            loads.append(common.load_average())
                    idle = {(tabs, which): idle_cpu(server, browser, tabs, args.idle_s)
                            for tabs in args.tabs for which, server in servers.items()}
                    report(name, args, results, idle, loads)
                browser.close()
        finally:
            for server in servers.values():
                server.stop()
            from core.runs import jobs
            for run in store.list_runs():   # a bench stopped early leaves no trainer behind
                if run.is_active:
                    jobs.kill_trainer(run, signal.SIGKILL)
    return 0


def report(name: str, args, results: dict[tuple, list[dict]], idle: dict[tuple, float], loads: list[float]) -> None:
    base = max(r["ips"] for r in results[0, ""]) or 1.0
    if args.replay:
        print(f"# {name}, replayed (no training): rows as a trainer at {args.replay_rate:,.0f} images/s writes them, "
              f"{args.train_subset} images per epoch, {args.replay:.0f} s per variant")
    print(f"# {name}: {args.train_subset} training images x 1 epoch, {args.repeat} round(s) (best images/s of "
          f"each), trainer and server on this machine ({os.cpu_count()} CPUs), load average "
          f"{min(loads):.2f}-{max(loads):.2f}")
    print(f"{'watched by':21s} {'images/s':>9s} {'best vs best':>12s} {'median vs':>11s} {'server CPU/tab':>15s} "
          f"{'browser CPU':>12s} {'longest gap':>12s}   all runs (images/s)")
    median = statistics.median(r["ips"] for r in results[0, ""]) or 1.0
    for (tabs, which), runs in results.items():
        best = max(r["ips"] for r in runs)
        mid = statistics.median(r["ips"] for r in runs)
        label = ("no tab" if tabs == 0 else f"{tabs} tab(s)") + which
        server = min(r["server"] for r in runs) / max(tabs, 1)
        browser = min(r["browser"] for r in runs)
        gaps = [r["max_gap"] for r in runs if r["max_gap"] is not None]
        gap = f"{max(gaps):.1f} s" if gaps else "–"
        each = ", ".join(f"{r['ips']:.0f}" for r in runs)
        print(f"{label:21s} {best:9.0f} {100 * best / base:11.1f}% {100 * mid / median:10.1f}% "
              f"{100 * server:14.1f}% {100 * browser:11.1f}% {gap:>12s}   {each}")
    for (tabs, which), used in idle.items():
        per_tab = f" ({100 * used / tabs:.1f}% per tab)" if tabs else ""
        print(f"idle{which}, {tabs} tab(s) open, nothing changing: server {100 * used:.1f}% of a core{per_tab}")
    print(flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
