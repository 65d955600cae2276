"""Numpy network: the tutorial's 2-2-2-1 network, every weight live, forward and backward in numpy."""
from __future__ import annotations



import numpy as np
import pandas as pd
import streamlit as st

from core import numpy_net as nn
from dashboard.figures import numpy as network_figures

# widget keys (session_state), addressable from tests: nn_w{layer}_{out}_{in} is W_layer[out, in], as in core
X_KEYS = ("nn_x_0", "nn_x_1")
SIZES = (2, 2, 2, 1)  # inputs, hidden 1, hidden 2, output
W_KEYS = [[[f"nn_w{l}_{j}_{i}" for i in range(SIZES[l - 1])] for j in range(SIZES[l])] for l in (1, 2, 3)]
B_KEYS = [[f"nn_b{l}_{j}" for j in range(SIZES[l])] for l in (1, 2, 3)]
EXACT_KEY, BIAS_KEY, ACT_KEY, RESET_KEY = "nn_exact_numbers", "nn_use_bias", "nn_hidden_activation", "nn_reset"
LIMIT, STEP = 10.0, 0.1
KEEP = {"persist_state": "session"}  # a widget's value survives a visit to another page

ACT_HELP = ("tanh squashes the sum into (-1, 1); relu keeps positive sums and turns negative ones into 0; "
            "sigmoid squashes into (0, 1); linear passes the sum through unchanged.")

TUTORIAL = nn.tutorial_network()
TUTORIAL_OUTPUT = TUTORIAL.forward(nn.TUTORIAL_INPUT).value
DEFAULTS = {EXACT_KEY: False, BIAS_KEY: False, ACT_KEY: "tanh", **dict(zip(X_KEYS, nn.TUTORIAL_INPUT.tolist()))}
for keys, layer in zip(W_KEYS, TUTORIAL.layers):
    DEFAULTS |= {k: float(layer.weights[j, i]) for j, row in enumerate(keys) for i, k in enumerate(row)}
DEFAULTS |= {k: 0.0 for row in B_KEYS for k in row}
NAMES = nn.neuron_names(TUTORIAL)


def reset_to_tutorial() -> None:  # a callback runs before the widgets exist, so their keys may be set
    st.session_state.update({k: v for k, v in DEFAULTS.items() if k != EXACT_KEY})


def carry_values_over() -> None:  # the new widget kind (slider or number input) starts from these values
    st.session_state.update({k: st.session_state.get(k, v) for k, v in DEFAULTS.items() if k != EXACT_KEY})


for key, default in DEFAULTS.items():  # widgets take their value from here; none passes value=
    if key not in st.session_state:
        st.session_state[key] = default


def number(label: str, key: str) -> float:
    if st.session_state[EXACT_KEY]:
        return st.number_input(label, -LIMIT, LIMIT, step=STEP, format="%.4f", key=key, **KEEP)
    return st.slider(label, -LIMIT, LIMIT, step=STEP, key=key, **KEEP)


st.title("A neural network in numpy")
st.markdown(
    "Two inputs, two hidden layers of two neurons, one output — the tutorial's network, computed by "
    "hand-written numpy (`core/numpy_net.py`). Each neuron multiplies its inputs by its **weights**, adds "
    "them up (the *weighted sum* z) and squashes z with an **activation**: `tanh` maps any number into "
    "(-1, 1), so big sums saturate at ±1. Move any number and watch the output and the gradients change."
)
opts = st.columns([1.2, 1.1, 1.3, 1.4], vertical_alignment="bottom")
opts[0].toggle("Type exact numbers", key=EXACT_KEY, help="Number inputs instead of sliders",
               on_change=carry_values_over, **KEEP)
opts[1].checkbox("Add biases", key=BIAS_KEY, help="A bias is a number added to the weighted sum", **KEEP)
opts[2].selectbox("Hidden activation", nn.ACTIVATIONS, key=ACT_KEY, help=ACT_HELP, **KEEP)
opts[3].button("Reset to the tutorial's values", key=RESET_KEY, on_click=reset_to_tutorial,
               icon=":material/restart_alt:")

left, right = st.columns([1, 1.7], gap="large")
with left:
    st.markdown("**Inputs**")
    x = np.zeros(SIZES[0])
    for i, col in enumerate(st.columns(SIZES[0])):
        with col:
            x[i] = number(f"x{i + 1}", X_KEYS[i])
    layers = []
    for l, title in enumerate(("Hidden layer 1", "Hidden layer 2", "Output"), start=1):
        st.markdown(f"**{title}** — weights into each neuron")
        w = np.zeros((SIZES[l], SIZES[l - 1]))
        b = np.zeros(SIZES[l]) if st.session_state[BIAS_KEY] else None
        for j, col in enumerate(st.columns(2)[: SIZES[l]]):  # one column per neuron, half width for the output
            with col:
                for i in range(SIZES[l - 1]):
                    w[j, i] = number(f"{NAMES[l - 1][i]} → {NAMES[l][j]}", W_KEYS[l - 1][j][i])
                if b is not None:
                    b[j] = number(f"bias of {NAMES[l][j]}", B_KEYS[l - 1][j])
        layers.append(nn.Layer(w, b, st.session_state[ACT_KEY] if l < 3 else "linear"))

net = nn.Network(layers)
grads = net.backward(x)
out = grads.trace.value
with right:
    delta = f"{out - TUTORIAL_OUTPUT:+.7f} from the tutorial's {TUTORIAL_OUTPUT:.7f}"
    st.metric("Output of the network", f"{out:.7f}", delta=delta if f"{out:.7f}" != f"{TUTORIAL_OUTPUT:.7f}" else None,
              delta_color="off")
    st.plotly_chart(network_figures.network_diagram(net, grads.trace), key="nn_diagram",
                    config={"displayModeBar": False})
    st.caption(
        "Circles hold each value: the inputs x, then each neuron's activation (z below it is its weighted "
        "sum). **Blue** means positive, **red** negative, white near zero. Lines are weights: blue lines are "
        "positive weights, red lines negative, and thicker lines are larger in size; the number on a line is "
        "the weight. Hover over a circle for the full numbers."
    )

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

st.subheader("Which number matters most right now?")
rows = nn.parameter_gradients(net, x)
top = max(rows, key=lambda r: abs(r.grad))
st.markdown(
    "The **gradient** of the output with respect to a weight says how much the output moves when that weight "
    f"moves a little. Right now **{top.label}** matters most: nudging it by +{STEP:g} changes the output "
    f"by about {top.grad * STEP:+.4f}. Weights whose gradient is near 0 barely matter here — often because a "
    "tanh neuron after them is saturated at ±1, where its slope is almost flat."
)
st.plotly_chart(network_figures.gradient_bars(rows), key="nn_gradients", config={"displayModeBar": False})
