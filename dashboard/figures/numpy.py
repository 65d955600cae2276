"""Plotly figures for the "Numpy network" page: plain functions, data in, figure out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.numpy_net import (Network, NeuronState, ParamGradient, Trace, display_number, format_number,
                            neuron_names)
from core.playground import Points, Record, Surface

POSITIVE = "#2563eb"  # blue: positive weights and values (matches the RdBu node scale)
NEGATIVE = "#dc2626"  # red: negative
FONT = dict(family="Inter, Arial, sans-serif", size=14, color="#1f2937")
NODE_SIZE = 62
STATE_OUTLINE = {"saturated": "#f59e0b", "off": "#9ca3af"}  # amber ring: saturated; grey: relu off


def _short(v: float, digits: int) -> str:
    """A given number as typed (2, -5, 0.25); a trained one like 0.2074471 rounded to `digits` decimals."""
    text = format_number(v)
    return text if len(text.lstrip("-")) <= digits + 2 else f"{float(v):.{digits}f}"


def _column_y(n: int) -> np.ndarray:
    """Node heights for a column of n nodes, centred on 0, one unit apart, first on top."""
    return (n - 1) / 2 - np.arange(n, dtype=float)


def network_diagram(network: Network, trace: Trace, *, height: int = 440,
                    states: list[NeuronState] | None = None) -> go.Figure:
    """Nodes coloured by their value (inputs x, activations a); edges coloured by sign, width by |weight|.

    ``trace`` must come from ``network.forward`` of one sample. ``states`` (core.numpy_net.neuron_states)
    rings saturated neurons in amber and switched-off relu neurons in grey, and says so under them.
    """
    state_of = {(s.layer, s.index): s for s in states or []}
    names = neuron_names(network)
    values = [trace.input] + [lt.a for lt in trace.layers]
    sums = [None] + [lt.z for lt in trace.layers]
    ys = [_column_y(len(col)) for col in names]
    # Traces and annotations are collected first and handed to the figure at once: adding them one
    # by one re-validates the growing lists each time (half a second for the tutorial's network).
    traces, notes = [], []
    # Wider networks: smaller nodes, and the weights' numbers move to the weight view beside the diagram.
    tallest = max(len(col) for col in names)
    size = min(NODE_SIZE, int(0.62 * (height - 60) / (tallest + 1.3)))
    n_edges = sum(lay.weights.size for lay in network.layers)
    label_edges, label_sums = n_edges <= 12 and tallest <= 3, tallest <= 4

    # edges first, so the nodes sit on top of them
    w_max = max(float(np.abs(lay.weights).max()) for lay in network.layers) or 1.0
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
                if not label_edges:
                    continue
                t = 0.6  # label nearer the receiving neuron, so each neuron's incoming weights sit together
                notes.append(dict(x=x0 + t * (x1 - x0), y=y0 + t * (y1 - y0), text=f"<b>{_short(w, 2)}</b>",
                                  showarrow=False, bgcolor="rgba(255,255,255,0.9)", borderpad=2,
                                  font=dict(size=13, color=POSITIVE if w >= 0 else NEGATIVE)))

    # nodes: value inside, name above, weighted sum (and bias) below
    flat_v = np.concatenate([np.asarray(v, dtype=float) for v in values])
    c = max(1.0, float(np.abs(flat_v).max()))
    xs, yy, text, hover, text_colors, outline, outline_w = [], [], [], [], [], [], []
    for l, (col, vals) in enumerate(zip(names, values)):
        for k, name in enumerate(col):
            v = float(vals[k])
            xs.append(l)
            yy.append(ys[l][k])
            text.append(f"<b>{display_number(v, 3) if abs(v) < 5e-4 else f'{v:.3f}'}</b>")
            state = state_of.get((l, k))
            outline.append(STATE_OUTLINE.get(state.state if state else "", "#374151"))
            outline_w.append(4 if state and state.state else 1.5)
            text_colors.append("white" if abs(v) / c > 0.55 else "#111827")
            if l == 0:
                hover.append(f"{name} = {format_number(v)} (input)")
            else:
                layer = network.layers[l - 1]
                b = f"<br>bias = {format_number(layer.bias[k])}" if layer.bias is not None else ""
                why = f"<br><b>{state.state}</b>: slope {state.slope:.3g}" if state and state.state else ""
                hover.append(f"{name}<br>z = {float(sums[l][k]):.6f}<br>{layer.activation}(z) = {v:.6g}{b}{why}")
            notes.append(dict(x=l, y=ys[l][k], yshift=size / 2 + 10, text=f"<b>{name}</b>",
                              showarrow=False, font=dict(size=15 if label_sums else 11, color="#111827")))
            if l > 0 and label_sums:
                layer = network.layers[l - 1]
                below = f"z = {float(sums[l][k]):.3f}"
                if layer.bias is not None:
                    below += f", b = {_short(layer.bias[k], 3)}"
                if state and state.state:
                    below += f" · <b>{state.state}</b>"
                notes.append(dict(x=l, y=ys[l][k], yshift=-size / 2 - 12, text=below, showarrow=False,
                                  bgcolor="rgba(255,255,255,0.85)", font=dict(size=12, color="#4b5563")))
    traces.append(dict(
        type="scatter", x=xs, y=yy, mode="markers+text", text=text, textposition="middle center",
        textfont=dict(size=13 if label_sums else 9, color=text_colors), hovertext=hover, hoverinfo="text",
        showlegend=False, marker=dict(size=size, color=flat_v, colorscale="RdBu", cmin=-c, cmax=c,
                    line=dict(color=outline, width=outline_w),
                    colorbar=dict(title=dict(text="value", side="right"), thickness=10, len=0.75, xpad=4)),
    ))

    # column headings
    sep = " " if len(names) <= 4 else "<br>"  # five columns: two-line headings, so they don't overlap
    headings = ["inputs"] + [f"hidden {l}{sep}({lay.activation})" for l, lay in enumerate(network.layers[:-1], 1)]
    headings.append(f"output{sep}({network.layers[-1].activation})")
    top = max(float(y[0]) for y in ys)
    for l, h in enumerate(headings):
        notes.append(dict(x=l, y=top, yshift=size / 2 + (44 if label_sums else 28), text=h, showarrow=False,
                          font=dict(size=13, color="#6b7280")))

    n_cols = len(names)
    return go.Figure(data=traces, layout=dict(
        annotations=notes, height=height, margin=dict(l=10, r=10, t=20, b=10), font=FONT,
        plot_bgcolor="white", paper_bgcolor="white", hovermode="closest", dragmode=False,
        xaxis=dict(visible=False, range=[-0.35, n_cols - 0.65], fixedrange=True),
        yaxis=dict(visible=False, range=[-top - 0.6, top + (0.72 if label_sums else 1.0)], fixedrange=True),
    ))


def gradient_bars(rows: list[ParamGradient], *, height: int | None = None) -> go.Figure:
    """Horizontal bars of d output / d parameter, largest |gradient| on top, coloured by sign."""
    rows = sorted(rows, key=lambda r: abs(r.grad))  # plotly draws the first bar at the bottom
    labels = [r.label for r in rows]
    grads = [r.grad for r in rows]
    fig = go.Figure(go.Bar(
        x=grads, y=labels, orientation="h",
        marker_color=[POSITIVE if g >= 0 else NEGATIVE for g in grads],
        text=[display_number(g) if display_number(g) == "0" else f"{g:+.4f}" for g in grads],
        textposition="outside", cliponaxis=False,
        hovertemplate="%{y}<br>d out / d weight = %{x:.6g}<extra></extra>",
    ))
    span = max([abs(g) for g in grads] + [1e-9])
    fig.update_layout(
        height=height or 60 + 30 * len(rows), margin=dict(l=10, r=30, t=10, b=40), font=FONT,
        plot_bgcolor="white", paper_bgcolor="white", showlegend=False, dragmode=False,
        xaxis=dict(title=dict(text="gradient of the output (d out / d parameter)"), zeroline=True,
                   zerolinecolor="#9ca3af", gridcolor="#e5e7eb", range=[-1.35 * span, 1.35 * span],
                   fixedrange=True),
        yaxis=dict(automargin=True, fixedrange=True, tickfont=dict(size=13)),
    )
    return fig


# ---- the playground: the output over the plane, the weights at a glance, the training curves ------

TRAIN_COLOR, TEST_COLOR = "#0f766e", "#c2410c"  # teal and orange: apart from the blue/red of the classes


def output_surface(surface: Surface, train: Points, test: Points, x, *, loss: str, height: int = 440) -> go.Figure:
    """The network's output over the plane (colour, with contour lines), the data on top, the input as a cross.

    For cross-entropy the output is a probability: colours run from 0 (red) to 1 (blue) and the line
    at 0.5 is the decision boundary; for squared error the colours are centred on 0, the boundary.
    """
    z = surface.z
    if loss == "bce":
        zmin, zmax, levels, title = 0.0, 1.0, (0.1, 0.3, 0.5, 0.7, 0.9), "output<br>(probability)"
    else:
        c = max(1.0, float(np.abs(z).max()))
        zmin, zmax, levels, title = -c, c, (-1.0, -0.5, 0.0, 0.5, 1.0), "output"
    # The contour lines' values are the colour bar's ticks rather than labels on the lines: placing
    # labels costs the browser more than the rest of the figure, at every update while training plays.
    # (a wide range leaves room for fewer of them on the bar)
    ticks = list(levels)
    if loss == "mse":
        c = round(zmax, 1)
        ticks = sorted({*levels, -c, c}) if c <= 2 else [-c, -1.0, 0.0, 1.0, c] if c <= 5 else [-c, 0.0, c]
    traces = [dict(
        type="contour", x=surface.xs, y=surface.ys, z=z, zmin=zmin, zmax=zmax, colorscale="RdBu", name="output",
        contours=dict(coloring="heatmap", showlines=True, start=levels[0], end=levels[-1],
                      size=levels[1] - levels[0]),
        line=dict(width=1.2, color="rgba(17,24,39,0.6)"), showlegend=False,
        colorbar=dict(title=dict(text=title, side="right"), thickness=10, len=0.8, xpad=4, tickvals=ticks,
                      ticktext=[format_number(t) for t in ticks]),
        hovertemplate="x1 = %{x:.2f}<br>x2 = %{y:.2f}<br>output = %{z:.4f}<extra></extra>",
    )]
    for points, split, outline in ((train, "train", "white"), (test, "test", "#111827")):
        for label, color in ((1, POSITIVE), (0, NEGATIVE)):
            sel = points.y == label
            traces.append(dict(
                type="scatter", x=points.x[sel, 0], y=points.x[sel, 1], mode="markers", name=f"class {label}, {split}",
                marker=dict(size=7, color=color, line=dict(color=outline, width=1.2)),
                hovertemplate=f"class {label} ({split})<br>x1 = %{{x:.2f}}<br>x2 = %{{y:.2f}}<extra></extra>",
            ))
    x1, x2 = (float(v) for v in x)
    traces.append(dict(
        type="scatter", x=[x1], y=[x2], mode="markers", name=f"input ({format_number(x1)}, {format_number(x2)})",
        marker=dict(symbol="x-thin", size=16, color="#111827", line=dict(width=3, color="#111827")),
        hovertemplate="the input<br>x1 = %{x}<br>x2 = %{y}<extra></extra>",
    ))
    lo, hi = float(surface.xs[0]), float(surface.xs[-1])
    return go.Figure(data=traces, layout=dict(
        height=height, margin=dict(l=50, r=10, t=10, b=40), font=FONT, plot_bgcolor="white",
        paper_bgcolor="white", dragmode=False, hovermode="closest",
        legend=dict(orientation="h", x=0, y=-0.14, xanchor="left", yanchor="top", font=dict(size=12)),
        xaxis=dict(title=dict(text="x1", standoff=4), range=[lo, hi], fixedrange=True, constrain="domain"),
        yaxis=dict(title=dict(text="x2", standoff=4), range=[lo, hi], fixedrange=True, scaleanchor="x",
                   constrain="domain"),
    ))


def weight_matrices(network: Network, *, height: int = 300) -> go.Figure:
    """Every layer's weights as a small grid of coloured cells (rows: the neuron, columns: its inputs,
    then its bias), the number in each cell: the compact view of a network too big for sliders."""
    names = neuron_names(network)
    n = len(network.layers)
    widths = [lay.in_features + (lay.bias is not None) for lay in network.layers]
    fig = make_subplots(rows=1, cols=n, column_widths=widths, horizontal_spacing=0.14 / n + 0.04,
                        subplot_titles=[f"into {'hidden ' + str(l) if l < n else 'the output'}"
                                        for l in range(1, n + 1)])
    c = max(float(np.abs(p).max()) for p in network.parameters()) or 1.0
    for l, layer in enumerate(network.layers):
        cells = layer.weights if layer.bias is None else np.column_stack([layer.weights, layer.bias])
        cols = names[l] + (["bias"] if layer.bias is not None else [])
        fig.add_trace(go.Heatmap(
            z=cells, x=cols, y=names[l + 1], zmin=-c, zmax=c, colorscale="RdBu", showscale=l == n - 1,
            texttemplate="%{z:.2f}", textfont=dict(size=10 if cells.shape[1] > 6 else 12), xgap=1, ygap=1,
            colorbar=dict(title=dict(text="weight", side="right"), thickness=10, len=0.9, xpad=4),
            hovertemplate="%{x} → %{y}: %{z:.6f}<extra></extra>",
        ), row=1, col=l + 1)
        fig.update_yaxes(autorange="reversed", fixedrange=True, tickfont=dict(size=11), row=1, col=l + 1)
        fig.update_xaxes(fixedrange=True, tickangle=-60, tickfont=dict(size=11),
                         title=dict(text="from", font=dict(size=12)), row=1, col=l + 1)
    fig.update_annotations(font=dict(size=13, color="#374151"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, plot_bgcolor="white",
                      paper_bgcolor="white", dragmode=False)
    return fig


def training_curves(history: list[Record], *, loss_name: str, height: int = 300) -> go.Figure:
    """Train and test loss (left) and accuracy (right) against the SGD step."""
    steps = [r.step for r in history]
    mode = "lines+markers" if len(steps) < 30 else "lines"
    panels = ((("x", "y"), [r.train_loss for r in history], [r.test_loss for r in history]),
              (("x2", "y2"), [100 * r.train_accuracy for r in history], [100 * r.test_accuracy for r in history]))
    traces = [dict(type="scatter", x=steps, y=values, xaxis=xa, yaxis=ya, mode=mode, name=name, legendgroup=name,
                   showlegend=xa == "x", line=dict(color=color, width=2, dash=dash), marker=dict(size=5))
              for (xa, ya), train, test in panels
              for values, name, color, dash in ((train, "train", TRAIN_COLOR, "solid"), (test, "test", TEST_COLOR, "dash"))]
    axis = dict(gridcolor="#e5e7eb", zeroline=False, fixedrange=True)
    step_axis = dict(axis, title=dict(text="SGD step", standoff=6), rangemode="tozero")
    titles = [dict(text=text, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                   showarrow=False, font=dict(size=13)) for text, x in (("Loss", 0.22), ("Accuracy", 0.78))]
    if len(steps) < 2:
        titles.append(dict(text="press Step or Play to train", x=0.22, y=0.5, xref="paper", yref="paper",
                           showarrow=False, font=dict(color="#6b7280", size=13)))
    return go.Figure(data=traces, layout=dict(
        height=height, margin=dict(l=10, r=10, t=30, b=10), font=FONT, plot_bgcolor="white", paper_bgcolor="white",
        dragmode=False, hovermode="x unified", annotations=titles,
        legend=dict(orientation="h", x=1, y=1.12, xanchor="right", yanchor="bottom"),
        xaxis=dict(step_axis, domain=[0, 0.44]), xaxis2=dict(step_axis, domain=[0.56, 1], anchor="y2"),
        yaxis=dict(axis, title=dict(text=loss_name.lower(), standoff=6), rangemode="tozero", anchor="x"),
        yaxis2=dict(axis, title=dict(text="accuracy (%)", standoff=6), range=[0, 102], anchor="x2"),
    ))
