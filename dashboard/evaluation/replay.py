"""Check, for the tutorial MLP: replay the checkpoint in the hand-written numpy network."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import evaluate
from dashboard.evaluation import loading
from dashboard.evaluation.keys import REPLAY_KEY
from dashboard.lang import tr

REPLAY_IMAGES = 1000


def numpy_replay_check(checkpoint: str, key: str, images: np.ndarray, labels: np.ndarray) -> None:
    """An expander with a button; the replay compares numpy with PyTorch in float32 and float64."""
    with st.expander(tr("evaluation.replay.title")):
        st.caption(tr("evaluation.replay.intro", n=REPLAY_IMAGES))
        if not st.button(tr("evaluation.replay.run"), key=REPLAY_KEY):
            return
        loaded = loading.load_model(checkpoint, key)
        for dtype in ("float32", "float64"):
            r = evaluate.numpy_replay(loaded, images[:REPLAY_IMAGES], labels[:REPLAY_IMAGES], dtype=dtype)
            accuracy = ("" if r.torch_accuracy is None else
                        tr("evaluation.replay.accuracy", torch=r.torch_accuracy, numpy=r.numpy_accuracy))
            st.write(tr("evaluation.replay.result", dtype=r.dtype, agreement=r.agreement, n=r.n,
                        diff=r.max_abs_logit_diff, accuracy=accuracy))
        st.caption(tr("evaluation.replay.how_to_read"))
