"""The "Numpy network" page in AppTest: the tutorial's output, live weights, reset, and the whole app."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.numpy_net import TUTORIAL_INPUT, Layer, Network, parameter_gradients, tutorial_network

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
