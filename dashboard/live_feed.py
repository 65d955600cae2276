"""What the live view of a training run shows, as JSON, and the server route that hands it out.

While a run trains, the Training page draws its progress line, what the trainer does now, four
numbers and the loss chart in one element (dashboard/live_view.js) that asks this route for what is
new about once a second and redraws itself in place: no rerun of the page, no new chart for the
browser to build. The page reruns only when something the rest of it shows changed (a run started or
ended anywhere, an epoch ended, a change was applied, the trainer moved on to testing or saving):
the route says so with two short digests (`statuses`, `settled`) that the element compares with the
ones its page run drew.

    GET /cifarlab/live?run=ID&after=STEP&lang=en
    -> {"statuses": "...", "run": {"settled": "...", "progress": {...}, "metrics": [...], "loss": {...}}}

`after`: the last step of training loss the element has; the answer carries only later points (with
`start`, the number of points before them, so a view that missed some asks for everything again).
The route is served by dashboard/server.py (`python -m dashboard`, `make run`); a page served
without it (AppTest, a bare `streamlit run dashboard/app.py`) feeds the same element from a fragment.
No Streamlit here: the route runs outside any script run.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict

import pandas as pd

from core import settings
from core.i18n import t
from core.runs import progress as run_progress
from core.runs.store import Run, RunError, RunEvent, RunStore
from core.train.history import history_path
from dashboard.figures import training as ft

ROUTE = "/cifarlab/live"
POLL_EVERY_MS = 1000   # rows arrive twice a second (worker.FLUSH_EVERY_S): charts grow about every second
RERUN_GAP_MS = 3000    # the run's own slow parts are redrawn at most this often (an epoch's end is a burst)
LANGUAGES = ("en", "zh")
_served = False


def route_path(base_url: str | None = "") -> str:
    """ROUTE under the server's base URL path (Streamlit's server.baseUrlPath, e.g. behind a proxy):
    st.App mounts its own routes at the root, so the base is part of the route's path."""
    base = (base_url or "").strip("/")
    return f"/{base}{ROUTE}" if base else ROUTE


def serve(base_url: str | None = ""):
    """The route for st.App (dashboard/server.py); pages served with it poll it instead of rerunning."""
    from starlette.routing import Route

    global _served
    _served = True
    return Route(route_path(base_url), endpoint, methods=["GET"])


def served() -> bool:
    """Whether this process serves the route (started by `python -m dashboard`)."""
    return _served


# ---- what the view shows ----------------------------------------------------------------------

def digest(value: object) -> str:
    """A short, stable name for a value's repr (the page and the route compare these)."""
    return hashlib.sha1(repr(value).encode()).hexdigest()[:16]


def statuses_digest(statuses: dict[int, str]) -> str:
    return digest(sorted(statuses.items()))


def settled_key(store: RunStore, run: Run, frame: pd.DataFrame, events: list[RunEvent],
                prog: run_progress.Progress) -> str:
    """Everything the slow parts of an active run show, in one digest: the epoch rows and lr rows
    (how many and the newest id of each), the changes and where they were applied, the run's plan,
    the trainer's phase (the nine steps' highlight: two or three changes per epoch), the prediction
    history file. Made from the rows alone, so the page run and the route agree on the same rows."""
    try:
        history = history_path(store.run_dir(run.id)).stat().st_mtime_ns
    except OSError:
        history = None
    rows = frame[frame["name"].str.startswith("epoch_") | (frame["name"] == "lr")]
    epoch_rows = tuple(sorted((str(n), len(ids), int(ids.max())) for n, ids in rows.groupby("name")["id"]))
    phase = prog.phase if prog.status == "running" else None
    return digest((run.id, run.attempts, run.steps_per_epoch, run.total_steps, epoch_rows,
                   tuple((e.id, e.step) for e in events), phase, history))


def now_line(prog: run_progress.Progress, language: str) -> dict:
    """What the trainer does right now, in the words of the nine steps: {"badge", "text"} (markdown
    bold in the text); no badge while the run waits for its trainer."""
    if prog.status != "running":
        return {"badge": None, "text": t("training.run.steps.now_waiting", language)}
    phase = prog.phase or "running"
    return {"badge": t("training.run.steps.now", language),
            "text": t(f"training.run.steps.now_{phase}", language, epoch=prog.epoch, epochs=prog.epochs,
                      step=prog.step, total=prog.total_steps or prog.step)}


def metrics(run: Run, frame: pd.DataFrame, prog: run_progress.Progress, language: str) -> list[dict]:
    """The four numbers over the loss chart: epoch, step, speed and the model's test accuracy."""
    label, value, help_text = ft.model_accuracy(run, frame, language)
    step = f"{prog.step}" + (f"/{prog.total_steps}" if prog.total_steps else "")
    return [{"label": t("training.run.metric.epoch", language), "value": f"{prog.epoch}/{prog.epochs}"},
            {"label": t("training.run.metric.step", language), "value": step},
            {"label": t("training.run.metric.speed", language),
             "value": f"{prog.images_per_sec:,.0f}" if prog.images_per_sec else "–"},
            {"label": label, "value": value, "help": help_text}]


def _floats(values) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), 6) for v in values]


def _points(rows: pd.DataFrame, extra: str | None = None) -> dict:
    points = {"step": [int(s) for s in rows["step"]], "value": _floats(rows["value"])}
    if extra:
        points[extra] = [int(e) for e in rows[extra]]
    return points


def loss(run: Run, frame: pd.DataFrame, events: list[RunEvent], language: str, after: int = -1) -> dict:
    """The loss chart's data (training loss raw and smoothed after step `after`, each epoch's test
    loss and mean training loss, the changes applied) and its words, as ft.loss_figure draws them."""
    train = ft.series(frame, "train_loss")
    smooth = ft.ema(train["value"], ft.EMA_ALPHA)
    new = (train["step"] > after).to_numpy()
    return {
        "start": int((~new).sum()),
        "step": [int(s) for s in train["step"][new]], "raw": _floats(train["value"][new]),
        "smooth": _floats(smooth[new]),
        "test": _points(ft.series(frame, "epoch_test_loss"), "epoch"),
        "means": _points(ft.series(frame, "epoch_train_loss"), "epoch"),
        "events": [{"step": step, "text": text} for step, text in ft.event_marks(events, lang=language)],
        "title": ft.loss_title(language, run.dataset == "synthetic"),
    }


def loss_words(language: str) -> dict:
    """The loss chart's fixed words (names of the lines, axes, hover labels, the empty chart's note)."""
    keys = {"raw": "train_raw", "test": "test_loss", "means": "train_epoch_mean", "x": "step",
            "y": "loss_axis", "loss": "loss", "epoch": "epoch", "waiting": "loss_waiting",
            "test_hover": "test_loss_hover", "means_hover": "train_epoch_mean_hover"}
    words = {name: t(f"training.run.chart.{key}", language) for name, key in keys.items()}
    words["smooth"] = t("training.run.chart.train_ema", language, alpha=ft.EMA_ALPHA)
    return words


def view(store: RunStore, run: Run, frame: pd.DataFrame, events: list[RunEvent], language: str,
         after: int = -1) -> dict:
    """Everything the live view shows of `run`, with the digest of its slow parts."""
    prog = ft.progress(run, frame)
    return {"settled": settled_key(store, run, frame, events, prog),
            "progress": {"fraction": prog.fraction, "text": prog.text(language)},
            "now": now_line(prog, language), "metrics": metrics(run, frame, prog, language),
            "loss": loss(run, frame, events, language, after)}


# ---- the route ----------------------------------------------------------------------------------

_FRAMES: OrderedDict[tuple, dict] = OrderedDict()   # every tab's polls of one run share its rows
_FRAMES_LOCK = threading.Lock()
_FRAMES_KEPT = 8
_STORES: dict[str, RunStore] = {}


def shared_frame(store: RunStore, run: Run) -> pd.DataFrame:
    """The run's metric rows, read once for all tabs: each poll reads only rows added since the last."""
    key = (str(store.root), run.id, run.created_at, run.attempts)
    with _FRAMES_LOCK:
        entry = _FRAMES.get(key)
        if entry is None:
            entry = _FRAMES[key] = {"last_id": 0, "frame": ft.empty_metrics()}
        _FRAMES.move_to_end(key)
        while len(_FRAMES) > _FRAMES_KEPT:
            _FRAMES.popitem(last=False)
        new = store.metrics(run.id, since_id=entry["last_id"])
        if len(new):
            entry["frame"], entry["last_id"] = ft.merge_metrics(entry["frame"], new), int(new["id"].max())
        return entry["frame"]


def _store() -> RunStore:
    root = str(settings.runs_dir())
    if root not in _STORES:
        _STORES[root] = RunStore(root)
    return _STORES[root]


def answer(store: RunStore, run_id: int | None, after: int, language: str) -> dict:
    """The route's answer: the statuses' digest, and the run's view while it is active."""
    if not store.read_only:
        store.reconcile()   # a trainer that died shows as interrupted, as the page would show it
    statuses = store.statuses()
    body: dict = {"statuses": statuses_digest(statuses), "run": None}
    if run_id is not None and run_id in statuses:
        run = store.get(run_id)
        if run.is_active:
            frame = shared_frame(store, run)
            body["run"] = view(store, run, frame, store.events(run.id), language, after)
    return body


def _int(text: str | None, default: int | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else default
    except ValueError:
        return default


def endpoint(request):
    """GET ROUTE?run=ID&after=STEP&lang=LANG (run by Starlette in its thread pool: the store is sqlite)."""
    from starlette.responses import JSONResponse

    query = request.query_params
    language = query.get("lang") if query.get("lang") in LANGUAGES else "en"
    try:
        body = answer(_store(), _int(query.get("run"), None), _int(query.get("after"), -1), language)
    except (RunError, OSError) as exc:   # the page itself shows what is wrong with the store
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Cache-Control": "no-store"})
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
