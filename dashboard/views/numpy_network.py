"""Numpy network: the tutorial's 2-2-2-1 network, every weight live, its output over the plane, and SGD by hand."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import numpy_net as nn
from dashboard import playground_panel as panel
from dashboard.figures import numpy as network_figures

TUTORIAL_OUTPUT = nn.tutorial_network().forward(nn.TUTORIAL_INPUT).value
MAX_BARS = 20  # gradient bars shown at most (the largest)

# What each activation does, in a sentence: the page's text follows the activations chosen.
ACTIVATION_TEXT = {
    "tanh": "`tanh` maps any number into (−1, 1), so big sums **saturate** at ±1, where the curve is flat",
    "relu": "`relu` keeps a positive sum as it is and turns a negative one into 0: the neuron is **off**, and no "
            "change flows back through it",
    "sigmoid": "`sigmoid` maps any number into (0, 1), so big sums **saturate** near 0 or 1, where the curve is flat",
    "linear": "`linear` passes the sum on unchanged (a stack of linear layers is no more than one linear map)",
}

st.title("A neural network in numpy")
panel.init_state()
hidden_acts = sorted({st.session_state[k] for k in panel.LAYER_ACT_KEYS[:st.session_state[panel.LAYERS_KEY]]},
                     key=nn.ACTIVATIONS.index)
st.markdown(
    "Two inputs, two hidden layers of two neurons, one output — the tutorial's network, computed by "
    "hand-written numpy (`core/numpy_net.py`). Each neuron multiplies its inputs by its **weights**, adds "
    "them up (the *weighted sum* z) and passes z through an **activation**: "
    + "; ".join(ACTIVATION_TEXT[a] for a in hidden_acts) + ". Move any number and watch the output, the whole "
    "input plane and the gradients change; then train the network on toy data below."
)
status_place = panel.transport_bar()  # Step, Play/Pause, Reset: outside the fragment below


# The body is a fragment: while Play is on the browser reruns it every panel.TICK_S (one update of
# training and drawing); while paused it has no timer at all. See dashboard/playground_panel.py.
@st.fragment(run_every=panel.run_every())
def network_page() -> None:
    arch, net, trainer = panel.current()
    panel.advance(net, trainer)  # a Step press, or one update's worth of SGD steps while playing
    panel.follow_play_state()  # playing stopped by itself (time limit, blow-up): rerun the page to stop the timer
    with status_place:
        panel.status(net, trainer)
    panel.network_controls()

    diagram, plane = st.columns([1.2, 1], gap="medium")
    with st.container():  # drawn below the diagram, but first: the input it shows comes from here
        x = panel.inputs_and_weights(net)
    grads = net.backward(x)
    out = grads.trace.value
    with diagram:
        delta = f"{out - TUTORIAL_OUTPUT:+.7f} from the tutorial's {TUTORIAL_OUTPUT:.7f}"
        st.metric("Output of the network", f"{out:.7f}", delta_color="off",
                  delta=delta if f"{out:.7f}" != f"{TUTORIAL_OUTPUT:.7f}" else None)
        states = nn.neuron_states(net, x)
        st.plotly_chart(network_figures.network_diagram(net, grads.trace, states=states), key="nn_diagram",
                        config={"displayModeBar": False})
        st.caption(
            "Circles hold each value: the inputs x, then each neuron's activation (z below it is its weighted "
            "sum). **Blue** means positive, **red** negative, white near zero. Lines are weights: blue lines are "
            "positive weights, red lines negative, and thicker lines are larger in size; the number on a line is "
            "the weight (a bigger network leaves the numbers to the weights below). An **amber ring** marks a "
            "saturated neuron (tanh or sigmoid far from 0, where its slope is almost 0), a **grey ring** a relu "
            "neuron that is off (z ≤ 0): changes to the weights into them do not get through. Hover over a circle "
            "for the full numbers."
        )
    with plane:
        st.markdown(f"**The whole input plane** — the {arch.label} network's output for every (x1, x2)")
        panel.surface_section(net, trainer, x)

    panel.training_section(net, trainer)
    if panel.is_playing():  # the browser redraws less at every update while training plays
        st.caption("The step-by-step table and the gradients of the output come back when you pause.")
        return

    st.subheader("Step by step")
    st.markdown("The same computation as the tutorial's code, one neuron at a time, with the numbers filled in.")
    steps = nn.neuron_steps(net, x)
    st.dataframe(
        pd.DataFrame({"neuron": [s.name for s in steps], "weighted sum z": [s.z for s in steps],
                      "activation a": [s.a for s in steps], "formula": [s.formula for s in steps]}),
        hide_index=True,
        column_config={"weighted sum z": st.column_config.NumberColumn(format="%.6f"),
                       "activation a": st.column_config.NumberColumn(format="%.6f"),
                       "formula": st.column_config.TextColumn(width="large")},
    )

    with st.expander("The tutorial's numpy code, with these numbers", expanded=False):
        st.code(nn.tutorial_code(net, x), language="python", wrap_lines=True)
        st.caption("The tutorial's own forward pass, written out for the network and input above (shape, "
                   "activations and biases included). Paste it into Python: it prints the output shown above.")

    st.subheader("Which number matters most right now?")
    rows = nn.parameter_gradients(net, x)
    top = max(rows, key=lambda r: abs(r.grad))
    st.markdown(
        "The **gradient** of the output with respect to a weight says how much the output moves when that weight "
        f"moves a little. Right now **{top.label}** matters most: nudging it by +{panel.STEP:g} changes the output "
        f"by about {top.grad * panel.STEP:+.4f}."
    )
    flat = [r for r in rows if nn.display_number(r.grad) == "0"]
    if flat:
        reasons = nn.why_no_effect(net, x, flat)
        st.markdown(f"**{len(flat)} of the {len(rows)} numbers have a gradient of about 0**, so dragging them "
                    "changes nothing you can see (it is not broken):\n" + "\n".join(f"- {r}" for r in reasons))
    shown = sorted(rows, key=lambda r: abs(r.grad), reverse=True)[:MAX_BARS]
    if len(rows) > MAX_BARS:
        st.caption(f"The {MAX_BARS} largest of {len(rows)} gradients.")
    st.plotly_chart(network_figures.gradient_bars(shown), key="nn_gradients", config={"displayModeBar": False})


network_page()
