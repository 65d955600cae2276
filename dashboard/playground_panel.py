"""The Numpy network page's state and sections: the network the sliders edit, and the playground that trains it.

    panel.init_state()                       # once per full page run, before any widget
    status_place = panel.transport_bar()     # Step, Play/Pause, Reset: outside the fragment
    @st.fragment(run_every=panel.run_every())    # the page body; a timer reruns it only while playing
    def body():
        arch, net, trainer = panel.current()
        panel.advance(net, trainer)          # a Step press, or one update's worth of steps while playing
        panel.follow_play_state()            # playing stopped by itself: rerun the page to stop the timer
        with status_place: panel.status(net, trainer)
        panel.network_controls()
        x = panel.inputs_and_weights(net); ...diagram, panel.surface_section(...), panel.training_section(...)

The network's numbers live in session state as one core.playground.Parameters (PARAMS); the
sliders (or number inputs) only edit it: each is set from PARAMS before it is drawn and writes its
new value back in its on_change callback. So training can move the sliders, a weight beyond the
sliders' range is kept exactly (the slider shows its end), and the biases keep their values while
switched off. All the training is core.playground (numpy, no torch); nothing here computes.

CPU while playing, paused or hidden (see run_every and advance):
* Paused: the page body is registered as a fragment without run_every, so the browser holds no
  timer and the server runs nothing until someone touches a widget.
* Playing: the browser's timer asks for a fragment rerun every TICK_S; each does a bounded amount
  of work (at most 50 SGD steps on at most 1000 points, then one redraw) and Streamlit folds rerun
  requests that arrive while one is running into one, so requests never pile up.
* A hidden tab: browsers slow a background tab's timers to at most one a second (Chrome, after five
  minutes hidden: one a minute). And Play stops itself after PLAY_LIMIT_S of playing, whether the tab
  is visible or not, so a forgotten tab costs at most that much; pressing Play again continues.
* A closed tab: the timer lives in the page, so it ends with it.
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from core import numpy_net as nn
from core import playground as pg
from dashboard.figures import numpy as figures

# ---- keys: widgets (addressable from tests) and plain state --------------------------------------
# the network: nn_w{layer}_{out}_{in} is W_layer[out, in] and nn_b{layer}_{out} is b_layer[out], as in core
X_KEYS = ("nn_x_0", "nn_x_1")
EXACT_KEY, BIAS_KEY, ACT_KEY, RESET_KEY = "nn_exact_numbers", "nn_use_bias", "nn_hidden_activation", "nn_reset"
LAYERS_KEY = "nn_hidden_layers"
UNITS_KEYS = tuple(f"nn_units_{l}" for l in range(1, pg.MAX_HIDDEN_LAYERS + 1))
LAYER_ACT_KEYS = tuple(f"nn_act_{l}" for l in range(1, pg.MAX_HIDDEN_LAYERS + 1))
# the playground
DATA_KEY, NOISE_KEY, POINTS_KEY, SHARE_KEY, SEED_KEY = "pg_data", "pg_noise", "pg_points", "pg_train_share", "pg_seed"
LOSS_KEY, LR_KEY, BATCH_KEY, L2_KEY, SPEED_KEY = "pg_loss", "pg_lr", "pg_batch", "pg_l2", "pg_steps_per_update"
STEP_KEY, PLAY_KEY, RESTART_KEY, STATUS_KEY = "pg_step", "pg_play", "pg_reset", "pg_status"
# state that is not a widget
PARAMS = "nn_params"          # core.playground.Parameters: every weight and bias (the sliders edit these)
TRAINER = "pg_trainer"        # core.playground.Trainer: the data, the minibatch order, the history
HISTORY_LOSS = "pg_history_loss"  # the loss the history was measured with (a new loss starts new curves)
REGISTERED = "pg_registered"  # is_playing() as it was when the fragment was last registered (timer or not)
PLAY_SINCE = "pg_play_since"  # time.monotonic() when Play was pressed
PENDING = "pg_pending_steps"  # steps asked for with the Step button, taken before the page draws
TICKS = "pg_ticks"            # time.monotonic() of each update while playing (the last few), and the count
NOTE = "pg_note"              # (kind, text) shown once: why playing stopped
STOP = "pg_stop"              # playing stopped by itself; the next full run sets Play/Pause to Pause


def w_key(l: int, j: int, i: int) -> str:  # 1-based layer, 0-based indices
    return f"nn_w{l}_{j}_{i}"


def b_key(l: int, j: int) -> str:
    return f"nn_b{l}_{j}"


LIMIT, STEP = 10.0, 0.1  # the sliders' range and step
MAX_SLIDER_WEIGHTS = 12  # sliders up to 12 weights (the tutorial's 2-2-2-1 has 10, a 2-4-1 12); more: a compact view
TICK_S = 0.25  # seconds between updates while playing
PLAY_LIMIT_S = 180  # Play stops itself after this long
KEEP = {"persist_state": "session"}  # a widget's value survives a visit to another page

LR_CHOICES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
BATCH_CHOICES = (1, 2, 5, 10, 20, 50, 100)
L2_CHOICES = (0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1)
SPEED_CHOICES = (1, 2, 5, 10, 20, 50)
POINTS_CHOICES = (50, 100, 200, 300, 500, 1000)

TUTORIAL_STATE = {BIAS_KEY: False, ACT_KEY: "tanh", LAYERS_KEY: 2, LOSS_KEY: "mse",
                  **dict(zip(X_KEYS, nn.TUTORIAL_INPUT.tolist())),
                  **{k: 2 for k in UNITS_KEYS}, **{k: "tanh" for k in LAYER_ACT_KEYS}}
DEFAULTS = {EXACT_KEY: False, **TUTORIAL_STATE, DATA_KEY: "xor", NOISE_KEY: 10, POINTS_KEY: 200, SHARE_KEY: 50,
            SEED_KEY: 0, LR_KEY: 0.03, BATCH_KEY: 10, L2_KEY: 0.0, SPEED_KEY: 10, PLAY_KEY: "pause"}
PLAY_LABELS = {"play": "Play", "pause": "Pause"}

# ---- what each control does, in a sentence or two --------------------------------------------------
HELP = {
    ACT_KEY: "Sets every hidden layer at once. tanh squashes the sum into (-1, 1); relu keeps positive sums and "
             "turns negative ones into 0; sigmoid squashes into (0, 1); linear passes the sum through unchanged.",
    "layer_act": "tanh saturates: beyond a sum of about ±3 its slope 1 − tanh² is almost 0, so hardly any gradient "
                 "flows back through it and its weights stop learning. relu never saturates for positive sums, but a "
                 "neuron whose sum is negative on every point has slope 0 and never learns again.",
    BIAS_KEY: "A bias is a number added to the weighted sum: it shifts where a neuron switches on. Without biases "
              "every neuron's line passes through the origin, and a tanh network is odd, f(−x) = −f(x), so it cannot "
              "learn XOR.",
    LAYERS_KEY: "Each hidden neuron cuts the plane along one soft line; the next layer combines those cuts into "
                "curved regions. A new shape starts from new random weights.",
    "units": "More neurons, more lines to combine: a 2-2 network cannot wrap around the spirals, 8-8 can.",
    DATA_KEY: "Four problems: XOR (opposite corners belong together), a circle inside a ring, two interleaved "
              "spirals, and two blobs that one straight line separates.",
    NOISE_KEY: "Moves every point by a random amount, so the classes start to overlap and no boundary gets every "
               "point right.",
    POINTS_KEY: "How many points in all, training and test together.",
    SHARE_KEY: "The network learns from the training points only; the test points (dark outline) show whether what "
               "it learned holds on points it has never seen.",
    SEED_KEY: "The seed draws the points, the starting weights (on Reset or a new shape) and the order of the "
              "batches: the same seed gives the same run.",
    LOSS_KEY: "How wrongness is measured. Squared error compares the output with a target of −1 or +1 (linear "
              "output). Cross-entropy puts the output through a sigmoid to get a probability of class 1 and punishes "
              "confident mistakes hardest.",
    LR_KEY: "How far each step moves a weight: learning rate × its gradient. Too small and training crawls; too large "
            "and every step overshoots, so the loss jumps about or blows up.",
    BATCH_KEY: "Points per step. One point gives a noisy gradient and a jittery path; more points give a steadier "
               "average but fewer steps per pass over the data.",
    L2_KEY: "Adds λ/2 · Σ w² to the loss, so each step also pulls every weight a little towards 0: smoother "
            "boundaries and less overfitting, but too much and the network cannot fit the data at all.",
    SPEED_KEY: "SGD steps between two redraws while playing: more trains faster per second, the steps are the same.",
    STEP_KEY: "One SGD step: a batch of training points forward, the loss, backward for every gradient, and every "
              "weight nudged against its gradient.",
    PLAY_KEY: f"Step after step, redrawn up to {1 / TICK_S:.0f} times a second (as fast as the browser draws). "
              f"Play stops by itself after {PLAY_LIMIT_S // 60} minutes.",
    RESTART_KEY: "New random starting weights (from the seed) for this shape; the step count and curves start over.",
}


# ---- state and callbacks ---------------------------------------------------------------------------

def init_state() -> None:
    ss = st.session_state
    for key, default in DEFAULTS.items():  # widgets take their value from here; none passes value=
        if key not in ss:
            ss[key] = default
    if PARAMS not in ss:
        ss[PARAMS] = pg.tutorial_parameters()
    if ss.pop(STOP, False):  # before the Play/Pause control is drawn, so it may still be set
        ss[PLAY_KEY] = "pause"
    for key, default in ((PENDING, 0), (TICKS, {"count": 0, "times": []})):
        if key not in ss:
            ss[key] = default


def is_playing() -> bool:
    return st.session_state[PLAY_KEY] == "play" and not st.session_state.get(STOP, False)


def run_every() -> float | None:
    """The fragment's timer for this full page run: on while playing, absent while paused."""
    st.session_state[REGISTERED] = is_playing()
    return TICK_S if is_playing() else None


def follow_play_state() -> None:
    """Playing stopped by itself in this fragment run (the time limit, a step that blew up): rerun the
    whole page, which registers the fragment again without its timer (a fragment rerun cannot change
    its own run_every)."""
    if is_playing() != st.session_state.get(REGISTERED):
        st.rerun()


def _pause(note: tuple[str, str] | None = None) -> None:
    """Stop playing from the page body (the control is drawn already: init_state sets it next run)."""
    if is_playing():
        st.session_state[STOP] = True
    if note:
        st.session_state[NOTE] = note


def play_changed() -> None:
    """Play or Pause chosen (outside the fragment: this interaction is a full page run, which registers
    the fragment with its timer on or off). Play/Pause is a two-way control holding a state, not a
    button: a click that reaches the server twice selects the same state twice instead of undoing itself."""
    st.session_state.pop(STOP, None)
    if is_playing():
        st.session_state[PLAY_SINCE] = time.monotonic()
        st.session_state[TICKS] = {"count": 0, "times": []}


def _stop_from_callback() -> None:
    if is_playing():
        st.session_state[PLAY_KEY] = "pause"
        st.rerun()  # from a widget inside the fragment: make this interaction a full page run, the timer stops


def _new_curves() -> None:
    st.session_state.pop(TRAINER, None)  # the next page run starts a trainer at step 0 on the same data
    st.session_state[PENDING] = 0


def reset_to_tutorial() -> None:  # a callback runs before the widgets exist, so their keys may be set
    st.session_state.update(TUTORIAL_STATE)
    st.session_state[PARAMS] = pg.tutorial_parameters()
    _new_curves()
    _stop_from_callback()


def reshape() -> None:
    """A new number of layers or neurons: new random weights of the new shape."""
    st.session_state[PARAMS] = pg.Parameters.initial(architecture(), st.session_state[SEED_KEY])
    _new_curves()
    _stop_from_callback()


def restart() -> None:
    reshape()


def carry_inputs_over() -> None:
    """Sliders <-> number inputs: the new kind of widget starts from the inputs' current values (the
    weights need nothing: they are set from PARAMS every run)."""
    st.session_state.update({k: st.session_state.get(k, DEFAULTS[k]) for k in X_KEYS})


def set_every_activation() -> None:
    for key in LAYER_ACT_KEYS:
        st.session_state[key] = st.session_state[ACT_KEY]


def edit_weight(key: str, l: int, j: int, i: int) -> None:
    st.session_state[PARAMS].weights[l - 1][j, i] = float(st.session_state[key])


def edit_bias(key: str, l: int, j: int) -> None:
    st.session_state[PARAMS].biases[l - 1][j] = float(st.session_state[key])


def step_once() -> None:
    st.session_state[PENDING] += 1


# ---- from the widgets' state to core objects -------------------------------------------------------

def architecture() -> pg.Architecture:
    ss = st.session_state
    n = ss[LAYERS_KEY]
    return pg.Architecture(tuple(ss[k] for k in UNITS_KEYS[:n]), tuple(ss[k] for k in LAYER_ACT_KEYS[:n]),
                           ss[BIAS_KEY], pg.OUTPUT_ACTIVATION[ss[LOSS_KEY]])


def sgd_settings() -> pg.SGDSettings:
    ss = st.session_state
    return pg.SGDSettings(ss[LOSS_KEY], ss[LR_KEY], ss[BATCH_KEY], ss[L2_KEY])


def data_spec() -> pg.DataSpec:
    ss = st.session_state
    return pg.DataSpec(ss[DATA_KEY], ss[POINTS_KEY], ss[NOISE_KEY] / 100, ss[SHARE_KEY] / 100, ss[SEED_KEY])


def current() -> tuple[pg.Architecture, nn.Network, pg.Trainer]:
    """The architecture the widgets describe, the network on PARAMS, and the trainer for the data shown."""
    ss = st.session_state
    arch = architecture()
    if ss[PARAMS].sizes != arch.sizes:  # only if state was set from outside (a test): start the shape afresh
        ss[PARAMS] = pg.Parameters.initial(arch, ss[SEED_KEY])
    net = pg.build_network(arch, ss[PARAMS])
    trainer, spec, loss = ss.get(TRAINER), data_spec(), ss[LOSS_KEY]
    if trainer is None or trainer.data.spec != spec:  # new data: new minibatch order, new curves
        trainer = ss[TRAINER] = pg.Trainer(pg.make_data(spec), seed=spec.seed)
        ss[HISTORY_LOSS] = None
    if ss.get(HISTORY_LOSS) != loss:  # the first row, or a new loss: the curves start again here
        trainer.history.clear()
        trainer.record(net, loss)
        ss[HISTORY_LOSS] = loss
    return arch, net, trainer


def advance(net: nn.Network, trainer: pg.Trainer) -> None:
    """Take the steps asked for: a Step press, and one update's worth while playing (at most
    SPEED_CHOICES[-1] steps, so every rerun stays short). Stops playing after PLAY_LIMIT_S."""
    ss = st.session_state
    steps, ss[PENDING] = ss[PENDING], 0
    if is_playing():
        if time.monotonic() - ss[PLAY_SINCE] > PLAY_LIMIT_S:
            _pause(("info", f"Paused after {PLAY_LIMIT_S // 60} minutes of playing, so that a forgotten tab does "
                            "not keep the computer busy. Press Play to go on."))
        else:
            steps += ss[SPEED_KEY]
            ticks = ss[TICKS]
            ticks["count"] += 1
            ticks["times"] = (ticks["times"] + [time.monotonic()])[-20:]
    if steps:
        try:
            trainer.train(net, sgd_settings(), steps)
        except pg.TrainingDiverged as exc:
            _pause(("error", f"Stopped: {exc}."))


def updates_per_second() -> float | None:
    times = st.session_state[TICKS]["times"]
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 3 and times[-1] > times[0] else None


# ---- sections --------------------------------------------------------------------------------------

def network_controls() -> None:
    """Two rows: how numbers are entered, biases, activation, the tutorial's reset; then the shape."""
    opts = st.columns([1.2, 1.1, 1.3, 1.4], vertical_alignment="bottom")
    opts[0].toggle("Type exact numbers", key=EXACT_KEY, help="Number inputs instead of sliders",
                   on_change=carry_inputs_over, **KEEP)
    opts[1].checkbox("Add biases", key=BIAS_KEY, help=HELP[BIAS_KEY], **KEEP)
    opts[2].selectbox("Hidden activation", nn.ACTIVATIONS, key=ACT_KEY, help=HELP[ACT_KEY],
                      on_change=set_every_activation, **KEEP)
    opts[3].button("Reset to the tutorial's values", key=RESET_KEY, on_click=reset_to_tutorial,
                   icon=":material/restart_alt:")
    n = st.session_state[LAYERS_KEY]
    shape = st.columns([1.2, 1.1, 1.1, 1.1])
    shape[0].select_slider("Hidden layers", options=list(range(1, pg.MAX_HIDDEN_LAYERS + 1)), key=LAYERS_KEY,
                           help=HELP[LAYERS_KEY], on_change=reshape, **KEEP)
    for l in range(n):
        with shape[l + 1]:
            st.select_slider(f"Neurons in hidden layer {l + 1}", options=list(range(1, pg.MAX_UNITS + 1)),
                             key=UNITS_KEYS[l], help=HELP["units"], on_change=reshape, **KEEP)
            st.selectbox(f"Activation of hidden layer {l + 1}", nn.ACTIVATIONS, key=LAYER_ACT_KEYS[l],
                         help=HELP["layer_act"], **KEEP)


def _number(label: str, key: str, value: float, disabled: bool, on_change, args) -> float:
    """A slider (or number input) showing value, clipped to the widgets' range; edits go to PARAMS."""
    st.session_state[key] = float(np.clip(value, -LIMIT, LIMIT))
    common = dict(step=STEP, key=key, disabled=disabled, on_change=on_change, args=args, **KEEP)
    if st.session_state[EXACT_KEY]:
        return st.number_input(label, -LIMIT, LIMIT, format="%.4f", **common)
    return st.slider(label, -LIMIT, LIMIT, **common)


def _inputs() -> np.ndarray:
    st.markdown("**Inputs** — the cross on the plane")
    x = np.zeros(2)
    for i in range(2):
        if st.session_state[EXACT_KEY]:
            x[i] = st.number_input(f"x{i + 1}", -LIMIT, LIMIT, step=STEP, format="%.4f", key=X_KEYS[i], **KEEP)
        else:
            x[i] = st.slider(f"x{i + 1}", -LIMIT, LIMIT, step=STEP, key=X_KEYS[i], **KEEP)
    return x


def inputs_and_weights(net: nn.Network) -> np.ndarray:
    """A column for the inputs, then one per layer with the weights (and biases) into its neurons,
    in the diagram's left-to-right order; a network with more than MAX_SLIDER_WEIGHTS weights shows
    every weight at a glance instead (read-only). Returns the input x."""
    playing = is_playing()
    names = nn.neuron_names(net)
    n_layers = len(net.layers)
    if sum(lay.weights.size for lay in net.layers) > MAX_SLIDER_WEIGHTS:
        first, rest = st.columns([1, 4], gap="medium")
        with first:
            x = _inputs()
        with rest:
            st.markdown(f"**Weights** of the {'-'.join(str(len(c)) for c in names)} network")
            st.plotly_chart(figures.weight_matrices(net, height=140 + 24 * max(len(c) for c in names)),
                            key="nn_weight_view", config={"displayModeBar": False})
            st.caption("Too many weights for sliders, so each grid is one layer: a row per neuron, a column per input "
                       "it receives (and its bias); blue cells are positive weights, red negative. Choose a network "
                       f"with at most {MAX_SLIDER_WEIGHTS} weights (such as 2-2-2-1 or 2-4-1) to edit them with "
                       "sliders again.")
        return x
    columns = st.columns(1 + n_layers, gap="medium")
    with columns[0]:
        x = _inputs()
    for l, layer in enumerate(net.layers, start=1):
        with columns[l]:
            st.markdown(f"**{'Output' if l == n_layers else f'Hidden layer {l}'}** — weights in")
            # more than two neurons: two neurons side by side, so the column stays short
            places = st.columns(2) if layer.out_features > 2 else [st.container()]
            for j in range(layer.out_features):
                with places[j % len(places)]:
                    _neuron_sliders(names, layer, l, j, playing)
    if playing:
        st.caption("The weights follow the training while it plays; pause to move them yourself.")
    return x


def _neuron_sliders(names, layer: nn.Layer, l: int, j: int, playing: bool) -> None:
    """The weights into neuron j of layer l, then its bias."""
    params = st.session_state[PARAMS]
    for i in range(layer.in_features):
        key = w_key(l, j, i)
        _number(f"{names[l - 1][i]} → {names[l][j]}", key, params.weights[l - 1][j, i], playing, edit_weight,
                (key, l, j, i))
    if layer.bias is not None:
        key = b_key(l, j)
        _number(f"bias of {names[l][j]}", key, params.biases[l - 1][j], playing, edit_bias, (key, l, j))


def surface_section(net: nn.Network, trainer: pg.Trainer, x: np.ndarray) -> None:
    loss = st.session_state[LOSS_KEY]
    fig = figures.output_surface(pg.surface(net), trainer.data.train, trainer.data.test, x, loss=loss, height=470)
    st.plotly_chart(fig, key="nn_surface", config={"displayModeBar": False})
    levels, boundary = ("0.1, 0.3, 0.5, 0.7 and 0.9", "0.5") if loss == "bce" else ("−1, −0.5, 0, 0.5 and 1", "0")
    st.caption(f"The network's output for every input (x1, x2) of the plane: blue where it is high, red where it "
               f"is low, with lines where it equals {levels}. The line at {boundary}, "
               f"where red turns blue, is the decision boundary: points on its blue side are called class 1. Dots are "
               f"the data (white outline: training, dark: test); the cross is the input above.")


def training_section(net: nn.Network, trainer: pg.Trainer) -> None:
    ss = st.session_state
    st.subheader("Train it")
    st.markdown(
        "Training is the forward pass you see above, plus the gradients below, plus many small steps: take a few "
        "points, measure how wrong the outputs are (the **loss**), compute the loss's gradient for every weight "
        "with backpropagation, and move each weight a little against its gradient. That is **stochastic "
        "gradient descent** (SGD), written in numpy in `core/playground.py`. **Step**, **Play** and **Reset** are at "
        "the top of the page; hover over a control's question mark for what it does."
    )
    data_col, train_col = st.columns(2, gap="large")
    with data_col:
        st.markdown("**Data**")
        st.selectbox("Data set", list(pg.DATASETS), format_func=pg.DATASETS.get, key=DATA_KEY, help=HELP[DATA_KEY],
                     **KEEP)
        st.select_slider("Noise (%)", options=list(range(0, 55, 5)), key=NOISE_KEY, help=HELP[NOISE_KEY], **KEEP)
        st.select_slider("Points", options=POINTS_CHOICES, key=POINTS_KEY, help=HELP[POINTS_KEY], **KEEP)
        st.select_slider("Training share (%)", options=list(range(10, 100, 10)), key=SHARE_KEY,
                         help=HELP[SHARE_KEY], **KEEP)
        st.select_slider("Seed", options=list(range(0, 100)), key=SEED_KEY, help=HELP[SEED_KEY], **KEEP)
    with train_col:
        st.markdown("**Training**")
        st.selectbox("Loss", list(pg.LOSSES), format_func=lambda k: f"{pg.LOSSES[k]} ({pg.OUTPUT_ACTIVATION[k]} "
                     "output)", key=LOSS_KEY, help=HELP[LOSS_KEY], **KEEP)
        st.select_slider("Learning rate", options=LR_CHOICES, format_func=lambda v: f"{v:g}", key=LR_KEY,
                         help=HELP[LR_KEY], **KEEP)
        st.select_slider("Batch size", options=BATCH_CHOICES, key=BATCH_KEY, help=HELP[BATCH_KEY], **KEEP)
        st.select_slider("L2 regularisation (λ)", options=L2_CHOICES, format_func=lambda v: f"{v:g}", key=L2_KEY,
                         help=HELP[L2_KEY], **KEEP)
        st.select_slider("Steps per update", options=SPEED_CHOICES, key=SPEED_KEY, help=HELP[SPEED_KEY], **KEEP)
    st.plotly_chart(figures.training_curves(trainer.history, loss_name=pg.LOSSES[ss[LOSS_KEY]], height=300),
                    key="pg_curves", config={"displayModeBar": False})
    st.caption("Loss and accuracy on all training points (solid) and all test points (dashed), measured after each "
               "update. A test curve that stops improving while the training curve keeps going is overfitting.")


def transport_bar() -> st.delta_generator.DeltaGenerator:
    """Step, Play/Pause and Reset, drawn outside the page's fragment: a click is a plain full page run,
    which registers the fragment with its timer on or off, and the timer's updates never redraw these
    controls (so no update can overwrite a click). Returns the place for the live status, which the
    fragment fills at every update."""
    step, play, reset, status = st.columns([0.65, 1.15, 0.7, 3.2], vertical_alignment="top")
    step.button("Step", key=STEP_KEY, on_click=step_once, help=HELP[STEP_KEY], width="stretch")
    play.segmented_control("Play or pause", list(PLAY_LABELS), format_func=PLAY_LABELS.get, key=PLAY_KEY,
                           required=True, on_change=play_changed, help=HELP[PLAY_KEY], label_visibility="collapsed",
                           width="stretch")
    reset.button("Reset", key=RESTART_KEY, on_click=restart, help=HELP[RESTART_KEY], width="stretch")
    return status


def status(net: nn.Network, trainer: pg.Trainer) -> None:
    """Step count, loss and accuracy now (and the update rate while playing), then a note if playing stopped."""
    ss = st.session_state
    loss = ss[LOSS_KEY]
    train_loss, train_acc = pg.evaluate(net, loss, trainer.data.train)
    test_loss, test_acc = pg.evaluate(net, loss, trainer.data.test)
    with st.container(key=STATUS_KEY):
        st.markdown(f"Step **{trainer.steps}** · epoch {trainer.batches.progress:.1f} · "
                    f"{len(trainer.data.train)} training and {len(trainer.data.test)} test points  \n"
                    f"train loss {train_loss:.4f} · test loss {test_loss:.4f} · "
                    f"train accuracy {100 * train_acc:.1f}% · **test accuracy {100 * test_acc:.1f}%**")
        if is_playing():
            rate = updates_per_second()
            left = max(0, PLAY_LIMIT_S - (time.monotonic() - ss[PLAY_SINCE]))
            st.caption(f"Playing: {ss[TICKS]['count']} updates"
                       + (f", {rate:.1f} updates/s" if rate else "")
                       + f"; stops by itself in {int(left) // 60}:{int(left) % 60:02d}.")
    if NOTE in ss:
        kind, text = ss.pop(NOTE)
        (st.error if kind == "error" else st.info)(text)
