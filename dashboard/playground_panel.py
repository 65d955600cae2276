"""The Numpy network page's state and sections: the network the sliders edit, and the playground that trains it.

    panel.init_state()                       # once per full page run, before any widget
    status_place = panel.transport_bar()     # Step, Play/Pause, Reset: outside the fragment
    panel.network_controls()                 # activation, biases, the shape: outside the fragment
    places = panel.layout(...)               # the page's places, the text that does not change between them
    @st.fragment(run_every=panel.run_every())    # fills the places; a timer reruns it only while playing
    def live():
        arch, net, trainer = panel.current()
        panel.advance(net, trainer)          # a Step press, or one update's worth of steps while playing
        panel.follow_play_state()            # playing stopped by itself: rerun the page to stop the timer
        with status_place: panel.status(net, trainer)
        x = panel.draw_live(places, net, trainer, ...)

The network's numbers live in session state as one core.playground.Parameters (PARAMS); the
sliders (or number inputs) only edit it: each is set from PARAMS before it is drawn and writes its
new value back in its on_change callback. So training can move the sliders, a weight beyond the
sliders' range is kept exactly (the slider shows its end), and the biases keep their values while
switched off. All the training is core.playground (numpy, no torch); nothing here computes.

What one update sends to the browser, and what it costs there (bench.numpy_playground --browser):
the fragment writes only what changes while training plays (the status line, the output, the
diagram, the surface, the weight sliders and the curves) into places that the full page run laid
out; the controls, the explanations and the captions between those places are drawn by the full
run only, so an update neither sends nor redraws them. Streamlit mounts a new plotly chart for each
new figure (and keeps one whose figure is the same), so a chart is drawn from scratch whenever it
changes: the figures are built to be cheap to draw (dashboard/figures/numpy.py); while playing the
surface is a 51 x 51 heatmap in float32 with only the decision boundary as a line (101 x 101 with
contour lines when paused), and the diagram and the curves are redrawn in turns, each at every
other update (_in_turn), while the surface, the sliders and the status line follow every update.

CPU while playing, paused or hidden (see run_every and advance):
* Paused: the fragment is registered without run_every, so the browser holds no timer and the
  server runs nothing until someone touches a widget.
* Playing: the browser's timer asks for a fragment rerun every TICK_S; each does a bounded amount
  of work (at most 50 SGD steps on at most 1000 points, then one redraw) and Streamlit folds rerun
  requests that arrive while one is running into one, so requests never pile up.
* A hidden tab: browsers slow a background tab's timers to at most one a second (Chrome, after five
  minutes hidden: one a minute). And Play stops itself after PLAY_LIMIT_S of playing, whether the tab
  is visible or not, so a forgotten tab costs at most that much; pressing Play again continues.
* A closed tab: the timer lives in the page, so it ends with it.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core import i18n
from core import numpy_net as nn
from core import playground as pg
from dashboard.figures import numpy as figures
from dashboard.lang import lang, tr

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
DRAWN = "pg_drawn"            # the diagram's and the curves' figures as last drawn (while playing: in turns)


def w_key(l: int, j: int, i: int) -> str:  # 1-based layer, 0-based indices
    return f"nn_w{l}_{j}_{i}"


def b_key(l: int, j: int) -> str:
    return f"nn_b{l}_{j}"


LIMIT, STEP = 10.0, 0.1  # the sliders' range and step
MAX_SLIDER_WEIGHTS = 12  # sliders up to 12 weights (the tutorial's 2-2-2-1 has 10, a 2-4-1 12); more: a compact view
TICK_S = 0.2  # seconds between updates while playing (at most 5 a second; a busy browser asks for fewer)
PLAYING_GRID = 51  # the surface while playing: 51 x 51 points (101 x 101 when paused)
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

PLAY_CHOICES = ("play", "pause")


def help_text(name: str) -> str:
    """What a control does, in a sentence or two (numpy.help.<name> in the catalogues)."""
    if name == "play":
        return tr("numpy.help.play", per_s=round(1 / TICK_S), minutes=PLAY_LIMIT_S // 60)
    return tr(f"numpy.help.{name}")


HELP_NAMES = ("act", "layer_act", "bias", "layers", "units", "data", "noise", "points", "share", "seed", "loss",
              "lr", "batch", "l2", "speed", "step", "play", "reset")


# Names of options, in a language given when the widget is drawn: a select calls its format_func
# again later (AppTest does, outside a script run), when the session's language cannot be looked up.

def activation_name(act: str, language: str) -> str:
    """An activation as a select shows it: its name (tanh, relu, sigmoid), and what linear means."""
    return i18n.t(f"numpy.act_name.{act}", language)


def dataset_name(kind: str, language: str) -> str:
    return i18n.core_text(f"playground.dataset.{kind}", pg.DATASETS[kind], language)


def loss_name(loss: str, language: str) -> str:
    return i18n.core_text(f"playground.loss.{loss}", pg.LOSSES[loss], language)


def loss_option(loss: str, language: str) -> str:
    return i18n.t("numpy.train.loss_option", language, loss=loss_name(loss, language), act=pg.OUTPUT_ACTIVATION[loss])


def play_choice(choice: str, language: str) -> str:
    return i18n.t(f"numpy.play.{choice}", language)


def in_language(name_of) -> Callable[[str], str]:
    """name_of(option, language) for a widget's format_func, with the session's language of now."""
    return functools.partial(name_of, language=lang())


def _number_text(v: float) -> str:
    return f"{v:g}"


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
    """Stop playing from the page body (the control is drawn already: init_state sets it next run).
    `note`: (kind, text) shown once under the status line."""
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


def _stop_playing() -> None:
    """From a control's callback (all of them outside the fragment: their interaction is a full page
    run, which registers the fragment without its timer)."""
    st.session_state[PLAY_KEY] = "pause"


def _new_curves() -> None:
    st.session_state.pop(TRAINER, None)  # the next page run starts a trainer at step 0 on the same data
    st.session_state[PENDING] = 0


def reset_to_tutorial() -> None:  # a callback runs before the widgets exist, so their keys may be set
    st.session_state.update(TUTORIAL_STATE)
    st.session_state[PARAMS] = pg.tutorial_parameters()
    _new_curves()
    _stop_playing()


def reshape() -> None:
    """A new number of layers or neurons: new random weights of the new shape."""
    st.session_state[PARAMS] = pg.Parameters.initial(architecture(), st.session_state[SEED_KEY])
    _new_curves()
    _stop_playing()


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


def hidden_activations() -> list[str]:
    """The activations of the hidden layers shown, each once, in the order of nn.ACTIVATIONS."""
    ss = st.session_state
    return sorted({ss[k] for k in LAYER_ACT_KEYS[:ss[LAYERS_KEY]]}, key=nn.ACTIVATIONS.index)


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
            _pause(("info", tr("numpy.play.time_limit", minutes=PLAY_LIMIT_S // 60)))
        else:
            steps += ss[SPEED_KEY]
            ticks = ss[TICKS]
            ticks["count"] += 1
            ticks["times"] = (ticks["times"] + [time.monotonic()])[-20:]
    if steps:
        try:
            trainer.train(net, sgd_settings(), steps)
        except pg.TrainingDiverged as exc:
            _pause(("error", tr("numpy.play.diverged", lr=exc.lr, loss=exc.batch_loss)))


def updates_per_second() -> float | None:
    times = st.session_state[TICKS]["times"]
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 3 and times[-1] > times[0] else None


# ---- the page's places: laid out by the full run, filled by the fragment ---------------------------

@dataclass(frozen=True)
class Places:
    """Where the fragment draws what changes at every update, in the page's reading order."""

    output: DeltaGenerator    # the network's output (a metric) and the diagram
    surface: DeltaGenerator   # the output over the plane
    weights: DeltaGenerator   # the inputs and every weight (sliders, or the compact view)
    curves: DeltaGenerator    # the training curves
    analysis: DeltaGenerator  # the step-by-step table, the code and the gradients (only while paused)


def layout(arch: pg.Architecture) -> Places:
    """The page below the controls: the diagram beside the plane, the weights, the training settings,
    the curves and the analysis, each place followed by its caption. Only the places change while
    training plays; everything drawn here stays as it is until the next full page run."""
    playing = is_playing()
    diagram_col, plane_col = st.columns([1.2, 1], gap="medium")
    with diagram_col:
        output = st.container()
        st.caption(diagram_caption(arch))
    with plane_col:
        st.markdown(tr("numpy.surface.heading", shape=arch.label))
        surface = st.container()
        st.caption(surface_caption(playing))
    weights = st.container()
    if playing:
        st.caption(tr("numpy.weights.playing"))
    training_settings()
    curves = st.container()
    st.caption(tr("numpy.curves.caption"))
    analysis = st.container()
    if playing:
        analysis.caption(tr("numpy.page.paused_only"))
    return Places(output, surface, weights, curves, analysis)


def diagram_caption(arch: pg.Architecture) -> str:
    """How to read the diagram; its rings are explained for the activations on screen only."""
    acts = {*arch.activations, arch.output}
    rings = [tr("numpy.diagram.ring_saturated")] if acts & {"tanh", "sigmoid"} else []
    rings += [tr("numpy.diagram.ring_off")] if "relu" in acts else []
    return tr("numpy.diagram.caption", rings="".join(rings))


def surface_caption(playing: bool) -> str:
    loss = st.session_state[LOSS_KEY]
    return tr("numpy.surface.caption", boundary=format(pg.THRESHOLD[loss], "g"),
              levels=tr(f"numpy.surface.levels_{loss}"), playing=tr("numpy.surface.playing") if playing else "")


def _in_turn(name: str, build) -> go.Figure:
    """The figure `name` built afresh, or while playing only at every other update (the diagram at odd
    ones, the curves at even ones) and otherwise as it was last drawn. The browser draws a chart again
    only when its figure changed (Streamlit keeps a chart whose figure is the same), so this halves what
    these two cost while the surface, the sliders and the status line follow every update."""
    ss = st.session_state
    drawn = ss.setdefault(DRAWN, {})
    fresh = not is_playing() or name not in drawn or ss[TICKS]["count"] % 2 == (name == "diagram")
    if fresh:
        drawn[name] = build()
    return drawn[name]


def draw_live(places: Places, net: nn.Network, trainer: pg.Trainer, reference: float) -> np.ndarray:
    """Everything that changes at an update, each in its place; returns the input x.
    `reference`: the tutorial's output, which the shown output is compared with."""
    language, playing, loss = lang(), is_playing(), st.session_state[LOSS_KEY]
    with places.weights:
        x = inputs_and_weights(net)
    trace = net.forward(x)
    with places.output:
        out = trace.value
        same = f"{out:.7f}" == f"{reference:.7f}"
        st.metric(tr("numpy.page.output"), f"{out:.7f}", delta_color="off",
                  delta=None if same else tr("numpy.page.output_delta", delta=out - reference, tutorial=reference))
        diagram = _in_turn("diagram", lambda: figures.network_diagram(net, trace, states=nn.neuron_states(net, x),
                                                                      lang=language))
        st.plotly_chart(diagram, key="nn_diagram", config={"displayModeBar": False})
    with places.surface:
        grid = pg.surface(net, resolution=PLAYING_GRID if playing else 101)
        fig = figures.output_surface(grid, trainer.data.train, trainer.data.test, x, loss=loss, height=470,
                                     light=playing, lang=language)
        st.plotly_chart(fig, key="nn_surface", config={"displayModeBar": False})
    with places.curves:
        curves = _in_turn("curves", lambda: figures.training_curves(
            trainer.history, loss_name=loss_name(loss, language), height=300, lang=language))
        st.plotly_chart(curves, key="pg_curves", config={"displayModeBar": False})
    return x


# ---- sections --------------------------------------------------------------------------------------

def network_controls() -> None:
    """Two rows: how numbers are entered, biases, activation, the tutorial's reset; then the shape."""
    opts = st.columns([1.2, 1.1, 1.3, 1.4], vertical_alignment="bottom")
    opts[0].toggle(tr("numpy.controls.exact"), key=EXACT_KEY, help=tr("numpy.controls.exact_help"),
                   on_change=carry_inputs_over, **KEEP)
    opts[1].checkbox(tr("numpy.controls.bias"), key=BIAS_KEY, help=help_text("bias"), **KEEP)
    opts[2].selectbox(tr("numpy.controls.activation"), nn.ACTIVATIONS, format_func=in_language(activation_name),
                      key=ACT_KEY,
                      help=help_text("act"), on_change=set_every_activation, **KEEP)
    opts[3].button(tr("numpy.controls.reset_tutorial"), key=RESET_KEY, on_click=reset_to_tutorial,
                   icon=":material/restart_alt:")
    n = st.session_state[LAYERS_KEY]
    shape = st.columns([1.2, 1.1, 1.1, 1.1])
    shape[0].select_slider(tr("numpy.controls.layers"), options=list(range(1, pg.MAX_HIDDEN_LAYERS + 1)),
                           key=LAYERS_KEY, help=help_text("layers"), on_change=reshape, **KEEP)
    for l in range(n):
        with shape[l + 1]:
            st.select_slider(tr("numpy.controls.units", l=l + 1), options=list(range(1, pg.MAX_UNITS + 1)),
                             key=UNITS_KEYS[l], help=help_text("units"), on_change=reshape, **KEEP)
            st.selectbox(tr("numpy.controls.layer_activation", l=l + 1), nn.ACTIVATIONS,
                         format_func=in_language(activation_name),
                         key=LAYER_ACT_KEYS[l], help=help_text("layer_act"), **KEEP)


def _number(label: str, key: str, value: float, disabled: bool, on_change, args) -> float:
    """A slider (or number input) showing value, clipped to the widgets' range; edits go to PARAMS."""
    st.session_state[key] = float(np.clip(value, -LIMIT, LIMIT))
    common = dict(step=STEP, key=key, disabled=disabled, on_change=on_change, args=args, **KEEP)
    if st.session_state[EXACT_KEY]:
        return st.number_input(label, -LIMIT, LIMIT, format="%.4f", **common)
    return st.slider(label, -LIMIT, LIMIT, **common)


def _inputs() -> np.ndarray:
    st.markdown(tr("numpy.weights.inputs"))
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
            st.markdown(tr("numpy.weights.compact", shape="-".join(str(len(c)) for c in names)))
            st.plotly_chart(figures.weight_matrices(net, height=150 + 24 * max(len(c) for c in names), lang=lang()),
                            key="nn_weight_view", config={"displayModeBar": False})
            st.caption(tr("numpy.weights.compact_caption", most=MAX_SLIDER_WEIGHTS))
        return x
    columns = st.columns(1 + n_layers, gap="medium")
    with columns[0]:
        x = _inputs()
    for l, layer in enumerate(net.layers, start=1):
        with columns[l]:
            st.markdown(tr("numpy.weights.output") if l == n_layers else tr("numpy.weights.hidden", l=l))
            # more than two neurons: two neurons side by side, so the column stays short
            places = st.columns(2) if layer.out_features > 2 else [st.container()]
            for j in range(layer.out_features):
                with places[j % len(places)]:
                    _neuron_sliders(names, layer, l, j, playing)
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
        _number(nn.bias_label(names[l][j], lang()), key, params.biases[l - 1][j], playing, edit_bias, (key, l, j))


def training_settings() -> None:
    """What training is, then the data and the SGD settings (outside the fragment: a change is a full run)."""
    st.subheader(tr("numpy.train.title"))
    st.markdown(tr("numpy.train.intro"))
    data_col, train_col = st.columns(2, gap="large")
    with data_col:
        st.markdown(tr("numpy.train.data"))
        st.selectbox(tr("numpy.train.dataset"), list(pg.DATASETS), format_func=in_language(dataset_name), key=DATA_KEY,
                     help=help_text("data"), **KEEP)
        st.select_slider(tr("numpy.train.noise"), options=list(range(0, 55, 5)), key=NOISE_KEY,
                         help=help_text("noise"), **KEEP)
        st.select_slider(tr("numpy.train.points"), options=POINTS_CHOICES, key=POINTS_KEY, help=help_text("points"),
                         **KEEP)
        st.select_slider(tr("numpy.train.share"), options=list(range(10, 100, 10)), key=SHARE_KEY,
                         help=help_text("share"), **KEEP)
        st.select_slider(tr("numpy.train.seed"), options=list(range(0, 100)), key=SEED_KEY, help=help_text("seed"),
                         **KEEP)
    with train_col:
        st.markdown(tr("numpy.train.training"))
        st.selectbox(tr("numpy.train.loss"), list(pg.LOSSES), key=LOSS_KEY, help=help_text("loss"),
                     format_func=in_language(loss_option), **KEEP)
        st.select_slider(tr("numpy.train.lr"), options=LR_CHOICES, format_func=_number_text, key=LR_KEY,
                         help=help_text("lr"), **KEEP)
        st.select_slider(tr("numpy.train.batch"), options=BATCH_CHOICES, key=BATCH_KEY, help=help_text("batch"),
                         **KEEP)
        st.select_slider(tr("numpy.train.l2"), options=L2_CHOICES, format_func=_number_text, key=L2_KEY,
                         help=help_text("l2"), **KEEP)
        st.select_slider(tr("numpy.train.speed"), options=SPEED_CHOICES, key=SPEED_KEY, help=help_text("speed"),
                         **KEEP)


def transport_bar() -> DeltaGenerator:
    """Step, Play/Pause and Reset, drawn outside the page's fragment: a click is a plain full page run,
    which registers the fragment with its timer on or off, and the timer's updates never redraw these
    controls (so no update can overwrite a click). Returns the place for the live status, which the
    fragment fills at every update."""
    step, play, reset, status_col = st.columns([0.65, 1.15, 0.7, 3.2], vertical_alignment="top")
    step.button(tr("numpy.play.step"), key=STEP_KEY, on_click=step_once, help=help_text("step"), width="stretch")
    play.segmented_control(tr("numpy.play.play_or_pause"), list(PLAY_CHOICES),
                           format_func=in_language(play_choice), key=PLAY_KEY, required=True,
                           on_change=play_changed, help=help_text("play"), label_visibility="collapsed",
                           width="stretch")
    reset.button(tr("numpy.play.reset"), key=RESTART_KEY, on_click=restart, help=help_text("reset"), width="stretch")
    return status_col


def status(net: nn.Network, trainer: pg.Trainer) -> None:
    """Step count, loss and accuracy now (and the update rate while playing), then a note if playing stopped."""
    ss = st.session_state
    loss = ss[LOSS_KEY]
    train_loss, train_acc = pg.evaluate(net, loss, trainer.data.train)
    test_loss, test_acc = pg.evaluate(net, loss, trainer.data.test)
    with st.container(key=STATUS_KEY):
        st.markdown(tr("numpy.play.status", step=trainer.steps, epoch=trainer.batches.progress,
                       train=len(trainer.data.train), test=len(trainer.data.test), train_loss=train_loss,
                       test_loss=test_loss, train_acc=100 * train_acc, test_acc=100 * test_acc))
        if is_playing():
            rate = updates_per_second()
            left = int(max(0, PLAY_LIMIT_S - (time.monotonic() - ss[PLAY_SINCE])))
            st.caption(tr("numpy.play.playing", count=ss[TICKS]["count"],
                          rate=tr("numpy.play.rate", rate=rate) if rate else "",
                          left=f"{left // 60}:{left % 60:02d}"))
    if NOTE in ss:
        kind, text = ss.pop(NOTE)
        (st.error if kind == "error" else st.info)(text)
