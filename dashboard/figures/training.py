"""Figures and tables for the Training page: plain functions from store data to plotly / pandas.

Metric frames are what core.runs.RunStore.metrics returns (columns id, run_id, step, epoch, name,
value, time). Names: `train_loss` / `train_acc` per reported step, `epoch_*` per epoch (see
core.runs.worker).
"""
from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from core.text import format_duration
from core.runs import progress as run_progress
from core.runs.store import METRIC_COLUMNS, Run, RunEvent

COLORS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
RAW_COLOR, SMOOTH_COLOR, TEST_COLOR = "#93c5fd", "#1d4ed8", "#dc2626"
EVENT_COLOR, LR_COLOR = "#7c3aed", "#059669"
# Material icons for st.markdown / st.badge (emoji need a colour-emoji font, which browsers may lack)
STATUS_ICONS = {"queued": ":material/hourglass_top:", "running": ":material/directions_run:",
                "completed": ":material/check_circle:", "stopped": ":material/pause_circle:",
                "failed": ":material/error:", "diverged": ":material/trending_up:",
                "interrupted": ":material/warning:"}
STATUS_COLORS = {"queued": "gray", "running": "blue", "completed": "green", "stopped": "orange",
                 "failed": "red", "diverged": "red", "interrupted": "orange"}
# plotly_white's look for lines and axes, as a small template object: the named template is copied
# and checked on every figure (about 20 ms each; the live charts are rebuilt every second), this one
# in about 1 ms.
_WHITE = pio.templates["plotly_white"].layout.to_plotly_json()
TEMPLATE = go.layout.Template(layout={k: v for k, v in _WHITE.items() if k in (
    "annotationdefaults", "autotypenumbers", "colorway", "font", "hoverlabel", "hovermode", "paper_bgcolor",
    "plot_bgcolor", "shapedefaults", "title", "xaxis", "yaxis")})
LAYOUT = dict(template=TEMPLATE, height=340, margin=dict(l=60, r=20, t=40, b=50),
              title=dict(x=0, xanchor="left", font=dict(size=15)))
# Legends sit inside the plot where curves rarely go: loss starts high and falls, so its bottom
# left stays empty; accuracy starts low and rises, so its top left does.
LEGEND_LOSS = dict(x=0.01, y=0.01, xanchor="left", yanchor="bottom", bgcolor="rgba(255,255,255,0.8)")
LEGEND_ACCURACY = dict(x=0.01, y=0.99, xanchor="left", yanchor="top", bgcolor="rgba(255,255,255,0.8)")


def _waiting_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(color="#6b7280", size=13))


def empty_metrics() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("value", "time") else
                                      ("object" if c == "name" else "int64")) for c in METRIC_COLUMNS})


def merge_metrics(frame: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Append newly read rows; a (name, step) the store rewrote keeps its latest value."""
    if frame is None or frame.empty:
        merged = new
    elif new.empty:
        return frame
    else:
        merged = pd.concat([frame, new], ignore_index=True)
    return merged.drop_duplicates(["name", "step"], keep="last").sort_values("id").reset_index(drop=True)


def series(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of one metric, ordered by step."""
    return frame[frame["name"] == name].sort_values("step")


def ema(values: pd.Series, alpha: float = 0.2) -> pd.Series:
    """Exponential moving average (the smoothed curve): each point is alpha new + (1 - alpha) old."""
    return values.ewm(alpha=alpha, adjust=True, ignore_na=True).mean()


def _dataset_note(synthetic: bool) -> str:
    return " (synthetic)" if synthetic else ""


def applied_events(events: list[RunEvent] | None) -> list[RunEvent]:
    """The events a trainer applied (they have a step), in step order."""
    return sorted((e for e in events or [] if not e.pending), key=lambda e: (e.step, e.id))


def mark_events(fig: go.Figure, events: list[RunEvent] | None, *, per_epoch: int | None = None,
                rates: pd.DataFrame | None = None) -> None:
    """A dashed vertical line, labelled, at the step where each control was applied (`per_epoch`:
    the x axis counts epochs, so the line sits at step / steps per epoch; `rates`: lr_series rows,
    so an lr change's label ends with the new rate)."""
    new_lr = dict(zip(rates["step"], rates["value"])) if rates is not None else {}
    for i, event in enumerate(applied_events(events)):
        x = event.step / per_epoch if per_epoch else event.step
        text = event.text
        if event.kind == "lr_factor" and event.step in new_lr:   # "lr → X" says it already
            text += f" → {new_lr[event.step]:.3g}"
        fig.add_vline(x=x, line=dict(color=EVENT_COLOR, width=1.5, dash="dash"),
                      annotation=dict(text=text, font=dict(color=EVENT_COLOR, size=11),
                                      yshift=-14 * (i % 3)),
                      annotation_position="top right")


def loss_figure(frame: pd.DataFrame, *, synthetic: bool = False, alpha: float = 0.2,
                events: list[RunEvent] | None = None) -> go.Figure:
    """Training loss per reported step (raw and EMA-smoothed) with the test loss of each epoch."""
    fig = go.Figure()
    train = series(frame, "train_loss")
    few = len(train) < 40  # a handful of points: show them, a line needs two
    fig.add_scatter(x=train["step"], y=train["value"], mode="lines+markers" if few else "lines",
                    name="train loss (raw)", line=dict(color=RAW_COLOR, width=1), marker=dict(size=5))
    fig.add_scatter(x=train["step"], y=ema(train["value"], alpha), mode="lines+markers" if few else "lines",
                    marker=dict(size=4),
                    name=f"train loss (EMA, α={alpha:g})", line=dict(color=SMOOTH_COLOR, width=2.5))
    test = series(frame, "epoch_test_loss")
    fig.add_scatter(x=test["step"], y=test["value"], mode="lines+markers", name="test loss (per epoch)",
                    line=dict(color=TEST_COLOR, width=1.5, dash="dot"), marker=dict(size=8),
                    customdata=test["epoch"], hovertemplate="epoch %{customdata}<br>test loss %{y:.4f}<extra></extra>")
    fig.update_layout(**LAYOUT, legend=LEGEND_LOSS)
    fig.update_layout(title_text=f"Loss{_dataset_note(synthetic)}")
    if train.empty:
        _waiting_note(fig, "The loss appears after the first reported steps")
    mark_events(fig, events)
    fig.update_xaxes(title_text="optimiser step", rangemode="tozero")
    fig.update_yaxes(title_text="cross-entropy loss", rangemode="tozero")
    return fig


def lr_series(frame: pd.DataFrame) -> pd.DataFrame:
    """The learning rate by step: the `lr` rows (the start, and each change) and `epoch_lr` (each
    epoch's end), one value per step."""
    rows = frame[frame["name"].isin(["lr", "epoch_lr"])].sort_values(["step", "id"])
    return rows.drop_duplicates("step", keep="last")


def lr_figure(frame: pd.DataFrame, *, events: list[RunEvent] | None = None, synthetic: bool = False) -> go.Figure:
    """The learning rate over the run (known at its start, each epoch's end and each change)."""
    fig = go.Figure()
    rows = lr_series(frame)
    fig.add_scatter(x=rows["step"], y=rows["value"], mode="lines+markers", name="learning rate",
                    line=dict(color=LR_COLOR, width=2, shape="hv"), marker=dict(size=6),
                    hovertemplate="step %{x}<br>lr %{y:.3g}<extra></extra>")
    fig.update_layout(**LAYOUT, showlegend=False)
    fig.update_layout(title_text=f"Learning rate{_dataset_note(synthetic)}")
    if rows.empty:
        _waiting_note(fig, "The learning rate appears when the run starts")
    mark_events(fig, events, rates=rows)
    fig.update_xaxes(title_text="optimiser step", rangemode="tozero")
    fig.update_yaxes(title_text="learning rate", exponentformat="e", rangemode="tozero")
    return fig


def accuracy_figure(frame: pd.DataFrame, *, synthetic: bool = False, epochs: int | None = None,
                    events: list[RunEvent] | None = None, steps_per_epoch: int | None = None) -> go.Figure:
    """Train and test accuracy after each epoch, in percent."""
    fig = go.Figure()
    curves = [("epoch_train_acc", "train accuracy", SMOOTH_COLOR), ("epoch_test_acc", "test accuracy", TEST_COLOR)]
    if (frame["name"] == "epoch_val_acc").any():   # a validation split: it picks best.pt
        curves.append(("epoch_val_acc", "validation accuracy", LR_COLOR))
    for name, label, color in curves:
        rows = series(frame, name)
        fig.add_scatter(x=rows["epoch"], y=100 * rows["value"], mode="lines+markers", name=label,
                        line=dict(color=color, width=2), marker=dict(size=8),
                        hovertemplate=f"epoch %{{x}}<br>{label} %{{y:.2f}}%<extra></extra>")
    fig.update_layout(**LAYOUT, legend=LEGEND_ACCURACY)
    fig.update_layout(title_text=f"Accuracy per epoch{_dataset_note(synthetic)}")
    if not (frame["name"] == "epoch_test_acc").any():
        _waiting_note(fig, "Accuracy appears after each epoch")
    if steps_per_epoch:
        mark_events(fig, events, per_epoch=steps_per_epoch)
    fig.update_xaxes(title_text="epoch", dtick=1, range=[0.5, (epochs or 1) + 0.5] if epochs else None)
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 100])
    return fig


def compare_figures(frames: dict[str, pd.DataFrame], *, alpha: float = 0.2) -> tuple[go.Figure, go.Figure]:
    """Overlay several runs: smoothed train loss per step, test accuracy per epoch."""
    loss, acc = go.Figure(), go.Figure()
    for i, (label, frame) in enumerate(frames.items()):
        color = COLORS[i % len(COLORS)]
        train = series(frame, "train_loss")
        loss.add_scatter(x=train["step"], y=ema(train["value"], alpha), mode="lines", name=label,
                         line=dict(color=color, width=2))
        test = series(frame, "epoch_test_acc")
        acc.add_scatter(x=test["epoch"], y=100 * test["value"], mode="lines+markers", name=label,
                        line=dict(color=color, width=2))
    loss.update_layout(**LAYOUT, legend=LEGEND_LOSS)
    loss.update_layout(title_text="Train loss (EMA-smoothed)")
    loss.update_xaxes(title_text="optimiser step", rangemode="tozero")
    loss.update_yaxes(title_text="cross-entropy loss", rangemode="tozero")
    acc.update_layout(**LAYOUT, legend=LEGEND_ACCURACY)
    acc.update_layout(title_text="Test accuracy per epoch")
    acc.update_xaxes(title_text="epoch", dtick=1, rangemode="tozero")
    acc.update_yaxes(title_text="accuracy (%)", range=[0, 100])
    return loss, acc


# Where a run stands (epoch, step, speed, elapsed, time left, phase) is computed in core.
Progress, progress, run_epochs = run_progress.Progress, run_progress.progress, run_progress.run_epochs


def events_table(events: list[RunEvent], *, active: bool) -> pd.DataFrame:
    """The changes asked for a run, oldest first: what, when asked, where applied, the trainer's note."""
    rows = []
    for e in events:
        if e.pending:
            where = "waiting for the trainer" if active else "not applied (the run ended first)"
        else:
            where = f"after step {e.step} (epoch {e.epoch})"
        rows.append({"change": e.text, "asked": time.strftime("%H:%M:%S", time.localtime(e.requested_at)),
                     "applied": where, "note": e.note or ""})
    return pd.DataFrame(rows, columns=["change", "asked", "applied", "note"])


def settings_with_changes(run: Run, events: list[RunEvent]) -> str:
    """'lr 0.001 → 0.0005 (step 120) · epochs 10 → 12 (step 300)', or '' when nothing changed."""
    from core.train.control import changed_settings

    changes = changed_settings(run.config, applied_events(events))
    parts = []
    for name, original in (("lr", run.config.lr), ("epochs", run.config.epochs)):
        if name in changes:
            steps = " → ".join(f"{v:g} (step {s})" for s, v in changes[name])
            parts.append(f"{name} {original:g} → {steps}")
    return " · ".join(parts)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "–"


# Which checkpoint is a run's model: with a validation split best.pt, the epoch with the highest
# validation accuracy; without one there is no "best" and last.pt is the model (a run trained before
# that rule may still hold a best.pt chosen by test accuracy: it is not reported as the model).
MODEL_CHECKPOINT = {True: "best.pt (by validation accuracy)", False: "last.pt (no validation split)"}


def model_accuracy(run: Run, frame: pd.DataFrame) -> tuple[str, str, str]:
    """(label, value, help) of the run's model's test accuracy: best.pt's with a validation split
    (chosen by it), else the last epoch's (no split: no "best", the last checkpoint is the model)."""
    if run.config.val_images:
        value = f"{100 * run.best_test_acc:.2f}%" if run.best_test_acc is not None else "–"
        return ("best.pt test acc.", value, f"best.pt is the epoch with the highest validation accuracy "
                f"({run.config.val_images:,} training images held out); this is its test accuracy.")
    tested = series(frame, "epoch_test_acc")
    last = float(tested["value"].iloc[-1]) if len(tested) else run.final_test_acc
    return ("Test accuracy", f"{100 * last:.2f}%" if last is not None else "–",
            "The last epoch's. No validation split, so no \"best\" epoch: the last checkpoint is the model. Picking the epoch "
            "with the highest test accuracy would be choosing on the test set (optimistic).")


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def runs_table(runs: list[Run]) -> pd.DataFrame:
    """One row per run, for st.dataframe: "test acc (%)" is the test accuracy of the run's model,
    the checkpoint named in "model checkpoint" (best.pt chosen by validation accuracy, or last.pt)."""
    rows = []
    for r in runs:
        rows.append({
            "run": r.id,
            "name": r.name,
            "status": r.status_text,   # "queued (2nd in line)" while it waits for a slot
            "preset": r.preset or "custom",
            "model": r.config.model,
            "dataset": r.dataset_label,
            "test acc (%)": _percent(r.best_test_acc if r.config.val_images else r.final_test_acc),
            "model checkpoint": MODEL_CHECKPOINT[bool(r.config.val_images)],
            "epochs": r.config.epochs,
            "duration": format_duration(r.train_seconds) if r.train_seconds else "–",
            "device": r.device_text,
            "created": _when(r.created_at),
        })
    columns = ["run", "name", "status", "preset", "model", "dataset", "test acc (%)", "model checkpoint", "epochs",
               "duration", "device", "created"]
    return pd.DataFrame(rows, columns=columns)


def config_diff(runs: list[Run], *, only_differences: bool = True) -> pd.DataFrame:
    """Settings side by side, one column per run; by default only the settings that differ."""
    if not runs:
        return pd.DataFrame()
    table = {r.label: {**r.config.to_dict(), "dataset": r.dataset_label} for r in runs}
    frame = pd.DataFrame(table)
    frame.index.name = "setting"
    if only_differences and len(runs) > 1:
        differs = frame.astype(str).nunique(axis=1) > 1
        frame = frame[differs]
    return frame.astype(str).replace({"None": "–"})



def lr_finder_figure(result: dict) -> go.Figure:
    """The finder's loss (raw and smoothed) against the learning rate on a log axis, with its
    suggestion marked (result: core.train.lr_finder.FinderResult as a dict)."""
    fig = go.Figure()
    lrs = result.get("lrs") or []
    fig.add_scatter(x=lrs, y=result.get("losses") or [], mode="lines", name="loss (each step)",
                    line=dict(color=RAW_COLOR, width=1))
    fig.add_scatter(x=lrs, y=result.get("smoothed") or [], mode="lines", name="loss (smoothed)",
                    line=dict(color=SMOOTH_COLOR, width=2.5),
                    hovertemplate="lr %{x:.3g}<br>smoothed loss %{y:.4f}<extra></extra>")
    suggestion = result.get("suggestion")
    if suggestion:
        fig.add_vline(x=suggestion, line=dict(color=EVENT_COLOR, width=1.5, dash="dash"),
                      annotation=dict(text=f"suggested {suggestion:.3g}", font=dict(color=EVENT_COLOR)),
                      annotation_position="top left")
    smoothed = [v for v in result.get("smoothed") or [] if v is not None]
    fig.update_layout(**LAYOUT, legend=LEGEND_LOSS)
    fig.update_layout(title_text="Learning-rate finder")
    fig.update_xaxes(title_text="learning rate", type="log", exponentformat="power")
    if smoothed:   # the explosion at the end would squash the curve: cap the axis above the start
        fig.update_yaxes(range=[min(smoothed) * 0.9, max(smoothed[0] * 1.3, min(smoothed) * 1.5)])
    fig.update_yaxes(title_text="training loss")
    return fig
