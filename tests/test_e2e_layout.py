"""Every page at a projector's 1280 x 720 and at 1400 x 900: no chart squeezed below 300 px, no metric cut
off. Screenshots of each page at each size land in test-output/screenshots/layout/ for a person to look at."""
from __future__ import annotations

import pytest

from core.runs.store import RunStore
from core.train.config import TrainConfig

SLOW = 120_000  # ms: the first visit imports torch and evaluates the test split, on a shared machine
SIZES = ((1280, 720), (1400, 900))
# the sidebar link, the page's heading, how many charts it shows at least
PAGES = (
    ("Numpy network", "A neural network in numpy", 3),
    ("Training", "Training", 2),
    ("One batch, step by step", "One batch, step by step", 0),
    ("Sample images", "Sample images", 1),
    ("Evaluation", "Evaluation", 2),
)
# Charts and metrics of the current script run (Streamlit marks the previous run's elements stale).
FRESH = "[data-testid=stElementContainer]:not([data-stale=true])"
MEASURE_JS = f"""() => {{
    const charts = [...document.querySelectorAll('{FRESH} [data-testid=stPlotlyChart]')]
        .filter(e => e.offsetParent !== null)               // drawn, not in a closed expander or tab
        .map(e => Math.round(e.getBoundingClientRect().width));
    const cut = [...document.querySelectorAll('{FRESH} [data-testid=stMetricValue], {FRESH} [data-testid=stMetricLabel]')]
        .filter(e => e.offsetParent !== null)
        .flatMap(e => [e, ...e.querySelectorAll('*')])
        .filter(e => (e.innerText || "").trim() && e.scrollWidth > e.clientWidth + 1)   // visible text cut off
        .map(e => e.innerText);
    return {{charts, cut}};
}}"""


@pytest.fixture
def finished_run(session_dirs):
    """A tiny finished demo run, trained as the trainer process does (metrics in the store), so the
    Training and Evaluation pages draw their charts. Requested before app_server."""
    from core.runs.worker import run_stored

    store = RunStore()
    cfg = TrainConfig.smoke(train_subset=512, test_subset=None, epochs=2, batch_size=64, lr=1e-3, log_every=2)
    run = store.create_run(cfg, name="layout check")
    assert run_stored(store, run.id).status == "completed"
    return store.get(run.id)


@pytest.mark.e2e
def test_pages_fit_a_projector_and_a_laptop_screen(finished_run, app_server, page, screenshot_dir):
    from playwright.sync_api import expect

    out = screenshot_dir / "layout"
    out.mkdir(exist_ok=True)
    page.goto(app_server.url)
    expect(page.get_by_text("Synthetic demo set", exact=True).first).to_be_visible(timeout=SLOW)
    page.get_by_text("Synthetic demo set", exact=True).first.click()       # the run's data, on every page
    problems = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for link, heading, charts in PAGES:
            # by the sidebar, not by address: the same session keeps the sidebar's dataset choice
            page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
            expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=SLOW)
            page.wait_for_function(
                f"() => document.querySelectorAll('{FRESH} [data-testid=stPlotlyChart] .main-svg').length >= {charts}"
                " && !document.querySelector('[data-testid=stStatusWidget]')", timeout=SLOW)
            found = page.evaluate(MEASURE_JS)
            narrow = [w for w in found["charts"] if w < 300]
            if narrow or found["cut"]:
                problems.append(f"{link} at {width}px: charts {found['charts']}, cut {found['cut']}")
            page.screenshot(path=str(out / f"{link.split(',')[0].lower().replace(' ', '_')}_{width}.png"))
    assert not problems, "\n".join(problems)
