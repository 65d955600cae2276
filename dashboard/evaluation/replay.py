"""Check, for the tutorial MLP: replay the checkpoint in the hand-written numpy network."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import evaluate
from dashboard.evaluation import loading
from dashboard.evaluation.keys import REPLAY_KEY

REPLAY_IMAGES = 1000


def numpy_replay_check(checkpoint: str, key: str, images: np.ndarray, labels: np.ndarray) -> None:
    """An expander with a button; the replay compares numpy with PyTorch in float32 and float64."""
    with st.expander("Check: replay this MLP in numpy"):
        st.caption("Loads fc1/fc2/fc3 into the hand-written numpy network (core/numpy_net.py) and compares it with "
                   f"PyTorch on the first {REPLAY_IMAGES:,} test images.")
        if not st.button("Run the replay", key=REPLAY_KEY):
            return
        loaded = loading.load_model(checkpoint, key)
        for dtype in ("float32", "float64"):
            r = evaluate.numpy_replay(loaded, images[:REPLAY_IMAGES], labels[:REPLAY_IMAGES], dtype=dtype)
            accuracy = ("" if r.torch_accuracy is None else
                        f"; accuracy {r.torch_accuracy:.1%} (PyTorch), {r.numpy_accuracy:.1%} (numpy)")
            st.write(f"**{r.dtype}**: identical predicted class for {r.agreement:.2%} of {r.n:,} images; "
                     f"largest logit difference {r.max_abs_logit_diff:.2e}{accuracy}")
