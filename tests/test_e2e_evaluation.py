"""The Evaluation page in a real browser: a finished tiny run, a confusion pair picked with the select
boxes and by clicking its cell, the filtered images (sharp, not blurred), one image opened larger."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

from core import data

from core.train import engine
from core.train.checkpoints import load_checkpoint
from core.train.config import TrainConfig
from core.train.models import build_model
from core.runs.store import RunStore

SLOW = 120_000  # ms; the first visit imports torch and evaluates the test split, on a shared machine
# Images of the current script run (Streamlit marks the previous run's elements stale until replaced).
FRESH_IMAGES = "[data-testid=stElementContainer]:not([data-stale=true]) [data-testid=stImage] img"


@pytest.fixture
def finished_run(session_dirs):
    """A tiny MLP trained by core.engine on the synthetic set, in this test's CIFARLAB_RUNS_DIR.

    Requested before app_server, so the run exists when the dashboard starts."""
    dataset = data.load_synthetic(session_dirs["synthetic"])
    store = RunStore()
    cfg = TrainConfig.smoke(train_subset=1000, test_subset=None, epochs=2, batch_size=64, lr=1e-3,
                            val_images=200)   # a validation split: best.pt exists and is the page's default
    run = store.create_run(cfg, name="tiny e2e")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    result = engine.fit(cfg, dataset, store.run_dir(run.id))
    store.mark_finished(run.id, result.status, result.message, best_test_acc=result.best_test_acc,
                        final_test_acc=result.final.get("test_acc"))
    ckpt = load_checkpoint(store.checkpoint_path(run.id, "best"))
    model = build_model(ckpt["model"])
    model.load_state_dict(ckpt["model_state"])
    x = torch.from_numpy(dataset.test.images).permute(0, 3, 1, 2).contiguous()
    predicted = engine.infer(model, x).argmax(1).numpy()
    cm = np.zeros((10, 10), int)
    np.add.at(cm, (dataset.test.labels, predicted), 1)
    return store.get(run.id), dataset, cm


def wait_idle(page) -> None:
    """Until the script run is over: no running indicator and no stale element left. A select box
    opened while a rerun replaces it closes again before its options can be clicked."""
    page.wait_for_function("""() => !document.querySelector(
        '[data-testid=stStatusWidgetRunningIcon], [data-testid=stStatusWidgetRunningManIcon], [data-stale=true]')""",
        timeout=SLOW)


def pick(page, label: str, option: str) -> None:
    """Choose `option` in the Streamlit select box labelled `label`, once the page is idle."""
    from playwright.sync_api import expect

    wait_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text=label).locator("input").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.get_by_role("combobox", name=label)).to_have_value(option, timeout=SLOW)


def caption_pattern(true_name: str, predicted_name: str) -> re.Pattern:
    """A thumbnail's caption: "<true> →" then, on the next line, "<predicted> · <confidence>%"."""
    return re.compile(rf"^\s*{re.escape(true_name)}\s*→\s*{re.escape(predicted_name)} · \d+%\s*$")


def wait_for_images(page, count: int, selector: str = FRESH_IMAGES) -> None:
    """Until exactly `count` images match `selector` and all have loaded and decoded.

    An <img> reports its natural size only once loaded: reading sizes before that flakes."""
    page.wait_for_function("""([sel, n]) => {
        const imgs = Array.from(document.querySelectorAll(sel));
        return imgs.length === n && imgs.every(img => img.complete && img.naturalWidth > 0);
    }""", arg=[selector, count], timeout=SLOW)


def wait_until_drawn(page) -> None:
    """Until no element of an earlier script run is left and every image and chart is drawn."""
    page.wait_for_function("""() => {
        if (document.querySelector('[data-testid=stElementContainer][data-stale=true]')) return false;
        const imgs = Array.from(document.querySelectorAll('[data-testid=stImage] img'));
        const charts = Array.from(document.querySelectorAll('[data-testid=stPlotlyChart]'));
        return imgs.every(img => img.complete && img.naturalWidth > 0)
            && charts.every(chart => chart.querySelector('.main-svg .trace'));
    }""", timeout=SLOW)


def image_sizes(page, selector: str = FRESH_IMAGES) -> list[list[int]]:
    """[naturalWidth, naturalHeight, clientWidth, clientHeight] of each image matching `selector`."""
    return page.evaluate("""sel => Array.from(document.querySelectorAll(sel))
        .map(img => [img.naturalWidth, img.naturalHeight, img.clientWidth, img.clientHeight])""", selector)


@pytest.mark.e2e
def test_picking_a_confusion_pair_shows_its_images(finished_run, app_server, page, screenshot_dir):
    from playwright.sync_api import expect

    run, dataset, cm = finished_run
    names = dataset.classes
    off = cm.copy()
    np.fill_diagonal(off, 0)
    cells = [tuple(int(v) for v in np.unravel_index(i, off.shape)) for i in np.argsort(-off, axis=None, kind="stable")]
    t, p = cells[0]
    # for the click: another cell, with another true class and count, so the change is visible
    t2, p2 = next((a, b) for a, b in cells if a != t and off[a, b] != off[t, p] and off[a, b] > 0)

    # Through the sidebar, as a user would.
    page.goto(app_server.url)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Synthetic demo set")).to_be_visible(timeout=SLOW)  # app.py's sidebar: it ran
    sidebar.get_by_role("link", name="Evaluation").click()
    page.wait_for_url(app_server.url + "/evaluation", timeout=SLOW)
    expect(page.get_by_role("heading", name="Evaluation", exact=True)).to_be_visible(timeout=SLOW)
    accuracy = page.get_by_test_id("stMetric").filter(has_text="Test accuracy").get_by_test_id("stMetricValue")
    expect(accuracy).to_have_text(f"{run.best_test_acc:.1%}", timeout=SLOW)
    expect(page.get_by_test_id("stMetric").filter(has_text="Dataset")).to_contain_text("synthetic")
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(2, timeout=SLOW)

    page.set_viewport_size({"width": 1400, "height": 3400})
    wait_until_drawn(page)
    page.screenshot(path=str(screenshot_dir / "evaluation.png"), full_page=True)

    # the fallback: two select boxes
    status = page.get_by_text("misclassified images match")
    pick(page, "True class", names[t])
    # the rerun for the first filter has drawn its result before the second select box is opened
    expect(status).to_contain_text(f"{off[t].sum():,} misclassified images match", timeout=SLOW)
    pick(page, "Predicted class", names[p])
    expect(status).to_contain_text(f"{off[t, p]:,} misclassified images match", timeout=SLOW)
    captions = page.get_by_test_id("stImageCaption")
    # every caption of the grid (not a left-over one of the unfiltered grid) names the pair
    shown = min(24, int(off[t, p]))
    expect(captions).to_have_text([caption_pattern(names[t], names[p])] * shown, timeout=SLOW)

    # every thumbnail is shown at its own pixel size: the browser does not resample (blur) it
    wait_for_images(page, shown)
    sizes = image_sizes(page)
    assert len(sizes) == shown and all(s == [128, 128, 128, 128] for s in sizes), sizes

    grid_top = page.get_by_role("heading", name="Misclassified test images")
    grid_top.scroll_into_view_if_needed()
    page.set_viewport_size({"width": 1400, "height": 1300})
    grid_top.scroll_into_view_if_needed()
    wait_until_drawn(page)
    page.screenshot(path=str(screenshot_dir / "misclassified.png"))

    # clicking a cell of the heatmap selects the same filter
    heatmap = page.get_by_test_id("stPlotlyChart").nth(1)
    heatmap.scroll_into_view_if_needed()
    cell = heatmap.locator(".scatterlayer .point").nth(t2 * 9 + (p2 if p2 < t2 else p2 - 1))
    cell.element_handle().wait_for_element_state("stable")  # not moving: plotly has finished laying out
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_role("combobox", name="True class")).to_have_value(names[t2], timeout=SLOW)
    expect(page.get_by_role("combobox", name="Predicted class")).to_have_value(names[p2])
    expect(status).to_contain_text(f"{off[t2, p2]:,} misclassified images match", timeout=SLOW)
    expect(captions).to_have_text([caption_pattern(names[t2], names[p2])] * min(24, int(off[t2, p2])),
                                  timeout=SLOW)

    # one image, larger (8x, still sharp), with its top classes
    grid_top.scroll_into_view_if_needed()
    page.get_by_test_id("stButton").filter(has_text="#").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Test image #", timeout=SLOW)
    expect(dialog.get_by_test_id("stPlotlyChart")).to_be_visible(timeout=SLOW)
    wait_for_images(page, 1, "[role=dialog] [data-testid=stImage] img")
    assert image_sizes(page, "[role=dialog] [data-testid=stImage] img") == [[256, 256, 256, 256]]
    wait_until_drawn(page)
    dialog.element_handle().wait_for_element_state("stable")  # the opening animation is over
    page.screenshot(path=str(screenshot_dir / "evaluation_image.png"))
