"""Plain-text formatting (core.text)."""
from __future__ import annotations

import pytest

from core.text import format_duration


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0m 0s"), (0.4, "0m 0s"), (59.6, "1m 0s"), (83, "1m 23s"), (3599, "59m 59s"),
    (3600, "1h 0m 0s"), (7500, "2h 5m 0s"), (-5, "0m 0s"), (float("inf"), "?"),
])
def test_format_duration_reads_like_the_tutorial(seconds, text):
    assert format_duration(seconds) == text
