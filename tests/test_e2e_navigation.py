"""A link straight to a page works on a freshly started server, with the shared sidebar."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_a_page_url_opened_first_on_a_cold_server_gets_navigation_and_sidebar(no_cifar, app_server, page, screenshot_dir):
    page.goto(app_server.url + "/samples")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Synthetic demo set")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Numpy network")).to_be_visible()
    expect(sidebar.get_by_text("Device:")).to_be_visible()
    # no CIFAR-10 in this test's CIFAR10_ROOT: the page explains and offers the demo set
    expect(page.get_by_role("button", name="Use the synthetic demo set")).to_be_visible()
    page.get_by_role("button", name="Use the synthetic demo set").click()
    expect(page.get_by_text("synthetic", exact=False).first).to_be_visible()
    expect(sidebar.get_by_role("radio", name="Synthetic demo set")).to_be_checked()
    page.screenshot(path=str(screenshot_dir / "cold_page_link.png"))
