"""The Numpy network page in Chinese: every state it can be in shows no English sentence, every chart
keeps its caption, the charts speak Chinese, and the sentences core/numpy_net.py builds come in both
languages (issue 14 §3, §4)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import i18n
from core import numpy_net as nn
from core import playground as pg
from dashboard import playground_panel as panel
from tests.i18n_checks import english_leftovers
from tests.test_page_numpy_network import charts_and_their_captions, chart, diagram_labels

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "dashboard" / "views" / "numpy_network.py")
TIMEOUT = 60


def page(lang: str = "zh", **state) -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    app.session_state["lang"] = lang
    for key, value in state.items():
        app.session_state[key] = value
    return app.run()


def all_chinese(app: AppTest) -> None:
    assert not app.exception, app.exception
    left = english_leftovers(app)
    assert left == [], left


@pytest.fixture
def zh() -> AppTest:
    app = page("zh")
    all_chinese(app)
    return app


def status_text(app: AppTest) -> str:
    return " ".join(m.value for m in app.markdown if m.value.startswith("step **"))


# ---- the page in Chinese, in its richer states ---------------------------------------------------------

@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
def test_each_activation_reads_in_chinese(zh, activation):
    zh.selectbox(key="nn_hidden_activation").set_value(activation).run()
    all_chinese(zh)
    text = "\n".join(m.value for m in [*zh.markdown, *zh.caption])
    assert i18n.t(f"numpy.page.act_{activation}", "zh") in text
    if activation == "relu":  # at the tutorial's input h1,2 is off: ringed, and said so
        assert "h1,2 处于关闭状态" in text and i18n.t("numpy.diagram.ring_off", "zh") in text
    if activation in ("tanh", "sigmoid"):
        assert i18n.t("numpy.diagram.ring_saturated", "zh") in text


def test_the_zero_gradient_weights_are_explained_in_chinese(zh):
    text = "\n".join(m.value for m in zh.markdown)
    assert "**10 个数中有 5 个的梯度约为 0**" in text
    assert "x1 → h1,1、x2 → h1,1：h1,1 已饱和：z = 26 离 0 很远" in text
    assert "h2,2 → out：进入的值 h2,2 = 0（精确值 2.04e-11）约为 0" in text
    (code,) = [c for c in zh.code if "input_data" in c.value]
    assert "# 定义数据，作为输入数据" in code.value and "# 输出层，无激活函数" in code.value


def test_biases_bce_and_every_data_set_read_in_chinese(zh):
    zh.checkbox(key="nn_use_bias").check().run()
    zh.selectbox(key="pg_loss").set_value("bce").run()
    all_chinese(zh)
    assert any(s.label == "h1,1 的偏置" for s in zh.slider)
    for kind in pg.DATASETS:
        zh.selectbox(key="pg_data").set_value(kind).run()
        all_chinese(zh)
        assert zh.selectbox(key="pg_data").format_func(kind) == i18n.core_text(f"playground.dataset.{kind}",
                                                                                 pg.DATASETS[kind], "zh")
    zh.button(key="pg_step").click().run()
    all_chinese(zh)
    assert "step **1**" in status_text(zh) and "测试准确率" in status_text(zh)


def test_playing_and_paused_read_in_chinese(zh):
    zh.segmented_control(key="pg_play").set_value("play").run()
    all_chinese(zh)
    assert "step **10**" in status_text(zh)
    assert any(c.value.startswith("正在播放：已更新 1 次") for c in zh.caption)
    assert any(c.value == i18n.t("numpy.weights.playing", "zh") for c in zh.caption)
    zh.run()
    all_chinese(zh)
    zh.segmented_control(key="pg_play").set_value("pause").run()
    all_chinese(zh)
    assert "step **20**" in status_text(zh)


def test_the_notes_when_playing_stops_read_in_chinese(zh):
    zh.segmented_control(key="pg_play").set_value("play").run()
    zh.session_state["pg_play_since"] = time.monotonic() - 10_000
    zh.run()
    all_chinese(zh)
    assert any("已播放 3 分钟，自动暂停" in i.value for i in zh.info)
    params = pg.tutorial_parameters()
    params.weights[2][:] = 1e200
    zh.session_state["nn_params"] = params
    zh.run()
    zh.button(key="pg_step").click().run()
    all_chinese(zh)
    assert any("学习率太大了" in e.value for e in zh.error)


def test_a_network_too_big_for_sliders_reads_in_chinese(zh):
    zh.select_slider(key="nn_hidden_layers").set_value(3).run()
    zh.select_slider(key="nn_units_1").set_value(8).run()
    all_chinese(zh)
    view = chart(zh, "nn_weight_view")
    assert [a["text"] for a in view["layout"]["annotations"]] == ["进入隐藏层 1", "进入隐藏层 2", "进入隐藏层 3",
                                                                 "进入输出层"]


# ---- captions and the charts' own words --------------------------------------------------------------

def test_every_chart_has_a_chinese_caption(zh):
    captions = charts_and_their_captions(zh)
    assert set(captions) == {"nn_diagram", "nn_surface", "pg_curves", "nn_gradients"}
    assert captions["nn_diagram"].startswith("网络在这个输入下的样子")
    assert captions["nn_surface"].startswith("网络对每个输入 (x1, x2) 的输出")
    assert captions["pg_curves"].startswith("所有训练点（实线）")
    assert "每根条是输出对一个数的梯度" in captions["nn_gradients"]
    zh.segmented_control(key="pg_play").set_value("play").run()
    captions = charts_and_their_captions(zh)
    assert all(captions.values()) and i18n.t("numpy.surface.playing", "zh") in captions["nn_surface"]


def test_the_charts_titles_axes_and_hover_text_are_chinese(zh):
    labels = diagram_labels(chart(zh, "nn_diagram"))
    assert "输入层" in labels and "隐藏层 h1<br>(tanh)" in labels and "输出层<br>(linear)" in labels
    assert any("饱和" in text for text in labels)
    (nodes,) = [t for t in chart(zh, "nn_diagram")["data"] if t.get("mode") == "markers+text"]
    assert nodes["hovertext"][0] == "x1 = 3（输入）"
    surface = chart(zh, "nn_surface")
    assert "输出 = %{z:.4f}" in surface["data"][0]["hovertemplate"]
    assert surface["data"][0]["colorbar"]["title"]["text"] == "输出"
    curves = chart(zh, "pg_curves")
    assert [a["text"].split("</b>")[0] for a in curves["layout"]["annotations"][:2]] == ["<b>损失（均方误差）",
                                                                                         "<b>准确率 (%)"]
    assert curves["layout"]["xaxis"]["title"]["text"] == "SGD step"
    bars = chart(zh, "nn_gradients")
    assert bars["layout"]["xaxis"]["title"]["text"] == "输出的梯度（d out / d 参数）"
    assert "h1,1 → h2,2" in json.dumps(bars["data"][0]["y"], ensure_ascii=False)


def test_switching_the_language_keeps_every_number_and_widget():
    app = page("en")
    app.slider(key="nn_w3_0_0").set_value(-2.0).run()
    app.checkbox(key="nn_use_bias").check().run()
    english = app.metric[0].value
    app.session_state["lang"] = "zh"
    app.run()
    all_chinese(app)
    assert app.metric[0].value == english and app.metric[0].label == "网络的输出"
    assert app.slider(key="nn_w3_0_0").value == -2.0 and app.checkbox(key="nn_use_bias").value is True


# ---- the sentences core builds, in both languages ---------------------------------------------------------

def test_why_a_number_has_no_effect_in_both_languages():
    net, x = nn.tutorial_network(), nn.TUTORIAL_INPUT
    for lang, first, second in (
            ("en", "x1 → h1,1, x2 → h1,1: h1,1 is saturated: z = 26 is far from 0",
             "h2,2 → out: the value coming in, h2,2 = 0 (exactly 2.04e-11), is about 0"),
            ("zh", "x1 → h1,1、x2 → h1,1：h1,1 已饱和：z = 26 离 0 很远",
             "h2,2 → out：进入的值 h2,2 = 0（精确值 2.04e-11）约为 0")):
        flat = [g for g in nn.parameter_gradients(net, x, lang) if nn.display_number(g.grad) == "0"]
        reasons = nn.why_no_effect(net, x, flat, lang)
        assert len(reasons) == 3
        assert reasons[0].startswith(first) and reasons[2].startswith(second)


def test_a_switched_off_neuron_and_a_blocked_change_in_both_languages():
    relu = nn.Network([nn.Layer(np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([0.5, 0.0]), "relu"),
                       nn.Layer(np.array([[2.0, 0.0]]), None, "relu")])
    x = np.array([2.0, 1.0])
    states = nn.neuron_states(relu, x)
    assert states[0].explain("en").startswith("h1,1 is off: relu of z = -1.5 ≤ 0 is 0")
    assert states[0].explain("zh").startswith("h1,1 处于关闭状态：z = -1.5 ≤ 0，relu 的输出是 0")
    assert states[1].explain("zh") == ""
    # the output is off too, so the change h1,2 makes is blocked further on
    rows = nn.parameter_gradients(relu, x, "zh")
    into_h12 = [r for r in rows if r.label.endswith("h1,2")]
    assert [r.grad for r in into_h12] == [0, 0]
    assert [r.label for r in rows if r.kind == "bias"] == ["h1,1 的偏置", "h1,2 的偏置"]
    (reason,) = nn.why_no_effect(relu, x, into_h12, "zh")
    assert reason == "x1 → h1,2、x2 → h1,2：它们对 h1,2 造成的变化，在传到输出的路上被一个饱和或关闭的神经元挡住了。"
    (reason,) = nn.why_no_effect(relu, x, into_h12, "en")
    assert reason == ("x1 → h1,2, x2 → h1,2: the change they make to h1,2 is blocked on its way to the output by "
                      "a saturated or off neuron.")


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_the_tutorials_code_in_both_languages_runs_and_prints_the_output(lang, capsys):
    net = nn.Network([nn.Layer(np.array([[2.0, 4.0], [4.0, -5.0]]), np.array([0.5, -1.0]), "sigmoid"),
                      nn.Layer(np.array([[-1.0, 1.0]]), None, "linear"),
                      nn.Layer(np.array([[3.0]]), np.array([0.25]), "relu")])
    code = nn.tutorial_code(net, nn.TUTORIAL_INPUT, lang)
    exec(compile(code, "<tutorial code>", "exec"), {})
    assert float(capsys.readouterr().out) == pytest.approx(net.forward(nn.TUTORIAL_INPUT).value, abs=1e-12)
    comments = [line for line in code.splitlines() if line.startswith("#")]
    expected = {"en": ["# the input data", "# every neuron's weights (and bias)", "# the relu activation function",
                       "# the sigmoid activation function", "# hidden layer 1: weighted sums, then sigmoid",
                       "# hidden layer 2: weighted sums, no activation function",
                       "# the output layer: weighted sum, then relu"],
                "zh": ["# 定义数据，作为输入数据", "# 定义各个节点权重（和偏置）", "# 定义relu激活函数",
                       "# 定义sigmoid激活函数", "# 隐藏层 h1：上一层输出与权重相乘、求和，并输入sigmoid激活函数",
                       "# 隐藏层 h2：上一层输出与权重相乘、求和，不用激活函数",
                       "# 输出层：相乘、求和，并输入relu激活函数"]}
    assert comments == expected[lang]


# ---- every key the page builds from a name exists in both languages ------------------------------------

def dynamic_keys() -> list[str]:
    """Keys the page and core put together from ids (the scan of tr("...") calls cannot see them)."""
    keys = [f"numpy.help.{name}" for name in panel.HELP_NAMES]
    keys += [f"numpy.act_name.{a}" for a in nn.ACTIVATIONS] + [f"numpy.page.act_{a}" for a in nn.ACTIVATIONS]
    keys += [f"numpy.surface.levels_{loss}" for loss in pg.LOSSES]
    keys += [f"numpy.play.{choice}" for choice in panel.PLAY_CHOICES]
    keys += [f"numpy.fig.state_{s}" for s in ("saturated", "off")] + [f"numpy.core.{s}" for s in ("saturated", "off")]
    keys += [f"numpy.fig.points_{split}" for split in ("train", "test")]
    keys += [f"numpy.code.{k}" for k in ("input", "weights", "activation", "hidden", "hidden_linear", "output",
                                          "output_linear")]
    return keys


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_every_key_built_from_a_name_is_in_the_catalogue(lang):
    missing = [k for k in dynamic_keys() if k not in i18n.catalogue(lang)]
    assert not missing, missing
    if lang != i18n.DEFAULT_LANGUAGE:
        core = [f"core.playground.dataset.{k}" for k in pg.DATASETS] + [f"core.playground.loss.{k}" for k in pg.LOSSES]
        assert not [k for k in core if k not in i18n.catalogue(lang)]


def test_the_help_of_every_control_is_a_chinese_sentence():
    for name in panel.HELP_NAMES:
        text = i18n.t(f"numpy.help.{name}", "zh", per_s=5, minutes=3)
        assert text.endswith("。") and not english_runs(text), (name, text)


def english_runs(text: str) -> list[str]:
    from tests.i18n_checks import _CODE, _ENGLISH_RUN

    return _ENGLISH_RUN.findall(_CODE.sub(" ", text))
