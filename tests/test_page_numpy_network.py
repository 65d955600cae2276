"""The "Numpy network" page in AppTest: the tutorial's output, live weights, reset, and the whole app."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import playground as pg
from core.numpy_net import TUTORIAL_INPUT, Layer, Network, parameter_gradients, tutorial_network
from dashboard.figures import numpy as network_figures

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "dashboard" / "views" / "numpy_network.py")
APP = str(REPO / "dashboard" / "app.py")
TIMEOUT = 60  # the machine is shared; a run takes well under a second alone

WEIGHT_KEYS = [f"nn_w1_{j}_{i}" for j in range(2) for i in range(2)] + \
              [f"nn_w2_{j}_{i}" for j in range(2) for i in range(2)] + ["nn_w3_0_0", "nn_w3_0_1"]


@pytest.fixture
def at() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not app.exception
    return app


def output_shown(app: AppTest) -> str:
    (metric,) = app.metric
    return metric.value


def core_output(weights: dict[str, float] | None = None, x=TUTORIAL_INPUT, biases=None, activation="tanh") -> float:
    """What core computes for the tutorial network with some weights replaced (keys like nn_w2_0_1)."""
    net = tutorial_network()
    for key, value in (weights or {}).items():
        l, j, i = (int(p) for p in key.removeprefix("nn_w").split("_"))
        net.layers[l - 1].weights[j, i] = value
    layers = [Layer(lay.weights, None if biases is None else np.asarray(biases[n]),
                    activation if n < 2 else "linear") for n, lay in enumerate(net.layers)]
    return Network(layers).forward(x).value


def test_page_shows_the_tutorial_output_by_default(at):
    assert output_shown(at) == "2.8920827"
    assert at.metric[0].label == "Output of the network"
    assert [at.slider(key=k).value for k in WEIGHT_KEYS] == [2, 4, 4, -5, -1, 1, 2, 2, -3, 7]
    assert [at.slider(key=k).value for k in ("nn_x_0", "nn_x_1")] == [3, 5]


@pytest.mark.parametrize("key, value", [("nn_w3_0_0", -2.0), ("nn_w2_0_0", 0.5), ("nn_w2_1_1", 1.3),
                                        ("nn_w1_1_1", -2.4), ("nn_w2_1_0", 0.2)])
def test_moving_a_weight_slider_shows_exactly_what_core_computes(at, key, value):
    at.slider(key=key).set_value(value).run()
    assert not at.exception
    expected = core_output({key: value})
    assert output_shown(at) == f"{expected:.7f}"
    assert output_shown(at) != "2.8920827"


def test_moving_several_sliders_and_an_input_accumulates(at):
    changes = {"nn_w2_0_1": 0.4, "nn_w3_0_0": 1.5, "nn_w1_0_0": -0.3}
    for key, value in changes.items():
        at.slider(key=key).set_value(value).run()
    at.slider(key="nn_x_1").set_value(-1.2).run()
    assert not at.exception
    assert output_shown(at) == f"{core_output(changes, x=np.array([3.0, -1.2])):.7f}"


def test_number_inputs_replace_sliders_and_keep_the_current_values(at):
    at.slider(key="nn_w3_0_0").set_value(-2.0).run()
    at.toggle(key="nn_exact_numbers").set_value(True).run()
    assert not at.exception
    assert len(at.slider) == 0 and len(at.number_input) == 12
    assert at.number_input(key="nn_w3_0_0").value == -2.0
    at.number_input(key="nn_w2_1_0").set_value(1.2345).run()
    expected = core_output({"nn_w3_0_0": -2.0, "nn_w2_1_0": 1.2345})
    assert output_shown(at) == f"{expected:.7f}"
    at.toggle(key="nn_exact_numbers").set_value(False).run()  # and back to sliders, values kept
    assert at.slider(key="nn_w2_1_0").value == pytest.approx(1.2345)
    assert output_shown(at) == f"{expected:.7f}"


def test_biases_and_hidden_activation_change_the_output_as_core_computes(at):
    at.checkbox(key="nn_use_bias").check().run()
    assert len(at.slider) == 17  # 2 inputs, 10 weights, 5 biases
    assert output_shown(at) == "2.8920827"  # biases start at 0
    at.slider(key="nn_b1_1").set_value(-0.5).run()
    at.slider(key="nn_b3_0").set_value(0.7).run()
    at.selectbox(key="nn_hidden_activation").set_value("sigmoid").run()
    assert not at.exception
    biases = [[0.0, -0.5], [0.0, 0.0], [0.7]]
    assert output_shown(at) == f"{core_output(biases=biases, activation='sigmoid'):.7f}"


def test_reset_restores_the_tutorial_values(at):
    at.slider(key="nn_w2_0_0").set_value(0.5).run()
    at.slider(key="nn_x_0").set_value(-4.0).run()
    at.checkbox(key="nn_use_bias").check().run()
    at.slider(key="nn_b2_0").set_value(1.0).run()
    at.selectbox(key="nn_hidden_activation").set_value("relu").run()
    assert output_shown(at) != "2.8920827"
    at.button(key="nn_reset").click().run()
    assert not at.exception
    assert output_shown(at) == "2.8920827"
    assert at.checkbox(key="nn_use_bias").value is False
    assert at.selectbox(key="nn_hidden_activation").value == "tanh"
    assert [at.slider(key=k).value for k in WEIGHT_KEYS] == [2, 4, 4, -5, -1, 1, 2, 2, -3, 7]
    assert at.slider(key="nn_x_0").value == 3


def test_step_table_shows_each_neuron_with_the_numbers_filled_in(at):
    table = at.dataframe[0].value
    assert list(table["neuron"]) == ["h1,1", "h1,2", "h2,1", "h2,2", "out"]
    assert table["formula"].iloc[0] == "h1,1 = tanh(3·2 + 5·4) = tanh(26) = 1.000000"
    assert table["weighted sum z"].iloc[0] == 26.0
    assert table["activation a"].iloc[-1] == pytest.approx(2.8920827, abs=1e-7)
    at.slider(key="nn_w1_0_0").set_value(-1.0).run()
    assert at.dataframe[0].value["formula"].iloc[0] == "h1,1 = tanh(3·(-1) + 5·4) = tanh(17) = 1.000000"


def test_sentence_names_the_weight_with_the_largest_gradient(at):
    def most_important(net: Network, x) -> str:
        return max(parameter_gradients(net, x), key=lambda r: abs(r.grad)).label

    text = " ".join(m.value for m in at.markdown)
    assert f"Right now **{most_important(tutorial_network(), TUTORIAL_INPUT)}** matters most" in text
    at.slider(key="nn_w2_1_0").set_value(0.2).run()
    net = tutorial_network()
    net.layers[1].weights[1, 0] = 0.2
    text = " ".join(m.value for m in at.markdown)
    assert f"Right now **{most_important(net, TUTORIAL_INPUT)}** matters most" in text


def test_app_entry_point_runs_and_opens_on_the_numpy_network_page():
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not app.exception, [e.message for e in app.exception]
    assert [m.value for m in app.metric] == ["2.8920827"]


def test_changed_weights_survive_a_visit_to_another_page():
    others = sorted(p.name for p in (REPO / "dashboard" / "views").glob("*.py") if p.name != "numpy_network.py")
    if not others:
        pytest.skip("no other page exists yet to visit")
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    app.slider(key="nn_w3_0_0").set_value(-2.0).run()
    app.checkbox(key="nn_use_bias").check().run()
    app.slider(key="nn_b3_0").set_value(0.5).run()
    expected = f"{core_output({'nn_w3_0_0': -2.0}, biases=[[0.0, 0.0], [0.0, 0.0], [0.5]]):.7f}"
    assert [m.value for m in app.metric] == [expected]
    app.switch_page(f"views/{others[0]}").run()
    app.switch_page("views/numpy_network.py").run()
    assert not app.exception
    assert [m.value for m in app.metric] == [expected]
    assert app.slider(key="nn_w3_0_0").value == -2.0
    assert app.checkbox(key="nn_use_bias").value is True


def test_hidden_biases_keep_their_values_across_a_switch_to_number_inputs(at):
    at.checkbox(key="nn_use_bias").check().run()
    at.slider(key="nn_b2_1").set_value(0.8).run()
    at.checkbox(key="nn_use_bias").uncheck().run()
    assert at.metric[0].value == "2.8920827"  # biases off: ignored
    at.toggle(key="nn_exact_numbers").set_value(True).run()
    at.checkbox(key="nn_use_bias").check().run()
    assert not at.exception
    assert at.number_input(key="nn_b2_1").value == 0.8
    assert output_shown(at) == f"{core_output(biases=[[0.0, 0.0], [0.0, 0.8], [0.0]]):.7f}"


# ---- the playground: the surface, Step, Play, Reset, the architecture -------------------------------

# The page's starting point: XOR, 200 points, noise 10 %, half of them for training, seed 0; squared
# error, learning rate 0.03, batches of 10, no L2, 10 steps per update while playing.
DEFAULT_DATA = pg.DataSpec("xor", n=200, noise=0.1, train_fraction=0.5, seed=0)
DEFAULT_SGD = pg.SGDSettings(loss="mse", lr=0.03, batch_size=10, l2=0.0)


def chart(app: AppTest, key: str) -> dict:
    (found,) = [c for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    return json.loads(found.proto.spec)


def has_chart(app: AppTest, key: str) -> bool:
    return any(c.proto.id.endswith(f"-{key}") for c in app.get("plotly_chart"))


def plotly_array(value) -> np.ndarray:
    """A figure's array back from its JSON: plotly writes numpy arrays as base64 with dtype and shape."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return arr.reshape([int(n) for n in str(value["shape"]).split(",")]) if "shape" in value else arr
    return np.asarray(value, dtype=float)


def shown_surface(app: AppTest) -> tuple[np.ndarray, np.ndarray]:
    (contour,) = [t for t in chart(app, "nn_surface")["data"] if t["type"] == "contour"]
    return plotly_array(contour["x"]), plotly_array(contour["z"])


def status(app: AppTest) -> str:
    return " ".join(m.value for m in app.markdown if m.value.startswith("Step **"))


def shown_weights(app: AppTest, sizes=(2, 2, 2, 1)) -> list[np.ndarray]:
    return [np.array([[app.slider(key=f"nn_w{l}_{j}_{i}").value for i in range(sizes[l - 1])]
                      for j in range(sizes[l])]) for l in range(1, len(sizes))]


def core_after_steps(net: Network, steps: int, settings=DEFAULT_SGD, data=DEFAULT_DATA) -> pg.Trainer:
    trainer = pg.Trainer(pg.make_data(data), seed=data.seed)
    trainer.train(net, settings, steps)
    return trainer


def test_surface_shows_exactly_what_core_computes(at):
    xs, z = shown_surface(at)
    expected = pg.surface(tutorial_network())
    assert z.shape == (101, 101) and xs[0] == -6.0 and xs[-1] == 6.0
    np.testing.assert_array_equal(z, expected.z)
    at.slider(key="nn_w2_1_0").set_value(0.2).run()
    net = tutorial_network()
    net.layers[1].weights[1, 0] = 0.2
    np.testing.assert_array_equal(shown_surface(at)[1], pg.surface(net).z)
    marker = [t for t in chart(at, "nn_surface")["data"] if t.get("name", "").startswith("input")]
    assert [plotly_array(marker[0]["x"])[0], plotly_array(marker[0]["y"])[0]] == [3.0, 5.0]


def test_surface_draws_the_chosen_data_set_train_and_test(at):
    at.selectbox(key="pg_data").set_value("spiral").run()
    at.select_slider(key="pg_points").set_value(300).run()
    assert not at.exception
    data = pg.make_data(pg.DataSpec("spiral", n=300, noise=0.1, train_fraction=0.5, seed=0))
    traces = {t["name"]: t for t in chart(at, "nn_surface")["data"] if t["type"] == "scatter"}
    train1 = traces["class 1, train"]
    np.testing.assert_array_equal(plotly_array(train1["x"]), data.train.x[data.train.y == 1, 0])
    np.testing.assert_array_equal(plotly_array(traces["class 0, test"]["y"]), data.test.x[data.test.y == 0, 1])
    assert "150 training and 150 test points" in status(at)


def test_step_takes_one_sgd_step_exactly_as_core_does(at):
    assert "Step **0**" in status(at)
    at.button(key="pg_step").click().run()
    assert not at.exception
    net = tutorial_network()
    trainer = core_after_steps(net, 1)
    assert "Step **1**" in status(at)
    for shown, layer in zip(shown_weights(at), net.layers):
        np.testing.assert_array_equal(shown, layer.weights)
    assert output_shown(at) == f"{net.forward(TUTORIAL_INPUT).value:.7f}"
    test_loss, test_acc = pg.evaluate(net, "mse", trainer.data.test)
    assert f"test loss {test_loss:.4f}" in status(at) and f"test accuracy {100 * test_acc:.1f}%" in status(at)
    at.button(key="pg_step").click().run()
    at.button(key="pg_step").click().run()
    trainer.train(net, DEFAULT_SGD, 2)
    assert "Step **3**" in status(at)
    np.testing.assert_array_equal(shown_weights(at)[2], net.layers[2].weights)
    np.testing.assert_array_equal(shown_surface(at)[1], pg.surface(net).z)
    curves = chart(at, "pg_curves")["data"]
    assert list(plotly_array(curves[0]["x"])) == [0, 1, 2, 3]  # one point per Step, from step 0


def test_step_uses_the_chosen_loss_learning_rate_batch_and_l2(at):
    at.selectbox(key="pg_loss").set_value("bce").run()
    at.select_slider(key="pg_lr").set_value(0.3).run()
    at.select_slider(key="pg_batch").set_value(50).run()
    at.select_slider(key="pg_l2").set_value(0.01).run()
    at.checkbox(key="nn_use_bias").check().run()
    at.button(key="pg_step").click().run()
    assert not at.exception
    arch = pg.Architecture((2, 2), ("tanh", "tanh"), True, "sigmoid")
    params = pg.tutorial_parameters()
    net = pg.build_network(arch, params)
    core_after_steps(net, 1, pg.SGDSettings(loss="bce", lr=0.3, batch_size=50, l2=0.01))
    for shown, w in zip(shown_weights(at), params.weights):
        np.testing.assert_array_equal(shown, w)
    assert at.slider(key="nn_b3_0").value == params.biases[2][0] != 0.0
    assert output_shown(at) == f"{net.forward(TUTORIAL_INPUT).value:.7f}"
    assert 0.0 < float(output_shown(at)) < 1.0  # a sigmoid output: a probability


def test_reset_starts_again_from_the_seeds_random_weights(at):
    for _ in range(2):
        at.button(key="pg_step").click().run()
    at.select_slider(key="pg_seed").set_value(7).run()
    at.button(key="pg_reset").click().run()
    assert not at.exception
    assert "Step **0**" in status(at)
    expected = pg.Parameters.initial(pg.Architecture(), seed=7)
    for shown, w in zip(shown_weights(at), expected.weights):
        np.testing.assert_array_equal(shown, w)
    assert list(plotly_array(chart(at, "pg_curves")["data"][0]["x"])) == [0]
    at.button(key="nn_reset").click().run()  # and the tutorial's reset brings the tutorial back
    assert output_shown(at) == "2.8920827"


def test_a_new_architecture_gets_seeded_weights_and_keeps_sliders_up_to_twelve_weights(at):
    at.select_slider(key="nn_hidden_layers").set_value(1).run()
    at.select_slider(key="nn_units_1").set_value(4).run()
    at.checkbox(key="nn_use_bias").check().run()
    assert not at.exception
    arch = pg.Architecture((4,), ("tanh",), True)
    params = pg.Parameters.initial(arch, seed=0)
    assert len(at.slider) == 2 + 12 + 5  # inputs, 8 + 4 weights, 4 + 1 biases
    assert "the 2-4-1 network's output" in " ".join(m.value for m in at.markdown)
    for shown, w in zip(shown_weights(at, arch.sizes), params.weights):
        np.testing.assert_array_equal(shown, w)
    net = pg.build_network(arch, params)
    assert output_shown(at) == f"{net.forward(TUTORIAL_INPUT).value:.7f}"
    np.testing.assert_array_equal(shown_surface(at)[1], pg.surface(net).z)
    at.selectbox(key="nn_act_1").set_value("relu").run()  # an activation keeps the weights
    net = pg.build_network(pg.Architecture((4,), ("relu",), True), params)
    assert output_shown(at) == f"{net.forward(TUTORIAL_INPUT).value:.7f}"


def test_a_network_bigger_than_the_tutorials_collapses_the_sliders_into_a_weight_view(at):
    at.select_slider(key="nn_hidden_layers").set_value(3).run()
    for key, units in (("nn_units_1", 8), ("nn_units_2", 8), ("nn_units_3", 3)):
        at.select_slider(key=key).set_value(units).run()
    at.selectbox(key="nn_act_3").set_value("sigmoid").run()
    assert not at.exception
    arch = pg.Architecture((8, 8, 3), ("tanh", "tanh", "sigmoid"), False)
    net = pg.build_network(arch, pg.Parameters.initial(arch, seed=0))
    assert [s.key for s in at.slider] == ["nn_x_0", "nn_x_1"]  # only the inputs
    view = chart(at, "nn_weight_view")["data"]
    assert [plotly_array(t["z"]).shape for t in view] == [(8, 2), (8, 8), (3, 8), (1, 3)]
    np.testing.assert_array_equal(plotly_array(view[1]["z"]), net.layers[1].weights)
    assert output_shown(at) == f"{net.forward(TUTORIAL_INPUT).value:.7f}"
    at.button(key="pg_step").click().run()
    core_after_steps(net, 1)
    np.testing.assert_array_equal(plotly_array(chart(at, "nn_weight_view")["data"][2]["z"]), net.layers[2].weights)
    at.select_slider(key="nn_hidden_layers").set_value(1).run()  # back to a small net: sliders again
    at.select_slider(key="nn_units_1").set_value(2).run()
    assert not has_chart(at, "nn_weight_view") and len(at.slider) == 2 + 6


def test_hidden_activation_sets_every_layer_at_once(at):
    at.selectbox(key="nn_act_2").set_value("relu").run()
    assert [at.selectbox(key=k).value for k in ("nn_act_1", "nn_act_2")] == ["tanh", "relu"]
    at.selectbox(key="nn_hidden_activation").set_value("linear").run()
    assert [at.selectbox(key=k).value for k in ("nn_act_1", "nn_act_2")] == ["linear", "linear"]
    assert output_shown(at) == f"{core_output(activation='linear'):.7f}"


def play(app: AppTest, choice: str) -> AppTest:
    return app.segmented_control(key="pg_play").set_value(choice).run()


def test_play_trains_an_update_per_run_and_pause_holds_the_weights(at):
    play(at, "play")  # in a browser a timer reruns the page; here each run() is one update
    assert not at.exception
    assert at.segmented_control(key="pg_play").value == "play"
    assert "Step **10**" in status(at)  # 10 steps per update
    assert all(s.disabled for s in at.slider if s.key.startswith("nn_w"))  # the weights move by themselves
    at.run()
    net = tutorial_network()
    core_after_steps(net, 20)
    assert "Step **20**" in status(at)
    np.testing.assert_array_equal(shown_weights(at)[0], net.layers[0].weights)
    play(at, "pause")
    assert at.segmented_control(key="pg_play").value == "pause"
    held = shown_weights(at)
    at.run()
    assert "Step **20**" in status(at)
    for a, b in zip(held, shown_weights(at)):
        np.testing.assert_array_equal(a, b)
    assert not any(s.disabled for s in at.slider)


def test_play_stops_by_itself_after_the_time_limit(at):
    play(at, "play")
    at.session_state["pg_play_since"] = time.monotonic() - 10_000  # as if the tab were left playing for hours
    at.run()
    assert not at.exception
    assert at.segmented_control(key="pg_play").value == "pause"
    assert "Step **10**" in status(at)  # no steps after the limit
    assert any("Paused after 3 minutes of playing" in i.value for i in at.info)


def test_a_learning_rate_that_blows_up_stops_with_an_explanation(at):
    params = pg.tutorial_parameters()
    params.weights[2][:] = 1e200  # far beyond the sliders: they show their end, the network keeps the number
    at.session_state["nn_params"] = params
    at.run()
    assert at.slider(key="nn_w3_0_0").value == 10.0
    at.button(key="pg_step").click().run()
    assert not at.exception
    assert any("learning rate is too large" in e.value for e in at.error)
    assert "Step **0**" in status(at)


def test_a_new_shape_while_playing_pauses_and_starts_again_from_new_weights(at):
    play(at, "play")
    assert "Step **10**" in status(at)
    at.select_slider(key="nn_units_2").set_value(1).run()
    assert not at.exception
    assert at.segmented_control(key="pg_play").value == "pause"
    assert "Step **0**" in status(at)
    expected = pg.Parameters.initial(pg.Architecture((2, 1), ("tanh", "tanh")), seed=0)
    for shown, w in zip(shown_weights(at, (2, 2, 1, 1)), expected.weights):
        np.testing.assert_array_equal(shown, w)


# ---- the page explains itself for the network on screen (issue: teach the tutorial) -----------------

def diagram_labels(diagram: dict) -> list[str]:
    """The texts written on the diagram (names, weights, sums, headings): its one text trace."""
    (labels,) = [t for t in diagram["data"] if t.get("mode") == "text"]
    return labels["text"]


def page_text(app: AppTest) -> str:
    return "\n".join(m.value for m in [*app.markdown, *app.caption])


def test_the_text_follows_the_chosen_activation(at):
    assert "`tanh` maps any number into (−1, 1)" in page_text(at) and "`relu`" not in page_text(at)
    at.selectbox(key="nn_hidden_activation").set_value("relu").run()
    assert "`relu` keeps a positive sum" in page_text(at) and "`tanh` maps" not in page_text(at)
    at.selectbox(key="nn_hidden_activation").set_value("sigmoid").run()
    assert "`sigmoid` maps any number into (0, 1)" in page_text(at)


def test_numbers_without_effect_are_explained_and_saturated_neurons_ringed(at):
    text = page_text(at)
    assert "**5 of the 10 numbers have a gradient of about 0**" in text
    assert "x1 → h1,1, x2 → h1,1: h1,1 is saturated: z = 26" in text
    diagram = chart(at, "nn_diagram")
    (nodes,) = [t for t in diagram["data"] if t.get("mode") == "markers+text"]
    outline = nodes["marker"]["line"]["color"]
    assert outline[2:4] == [network_figures.STATE_OUTLINE["saturated"]] * 2      # h1,1 and h1,2
    assert network_figures.STATE_OUTLINE["saturated"] not in outline[4:]
    assert sum("saturated" in text for text in diagram_labels(diagram)) == 2
    # a gradient that rounds to 0 reads "0", not "+1.4e-09"
    bars = chart(at, "nn_gradients")["data"][0]
    assert "0" in bars["text"] and not any("e-" in t for t in bars["text"])


def test_the_tutorials_code_is_shown_with_the_current_numbers(at, capsys):
    at.slider(key="nn_w3_0_0").set_value(-2.0).run()
    (code,) = [c for c in at.code if "input_data" in c.value]
    assert "'out': np.array([-2, 7])," in code.value
    exec(compile(code.value, "<page code>", "exec"), {})
    assert float(capsys.readouterr().out) == pytest.approx(float(output_shown(at)), abs=6e-8)  # shown to 7 places


def test_relu_neurons_that_are_off_are_ringed_grey_and_named_in_the_text(at):
    at.selectbox(key="nn_hidden_activation").set_value("relu").run()
    assert not at.exception
    diagram = chart(at, "nn_diagram")
    (nodes,) = [t for t in diagram["data"] if t.get("mode") == "markers+text"]
    outline = nodes["marker"]["line"]["color"]
    # relu at the tutorial's input: h1,2's sum 3·4 + 5·(-5) = -13 is negative, so it is off
    assert outline[3] == network_figures.STATE_OUTLINE["off"]
    assert any("z = -13 · <b>off</b>" in text for text in diagram_labels(diagram))
    assert "grey ring marks a relu neuron that is off" in page_text(at)
    assert "amber ring" not in page_text(at)  # no tanh or sigmoid on screen: that ring is not explained
    assert "h1,2 is off: relu of z = -13 ≤ 0 is 0" in page_text(at)


def test_a_value_that_rounds_to_zero_reads_0_and_its_exact_value_is_on_hover(at):
    diagram = chart(at, "nn_diagram")
    (nodes,) = [t for t in diagram["data"] if t.get("mode") == "markers+text"]
    h22 = tutorial_network().forward(TUTORIAL_INPUT).layers[1].a[1]   # tanh(2.04e-11)
    assert abs(h22) < 1e-10
    assert nodes["text"][5] == "<b>0</b>"                                # x1, x2, h1,1, h1,2, h2,1, h2,2, out
    assert f"{h22:.6g}" in nodes["hovertext"][5]
    assert "z = 0" in diagram_labels(diagram)


def flat_elements(node) -> list:
    """Every element of a page in reading order, containers left out."""
    found = []
    for child in getattr(node, "children", {}).values():
        found.extend(flat_elements(child) if getattr(child, "children", None) else [child])
    return found


def charts_and_their_captions(app: AppTest) -> dict[str, str]:
    """Each chart's key and the caption right after it (a test fails where a chart has none)."""
    elements = flat_elements(app.main)
    found = {}
    for k, element in enumerate(elements):
        if element.type == "plotly_chart":
            after = elements[k + 1] if k + 1 < len(elements) else None
            key = element.proto.id.rsplit("-", 1)[-1]
            found[key] = after.value if after is not None and after.type == "caption" else None
    return found


def test_every_chart_has_a_caption_under_it(at):
    captions = charts_and_their_captions(at)
    assert set(captions) == {"nn_diagram", "nn_surface", "pg_curves", "nn_gradients"}
    assert all(captions.values()), captions
    assert "decision boundary" in captions["nn_surface"] and "overfitting" in captions["pg_curves"]
    play(at, "play")
    captions = charts_and_their_captions(at)
    assert set(captions) == {"nn_diagram", "nn_surface", "pg_curves"} and all(captions.values()), captions
    assert "coarser grid" in captions["nn_surface"]
    play(at, "pause")
    at.select_slider(key="nn_hidden_layers").set_value(3).run()  # the compact weight view, and its caption
    captions = charts_and_their_captions(at)
    assert captions["nn_weight_view"].startswith("Too many weights for sliders")


def test_while_playing_the_surface_is_a_coarse_float32_heatmap_and_full_again_when_paused(at):
    play(at, "play")
    net = tutorial_network()
    core_after_steps(net, 10)
    traces = chart(at, "nn_surface")["data"]
    heat = next(t for t in traces if t["type"] == "heatmap")
    z = plotly_array(heat["z"])
    assert z.dtype == np.float32 and z.shape == (51, 51)
    np.testing.assert_allclose(z, pg.surface(net, resolution=51).z, atol=6e-4)   # rounded to 3 decimals
    (line,) = [t for t in traces if t["type"] == "contour"]
    assert line["contours"]["start"] == line["contours"]["end"] == 0.0           # only the decision boundary
    play(at, "pause")
    xs, z = shown_surface(at)
    np.testing.assert_array_equal(z, pg.surface(net).z)                          # exact, 101 x 101, when paused


def test_while_playing_the_diagram_and_the_curves_are_redrawn_in_turns(at):
    play(at, "play")                          # update 1: a new diagram, the curves as drawn before
    diagram1, curves1 = chart(at, "nn_diagram"), chart(at, "pg_curves")
    assert list(plotly_array(curves1["data"][0]["x"])) == [0]
    at.run()                                  # update 2: new curves, the same diagram
    assert chart(at, "nn_diagram") == diagram1
    assert list(plotly_array(chart(at, "pg_curves")["data"][0]["x"])) == [0, 10, 20]
    at.run()                                  # update 3: a new diagram, the same curves
    assert chart(at, "nn_diagram") != diagram1
    assert list(plotly_array(chart(at, "pg_curves")["data"][0]["x"])) == [0, 10, 20]
    net = tutorial_network()
    core_after_steps(net, 30)
    (nodes,) = [t for t in chart(at, "nn_diagram")["data"] if t.get("mode") == "markers+text"]
    assert nodes["hovertext"][-1].split("<br>")[2] == f"linear(z) = {net.forward(TUTORIAL_INPUT).value:.6g}"
    play(at, "pause")                         # paused: everything drawn afresh
    assert list(plotly_array(chart(at, "pg_curves")["data"][0]["x"])) == [0, 10, 20, 30]


def test_the_tutorials_code_and_the_step_table_follow_the_activation(at, capsys):
    at.selectbox(key="nn_hidden_activation").set_value("sigmoid").run()
    (code,) = [c for c in at.code if "input_data" in c.value]
    assert "def sigmoid(x):" in code.value and "def tanh" not in code.value
    assert "# hidden layer 1: weighted sums, then sigmoid" in code.value
    exec(compile(code.value, "<page code>", "exec"), {})
    assert float(capsys.readouterr().out) == pytest.approx(float(output_shown(at)), abs=6e-8)
    assert at.dataframe[0].value["formula"].iloc[0].startswith("h1,1 = sigmoid(3·2 + 5·4)")
