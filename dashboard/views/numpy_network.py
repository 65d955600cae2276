"""Numpy network: the tutorial's 2-2-2-1 network, every weight live, its output over the plane, and SGD by hand."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import numpy_net as nn
from dashboard import playground_panel as panel
from dashboard.figures import numpy as network_figures
from dashboard.lang import lang, tr

TUTORIAL_OUTPUT = nn.tutorial_network().forward(nn.TUTORIAL_INPUT).value
MAX_BARS = 20  # gradient bars shown at most (the largest)

st.title(tr("numpy.page.title"))
panel.init_state()
st.markdown(tr("numpy.page.intro", activations=tr("numpy.page.act_sep").join(
    tr(f"numpy.page.act_{a}") for a in panel.hidden_activations())))
status_place = panel.transport_bar()  # Step, Play/Pause, Reset: outside the fragment below
panel.network_controls()
places = panel.layout(panel.architecture())  # the places the fragment fills, and the text between them


def analysis(net: nn.Network, x) -> None:
    """The forward pass one neuron at a time, the tutorial's code with these numbers, and which number
    matters (drawn only while paused: it changes with every slider, not while training plays)."""
    language = lang()
    st.subheader(tr("numpy.steps.title"))
    st.markdown(tr("numpy.steps.intro"))
    steps = nn.neuron_steps(net, x)
    z_col, a_col = tr("numpy.steps.z"), tr("numpy.steps.a")
    st.dataframe(
        pd.DataFrame({tr("numpy.steps.neuron"): [s.name for s in steps], z_col: [s.z for s in steps],
                      a_col: [s.a for s in steps], tr("numpy.steps.formula"): [s.formula for s in steps]}),
        hide_index=True,
        column_config={z_col: st.column_config.NumberColumn(format="%.6f"),
                       a_col: st.column_config.NumberColumn(format="%.6f"),
                       tr("numpy.steps.formula"): st.column_config.TextColumn(width="large")},
    )
    with st.expander(tr("numpy.code.title"), expanded=False):
        st.code(nn.tutorial_code(net, x, language), language="python", wrap_lines=True)
        st.caption(tr("numpy.code.caption"))

    st.subheader(tr("numpy.grad.title"))
    rows = nn.parameter_gradients(net, x, language)
    top = max(rows, key=lambda r: abs(r.grad))
    st.markdown(tr("numpy.grad.intro", name=top.label, step=panel.STEP, change=top.grad * panel.STEP))
    flat = [r for r in rows if nn.display_number(r.grad) == "0"]
    if flat:
        reasons = nn.why_no_effect(net, x, flat, language)
        st.markdown(tr("numpy.grad.flat", n=len(flat), total=len(rows)) + "\n" + "\n".join(f"- {r}" for r in reasons))
    shown = sorted(rows, key=lambda r: abs(r.grad), reverse=True)[:MAX_BARS]
    st.plotly_chart(network_figures.gradient_bars(shown, lang=language), key="nn_gradients",
                    config={"displayModeBar": False})
    largest = tr("numpy.grad.largest", most=MAX_BARS, n=len(rows)) if len(rows) > MAX_BARS else ""
    st.caption(tr("numpy.grad.caption", largest=largest))


# Only what changes while training plays is drawn by this fragment: while Play is on the browser
# reruns it every panel.TICK_S (one update of training and drawing); while paused it has no timer at
# all, and a slider moved reruns only it. See dashboard/playground_panel.py.
@st.fragment(run_every=panel.run_every())
def live() -> None:
    arch, net, trainer = panel.current()
    panel.advance(net, trainer)  # a Step press, or one update's worth of SGD steps while playing
    panel.follow_play_state()  # playing stopped by itself (time limit, blow-up): rerun the page to stop the timer
    with status_place:
        panel.status(net, trainer)
    x = panel.draw_live(places, net, trainer, TUTORIAL_OUTPUT)
    if not panel.is_playing():
        with places.analysis:
            analysis(net, x)


live()
