"""The Streamlit script: navigation and the shared sidebar. Start it with `make run` or
`python -m dashboard` (dashboard/__main__.py), which apply the project's safe settings."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import common

st.set_page_config(page_title="CIFAR Lab", page_icon=":material/science:", layout="wide")

PAGES = [
    ("numpy_network.py", "Numpy network", ":material/calculate:"),
    ("training.py", "Training", ":material/monitoring:"),
    ("walkthrough.py", "One batch, step by step", ":material/footprint:"),
    ("samples.py", "Sample images", ":material/photo_library:"),
    ("evaluation.py", "Evaluation", ":material/fact_check:"),
]
# Not "pages/": a folder of that name beside app.py switches on Streamlit's legacy multipage mode
# for any first request that lands on a page URL before app.py has run.
pages_dir = Path(__file__).parent / "views"
navigation = st.navigation(
    [st.Page(str(pages_dir / f), title=title, icon=icon) for f, title, icon in PAGES if (pages_dir / f).exists()]
)
common.sidebar()
common.warn_if_reachable()
navigation.run()
