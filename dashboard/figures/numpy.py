"""Plotly figures for the "Numpy network" page: plain functions, data in, figure out.

Titles, axes, hover text and trace names are in `lang` (core.i18n, keys under numpy.fig).

These figures are redrawn up to several times a second while the playground plays, and Streamlit
mounts a new chart for every new figure (the chart's identity includes its data), so the browser
draws each one from scratch every time. They are built to be cheap to draw: fixed margins
(`autoexpand=False`: a colour bar or legend that pushes the margins makes plotly draw the whole
figure twice), no legends (the captions say what the marks are), labels as one text trace rather
than many annotations, and while playing a coarser heatmap of the surface in float32.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.i18n import DEFAULT_LANGUAGE, t
from core.numpy_net import (Network, NeuronState, ParamGradient, Trace, display_number, format_number,
                            neuron_names)
from core.playground import THRESHOLD, Points, Record, Surface

POSITIVE = "#2563eb"  # blue: positive weights and values (matches the RdBu node scale)
NEGATIVE = "#dc2626"  # red: negative
FONT = dict(family="Inter, Arial, sans-serif", size=14, color="#1f2937")
NODE_SIZE = 62
STATE_OUTLINE = {"saturated": "#f59e0b", "off": "#9ca3af"}  # amber ring: saturated; grey: relu off
MAX_CURVE_POINTS = 400  # points per training curve sent to the browser (older ones thinned out)
# Every colour here is given, so no template: the default one (Streamlit's colour placeholders) would
# add 3.6 kB to each figure, that is to each update while training plays.
NO_TEMPLATE: dict = {}


def _short(v: float, digits: int) -> str:
    """A given number as typed (2, -5, 0.25); a trained one like 0.2074471 rounded to `digits` decimals;
    one that rounds to zero as 0."""
    text = format_number(v)
    if len(text.lstrip("-")) <= digits + 2:
        return text
    return display_number(v, digits) if abs(float(v)) < 0.5 * 10 ** -digits else f"{float(v):.{digits}f}"


def _column_y(n: int) -> np.ndarray:
    """Node heights for a column of n nodes, centred on 0, one unit apart, first on top."""
    return (n - 1) / 2 - np.arange(n, dtype=float)


def _state_word(state: str, lang: str) -> str:
    return t(f"numpy.fig.state_{state}", lang)


# A white halo around a label, so it reads on top of the lines (what a white box did for an annotation).
HALO = ", ".join(f"{dx}px {dy}px 1px white" for dx in (-2, 0, 2) for dy in (-2, 0, 2) if dx or dy)


class _Labels:
    """Every text of the diagram as one text trace: drawing one trace costs the browser much less than
    one annotation per label, which matters while training plays and the diagram is redrawn each update."""

    def __init__(self) -> None:
        self.x, self.y, self.text, self.size, self.color = [], [], [], [], []

    def add(self, x: float, y: float, text: str, size: int, color: str = "#111827") -> None:
        self.x.append(x)
        self.y.append(y)
        self.text.append(text)
        self.size.append(size)
        self.color.append(color)

    def trace(self) -> dict:
        return dict(type="scatter", mode="text", x=self.x, y=self.y, text=self.text, hoverinfo="skip",
                    showlegend=False, cliponaxis=False, textfont=dict(size=self.size, color=self.color, shadow=HALO))


def network_diagram(network: Network, trace: Trace, *, height: int = 440,
                    states: list[NeuronState] | None = None, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Nodes coloured by their value (inputs x, activations a); edges coloured by sign, width by |weight|.

    ``trace`` must come from ``network.forward`` of one sample. ``states`` (core.numpy_net.neuron_states)
    rings saturated neurons in amber and switched-off relu neurons in grey, and says so under them.
    Every number reads 0 when it rounds to 0; hovering a node or a weight's label gives it exactly.
    """
    state_of = {(s.layer, s.index): s for s in states or []}
    names = neuron_names(network)
    values = [trace.input] + [lt.a for lt in trace.layers]
    sums = [None] + [lt.z for lt in trace.layers]
    ys = [_column_y(len(col)) for col in names]
    # Wider networks: smaller nodes, and the weights' numbers move to the weight view beside the diagram.
    tallest = max(len(col) for col in names)
    size = min(NODE_SIZE, int(0.62 * (height - 60) / (tallest + 1.3)))
    n_edges = sum(lay.weights.size for lay in network.layers)
    label_edges, label_sums = n_edges <= 12 and tallest <= 3, tallest <= 4
    # Room in pixels above the top node (its name, then the two-line heading) and below the bottom one
    # (its weighted sum); the nodes' spacing takes what is left of the plot's height (margins t=20, b=10).
    heading_px = size / 2 + (50 if label_sums else 36)
    above, below = heading_px + 18, size / 2 + (20 if label_sums else 0) + 16
    top = max(float(y[0]) for y in ys)
    per_px = 2 * top / (height - 30 - above - below)  # data units per pixel
    y_range = [-top - below * per_px, top + above * per_px]
    traces, labels = [], _Labels()

    # edges first, so the nodes sit on top of them
    w_max = max(float(np.abs(lay.weights).max()) for lay in network.layers) or 1.0
    edge_hover = dict(x=[], y=[], text=[])
    for l, layer in enumerate(network.layers):
        for j in range(layer.out_features):
            for i in range(layer.in_features):
                w = float(layer.weights[j, i])
                x0, y0, x1, y1 = l, ys[l][i], l + 1, ys[l + 1][j]
                traces.append(dict(
                    type="scatter", x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip", showlegend=False,
                    line=dict(color=POSITIVE if w >= 0 else NEGATIVE, width=1 + 9 * abs(w) / w_max),
                    opacity=0.55 if w != 0 else 0.25,
                ))
                f = 0.6  # label nearer the receiving neuron, so each neuron's incoming weights sit together
                lx, ly = x0 + f * (x1 - x0), y0 + f * (y1 - y0)
                edge_hover["x"].append(lx)
                edge_hover["y"].append(ly)
                edge_hover["text"].append(t("numpy.fig.weight_hover", lang, source=names[l][i], target=names[l + 1][j],
                                            value=f"{w:.6g}"))
                if label_edges:
                    labels.add(lx, ly, f"<b>{_short(w, 2)}</b>", 13, POSITIVE if w >= 0 else NEGATIVE)
    traces.append(dict(type="scatter", x=edge_hover["x"], y=edge_hover["y"], mode="markers", showlegend=False,
                       marker=dict(size=16, opacity=0), hovertext=edge_hover["text"], hoverinfo="text"))

    # nodes: value inside, name above, weighted sum (and bias) below
    flat_v = np.concatenate([np.asarray(v, dtype=float) for v in values])
    c = max(1.0, float(np.abs(flat_v).max()))
    xs, yy, text, hover, text_colors, outline, outline_w = [], [], [], [], [], [], []
    for l, (col, vals) in enumerate(zip(names, values)):
        for k, name in enumerate(col):
            v = float(vals[k])
            xs.append(l)
            yy.append(ys[l][k])
            text.append(f"<b>{_short(v, 3)}</b>")
            state = state_of.get((l, k))
            outline.append(STATE_OUTLINE.get(state.state if state else "", "#374151"))
            outline_w.append(4 if state and state.state else 1.5)
            text_colors.append("white" if abs(v) / c > 0.55 else "#111827")
            if l == 0:
                hover.append(t("numpy.fig.input_hover", lang, name=name, value=format_number(v)))
            else:
                layer = network.layers[l - 1]
                lines = [name, f"z = {float(sums[l][k]):.6g}", f"{layer.activation}(z) = {v:.6g}"]
                if layer.bias is not None:
                    lines.append(t("numpy.fig.bias_hover", lang, value=f"{float(layer.bias[k]):.6g}"))
                if state and state.state:
                    lines.append(t("numpy.fig.state_hover", lang, state=_state_word(state.state, lang),
                                   slope=f"{state.slope:.3g}"))
                hover.append("<br>".join(lines))
            labels.add(l, ys[l][k] + (size / 2 + 10) * per_px, f"<b>{name}</b>", 15 if label_sums else 11)
            if l > 0 and label_sums:
                layer = network.layers[l - 1]
                below = f"z = {_short(float(sums[l][k]), 3)}"
                if layer.bias is not None:
                    below += f", b = {_short(layer.bias[k], 3)}"
                if state and state.state:
                    below += f" · <b>{_state_word(state.state, lang)}</b>"
                labels.add(l, ys[l][k] - (size / 2 + 12) * per_px, below, 12, "#4b5563")
    traces.append(dict(
        type="scatter", x=xs, y=yy, mode="markers+text", text=text, textposition="middle center",
        textfont=dict(size=13 if label_sums else 9, color=text_colors), hovertext=hover, hoverinfo="text",
        showlegend=False, marker=dict(size=size, color=flat_v, colorscale="RdBu", cmin=-c, cmax=c, showscale=False,
                                      line=dict(color=outline, width=outline_w)),
    ))

    # column headings, in two lines (the layer, its activation), so that they never overlap or run out
    headings = [t("numpy.fig.inputs", lang)]
    headings += [t("numpy.fig.hidden", lang, l=l, sep="<br>", act=lay.activation)
                 for l, lay in enumerate(network.layers[:-1], 1)]
    headings.append(t("numpy.fig.output", lang, sep="<br>", act=network.layers[-1].activation))
    for l, h in enumerate(headings):
        labels.add(l, top + heading_px * per_px, h, 13, "#6b7280")
    traces.append(labels.trace())

    n_cols = len(names)
    return go.Figure(data=traces, layout=dict(
        height=height, margin=dict(l=10, r=10, t=20, b=10, autoexpand=False), font=FONT, template=NO_TEMPLATE,
        plot_bgcolor="white", paper_bgcolor="white", hovermode="closest", dragmode=False,
        xaxis=dict(visible=False, range=[-0.35, n_cols - 0.65], fixedrange=True),
        yaxis=dict(visible=False, range=y_range, fixedrange=True),
    ))


def gradient_bars(rows: list[ParamGradient], *, height: int | None = None,
                  lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Horizontal bars of d output / d parameter, largest |gradient| on top, coloured by sign; a gradient
    that rounds to 0 reads 0, its exact value on hover."""
    rows = sorted(rows, key=lambda r: abs(r.grad))  # plotly draws the first bar at the bottom
    labels = [r.label for r in rows]
    grads = [r.grad for r in rows]
    fig = go.Figure(go.Bar(
        x=grads, y=labels, orientation="h",
        marker_color=[POSITIVE if g >= 0 else NEGATIVE for g in grads],
        text=[display_number(g) if display_number(g) == "0" else f"{g:+.4f}" for g in grads],
        textposition="outside", cliponaxis=False,
        hovertemplate=t("numpy.fig.gradient_hover", lang, name="%{y}", value="%{x:.6g}") + "<extra></extra>",
    ))
    span = max([abs(g) for g in grads] + [1e-9])
    fig.update_layout(
        height=height or 60 + 30 * len(rows), margin=dict(l=10, r=30, t=10, b=40), font=FONT, template=NO_TEMPLATE,
        plot_bgcolor="white", paper_bgcolor="white", showlegend=False, dragmode=False,
        xaxis=dict(title=dict(text=t("numpy.fig.gradient_axis", lang)), zeroline=True,
                   zerolinecolor="#9ca3af", gridcolor="#e5e7eb", range=[-1.35 * span, 1.35 * span],
                   fixedrange=True),
        yaxis=dict(automargin=True, fixedrange=True, tickfont=dict(size=13)),
    )
    return fig


# ---- the playground: the output over the plane, the weights at a glance, the training curves ------

TRAIN_COLOR, TEST_COLOR = "#0f766e", "#c2410c"  # teal and orange: apart from the blue/red of the classes


def _colour_scale(z: np.ndarray, loss: str) -> tuple[float, float, tuple[float, ...], list[float]]:
    """(zmin, zmax, contour levels, colour-bar ticks): 0 to 1 for a probability, centred on 0 otherwise.

    The contour lines' values are the colour bar's ticks rather than labels on the lines: placing
    labels costs the browser more than the rest of the figure. (A wide range leaves room for fewer.)"""
    if loss == "bce":
        levels = (0.1, 0.3, 0.5, 0.7, 0.9)
        return 0.0, 1.0, levels, list(levels)
    c = max(1.0, float(np.abs(z).max()))
    levels = (-1.0, -0.5, 0.0, 0.5, 1.0)
    r = round(c, 1)
    ticks = sorted({*levels, -r, r}) if r <= 2 else [-r, -1.0, 0.0, 1.0, r] if r <= 5 else [-r, 0.0, r]
    return -c, c, levels, ticks


def output_surface(surface: Surface, train: Points, test: Points, x, *, loss: str, height: int = 440,
                   light: bool = False, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """The network's output over the plane (colour, with contour lines), the data on top, the input as a cross.

    For cross-entropy the output is a probability: colours run from 0 (red) to 1 (blue) and the line
    at 0.5 is the decision boundary; for squared error the colours are centred on 0, the boundary.
    ``light`` (while training plays): the surface as a plain heatmap of whatever grid it was computed
    on, rounded to 3 decimals in float32, with only the decision boundary as a line; otherwise a
    filled contour with lines at a few levels, in full precision.
    """
    z = surface.z
    zmin, zmax, levels, ticks = _colour_scale(z, loss)
    # the colour bar's title on top: a title at its side turns by 90°, and Chinese turned sideways reads badly
    colorbar = dict(title=dict(text=t("numpy.fig.output_bar_bce" if loss == "bce" else "numpy.fig.output_bar", lang),
                               side="top"), thickness=10, len=0.8, xpad=4, tickvals=ticks,
                    ticktext=[format_number(v) for v in ticks])
    hover = t("numpy.fig.surface_hover", lang, x1="%{x:.2f}", x2="%{y:.2f}", out="%{z:.4f}") + "<extra></extra>"
    if light:
        xs, ys = surface.xs.astype(np.float32), surface.ys.astype(np.float32)
        zz = np.round(z, 3).astype(np.float32)
        boundary = THRESHOLD[loss]
        traces = [
            dict(type="heatmap", x=xs, y=ys, z=zz, zmin=zmin, zmax=zmax, colorscale="RdBu", zsmooth=False,
                 colorbar=colorbar, hovertemplate=hover),
            dict(type="contour", x=xs, y=ys, z=zz, showscale=False, hoverinfo="skip",
                 contours=dict(coloring="none", start=boundary, end=boundary, size=1),
                 line=dict(width=1.6, color="rgba(17,24,39,0.75)")),
        ]
    else:
        traces = [dict(
            type="contour", x=surface.xs, y=surface.ys, z=z, zmin=zmin, zmax=zmax, colorscale="RdBu", showlegend=False,
            contours=dict(coloring="heatmap", showlines=True, start=levels[0], end=levels[-1],
                          size=levels[1] - levels[0]),
            line=dict(width=1.2, color="rgba(17,24,39,0.6)"), colorbar=colorbar, hovertemplate=hover,
        )]
    for points, split, outline in ((train, "train", "white"), (test, "test", "#111827")):
        for label, color in ((1, POSITIVE), (0, NEGATIVE)):
            sel = points.y == label
            px, py = points.x[sel, 0], points.x[sel, 1]
            if light:  # the same points at every update: float32 halves what is sent
                px, py = px.astype(np.float32), py.astype(np.float32)
            name = t(f"numpy.fig.points_{split}", lang, label=label)
            traces.append(dict(
                type="scatter", x=px, y=py, mode="markers", name=name, showlegend=False,
                marker=dict(size=7, color=color, line=dict(color=outline, width=1.2)),
                hovertemplate=f"{name}<br>x1 = %{{x:.2f}}<br>x2 = %{{y:.2f}}<extra></extra>",
            ))
    x1, x2 = (float(v) for v in x)
    traces.append(dict(
        type="scatter", x=[x1], y=[x2], mode="markers", showlegend=False,
        name=t("numpy.fig.input_name", lang, x1=format_number(x1), x2=format_number(x2)),
        marker=dict(symbol="x-thin", size=16, color="#111827", line=dict(width=3, color="#111827")),
        hovertemplate=t("numpy.fig.input_marker_hover", lang, x1="%{x}", x2="%{y}") + "<extra></extra>",
    ))
    lo, hi = float(surface.xs[0]), float(surface.xs[-1])
    return go.Figure(data=traces, layout=dict(
        height=height, margin=dict(l=50, r=75, t=10, b=45, autoexpand=False), font=FONT, template=NO_TEMPLATE,
        plot_bgcolor="white", paper_bgcolor="white", dragmode=False, hovermode="closest", showlegend=False,
        xaxis=dict(title=dict(text="x1", standoff=4), range=[lo, hi], fixedrange=True, constrain="domain"),
        yaxis=dict(title=dict(text="x2", standoff=4), range=[lo, hi], fixedrange=True, scaleanchor="x",
                   constrain="domain"),
    ))


def weight_matrices(network: Network, *, height: int = 300, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Every layer's weights as a small grid of coloured cells (rows: the neuron, columns: its inputs,
    then its bias), the number in each cell: the compact view of a network too big for sliders."""
    names = neuron_names(network)
    n = len(network.layers)
    widths = [lay.in_features + (lay.bias is not None) for lay in network.layers]
    titles = [t("numpy.fig.into_hidden", lang, l=l) if l < n else t("numpy.fig.into_output", lang)
              for l in range(1, n + 1)]
    fig = make_subplots(rows=1, cols=n, column_widths=widths, horizontal_spacing=0.14 / n + 0.04,
                        subplot_titles=titles)
    c = max(float(np.abs(p).max()) for p in network.parameters()) or 1.0
    bias = t("numpy.fig.bias", lang)
    for l, layer in enumerate(network.layers):
        cells = layer.weights if layer.bias is None else np.column_stack([layer.weights, layer.bias])
        cols = names[l] + ([bias] if layer.bias is not None else [])
        fig.add_trace(go.Heatmap(
            z=cells, x=cols, y=names[l + 1], zmin=-c, zmax=c, colorscale="RdBu", showscale=l == n - 1,
            texttemplate="%{z:.2f}", textfont=dict(size=10 if cells.shape[1] > 6 else 12), xgap=1, ygap=1,
            colorbar=dict(title=dict(text=t("numpy.fig.weight", lang), side="top"), thickness=10, len=0.8, xpad=4),
            hovertemplate="%{x} → %{y}: %{z:.6g}<extra></extra>",
        ), row=1, col=l + 1)
        fig.update_yaxes(autorange="reversed", fixedrange=True, tickfont=dict(size=11), row=1, col=l + 1)
        fig.update_xaxes(fixedrange=True, tickangle=-60, tickfont=dict(size=11),
                         title=dict(text=t("numpy.fig.from", lang), font=dict(size=12)), row=1, col=l + 1)
    fig.update_annotations(font=dict(size=13, color="#374151"))
    fig.update_layout(height=height, margin=dict(l=45, r=70, t=30, b=75, autoexpand=False), font=FONT,
                      template=NO_TEMPLATE, plot_bgcolor="white", paper_bgcolor="white", dragmode=False)
    return fig


def _thinned(history: list[Record], most: int = MAX_CURVE_POINTS) -> list[Record]:
    """At most `most` rows, evenly spread, always with the first and the newest: a long run's curves
    look the same and cost the browser a fixed amount to draw."""
    if len(history) <= most:
        return history
    keep = np.unique(np.linspace(0, len(history) - 1, most).round().astype(int))
    return [history[i] for i in keep]


def training_curves(history: list[Record], *, loss_name: str, height: int = 300,
                    lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Train and test loss (left) and accuracy (right) against the SGD step. What each panel measures is
    in its title, not along its y axis (a title there turns by 90°, which Chinese reads badly)."""
    history = _thinned(history)
    steps = np.array([r.step for r in history], dtype=np.int32)
    mode = "lines+markers" if len(steps) < 30 else "lines"

    def column(get) -> np.ndarray:
        return np.array([get(r) for r in history], dtype=np.float32)

    panels = ((("x", "y"), column(lambda r: r.train_loss), column(lambda r: r.test_loss)),
              (("x2", "y2"), column(lambda r: 100 * r.train_accuracy), column(lambda r: 100 * r.test_accuracy)))
    train_name, test_name = t("numpy.fig.train", lang), t("numpy.fig.test", lang)
    traces = [dict(type="scatter", x=steps, y=values, xaxis=xa, yaxis=ya, mode=mode, name=name, legendgroup=name,
                   showlegend=False, line=dict(color=color, width=2, dash=dash), marker=dict(size=5))
              for (xa, ya), train, test in panels
              for values, name, color, dash in ((train, train_name, TRAIN_COLOR, "solid"),
                                                (test, test_name, TEST_COLOR, "dash"))]
    axis = dict(gridcolor="#e5e7eb", zeroline=False, fixedrange=True)
    step_axis = dict(axis, title=dict(text=t("numpy.fig.sgd_step", lang), standoff=6), rangemode="tozero")
    if len(steps) == 0 or steps[-1] < 10:  # whole steps on the axis before there are many
        step_axis["range"] = [0, 10]
    # panel titles, each with its key of line styles (there is no legend: it would push the margins)
    key = t("numpy.fig.curve_key", lang, train=train_name, test=test_name)
    titles = [dict(text=f"<b>{text}</b>  <span style='font-size:12px;color:#4b5563'>{key}</span>", x=x, y=1.0,
                   xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13))
              for text, x in ((t("numpy.fig.loss", lang, loss=loss_name[:1].lower() + loss_name[1:]), 0.22),
                              (t("numpy.fig.accuracy", lang), 0.78))]
    if len(steps) < 2:
        titles.append(dict(text=t("numpy.fig.press_step", lang), x=0.22, y=0.5, xref="paper", yref="paper",
                           showarrow=False, font=dict(color="#6b7280", size=13)))
    return go.Figure(data=traces, layout=dict(
        height=height, margin=dict(l=45, r=15, t=32, b=50, autoexpand=False), font=FONT, template=NO_TEMPLATE,
        plot_bgcolor="white", paper_bgcolor="white", dragmode=False, hovermode="x unified", annotations=titles,
        showlegend=False,
        xaxis=dict(step_axis, domain=[0, 0.44]), xaxis2=dict(step_axis, domain=[0.56, 1], anchor="y2"),
        yaxis=dict(axis, rangemode="tozero", anchor="x"),
        yaxis2=dict(axis, range=[0, 102], anchor="x2"),
    ))
