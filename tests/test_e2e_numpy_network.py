"""The "Numpy network" page in a real browser: default output, a slider moved by keys, a typed weight."""
from __future__ import annotations

import pytest

from core.numpy_net import TUTORIAL_INPUT, tutorial_network

SLOW = 90_000  # ms; a first run imports torch for the sidebar, on a shared machine


def output_with(**weights: float) -> str:
    """core's output for the tutorial network with weights replaced, e.g. w3_0_0=-2.0, as the page shows it."""
    net = tutorial_network()
    for name, value in weights.items():
        l, j, i = (int(p) for p in name.removeprefix("w").split("_"))
        net.layers[l - 1].weights[j, i] = value
    return f"{net.forward(TUTORIAL_INPUT).value:.7f}"


@pytest.mark.e2e
def test_changing_weights_in_the_browser_updates_the_output(app_server, page, screenshot_dir):
    from playwright.sync_api import expect

    page.goto(app_server.url)
    expect(page.get_by_role("heading", name="A neural network in numpy")).to_be_visible(timeout=SLOW)
    output = page.get_by_test_id("stMetricValue")
    expect(output).to_have_text("2.8920827", timeout=SLOW)
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()

    # a slider, moved with the keyboard: h2,1 → out goes from -3 to -2.9
    slider = page.get_by_role("slider", name="h2,1 → out")
    slider.focus()
    slider.press("ArrowRight")
    expect(output).to_have_text(output_with(w3_0_0=-2.9), timeout=SLOW)

    # exact numbers: switch to number inputs and type a weight
    page.get_by_text("Type exact numbers").click()
    box = page.get_by_role("spinbutton", name="h1,2 → h2,1")
    expect(box).to_be_visible(timeout=SLOW)
    box.fill("0.25")
    box.press("Enter")
    expected = output_with(w3_0_0=-2.9, w2_0_1=0.25)
    expect(output).to_have_text(expected, timeout=SLOW)

    page.get_by_text("Type exact numbers").click()  # back to sliders for the screenshot
    expect(page.get_by_role("slider", name="h1,2 → h2,1")).to_be_visible(timeout=SLOW)
    expect(output).to_have_text(expected)
    # Streamlit scrolls inside its own container, so a tall window is what shows the whole page
    page.set_viewport_size({"width": 1400, "height": 2300})
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(2)
    page.wait_for_timeout(1000)  # let plotly finish drawing at the new size
    page.screenshot(path=str(screenshot_dir / "numpy_network.png"), full_page=True)
