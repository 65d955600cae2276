"""In a real browser: start a tiny run on the synthetic set, watch the chart grow and the nine steps
follow the trainer, check the live page fits a projector, stop it."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dashboard import live_feed
from dashboard.training_keys import PROGRESS_CLASS


pytestmark = pytest.mark.e2e


EPOCHS = 10
TOTAL = EPOCHS * (5000 // 64)  # the whole synthetic training set: long enough to stop on any machine
PROGRESS = re.compile(rf"epoch \d+/{EPOCHS} · step \d+/{TOTAL}")


def settle(page, timeout: float = 60_000) -> None:
    """Wait until a rerun has ended: while it runs, Streamlit keeps stale copies of moved elements."""
    page.wait_for_function("""() => document.querySelectorAll('[data-stale="true"]').length === 0""",
                           timeout=timeout)


# Charts and metrics of the current script run, visible: widths of the charts, text cut off in the
# metrics and the run's buttons (Stop, Resume, the changes while it trains).
FRESH = "[data-testid=stElementContainer]:not([data-stale=true])"
MEASURE_JS = f"""() => {{
    const charts = [...document.querySelectorAll('{FRESH} [data-testid=stPlotlyChart], .cifarlab-live-chart svg')]
        .filter(e => e.offsetParent !== null).map(e => Math.round(e.getBoundingClientRect().width));
    const cut = [...document.querySelectorAll('{FRESH} [data-testid=stMetricValue], {FRESH} [data-testid=stMetricLabel],'
            + ' .cifarlab-live-metric-value, .cifarlab-live-metric-label,'
            + ' [class*=st-key-train_control] button, .st-key-train_stop button, .st-key-train_resume button')]
        .filter(e => e.offsetParent !== null).flatMap(e => [e, ...e.querySelectorAll('*')])
        .filter(e => (e.innerText || "").trim() && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText);
    return {{charts, cut}};
}}"""


def progress_step(page) -> int:
    text = page.get_by_text(PROGRESS).first.inner_text(timeout=1000)
    return int(re.search(rf"step (\d+)/{TOTAL}", text).group(1))


def test_start_watch_and_stop_a_run_in_the_browser(app_server, page, screenshot_dir, store):
    page.goto(app_server.url + "/training")
    page.get_by_role("heading", name="Training").first.wait_for()
    page.get_by_text("Synthetic demo set", exact=True).first.click()  # sidebar dataset choice
    page.get_by_text("Trains on the Synthetic demo set").first.wait_for()
    page.get_by_text("No runs yet").first.wait_for()
    settle(page)
    # Until the rerun ends, elements of the CIFAR-10 layout linger beside the new ones.
    page.wait_for_function("""() => document.querySelectorAll('input[aria-label="Batch size"]').length === 1""")

    form = page.locator('[data-testid="stForm"]')
    for label, value in (("Batch size", "64"), ("Epochs", str(EPOCHS)), ("Training images (0 = all)", "0")):
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_text("More settings").click()
    settle(page)
    # every setting is reachable: the less-used ones, grouped, under "More settings"
    for label in ("Crop padding", "Flip at test time (TTA)", "Weight averaging (EMA)", "Precision"):
        form.get_by_label(label, exact=True).wait_for()
    form.get_by_label("Test images (0 = all)", exact=True).fill("256")
    form.get_by_label("Report loss every N steps", exact=True).fill("1")
    form.get_by_label("Run name (optional)").fill("browser run")
    form.get_by_role("button", name="Start training").click()

    # The run shows up and its charts grow while it trains in the background: the live view asks the
    # dashboard's live route for new rows and draws them in place (dashboard/live_view.js).
    polls = []
    page.on("request", lambda request: polls.append(request.url) if live_feed.ROUTE in request.url else None)
    page.get_by_text(PROGRESS).first.wait_for(timeout=120_000)
    first = progress_step(page)
    page.wait_for_function(
        """([first, cls]) => [...document.getElementsByClassName(cls)]
               .some(el => { const m = el.innerText.match(/step (\\d+)\\//); return m && +m[1] > first; })""",
        arg=[first + 3, PROGRESS_CLASS], timeout=120_000)  # the step count moved on by more than three
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 2
    with page.expect_request(lambda request: live_feed.ROUTE in request.url, timeout=60_000) as polled:
        pass   # the view keeps asking (about once a second) for the run's new rows, in the page's language
    assert "run=" in polled.value.url and "lang=en" in polled.value.url
    assert polls and all("lang=en" in url for url in polls), polls
    expect(page.locator(".cifarlab-live-chart").filter(has_text="Loss (synthetic)")).to_be_visible()
    assert page.locator(".cifarlab-live-chart svg path").count() >= 2   # raw and smoothed loss lines
    # The nine steps follow the trainer: the loop is marked while it trains, each chart has its caption.
    expect(page.get_by_text("Steps 1–9: the training loop.").first).to_be_visible()
    for caption in ("Light line: the training loss, each step's own loss", "Train accuracy is a running mean",
                    "The learning rate at every step"):
        expect(page.get_by_text(caption).first).to_be_attached()
    # On a projector (1280 x 720) the live charts keep their width and no number or button label is cut.
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_function(f"() => [...document.querySelectorAll('{FRESH} [data-testid=stPlotlyChart]')]"
                           ".filter(e => e.offsetParent !== null).length >= 3")
    found = page.evaluate(MEASURE_JS)
    assert min(found["charts"]) >= 300 and not found["cut"], found
    page.screenshot(path=str(screenshot_dir / "training-live-1280.png"))
    page.set_viewport_size({"width": 1400, "height": 2000})  # Streamlit scrolls inside the page
    page.screenshot(path=str(screenshot_dir / "training-live.png"))

    (run,) = store.list_runs()
    assert run.name == "browser run" and run.dataset == "synthetic" and run.config.epochs == EPOCHS
    page.get_by_role("button", name="Stop", disabled=False).first.click()
    page.locator('[data-testid="stMarkdown"]').filter(has_text="stopped").filter(
        has_text="tutorial_mlp").first.wait_for(timeout=120_000)
    assert store.get(run.id).status == "stopped"
    # Once the rerun has settled (no stale copies of the buttons): Resume on, Stop off.
    page.wait_for_function("""() => {
        const named = (t) => [...document.querySelectorAll('button')].filter(b => b.innerText.trim() === t);
        const [resume, stop] = [named('Resume'), named('Stop')];
        return resume.length === 1 && stop.length === 1 && !resume[0].disabled && stop[0].disabled;
    }""", timeout=60_000)
    page.get_by_text("Loss (synthetic)").first.wait_for()
    page.screenshot(path=str(screenshot_dir / "training.png"))
