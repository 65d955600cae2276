"""Shared fixtures: isolated folders, real CIFAR-10 when present, a live server and a real browser."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# A page asking for a text the catalogues lack fails its test instead of falling back (core.i18n).
os.environ.setdefault("CIFARLAB_I18N_STRICT", "1")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def _skip_or_fail(reason: str) -> None:
    """Outside CI a missing resource skips with a reason; under CI it must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def session_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cifarlab")
    dirs = {"synthetic": base / "synthetic", "runs": base / "runs"}
    for d in dirs.values():
        d.mkdir()
    return dirs


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, session_dirs, tmp_path):
    """Every test writes runs to its own folder and never downloads anything."""
    monkeypatch.setenv("CIFARLAB_SYNTHETIC_ROOT", str(session_dirs["synthetic"]))
    monkeypatch.setenv("CIFARLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CIFARLAB_OFFLINE", "1")
    if not os.environ.get("CIFAR10_ROOT"):
        # Point at an empty folder so the app never finds or fetches a stray ./data.
        monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "no-cifar"))
    yield


@pytest.fixture
def no_cifar(monkeypatch, tmp_path) -> Path:
    """CIFAR10_ROOT points at an empty folder, even when the suite runs with real data."""
    empty = tmp_path / "no-cifar"
    monkeypatch.setenv("CIFAR10_ROOT", str(empty))
    return empty


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    """The development split built from ../shared/datasets (make test builds it)."""
    raw = os.environ.get("CIFAR10_ROOT", "")
    root = Path(raw) if raw else None
    if root is None or not (root / "cifar-10-batches-py" / "test_batch").is_file():
        _skip_or_fail(
            "real CIFAR-10 not found: set CIFAR10_ROOT to a folder holding cifar-10-batches-py/ "
            "(`make test` builds one from ../shared/datasets)"
        )
    return root


@pytest.fixture(scope="session")
def synthetic_dataset(session_dirs):
    from core import data

    return data.load_synthetic(session_dirs["synthetic"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """A real dashboard server (`python -m dashboard`) on a free localhost port."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path = REPO):
        self.port = _free_port()
        self.url = f"http://localhost:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # The launcher users start (`make run`): the project's safe settings from any folder.
        cmd = [sys.executable, "-m", "dashboard", "--server.port", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early; log: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not answer in 60 s; log: {log_path.read_text()[-2000:]}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture
def app_server(tmp_path, isolated_env):
    """Start the dashboard with the test's isolated folders; yields the server (url, port)."""
    env = dict(os.environ)
    server = AppServer(env, tmp_path / "streamlit.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    for cand in CHROMIUM_CANDIDATES:
        if Path(cand).exists():
            return cand
    found = shutil.which("chromium")
    if found:
        return found
    _skip_or_fail("no chromium browser found: `apt-get install chromium` (Debian) to run browser tests")


@pytest.fixture(scope="session")
def browser(chromium_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed in this environment")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


# How long a browser test waits for the condition it checks (Playwright polls until then). Generous,
# because a loaded 2-core machine (a training run beside the suite) can take seconds to render a
# page, and a test that gives up after 5 s (expect's own default) fails there at random.
BROWSER_WAIT_MS = 60_000


@pytest.fixture
def page(browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=BROWSER_WAIT_MS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(BROWSER_WAIT_MS)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Screenshots from browser tests land here for a person to look at."""
    out = REPO / "test-output" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def stand_in_store():
    """The page's store (this test's CIFARLAB_RUNS_DIR) for tests in which this process stands in for
    every trainer: runs it left active are marked stopped when the test ends."""
    from core.runs.store import RunStore

    store = RunStore()
    yield store
    for run in store.list_runs():
        if run.is_active:
            store.mark_finished(run.id, "stopped", "test over")


@pytest.fixture
def store():
    """The test's run store (its isolated CIFARLAB_RUNS_DIR), whose trainer processes are all killed
    when the test ends, pass or fail. (A module may define its own `store`.)"""
    import signal

    from core.runs import jobs
    from core.runs.store import RunStore

    store = RunStore()
    yield store
    for run in store.list_runs():
        jobs.kill_trainer(run, signal.SIGKILL)  # only `core train --run <id>` processes, never this one
