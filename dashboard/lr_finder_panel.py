"""The Training page's learning-rate finder: a short background job, its curve, "Use this rate".

    lr_finder_panel.start(cfg)      # from the form's "Find a learning rate" button
    lr_finder_panel.draw()          # progress while it runs (polled), then the curve and suggestion

The finder is `python -m core lr-find` (core.train.lr_finder) in its own process, writing one JSON
file; no run is stored. This tab remembers which file is its own (FINDER_JOB). Every word, the
chart's included, is in the session's language (training.lr_finder.* in the catalogues).
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.i18n import core_text, t
from core.runs import jobs
from core.runs.store import process_alive
from core.train.config import TrainConfig, field_spec
from core.train.lr_finder import MAX_STEPS, SUGGESTION_RULE, read_result
from dashboard import common
from dashboard.config_form import field_key
from dashboard.figures.training import EVENT_COLOR, LAYOUT, RAW_COLOR, SMOOTH_COLOR
from dashboard.lang import lang, tr
from dashboard.training_keys import FINDER_JOB, FLASH, USE_LR

ENDINGS = ("exploded", "end of range", "stopped")   # how a finder's curve ends (FinderResult.ended)
# The legend in one row under the x axis: inside the plot it would sit on the curve, which starts
# low on the left and climbs on the right, and on the suggestion's label at the top.
LEGEND_BELOW = dict(orientation="h", x=0, y=-0.32, xanchor="left", yanchor="top")


def start(cfg: TrainConfig) -> None:
    pid, path = jobs.start_lr_finder(cfg)
    st.session_state[FINDER_JOB] = {"pid": pid, "path": str(path), "batch_size": cfg.batch_size,
                                    "optimizer": cfg.optimizer, "model": cfg.model}


def use_rate(rate: float) -> None:  # callback: before the form's widgets are drawn again
    st.session_state[field_key("lr")] = float(f"{rate:.3g}")
    st.session_state[FLASH] = ("success", tr("training.lr_finder.rate_set", rate=rate))


def ending_text(ended: str, language: str) -> str:
    """'exploded' -> 'the loss exploded' (a key per ENDINGS; an unknown ending as it is)."""
    return t(f"training.lr_finder.ended.{ended.replace(' ', '_')}", language) if ended in ENDINGS else ended


def lr_finder_figure(result: dict, language: str = "en") -> go.Figure:
    """The finder's loss (raw and smoothed) against the learning rate on a log axis, with its
    suggestion marked (result: core.train.lr_finder.FinderResult as a dict)."""
    fig = go.Figure()
    lrs = result.get("lrs") or []
    fig.add_scatter(x=lrs, y=result.get("losses") or [], mode="lines", name=t("training.lr_finder.raw", language),
                    line=dict(color=RAW_COLOR, width=1),
                    hovertemplate=t("training.lr_finder.hover_raw", language) + "<extra></extra>")
    fig.add_scatter(x=lrs, y=result.get("smoothed") or [], mode="lines",
                    name=t("training.lr_finder.smoothed", language),
                    line=dict(color=SMOOTH_COLOR, width=2.5),
                    hovertemplate=t("training.lr_finder.hover_smoothed", language) + "<extra></extra>")
    suggestion = result.get("suggestion")
    if suggestion:
        fig.add_vline(x=suggestion, line=dict(color=EVENT_COLOR, width=1.5, dash="dash"),
                      annotation=dict(text=t("training.lr_finder.suggested", language, rate=suggestion),
                                      font=dict(color=EVENT_COLOR)),
                      annotation_position="top left")
    smoothed = [v for v in result.get("smoothed") or [] if v is not None]
    fig.update_layout(**LAYOUT, legend=LEGEND_BELOW)
    fig.update_layout(height=LAYOUT["height"] + 40, margin={**LAYOUT["margin"], "b": 90})
    fig.update_layout(title_text=t("training.lr_finder.chart_title", language))
    fig.update_xaxes(title_text=t("training.lr_finder.x_axis", language), type="log", exponentformat="power")
    if smoothed:   # the explosion at the end would squash the curve: cap the axis above the start
        fig.update_yaxes(range=[min(smoothed) * 0.9, max(smoothed[0] * 1.3, min(smoothed) * 1.5)])
    fig.update_yaxes(title_text=t("training.lr_finder.y_axis", language))
    return fig


@st.fragment(run_every=0.5)
def _poll(job: dict) -> None:
    """While the finder runs: its progress; once it has ended, the whole page draws the result."""
    state = read_result(job["path"]) or {"status": "running", "step": 0, "max_steps": MAX_STEPS}
    if state["status"] != "running" or not process_alive(job["pid"]):
        st.rerun()
    done, total = state.get("step", 0), state.get("max_steps", MAX_STEPS)
    text = tr("training.lr_finder.progress", step=done, total=total)
    if state.get("lr"):
        text += tr("training.lr_finder.progress_lr", lr=state["lr"])
    st.progress(min(done / max(total, 1), 1.0), text=text)


def _summary(state: dict, job: dict) -> str:
    """What the finder did and how to read its suggestion."""
    here = lang()
    return tr("training.lr_finder.summary", steps=len(state.get("lrs") or []), seconds=state.get("seconds", 0),
              ended=ending_text(state.get("ended", ""), here),
              model=field_spec("model").choice_title(job["model"], here),
              optimizer=field_spec("optimizer").choice_title(job["optimizer"], here), batch=job["batch_size"],
              rule=core_text("lr_finder.rule", SUGGESTION_RULE, here))


def draw() -> None:
    job = st.session_state.get(FINDER_JOB)
    if job is None:
        return
    state = read_result(job["path"])
    if (state is None or state["status"] == "running") and process_alive(job["pid"]):
        _poll(job)
        return
    if state is None or state["status"] != "done":
        why = (state or {}).get("message") or tr("training.lr_finder.no_result")
        st.error(tr("training.lr_finder.failed", why=common.plain(why)))
        return
    st.plotly_chart(lr_finder_figure(state, lang()), key="train_lr_finder_chart")
    st.caption(_summary(state, job))
    rate = state.get("suggestion")
    if rate is None:
        st.warning(tr("training.lr_finder.no_suggestion"))
        return
    st.button(tr("training.lr_finder.use_rate", rate=rate), key=USE_LR, on_click=use_rate, args=(rate,),
              type="primary")
