"""Started from another folder with relative settings, the page and its trainer use the same folders."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import AppServer
from core.runs import jobs
from core.runs.store import RunStore

pytestmark = pytest.mark.e2e


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_dashboard_started_elsewhere_and_its_trainer_agree_on_folders(tmp_path, page, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, CIFARLAB_RUNS_DIR="my-runs", CIFARLAB_SYNTHETIC_ROOT="my-data/synthetic")
    server = AppServer(env, tmp_path / "streamlit.log", cwd=elsewhere)
    store = RunStore(elsewhere / "my-runs")   # where the page must put its runs: relative to its own folder
    try:
        page.goto(server.url + "/training")
        page.get_by_role("heading", name="Training").first.wait_for()
        page.get_by_text("Synthetic demo set", exact=True).first.click()
        page.get_by_text("Trains on the Synthetic demo set").first.wait_for()
        page.get_by_text("No runs yet").first.wait_for()
        page.wait_for_function("""() => document.querySelectorAll('[data-stale="true"]').length === 0""")
        page.get_by_role("button", name="Start training").click()

        deadline = time.time() + 120
        run = None
        while time.time() < deadline:  # the trainer reports itself running once it has loaded the data
            runs = store.list_runs()
            if runs and runs[0].status == "running" and runs[0].steps_per_epoch:
                run = runs[0]
                break
            time.sleep(0.2)
        assert run is not None, f"no run started in {store.root}; server log: {server.log_path.read_text()[-2000:]}"
        trainer_env = _environ(run.pid)
        assert trainer_env["CIFARLAB_RUNS_DIR"] == str(elsewhere / "my-runs")
        assert trainer_env["CIFARLAB_SYNTHETIC_ROOT"] == str(elsewhere / "my-data" / "synthetic")
        assert os.readlink(f"/proc/{run.pid}/cwd") == str(store.run_dir(run.id))
        # The trainer read the demo set the page wrote, from the folder the page resolved.
        assert (elsewhere / "my-data" / "synthetic" / "cifar-10-batches-py" / "test_batch").is_file()
        assert not (Path(__file__).resolve().parent.parent / "my-runs").exists()
        page.get_by_text(run.label).first.wait_for(timeout=60_000)  # the page shows the trainer's run
    finally:
        for r in store.list_runs():
            jobs.kill_trainer(r, signal.SIGKILL)
        server.stop()
