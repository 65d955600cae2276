"""Plain-text formatting shared by the command line and the dashboard."""
from __future__ import annotations

import math


def format_duration(seconds: float) -> str:
    """'1m 23s', as the PyTorch tutorial prints it ('2h 5m 0s' past an hour; '?' when unknown)."""
    seconds = max(0.0, float(seconds))
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m}m {s}s" if h else f"{m}m {s}s"
