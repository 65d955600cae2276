"""Every page at a projector's 1280 x 720 and at 1400 x 900, in English and in Chinese: no chart squeezed
below 300 px, no metric cut off. Screenshots of each page at each size in each language land in
test-output/screenshots/layout/ for a person to look at."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import i18n
from core.runs.store import RunStore
from core.train.config import TrainConfig

REPO = Path(__file__).resolve().parent.parent
SLOW = 120_000  # ms: the first visit imports torch and evaluates the test split, on a shared machine
SIZES = ((1280, 720), (1400, 900))
# the page (its file in dashboard/views/, its link is common.pages.<page>), how many charts it shows at least
# and what else is there once it is drawn (the walkthrough's first step has no chart: its step slider)
PAGES = (("numpy_network", 3, "[data-testid=stPlotlyChart]"), ("training", 2, "[data-testid=stPlotlyChart]"),
         ("walkthrough", 0, "[data-testid=stSlider]"), ("samples", 1, "[data-testid=stImage] img"),
         ("evaluation", 2, "[data-testid=stPlotlyChart]"))
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
    const errors = [...document.querySelectorAll('{FRESH} [data-testid=stException]')].map(e => e.innerText.slice(0, 200));
    return {{charts, cut, errors}};
}}"""


def page_heading(name: str, lang: str) -> str:
    """The page's title as it shows in `lang`: the catalogue key its st.title(tr("...")) asks for."""
    source = (REPO / "dashboard" / "views" / f"{name}.py").read_text()
    key = re.search(r"st\.title\(tr\(\"([^\"]+)\"", source)
    assert key, f"dashboard/views/{name}.py has no st.title(tr(\"...\"))"
    return i18n.t(key.group(1), lang)


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
@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_pages_fit_a_projector_and_a_laptop_screen(lang, finished_run, app_server, page, screenshot_dir):
    from playwright.sync_api import expect

    out = screenshot_dir / "layout"
    out.mkdir(exist_ok=True)
    page.goto(app_server.url)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Synthetic demo set", exact=True)).to_be_visible(timeout=SLOW)
    if lang != i18n.DEFAULT_LANGUAGE:   # as a user does: the sidebar's switch
        sidebar.get_by_text(i18n.LANGUAGES[lang], exact=True).click()
    synthetic = i18n.t("common.datasets.synthetic", lang)
    expect(sidebar.get_by_text(synthetic, exact=True)).to_be_visible(timeout=SLOW)
    sidebar.get_by_text(synthetic, exact=True).click()       # the run's data, on every page
    problems = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for name, charts, drawn in PAGES:
            # by the sidebar, not by address: the same session keeps the sidebar's dataset choice
            link = i18n.t(f"common.pages.{name}", lang)
            page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
            heading = page.get_by_role("heading", name=re.compile("^" + re.escape(page_heading(name, lang))), level=1)
            expect(heading.first).to_be_visible(timeout=SLOW)
            page.wait_for_function(
                f"() => (document.querySelectorAll('{FRESH} [data-testid=stPlotlyChart] .main-svg').length >= {charts}"
                f" && document.querySelector('{FRESH} {drawn}')"
                f" || document.querySelector('{FRESH} [data-testid=stException]'))"   # a page that failed: said below
                " && !document.querySelector('[data-testid=stStatusWidget]')", timeout=SLOW)
            found = page.evaluate(MEASURE_JS)
            narrow = [w for w in found["charts"] if w < 300]
            if narrow or found["cut"] or found["errors"]:
                problems.append(f"{name} in {lang} at {width}px: charts {found['charts']}, cut {found['cut']}, "
                                f"errors {found['errors']}")
            page.screenshot(path=str(out / f"{name}_{lang}_{width}.png"))
    assert not problems, "\n".join(problems)
