"""In a real browser: lower the learning rate of a running run and see the change on the charts."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.runs import jobs
from core.train.config import TrainConfig

pytestmark = pytest.mark.e2e
SLOW = 120_000


def test_lower_the_learning_rate_of_a_running_run(app_server, page, screenshot_dir, store):
    # The whole synthetic set, constant rate 1e-3, 200 epochs: still training when the checks below
    # look at its live view on any machine (its trainer is killed when the test ends).
    cfg = TrainConfig.smoke(epochs=200, train_subset=None, test_subset=256, log_every=1, lr=1e-3)
    run = jobs.start_run(store, cfg, "change me")
    page.goto(app_server.url + "/training")
    page.get_by_role("heading", name="Training").first.wait_for()
    charts = page.locator('[data-testid="stPlotlyChart"]')
    lr_chart = charts.filter(has_text="Learning rate")
    expect(page.get_by_text("Change this run while it trains")).to_be_visible(timeout=SLOW)
    expect(page.get_by_text("step ").first).to_be_visible(timeout=SLOW)

    factor = page.get_by_role("spinbutton", name="Learning-rate factor")
    factor.fill("0.1")
    factor.press("Enter")
    # The live part reruns every 1.5 s: click only once the typed factor is the widget's value and the
    # rerun it started has drawn (no stale elements), so the click carries 0.1, not the default.
    expect(factor).to_have_value(re.compile(r"^0\.10*$"), timeout=SLOW)
    page.wait_for_function("() => document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=SLOW)
    page.get_by_role("button", name="Multiply lr").click()

    # The marker, labelled with the new rate, on the learning-rate chart and the loss chart.
    expect(lr_chart.locator("text", has_text="lr × 0.1 → 0.0001")).to_be_visible(timeout=SLOW)
    # The loss chart of a running run is the live view's (dashboard/live_view.js), drawn in place.
    live_chart = page.locator(".cifarlab-live-chart").filter(has_text="Loss (synthetic)")
    expect(live_chart.locator("text", has_text="lr × 0.1").first).to_be_visible(timeout=SLOW)
    assert store.get(run.id).status == "running"      # seen while it trains, not on the finished run's chart
    # The list of changes says where it was applied; the rate the trainer uses is the new one.
    expect(page.locator('[data-testid="stCaptionContainer"]').filter(
        has_text="Changed while training: lr 0.001 → 0.0001 (step")).to_be_visible(timeout=SLOW)
    (event,) = store.events(run.id)
    assert not event.pending and event.kind == "lr_factor" and event.value == 0.1
    rows = store.metrics(run.id).query("name == 'lr'")
    assert rows["value"].iloc[-1] == pytest.approx(1e-4) and rows["step"].iloc[-1] == event.step
    page.set_viewport_size({"width": 1400, "height": 2200})
    page.screenshot(path=str(screenshot_dir / "training-control.png"))
