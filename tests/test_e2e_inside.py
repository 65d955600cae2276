"""Look inside the model in a real browser: the epoch scrubber redraws the per-class chart, and an opened
misclassified image shows the saliency maps of its predicted and its true class."""
from __future__ import annotations

import pytest

from core import data
from core.runs.store import RunStore
from evaluate_fixtures import history_config, train_run
from test_e2e_evaluation import SLOW


@pytest.fixture
def run_with_history(session_dirs):
    dataset = data.load_synthetic(session_dirs["synthetic"])
    return train_run(RunStore(), dataset, history_config(), "inside e2e", history=True)


def bar_labels(chart) -> list[str]:
    return chart.locator("text.bartext").evaluate_all("els => els.map(e => e.textContent)")


@pytest.mark.e2e
def test_scrubber_and_saliency_maps(run_with_history, app_server, page, screenshot_dir):
    from playwright.sync_api import expect

    page.goto(app_server.url + "/evaluation")
    expect(page.get_by_role("heading", name="Epoch by epoch")).to_be_visible(timeout=SLOW)
    page.set_viewport_size({"width": 1400, "height": 1400})
    heading = page.get_by_role("heading", name="Epoch by epoch")
    heading.scroll_into_view_if_needed()
    bars = page.locator("[data-testid=stPlotlyChart]").filter(has_text="Test accuracy per class").nth(1)
    expect(bars.locator("text.bartext").first).to_be_visible(timeout=SLOW)
    at_last = bar_labels(bars)
    accuracy = page.get_by_test_id("stMetric").filter(has_text="Test accuracy at this epoch")
    before = accuracy.get_by_test_id("stMetricValue").inner_text()
    page.screenshot(path=str(screenshot_dir / "inside_scrubber_epoch3.png"))

    thumb = page.get_by_role("slider")
    thumb.first.focus()
    page.keyboard.press("Home")                            # back to epoch 1
    expect(thumb.first).to_have_attribute("aria-valuetext", "1", timeout=SLOW)
    expect(accuracy.get_by_test_id("stMetricValue")).not_to_have_text(before, timeout=SLOW)
    expect(bars.locator("text.bartext").first).to_be_visible(timeout=SLOW)
    # the history's bar chart, redrawn for epoch 1: Playwright polls its labels until they change
    redrawn = page.locator("[data-testid=stPlotlyChart]").filter(has_text="Test accuracy per class").nth(1)
    expect(redrawn.locator("text.bartext").first).to_be_visible(timeout=SLOW)
    expect(redrawn.locator("text.bartext")).not_to_have_text(at_last, timeout=SLOW)
    now = bar_labels(redrawn)
    assert now and now != at_last, (now, at_last)
    page.screenshot(path=str(screenshot_dir / "inside_scrubber_epoch1.png"))

    grid_top = page.get_by_role("heading", name="Misclassified test images")
    grid_top.scroll_into_view_if_needed()
    page.get_by_test_id("stButton").filter(has_text="#").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Test image #", timeout=SLOW)
    expect(dialog).to_contain_text("Its prediction after each epoch")
    dialog.get_by_text("Show where the model looks").click()
    expect(dialog).to_contain_text("Where the model looks", timeout=SLOW)
    captions = dialog.get_by_test_id("stImageCaption")
    expect(captions.filter(has_text="predicted class:")).to_have_count(1, timeout=SLOW)
    expect(captions.filter(has_text="true class:")).to_have_count(1, timeout=SLOW)
    page.wait_for_function("""() => Array.from(document.querySelectorAll('[role=dialog] [data-testid=stImage] img'))
        .every(img => img.complete && img.naturalWidth > 0)""", timeout=SLOW)
    dialog.element_handle().wait_for_element_state("stable")   # no longer growing with the maps
    page.screenshot(path=str(screenshot_dir / "inside_saliency.png"))
