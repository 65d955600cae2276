"""The Training page's queue and sweeps in Streamlit's AppTest. The trainers' launch is replaced by
this process (its pid stands in for each trainer), so slots stay held and nothing trains: what is
tested is what the page shows and asks of the store."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.runs import jobs
from core.runs.store import RunStore
from core.train.config import TrainConfig
from dashboard import sweep_panel
from dashboard.training_keys import SELECTED

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "training.py")
FIXED = "epochs=2, train_subset=512, test_subset=256, batch_size=64, device=cpu"


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "1")
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: os.getpid())  # no trainer processes
    return RunStore()


def page(selected: int | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["dataset_kind"] = "synthetic"
    if selected is not None:
        at.session_state[SELECTED] = selected
    return at.run()


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_a_queued_run_shows_its_place_and_can_be_moved_up_or_cancelled(store):
    first = jobs.start_run(store, TrainConfig.smoke(), name="first")
    second = jobs.start_run(store, TrainConfig.smoke(), name="second")
    third = jobs.start_run(store, TrainConfig.smoke(), name="third")
    assert not first.waiting and (second.place, third.place) == (1, 2)

    at = page(selected=third.id)
    assert not at.exception, at.exception
    assert "Waiting in the queue: 2nd in line" in markdown(at)
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[second.id, "status"] == "queued (1st in line)"
    assert table.loc[third.id, "status"] == "queued (2nd in line)"
    assert table.loc[first.id, "device"] == "cpu (2 threads)" or table.loc[first.id, "device"].startswith("cpu")
    start = at.button(key="train_start")
    assert not start.disabled and start.label == "Queue this run"  # busy: a new run waits instead of refused

    at.button(key="train_queue_move_up").click().run()
    assert not at.exception
    assert store.get(third.id).place == 1 and store.get(second.id).place == 2
    assert any("now 1st in line" in s.value for s in at.success), [s.value for s in at.success]
    assert "Waiting in the queue: 1st in line" in markdown(at)
    assert at.button(key="train_queue_move_up").disabled  # first already

    at.button(key="train_queue_cancel").click().run()
    assert not at.exception
    assert store.get(third.id).status == "stopped" and store.get(second.id).place == 1
    assert at.dataframe[0].value.set_index("run").loc[third.id, "status"] == "stopped"
    assert not at.button(key="train_resume").disabled  # Resume puts it back in line


def test_a_sweep_is_started_from_its_form_and_summarised(store):
    at = page()
    at.selectbox(key=sweep_panel.PRESET).set_value("fast_mlp")
    at.selectbox(key=sweep_panel.FIRST).set_value("seed")
    at.text_input(key=sweep_panel.FIRST_VALUES).input("0, 1")
    at.selectbox(key=sweep_panel.SECOND).set_value("lr")
    at.text_input(key=sweep_panel.SECOND_VALUES).input("1e-3, 2e-3")
    at.text_input(key=sweep_panel.FIXED).input(FIXED)
    at.text_input(key=sweep_panel.NAME).input("seeds x lr")
    at.button(key=sweep_panel.START).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (sweep,) = store.sweeps()
    runs = store.sweep_runs(sweep.id)
    assert sweep.name == "seeds x lr" and len(runs) == 4
    assert {(r.config.seed, r.config.lr, r.config.epochs, r.dataset) for r in runs} == {
        (s, lr, 2, "synthetic") for s in (0, 1) for lr in (1e-3, 2e-3)}
    assert [r.waiting for r in runs] == [False, True, True, True]  # one slot
    assert any("Started sweep #1 seeds x lr with 4 runs (1 training, 3 waiting" in s.value.replace("\\", "")
               for s in at.success), [s.value for s in at.success]  # shown as plain text (escaped markdown)

    # The runs finish (this process stands in for their trainers) with known accuracies.
    finals = {(0, 1e-3): 0.40, (1, 1e-3): 0.44, (0, 2e-3): 0.50, (1, 2e-3): 0.56}
    for run in runs:
        while store.get(run.id).waiting:  # each takes the slot in turn, as the queue gives it
            store.claim_next(1, lambda r, held: "cpu")
        store.mark_running(run.id, pid=os.getpid(), device="cpu")
        acc = finals[(run.config.seed, run.config.lr)]
        store.log_metrics(run.id, [(8, 1, "epoch_test_acc", acc - 0.1), (16, 2, "epoch_test_acc", acc)])
        store.mark_finished(run.id, "completed", "ok", best_test_acc=acc, final_test_acc=acc)
    at.run()
    assert not at.exception
    summary = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert summary["setting"].tolist() == ["lr=0.001", "lr=0.002"]
    assert summary["final test acc (%)"].tolist() == ["42.00 ± 2.83", "53.00 ± 4.24"]
    assert summary["best setting"].tolist() == ["", "★"]
    assert summary["completed"].tolist() == ["2/2", "2/2"]
    chart = next(el for el in at.get("plotly_chart") if "a colour per setting" in el.proto.spec)
    import json
    traces = json.loads(chart.proto.spec)["data"]
    assert len(traces) == 4 and {t["name"] for t in traces} == {f"lr={lr} · seed {s}" for lr in ("0.001", "0.002")
                                                                for s in (0, 1)}
    widths = {t["name"]: t["line"]["width"] for t in traces}
    assert widths["lr=0.002 · seed 0"] > widths["lr=0.001 · seed 0"]  # the best setting stands out


@pytest.mark.parametrize("first, values, message", [
    ("lr", "1e-3, -1", "**Learning rate**: must be > 0, got -1"),
    ("seed", "0, x", "**Seed**: must be a whole number, got 'x'"),
    ("batch_size", "64, 100000", "**Batch size**: must be at most 65,536"),
])
def test_a_bad_sweep_value_names_the_setting_and_starts_nothing(store, first, values, message):
    at = page()
    at.selectbox(key=sweep_panel.FIRST).set_value(first)
    at.text_input(key=sweep_panel.FIRST_VALUES).input(values)
    at.selectbox(key=sweep_panel.SECOND).set_value(sweep_panel.NONE)
    at.button(key=sweep_panel.START).click().run()
    assert not at.exception
    assert any(message in e.value.replace("\\", "") for e in at.error), [e.value for e in at.error]
    assert store.list_runs() == [] and store.sweeps() == []
