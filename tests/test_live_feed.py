"""The live view's feed (dashboard.live_feed) and the Training page's live view (dashboard.live_view):
what the route answers, that it agrees with the page run on when the page is out of date (else the
view would rerun the page every second), and how the page draws the view with and without the route."""
from __future__ import annotations

import asyncio
import json

import pytest
from starlette.requests import Request

from core.i18n import t
from core.runs.progress import phase_row
from dashboard import live_feed
from dashboard.figures import training as ft
from tests.run_checks import live_views
from tests.test_training_run_page import PER_EPOCH, page, stored_run


@pytest.fixture
def store(stand_in_store):
    return stand_in_store


@pytest.fixture
def served(monkeypatch):
    """The page as `python -m dashboard` serves it: with the live route."""
    monkeypatch.setattr(live_feed, "_served", True)


def training(store, epochs_done: int = 1) -> int:
    """A run that finished `epochs_done` of 3 epochs and is in the middle of the next."""
    run_id = stored_run(store, "live", [(0.3, 0.35)] * epochs_done, finish=False, epochs=3)
    step = PER_EPOCH * epochs_done
    store.log_metrics(run_id, [(step, epochs_done + 1, phase_row("training"), 1.0),
                               (step + 2, epochs_done + 1, "train_loss", 1.9)])
    return run_id


def route(query: str) -> tuple[int, dict]:
    """The route's status and JSON answer for a query string, through its Starlette endpoint."""
    request = Request({"type": "http", "method": "GET", "path": live_feed.ROUTE, "headers": [],
                       "query_string": query.encode()})
    response = live_feed.endpoint(request)
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, json.loads(response.body)


def test_the_route_answers_what_is_new_after_a_step_and_how_many_points_came_before(store):
    run_id = training(store)
    frame = store.metrics(run_id)
    train = ft.series(frame, "train_loss")
    status, whole = route(f"run={run_id}&after=-1&lang=en")
    assert status == 200 and whole["statuses"] == live_feed.statuses_digest(store.statuses())
    loss = whole["run"]["loss"]
    assert loss["start"] == 0 and loss["step"] == train["step"].tolist()
    assert loss["raw"] == pytest.approx(train["value"].tolist())
    assert loss["smooth"] == pytest.approx(ft.ema(train["value"]).tolist())
    assert loss["test"]["step"] == [PER_EPOCH] and loss["test"]["epoch"] == [1]
    assert loss["title"] == "Loss (synthetic)"
    _, later = route(f"run={run_id}&after={PER_EPOCH}&lang=en")
    assert later["run"]["loss"]["step"] == [PER_EPOCH + 2]
    assert later["run"]["loss"]["start"] == len(train) - 1        # points before: a view with fewer asks for all
    assert later["run"]["loss"]["smooth"] == pytest.approx(whole["run"]["loss"]["smooth"][-1:])
    view = later["run"]
    assert view["progress"]["text"].startswith("Training · epoch 2/3 · step 10/24")
    assert [m["label"] for m in view["metrics"]] == ["Epoch", "Step", "Images / second", "Test accuracy"]
    assert [m["value"] for m in view["metrics"]][:2] == ["2/3", "10/24"]
    assert view["now"]["badge"] and view["now"]["text"].startswith("**Steps 1–9: the training loop.**")


def test_rows_written_after_a_poll_come_with_the_next_one(store):
    run_id = training(store)
    _, first = route(f"run={run_id}&after=-1")
    last = first["run"]["loss"]["step"][-1]
    store.log_metrics(run_id, [(last + 2, 2, "train_loss", 1.8), (last + 4, 2, "train_loss", 1.7)])
    _, second = route(f"run={run_id}&after={last}")
    assert second["run"]["loss"]["step"] == [last + 2, last + 4]
    assert second["run"]["settled"] == first["run"]["settled"]     # only the loss moved on: no page rerun


def test_the_route_says_when_the_rest_of_the_page_is_out_of_date(store):
    run_id = training(store)
    seen = [route(f"run={run_id}")[1]]

    def changed() -> tuple[bool, bool]:
        seen.append(route(f"run={run_id}")[1])
        before, now = seen[-2], seen[-1]
        return now["statuses"] != before["statuses"], (now["run"] or {}).get("settled") != before["run"]["settled"]

    store.log_metrics(run_id, [(PER_EPOCH + 4, 2, "train_loss", 1.7)])
    assert changed() == (False, False)
    store.log_metrics(run_id, [(PER_EPOCH * 2, 2, phase_row("testing"), 1.0)])    # the nine steps' highlight
    assert changed() == (False, True)
    store.log_metrics(run_id, [(PER_EPOCH * 2, 2, "epoch_test_acc", 0.4)])       # an epoch's end
    assert changed() == (False, True)
    event = store.request_control(run_id, "lr_factor", 0.5)
    store.mark_event_applied(event.id, step=PER_EPOCH * 2, epoch=2)               # a change applied
    assert changed() == (False, True)
    other = store.create_run(store.get(run_id).config, name="queued")              # a run added anywhere
    assert changed()[0]
    store.mark_finished(other.id, "stopped", "not needed")
    changed()
    store.mark_finished(run_id, "completed", "ok")                                  # the run ended
    _, done = route(f"run={run_id}")
    assert done["run"] is None and done["statuses"] != seen[-1]["statuses"]


def test_bad_queries_get_defaults_and_an_unknown_run_no_view(store):
    run_id = training(store)
    status, body = route("run=abc&after=x&lang=fr")
    assert status == 200 and body["run"] is None
    _, body = route(f"run={run_id}&after=&lang=fr")                     # an unknown language: English
    assert body["run"]["loss"]["start"] == 0 and body["run"]["progress"]["text"].startswith("Training")
    _, body = route("run=999")
    assert body["run"] is None


def test_the_page_and_the_route_agree_on_what_the_page_shows(store, served):
    run_id = training(store)
    at = page()
    (data,) = live_views(at)
    _, body = route(f"run={run_id}&lang=en")
    # the same rows read by the page run and by the route: nothing to rerun for
    assert data["settled"] == body["run"]["settled"] and data["seen"] == body["statuses"]
    assert data["poll"] == live_feed.ROUTE and data["run_id"] == run_id
    assert data["view"]["loss"]["step"] == body["run"]["loss"]["step"]
    assert not at.get("plotly_chart") or "Loss (synthetic)" not in [
        json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_with_the_route_the_page_has_no_timer_and_without_it_a_fragment_feeds_the_view(store, served, monkeypatch):
    run_id = training(store)
    at = page()
    assert live_views(at)[0]["poll"] == live_feed.ROUTE
    monkeypatch.setattr(live_feed, "_served", False)
    at = page()
    (data,) = live_views(at)
    assert data["poll"] is None and data["view"]["loss"]["step"][-1] == PER_EPOCH + 2
    store.log_metrics(run_id, [(PER_EPOCH + 4, 2, "train_loss", 1.7)])
    at.run()        # the fragment's next tick as a page run: the view has the new point
    assert live_views(at)[0]["view"]["loss"]["step"][-1] == PER_EPOCH + 4


def test_with_no_run_active_the_view_only_watches_the_statuses(store, served):
    run_id = stored_run(store, "done", [(0.3, 0.35)])
    at = page(selected=run_id)
    (data,) = live_views(at)
    assert data["run_id"] is None and data["view"] is None and data["poll"] == live_feed.ROUTE
    assert data["seen"] == live_feed.statuses_digest(store.statuses())


def test_the_live_view_speaks_chinese(store, served):
    run_id = training(store)
    at = page("zh")
    (data,) = live_views(at)
    words = data["words"]
    assert words["x"] == t("training.run.chart.step", "zh") and words["waiting"] == t("training.run.chart.loss_waiting", "zh")
    assert data["view"]["progress"]["text"].startswith("训练中 · epoch 2/3")
    assert data["view"]["metrics"][2]["label"] == "图片/秒"
    assert data["view"]["loss"]["title"] == ft.loss_title("zh", synthetic=True)
    _, body = route(f"run={run_id}&lang=zh")
    assert body["run"]["progress"]["text"].startswith("训练中") and body["run"]["now"]["badge"] == t("training.run.steps.now", "zh")


def test_a_store_that_cannot_be_read_is_a_503_with_the_reason(store, monkeypatch):
    from core.runs.store import RunError

    def broken():
        raise RunError("the run store is locked")

    monkeypatch.setattr(live_feed, "_store", broken)
    status, body = route("run=1")
    assert status == 503 and body == {"error": "the run store is locked"}


def test_the_endpoint_is_a_plain_function_for_starlettes_thread_pool(monkeypatch):
    # sqlite reads block: a coroutine would hold up every other request of the server
    monkeypatch.setattr(live_feed, "_served", False)   # serve() marks this process as serving: undone after
    assert not asyncio.iscoroutinefunction(live_feed.endpoint)
    assert live_feed.serve().path == live_feed.ROUTE and live_feed.served()


def test_behind_a_base_url_path_the_route_and_the_view_use_it(store, served, monkeypatch):
    from streamlit import config

    assert live_feed.route_path(None) == live_feed.route_path("") == live_feed.ROUTE
    assert live_feed.route_path("/lab/") == live_feed.route_path("lab") == "/lab" + live_feed.ROUTE
    monkeypatch.setattr(live_feed, "_served", False)   # serve() marks this process as serving: undone after
    assert live_feed.serve("lab").path == "/lab/cifarlab/live"
    monkeypatch.setattr(live_feed, "_served", True)
    training(store)
    before = config.get_option("server.baseUrlPath")
    config.set_option("server.baseUrlPath", "lab")     # as `python -m dashboard --server.baseUrlPath lab`
    try:
        (data,) = live_views(page())
    finally:
        config.set_option("server.baseUrlPath", before)
    assert data["poll"] == "/lab/cifarlab/live"
