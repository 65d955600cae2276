"""Figures, tables and captions for the Training page: plain functions from store data to plotly / pandas.

Metric frames are what core.runs.RunStore.metrics returns (columns id, run_id, step, epoch, name,
value, time). Names: `train_loss` / `train_acc` per reported step, `epoch_*` per epoch (see
core.runs.worker).

Every shown word comes from the catalogues (core/i18n/<lang>/training_run.toml): each function takes
the language as `lang` (English by default), so a chart built once can be shared by every tab
that speaks the same language (dashboard.run_panel.figure keys include it).
"""
from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from core.i18n import t
from core.text import format_duration
from core.runs import progress as run_progress
from core.runs.store import METRIC_COLUMNS, Run, RunEvent
from core.train.config import ACTS_ONLY_WITH, TrainConfig, unused_settings

COLORS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
RAW_COLOR, SMOOTH_COLOR, TEST_COLOR = "#93c5fd", "#1d4ed8", "#dc2626"
EVENT_COLOR, LR_COLOR = "#7c3aed", "#059669"
EPOCH_MEAN_COLOR, GAP_COLOR = "#0f766e", "#b45309"
EMA_ALPHA = 0.2   # the smoothed training loss: each point is 0.2 new + 0.8 old
STATUSES = ("queued", "running", "completed", "stopped", "failed", "diverged", "interrupted")
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
# A run's loss over the whole run: it starts high on the left and ends low on the right, so the top
# right stays empty (the bottom left does not once the loss is low: four entries reach up to it).
LEGEND_RUN_LOSS = dict(x=0.99, y=0.99, xanchor="right", yanchor="top", bgcolor="rgba(255,255,255,0.8)")


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


def ema(values: pd.Series, alpha: float = EMA_ALPHA) -> pd.Series:
    """Exponential moving average (the smoothed curve): each point is alpha new + (1 - alpha) old."""
    return values.ewm(alpha=alpha, adjust=True, ignore_na=True).mean()


def _title(key: str, lang: str, synthetic: bool = False) -> str:
    """A chart's title, with "(synthetic)" after it for the demo set."""
    title = t(f"training.run.chart.{key}", lang)
    return t("training.run.chart.synthetic", lang, title=title) if synthetic else title


def event_text(kind: str, value: float | None, lang: str = "en") -> str:
    """A control in a few words: 'lr × 0.5', 'lr → 0.001', 'epochs → 12', 'stop at epoch end'."""
    if kind == "lr_factor":
        return t("training.run.events.lr_factor", lang, value=value)
    if kind == "lr":
        return t("training.run.events.lr", lang, value=value)
    if kind == "epochs":
        return t("training.run.events.epochs", lang, value=int(value))
    return t("training.run.events.stop_at_epoch_end", lang)


def applied_events(events: list[RunEvent] | None) -> list[RunEvent]:
    """The events a trainer applied (they have a step), in step order."""
    return sorted((e for e in events or [] if not e.pending), key=lambda e: (e.step, e.id))


def event_marks(events: list[RunEvent] | None, rates: pd.DataFrame | None = None,
                lang: str = "en") -> list[tuple[int, str]]:
    """(step, label) of each applied control, in step order (`rates`: lr_series rows, so an lr
    change's label ends with the new rate)."""
    new_lr = dict(zip(rates["step"], rates["value"])) if rates is not None else {}
    marks = []
    for event in applied_events(events):
        text = event_text(event.kind, event.value, lang)
        if event.kind == "lr_factor" and event.step in new_lr:   # "lr → X" says it already
            text += f" → {new_lr[event.step]:.3g}"
        marks.append((int(event.step), text))
    return marks


def mark_events(fig: go.Figure, events: list[RunEvent] | None, *, per_epoch: int | None = None,
                rates: pd.DataFrame | None = None, lang: str = "en") -> None:
    """A dashed vertical line, labelled, at the step where each control was applied (`per_epoch`:
    the x axis counts epochs, so the line sits at step / steps per epoch; `rates`: lr_series rows,
    so an lr change's label ends with the new rate)."""
    for i, (step, text) in enumerate(event_marks(events, rates, lang)):
        x = step / per_epoch if per_epoch else step
        fig.add_vline(x=x, line=dict(color=EVENT_COLOR, width=1.5, dash="dash"),
                      annotation=dict(text=text, font=dict(color=EVENT_COLOR, size=11),
                                      yshift=-14 * (i % 3)),
                      annotation_position="top right")


def loss_title(lang: str, synthetic: bool = False) -> str:
    return _title("loss_title", lang, synthetic)


def loss_figure(frame: pd.DataFrame, *, synthetic: bool = False, alpha: float = EMA_ALPHA,
                events: list[RunEvent] | None = None, lang: str = "en") -> go.Figure:
    """Training loss per reported step (raw and EMA-smoothed), the test loss of each epoch and the
    epoch's mean training loss (at the step where the epoch ended, beside its test loss)."""
    fig = go.Figure()
    train = series(frame, "train_loss")
    few = len(train) < 40  # a handful of points: show them, a line needs two
    step, loss = t("training.run.chart.step", lang), t("training.run.chart.loss", lang)
    fig.add_scatter(x=train["step"], y=train["value"], mode="lines+markers" if few else "lines",
                    name=t("training.run.chart.train_raw", lang), line=dict(color=RAW_COLOR, width=1),
                    marker=dict(size=5), hovertemplate=f"{step} %{{x}}<br>{loss} %{{y:.4f}}<extra></extra>")
    fig.add_scatter(x=train["step"], y=ema(train["value"], alpha), mode="lines+markers" if few else "lines",
                    marker=dict(size=4), name=t("training.run.chart.train_ema", lang, alpha=alpha),
                    line=dict(color=SMOOTH_COLOR, width=2.5),
                    hovertemplate=f"{step} %{{x}}<br>{loss} %{{y:.4f}}<extra></extra>")
    epoch = t("training.run.chart.epoch", lang)
    test = series(frame, "epoch_test_loss")
    fig.add_scatter(x=test["step"], y=test["value"], mode="lines+markers", name=t("training.run.chart.test_loss", lang),
                    line=dict(color=TEST_COLOR, width=1.5, dash="dot"), marker=dict(size=8),
                    customdata=test["epoch"], hovertemplate=f"{epoch} %{{customdata}}<br>"
                    f"{t('training.run.chart.test_loss_hover', lang)} %{{y:.4f}}<extra></extra>")
    means = series(frame, "epoch_train_loss")
    fig.add_scatter(x=means["step"], y=means["value"], mode="lines+markers",
                    name=t("training.run.chart.train_epoch_mean", lang),
                    line=dict(color=EPOCH_MEAN_COLOR, width=2, dash="dash"), marker=dict(size=7, symbol="square"),
                    customdata=means["epoch"], hovertemplate=f"{epoch} %{{customdata}}<br>"
                    f"{t('training.run.chart.train_epoch_mean_hover', lang)} %{{y:.4f}}<extra></extra>")
    fig.update_layout(**LAYOUT, legend=LEGEND_RUN_LOSS)
    fig.update_layout(title_text=loss_title(lang, synthetic))
    if train.empty:
        _waiting_note(fig, t("training.run.chart.loss_waiting", lang))
    mark_events(fig, events, lang=lang)
    fig.update_xaxes(title_text=step, rangemode="tozero")
    fig.update_yaxes(title_text=t("training.run.chart.loss_axis", lang), rangemode="tozero")
    return fig


def lr_series(frame: pd.DataFrame) -> pd.DataFrame:
    """The learning rate by step: the `lr` rows (the start, and each change) and `epoch_lr` (each
    epoch's end), one value per step."""
    rows = frame[frame["name"].isin(["lr", "epoch_lr"])].sort_values(["step", "id"])
    return rows.drop_duplicates("step", keep="last")


def lr_figure(frame: pd.DataFrame, *, events: list[RunEvent] | None = None, synthetic: bool = False,
              planned: tuple[list[int], list[float]] | None = None, lang: str = "en") -> go.Figure:
    """The learning rate over the run: dots where the trainer logged it (its start, each epoch's end,
    each change), and the line of every step's rate from the run's schedule (`planned`:
    core.runs.progress.planned_lr), the same function the trainer uses."""
    fig = go.Figure()
    rows = lr_series(frame)
    step, rate = t("training.run.chart.step", lang), t("training.run.chart.lr_axis", lang)
    fig.add_scatter(x=rows["step"], y=rows["value"], mode="markers", name=t("training.run.chart.lr_logged", lang),
                    marker=dict(color=LR_COLOR, size=8),
                    hovertemplate=f"{step} %{{x}}<br>{rate} %{{y:.3g}}<extra></extra>")
    if planned is not None:
        fig.add_scatter(x=planned[0], y=planned[1], mode="lines", name=t("training.run.chart.lr_planned", lang),
                        line=dict(color=LR_COLOR, width=2),
                        hovertemplate=f"{step} %{{x}}<br>{rate} %{{y:.3g}}<extra></extra>")
    fig.update_layout(**LAYOUT, showlegend=False)
    fig.update_layout(title_text=_title("lr_title", lang, synthetic))
    if rows.empty and planned is None:
        _waiting_note(fig, t("training.run.chart.lr_waiting", lang))
    mark_events(fig, events, rates=rows, lang=lang)
    fig.update_xaxes(title_text=step, rangemode="tozero")
    fig.update_yaxes(title_text=rate, exponentformat="e", rangemode="tozero")
    return fig


def accuracy_figure(frame: pd.DataFrame, *, synthetic: bool = False, epochs: int | None = None,
                    events: list[RunEvent] | None = None, steps_per_epoch: int | None = None,
                    lang: str = "en") -> go.Figure:
    """Train and test accuracy after each epoch, in percent; a growing gap between them is marked."""
    fig = go.Figure()
    curves = [("epoch_train_acc", "train_acc", SMOOTH_COLOR), ("epoch_test_acc", "test_acc", TEST_COLOR)]
    if (frame["name"] == "epoch_val_acc").any():   # a validation split: it picks best.pt
        curves.append(("epoch_val_acc", "val_acc", LR_COLOR))
    epoch = t("training.run.chart.epoch", lang)
    for name, key, color in curves:
        rows = series(frame, name)
        label = t(f"training.run.chart.{key}", lang)
        fig.add_scatter(x=rows["epoch"], y=100 * rows["value"], mode="lines+markers", name=label,
                        line=dict(color=color, width=2), marker=dict(size=8),
                        hovertemplate=f"{epoch} %{{x}}<br>{label} %{{y:.2f}}%<extra></extra>")
    fig.update_layout(**LAYOUT, legend=LEGEND_ACCURACY)
    fig.update_layout(title_text=_title("acc_title", lang, synthetic))
    if not (frame["name"] == "epoch_test_acc").any():
        _waiting_note(fig, t("training.run.chart.acc_waiting", lang))
    gap = run_progress.accuracy_gap(frame)
    if gap is not None:   # a bracket between the newest epoch's two points, its size above them
        test_now = 100 * float(series(frame, "epoch_test_acc").set_index("epoch")["value"].get(gap.epoch, 0.0))
        train_now = test_now + 100 * gap.gap_now
        fig.add_shape(type="line", x0=gap.epoch, x1=gap.epoch, y0=test_now, y1=train_now,
                      line=dict(color=GAP_COLOR, width=3))
        fig.add_annotation(x=gap.epoch, y=train_now + 3, xanchor="right", yanchor="bottom", showarrow=False,
                           text=t("training.run.chart.gap_mark", lang, gap=100 * gap.gap_now),
                           font=dict(color=GAP_COLOR, size=12), bgcolor="rgba(255,255,255,0.85)")
    if steps_per_epoch:
        mark_events(fig, events, per_epoch=steps_per_epoch, lang=lang)
    fig.update_xaxes(title_text=epoch, dtick=1, range=[0.5, (epochs or 1) + 0.5] if epochs else None)
    fig.update_yaxes(title_text=t("training.run.chart.acc_axis", lang), range=[0, 100])
    return fig


# ---- captions: what each chart shows and how to read its surprises -------------------------

def loss_caption(cfg: TrainConfig, lang: str = "en", alpha: float = 0.2) -> str:
    """The loss chart's caption: what the raw line averages (this run's log_every), what the smoothed
    line is; with label smoothing, why the test loss can sit below the training loss."""
    raw = (t("training.run.caption.loss_raw_one", lang) if cfg.log_every == 1
           else t("training.run.caption.loss_raw_many", lang, n=cfg.log_every))
    text = t("training.run.caption.loss", lang, raw=raw, new=round(100 * alpha), old=round(100 * (1 - alpha)))
    if cfg.label_smoothing > 0:
        text += " " + t("training.run.caption.loss_smoothing", lang, value=cfg.label_smoothing)
    return text


def accuracy_caption(cfg: TrainConfig, lang: str = "en") -> str:
    """The accuracy chart's caption: why test can beat train early on; what a growing gap means (and
    what the validation curve is, for a run with a validation split)."""
    text = t("training.run.caption.accuracy", lang)
    if cfg.val_images:
        text += " " + t("training.run.caption.accuracy_val", lang)
    return text


def gap_note(frame: pd.DataFrame, lang: str = "en") -> str | None:
    """A plain-language note when train accuracy keeps pulling away from test accuracy (else None)."""
    gap = run_progress.accuracy_gap(frame)
    if gap is None:
        return None
    return t("training.run.caption.gap", lang, since=gap.since_epoch, then=100 * gap.gap_then,
             epoch=gap.epoch, now=100 * gap.gap_now)


def lr_caption(cfg: TrainConfig, lang: str = "en") -> str:
    """The learning-rate chart's caption: which schedule, line against dots."""
    warm = t("training.run.caption.lr_warmup", lang, share=cfg.warmup) if cfg.warmup > 0 else ""
    return t("training.run.caption.lr", lang, schedule=t(f"training.run.schedules.{cfg.schedule}", lang),
             warmup=warm)


# ---- comparing runs ---------------------------------------------------------------------------

COMPARE_AXES = ("epoch", "images", "seconds")   # what the comparison's x axis counts


def compare_x(frame: pd.DataFrame, rows: pd.DataFrame, axis: str, *, batch_size: int,
              steps_per_epoch: int | None) -> pd.Series:
    """The x value of each of `rows` (metric rows of one run): its epoch (an epoch's rows at their
    epoch, step rows at step / steps per epoch), the images seen by then (step x batch size), or
    the seconds of training by then (core.runs.progress.seconds_at)."""
    if axis == "images":
        return rows["step"] * batch_size
    if axis == "seconds":
        return pd.Series(run_progress.seconds_at(frame, rows["step"]), index=rows.index)
    if rows["name"].str.startswith("epoch_").all():
        return rows["epoch"]
    return rows["step"] / steps_per_epoch if steps_per_epoch else rows["epoch"]


def compare_figures(runs: dict[str, tuple[Run, pd.DataFrame]], *, axis: str = "epoch", alpha: float = 0.2,
                    lang: str = "en") -> tuple[go.Figure, go.Figure]:
    """Overlay several runs (label -> (run, its metric rows)): smoothed train loss and test accuracy
    per epoch, against epochs, images seen or seconds of training (`axis`, one of COMPARE_AXES)."""
    loss, acc = go.Figure(), go.Figure()
    x_title = t(f"training.run.compare.axis_title.{axis}", lang)
    for i, (label, (run, frame)) in enumerate(runs.items()):
        color = COLORS[i % len(COLORS)]
        where = dict(batch_size=run.config.batch_size, steps_per_epoch=run.steps_per_epoch)
        train = series(frame, "train_loss")
        x = compare_x(frame, train, axis, **where)
        loss.add_scatter(x=x, y=ema(train["value"], alpha), mode="lines", name=label, line=dict(color=color, width=2),
                         hovertemplate=f"{x_title} %{{x:,.4~g}}<br>%{{y:.4f}}<extra>{label}</extra>")
        test = series(frame, "epoch_test_acc")
        acc.add_scatter(x=compare_x(frame, test, axis, **where), y=100 * test["value"], mode="lines+markers",
                        name=label, line=dict(color=color, width=2),
                        hovertemplate=f"{x_title} %{{x:,.4~g}}<br>%{{y:.2f}}%<extra>{label}</extra>")
    loss.update_layout(**LAYOUT, legend=LEGEND_RUN_LOSS)
    loss.update_layout(title_text=t("training.run.chart.compare_loss_title", lang))
    loss.update_xaxes(title_text=x_title, rangemode="tozero")
    loss.update_yaxes(title_text=t("training.run.chart.loss_axis", lang), rangemode="tozero")
    acc.update_layout(**LAYOUT, legend=LEGEND_ACCURACY)
    acc.update_layout(title_text=t("training.run.chart.compare_acc_title", lang))
    acc.update_xaxes(title_text=x_title, rangemode="tozero", **(dict(dtick=1) if axis == "epoch" else {}))
    acc.update_yaxes(title_text=t("training.run.chart.acc_axis", lang), range=[0, 100])
    return loss, acc


def comparison_formats(lang: str = "en") -> dict[str, str]:
    """How comparison_table's numbers read: 65.50, 27,648, 7,520."""
    formats = {"test_acc": "{:.2f}", "images": "{:,}", "speed": "{:,.0f}"}
    return {t(f"training.run.compare.table.{k}", lang): f for k, f in formats.items()}


def comparison_table(runs: list[tuple[Run, pd.DataFrame]], lang: str = "en") -> pd.DataFrame:
    """One row per compared run: its model's test accuracy, epochs done, images seen, wall time
    (training, tests and checkpoints included) and training speed (images/s, the mean of its
    epochs' own figures, tests left out)."""
    col = {k: t(f"training.run.compare.table.{k}", lang) for k in
           ("run", "test_acc", "epochs", "images", "wall_time", "speed")}
    rows = []
    for run, frame in runs:
        steps = frame.loc[frame["name"].isin(["train_loss", "epoch_train_loss"]), "step"]
        speed = frame.loc[frame["name"] == "epoch_images_per_sec", "value"]
        tested = series(frame, "epoch_test_acc")
        rows.append({col["run"]: run.label,
                     col["test_acc"]: _percent(run.best_test_acc if run.config.val_images else run.final_test_acc),
                     col["epochs"]: int(tested["epoch"].max()) if len(tested) else 0,
                     col["images"]: int(steps.max()) * run.config.batch_size if len(steps) else 0,
                     col["wall_time"]: format_duration(run.train_seconds) if run.train_seconds else "–",
                     col["speed"]: round(float(speed.mean())) if len(speed) else None})
    return pd.DataFrame(rows, columns=list(col.values()))


# Where a run stands (epoch, step, speed, elapsed, time left, phase) is computed in core.
Progress, progress, run_epochs = run_progress.Progress, run_progress.progress, run_progress.run_epochs


def status_text(run: Run, lang: str = "en") -> str:
    """A run's status in words ('queued (2nd in line)' while it waits for a slot)."""
    if lang == "en":
        return run.status_text
    if run.waiting:
        return t("training.run.status.waiting", lang, place=run.place)
    return t(f"training.run.status.{run.status}", lang)


def events_table(events: list[RunEvent], *, active: bool, lang: str = "en") -> pd.DataFrame:
    """The changes asked for a run, oldest first: what, when asked, where applied, the trainer's note."""
    col = {k: t(f"training.run.events.col_{k}", lang) for k in ("change", "asked", "applied", "note")}
    rows = []
    for e in events:
        if e.pending:
            where = t("training.run.events.waiting" if active else "training.run.events.not_applied", lang)
        else:
            where = t("training.run.events.applied_at", lang, step=e.step, epoch=e.epoch)
        rows.append({col["change"]: event_text(e.kind, e.value, lang),
                     col["asked"]: time.strftime("%H:%M:%S", time.localtime(e.requested_at)),
                     col["applied"]: where, col["note"]: e.note or ""})
    return pd.DataFrame(rows, columns=list(col.values()))


def settings_with_changes(run: Run, events: list[RunEvent], lang: str = "en") -> str:
    """'lr 0.001 → 0.0005 (step 120) · epochs 10 → 12 (step 300)', or '' when nothing changed."""
    from core.train.control import changed_settings

    changes = changed_settings(run.config, applied_events(events))
    parts = []
    for name, original in (("lr", run.config.lr), ("epochs", run.config.epochs)):
        if name in changes:
            steps = " → ".join(t("training.run.events.value_at", lang, value=v, step=s) for s, v in changes[name])
            parts.append(f"{name} {original:g} → {steps}")
    return " · ".join(parts)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "–"


def model_checkpoint(run: Run, lang: str = "en") -> str:
    """Which checkpoint is a run's model: with a validation split best.pt, the epoch with the highest
    validation accuracy; without one there is no "best" and last.pt is the model (a run trained
    before that rule may still hold a best.pt chosen by test accuracy: it is not reported as the model)."""
    return t("training.run.table.checkpoint_best" if run.config.val_images else "training.run.table.checkpoint_last",
             lang)


def model_accuracy(run: Run, frame: pd.DataFrame, lang: str = "en") -> tuple[str, str, str]:
    """(label, value, help) of the run's model's test accuracy: best.pt's with a validation split
    (chosen by it), else the last epoch's (no split: no "best", the last checkpoint is the model)."""
    if run.config.val_images:
        value = f"{100 * run.best_test_acc:.2f}%" if run.best_test_acc is not None else "–"
        return (t("training.run.metric.best_acc", lang), value,
                t("training.run.metric.best_acc_help", lang, n=run.config.val_images))
    tested = series(frame, "epoch_test_acc")
    last = float(tested["value"].iloc[-1]) if len(tested) else run.final_test_acc
    return (t("training.run.metric.test_acc", lang), f"{100 * last:.2f}%" if last is not None else "–",
            t("training.run.metric.test_acc_help", lang))


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


RUNS_COLUMNS = ("run", "name", "status", "preset", "model", "dataset", "test_acc", "checkpoint", "epochs",
                "duration", "device", "created")


def runs_table(runs: list[Run], lang: str = "en") -> pd.DataFrame:
    """One row per run, for st.dataframe: the test accuracy column is the test accuracy of the run's
    model, the checkpoint named in the next column (best.pt chosen by validation accuracy, or last.pt)."""
    col = {k: t(f"training.run.table.{k}", lang) for k in RUNS_COLUMNS}
    rows = []
    for r in runs:
        rows.append({
            col["run"]: r.id,
            col["name"]: r.name,
            col["status"]: status_text(r, lang),   # "queued (2nd in line)" while it waits for a slot
            col["preset"]: r.preset or t("training.run.table.custom", lang),
            col["model"]: r.config.model,
            col["dataset"]: r.dataset_label if lang == "en" else t(f"common.datasets.{r.dataset}", lang),
            col["test_acc"]: _percent(r.best_test_acc if r.config.val_images else r.final_test_acc),
            col["checkpoint"]: model_checkpoint(r, lang),
            col["epochs"]: r.config.epochs,
            col["duration"]: format_duration(r.train_seconds) if r.train_seconds else "–",
            col["device"]: r.device_text,
            col["created"]: _when(r.created_at),
        })
    return pd.DataFrame(rows, columns=list(col.values()))


def effective_settings(run: Run, lang: str = "en") -> dict[str, str]:
    """A run's settings as they act: {setting: value}, with a setting that changes nothing (its switch
    is off, core.train.config.unused_settings) shown as 'off' instead of a value that would seem to apply."""
    cfg = run.config
    off = unused_settings(cfg)
    shown = {}
    for name, value in cfg.to_dict().items():
        if name in off:
            shown[name] = t("training.run.settings.off", lang, switch=ACTS_ONLY_WITH[name])
        else:
            shown[name] = "–" if value is None else str(value)
    shown["dataset"] = run.dataset_label if lang == "en" else t(f"common.datasets.{run.dataset}", lang)
    return shown


def settings_text(run: Run, lang: str = "en") -> str:
    """The run's settings on a few lines (markdown): `name` value · ..., leaving out the ones that are
    off (their switch is off, so they change nothing) and saying which those are."""
    off = unused_settings(run.config)
    parts = [f"`{name}` {value}" for name, value in effective_settings(run, lang).items() if name not in off]
    text = " · ".join(parts)
    if off:
        text += "  \n" + t("training.run.settings.unused", lang, names=", ".join(f"`{n}`" for n in sorted(off)))
    return text


def config_diff(runs: list[Run], *, only_differences: bool = True, lang: str = "en") -> pd.DataFrame:
    """Settings side by side, one column per run; by default only the settings that differ. A
    setting that changes nothing in a run (its switch is off) reads 'off' there, and one that is
    off in every run is left out."""
    if not runs:
        return pd.DataFrame()
    table = {r.label: effective_settings(r, lang) for r in runs}
    frame = pd.DataFrame(table)
    frame.index.name = t("training.run.settings.setting", lang)
    off_everywhere = set.intersection(*(unused_settings(r.config) for r in runs))
    frame = frame.drop(index=sorted(off_everywhere))
    if only_differences and len(runs) > 1:
        differs = frame.astype(str).nunique(axis=1) > 1
        frame = frame[differs]
    return frame.astype(str).replace({"None": "–"})
