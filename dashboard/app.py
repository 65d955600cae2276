"""The Streamlit script: navigation and the shared sidebar. Start it with `make run` or
`python -m dashboard` (dashboard/__main__.py), which apply the project's safe settings."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import common
from dashboard.lang import tr

st.set_page_config(page_title=tr("common.app.title"), page_icon=":material/science:", layout="wide")

PAGES = [  # file in views/, icon; the title is common.pages.<file's stem> in the catalogue
    ("numpy_network.py", ":material/calculate:"),
    ("training.py", ":material/monitoring:"),
    ("walkthrough.py", ":material/footprint:"),
    ("samples.py", ":material/photo_library:"),
    ("evaluation.py", ":material/fact_check:"),
]
# Not "pages/": a folder of that name beside app.py switches on Streamlit's legacy multipage mode
# for any first request that lands on a page URL before app.py has run.
pages_dir = Path(__file__).parent / "views"
navigation = st.navigation(
    [st.Page(str(pages_dir / f), title=tr(f"common.pages.{Path(f).stem}"), icon=icon, url_path=Path(f).stem)
     for f, icon in PAGES if (pages_dir / f).exists()]
)
common.sidebar()
common.warn_if_reachable()
navigation.run()
