"""Plain functions data -> figure (plotly) or picture (numpy / PIL); no Streamlit calls."""
from __future__ import annotations

import numpy as np


def pixelated(image_uint8: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, 3) uint8 enlarged `scale` times, each pixel a sharp square (nearest neighbour).

    Shown at its natural size, the browser does not resample it, so nothing gets blurred.
    """
    return np.repeat(np.repeat(np.asarray(image_uint8), scale, axis=0), scale, axis=1)
