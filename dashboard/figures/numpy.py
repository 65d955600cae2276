"""Plotly figures for the "Numpy network" page: plain functions, data in, figure out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.numpy_net import Network, ParamGradient, Trace, format_number, neuron_names

POSITIVE = "#2563eb"  # blue: positive weights and values (matches the RdBu node scale)
NEGATIVE = "#dc2626"  # red: negative
FONT = dict(family="Inter, Arial, sans-serif", size=14, color="#1f2937")
NODE_SIZE = 62


def _column_y(n: int) -> np.ndarray:
    """Node heights for a column of n nodes, centred on 0, one unit apart, first on top."""
    return (n - 1) / 2 - np.arange(n, dtype=float)


def network_diagram(network: Network, trace: Trace, *, height: int = 440) -> go.Figure:
    """Nodes coloured by their value (inputs x, activations a); edges coloured by sign, width by |weight|.

    ``trace`` must come from ``network.forward`` of one sample.
    """
    names = neuron_names(network)
    values = [trace.input] + [lt.a for lt in trace.layers]
    sums = [None] + [lt.z for lt in trace.layers]
    ys = [_column_y(len(col)) for col in names]
    fig = go.Figure()

    # edges first, so the nodes sit on top of them
    w_max = max(float(np.abs(lay.weights).max()) for lay in network.layers) or 1.0
    for l, layer in enumerate(network.layers):
        for j in range(layer.out_features):
            for i in range(layer.in_features):
                w = float(layer.weights[j, i])
                x0, y0, x1, y1 = l, ys[l][i], l + 1, ys[l + 1][j]
                fig.add_trace(go.Scatter(
                    x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip", showlegend=False,
                    line=dict(color=POSITIVE if w >= 0 else NEGATIVE, width=1 + 9 * abs(w) / w_max),
                    opacity=0.55 if w != 0 else 0.25,
                ))
                t = 0.6  # label nearer the receiving neuron, so each neuron's incoming weights sit together
                fig.add_annotation(x=x0 + t * (x1 - x0), y=y0 + t * (y1 - y0), text=f"<b>{format_number(w)}</b>",
                                   showarrow=False, bgcolor="rgba(255,255,255,0.9)", borderpad=2,
                                   font=dict(size=13, color=POSITIVE if w >= 0 else NEGATIVE))

    # nodes: value inside, name above, weighted sum (and bias) below
    flat_v = np.concatenate([np.asarray(v, dtype=float) for v in values])
    c = max(1.0, float(np.abs(flat_v).max()))
    xs, yy, text, hover, text_colors = [], [], [], [], []
    for l, (col, vals) in enumerate(zip(names, values)):
        for k, name in enumerate(col):
            v = float(vals[k])
            xs.append(l)
            yy.append(ys[l][k])
            text.append(f"<b>{v:.3f}</b>")
            text_colors.append("white" if abs(v) / c > 0.55 else "#111827")
            if l == 0:
                hover.append(f"{name} = {format_number(v)} (input)")
            else:
                layer = network.layers[l - 1]
                b = f"<br>bias = {format_number(layer.bias[k])}" if layer.bias is not None else ""
                hover.append(f"{name}<br>z = {float(sums[l][k]):.6f}<br>{layer.activation}(z) = {v:.6f}{b}")
            fig.add_annotation(x=l, y=ys[l][k], yshift=NODE_SIZE / 2 + 12, text=f"<b>{name}</b>",
                               showarrow=False, font=dict(size=15, color="#111827"))
            if l > 0:
                layer = network.layers[l - 1]
                below = f"z = {float(sums[l][k]):.3f}"
                if layer.bias is not None:
                    below += f", b = {format_number(layer.bias[k])}"
                fig.add_annotation(x=l, y=ys[l][k], yshift=-NODE_SIZE / 2 - 12, text=below, showarrow=False,
                                   bgcolor="rgba(255,255,255,0.85)", font=dict(size=12, color="#4b5563"))
    fig.add_trace(go.Scatter(
        x=xs, y=yy, mode="markers+text", text=text, textposition="middle center",
        textfont=dict(size=13, color=text_colors), hovertext=hover, hoverinfo="text", showlegend=False,
        marker=dict(size=NODE_SIZE, color=flat_v, colorscale="RdBu", cmin=-c, cmax=c,
                    line=dict(color="#374151", width=1.5),
                    colorbar=dict(title=dict(text="value", side="right"), thickness=10, len=0.75, xpad=4)),
    ))

    # column headings
    headings = ["inputs"] + [f"hidden {l} ({lay.activation})" for l, lay in enumerate(network.layers[:-1], 1)]
    headings.append(f"output ({network.layers[-1].activation})")
    top = max(float(y[0]) for y in ys)
    for l, h in enumerate(headings):
        fig.add_annotation(x=l, y=top, yshift=NODE_SIZE / 2 + 44, text=h, showarrow=False,
                           font=dict(size=13, color="#6b7280"))

    n_cols = len(names)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=20, b=10), font=FONT,
        plot_bgcolor="white", paper_bgcolor="white", hovermode="closest", dragmode=False,
        xaxis=dict(visible=False, range=[-0.35, n_cols - 0.65], fixedrange=True),
        yaxis=dict(visible=False, range=[-top - 0.6, top + 0.72], fixedrange=True),
    )
    return fig


def gradient_bars(rows: list[ParamGradient], *, height: int | None = None) -> go.Figure:
    """Horizontal bars of d output / d parameter, largest |gradient| on top, coloured by sign."""
    rows = sorted(rows, key=lambda r: abs(r.grad))  # plotly draws the first bar at the bottom
    labels = [r.label for r in rows]
    grads = [r.grad for r in rows]
    fig = go.Figure(go.Bar(
        x=grads, y=labels, orientation="h",
        marker_color=[POSITIVE if g >= 0 else NEGATIVE for g in grads],
        text=["0" if g == 0 else f"{g:+.4f}" if abs(g) >= 1e-4 else f"{g:+.1e}" for g in grads],
        textposition="outside", cliponaxis=False,
        hovertemplate="%{y}<br>d out / d weight = %{x:.6f}<extra></extra>",
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
