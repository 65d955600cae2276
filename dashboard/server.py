"""The dashboard as served by `python -m dashboard` (and `make run`): the Streamlit app
(dashboard/app.py) with one route of its own, dashboard.live_feed's, which the Training page's live
view polls instead of rerunning the page every second. `streamlit run dashboard/server.py` finds
`app` and serves it; `streamlit run dashboard/app.py` still works, with the page rerunning instead.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import live_feed

# The command line's options are set before this runs: the route follows --server.baseUrlPath.
app = st.App(Path(__file__).resolve().with_name("app.py"),
             routes=[live_feed.serve(st.get_option("server.baseUrlPath"))])
