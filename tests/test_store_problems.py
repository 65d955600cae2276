"""A bad row, a newer version's settings, a damaged or read-only store: each says what and where,
and the rest of the store keeps working."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import pytest

from core.cli import main
from core.runs.store import RunStore, RunStoreError, RunUnreadableError
from core.train.config import TrainConfig


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "store")


def _set_config(store: RunStore, run_id: int, text: str) -> None:
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE runs SET config = ? WHERE id = ?", (text, run_id))


def test_settings_from_a_newer_version_are_kept_and_reported_not_fatal(store):
    run = store.create_run(TrainConfig.smoke(), name="from the future")
    stored = {**TrainConfig.smoke().to_dict(), "mixup": 0.2, "sam_rho": 0.05}
    _set_config(store, run.id, json.dumps(stored))
    seen = store.get(run.id)
    assert seen.config == TrainConfig.smoke()
    assert seen.unknown_settings == {"mixup": 0.2, "sam_rho": 0.05}
    assert any("mixup" in note and "newer version" in note for note in seen.notes)
    (listed,) = store.list_runs()
    assert listed.unknown_settings == {"mixup": 0.2, "sam_rho": 0.05}
    with sqlite3.connect(store.db_path) as conn:  # kept: nothing rewrote the stored settings
        assert json.loads(conn.execute("SELECT config FROM runs").fetchone()[0])["mixup"] == 0.2


@pytest.mark.parametrize("text, reason", [("{not json", "not valid JSON"),
                                          (json.dumps({**TrainConfig.smoke().to_dict(), "lr": -1}), "lr: must be > 0")])
def test_one_unreadable_run_is_listed_with_its_reason_and_the_others_work(store, text, reason):
    good = store.create_run(TrainConfig.smoke(), name="good")
    bad = store.create_run(TrainConfig.smoke(), name="bad")
    _set_config(store, bad.id, text)
    assert [r.id for r in store.list_runs()] == [good.id]
    (problem,) = store.unreadable_runs()
    assert problem.id == bad.id and problem.name == "bad" and reason in problem.reason
    with pytest.raises(RunUnreadableError, match=rf"run #{bad.id} 'bad' cannot be read: .*{reason}"):
        store.get(bad.id)
    assert store.get(good.id).name == "good"
    store.reconcile()  # does not trip over the bad row either


def test_cli_lists_an_unreadable_run_by_id_and_reason(store, capsys):
    store.create_run(TrainConfig.smoke(), name="good")
    bad = store.create_run(TrainConfig.smoke(), name="bad")
    _set_config(store, bad.id, "{not json")
    assert main(["runs", "--runs-dir", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "good" in out
    assert f"#{bad.id} 'bad' cannot be read" in out and "not valid JSON" in out


def test_a_garbage_database_file_gets_a_message_naming_it_and_the_fix(tmp_path, capsys):
    root = tmp_path / "store"
    root.mkdir()
    (root / "runs.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(RunStoreError) as err:
        RunStore(root)
    message = str(err.value)
    assert str(root / "runs.sqlite") in message and "not a SQLite database" in message
    assert "rename" in message or "move" in message
    assert main(["runs", "--runs-dir", str(root)]) == 1
    assert "not a SQLite database" in capsys.readouterr().err


@pytest.fixture
def read_only_later(tmp_path):
    """A folder to fill now and make truly read-only later (call the yielded function).

    Root ignores permission bits, so as root the folder is its own tmpfs, remounted read-only; as
    any other user the bits do it.
    """
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    if os.getuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("running as root without permission to mount a read-only tmpfs")

    def make_read_only() -> None:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        else:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(0o555 if p.is_dir() else 0o444)

    yield folder, make_read_only
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_a_read_only_store_lists_runs_and_refuses_writes_with_a_message(read_only_later, capsys):
    folder, make_read_only = read_only_later
    root = folder / "store"
    store = RunStore(root)
    store.create_run(TrainConfig.smoke(), name="readable")
    make_read_only()
    with pytest.raises(OSError):  # really read-only, also for this process
        (root / "probe").write_text("x")

    ro = RunStore(root)
    assert [r.name for r in ro.list_runs()] == ["readable"]
    assert ro.read_only
    with pytest.raises(RunStoreError) as err:
        ro.create_run(TrainConfig.smoke())
    assert str(root) in str(err.value) and "read-only" in str(err.value)
    assert main(["runs", "--runs-dir", str(root)]) == 0
    assert "readable" in capsys.readouterr().out


def test_a_read_only_store_written_by_an_older_version_still_lists(read_only_later, capsys):
    """An older store lacks the columns added since (store.ADDED_COLUMNS) and the sweeps table; a read-only
    one cannot get them added, and must still list."""
    import sqlite3

    from core.runs.store import ADDED_COLUMNS

    folder, make_read_only = read_only_later
    root = folder / "store"
    RunStore(root).create_run(TrainConfig.smoke(), name="from an older version")
    conn = sqlite3.connect(root / "runs.sqlite")
    for name, _ in ADDED_COLUMNS:
        conn.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    conn.execute("DROP TABLE IF EXISTS sweeps")
    conn.execute("DROP TABLE IF EXISTS events")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    make_read_only()

    ro = RunStore(root)
    assert ro.read_only
    (run,) = ro.list_runs()
    assert run.name == "from an older version" and run.place is None and run.sweep_id is None
    assert ro.events(run.id) == []
    assert main(["runs", "--runs-dir", str(root)]) == 0
    assert "from an older version" in capsys.readouterr().out
