"""What every page shares: session keys, the dataset choice, the run store handle, the sidebar."""
from __future__ import annotations

import html
import re

import streamlit as st

from core import data, i18n, settings
from core.runs.store import RunError, RunStore
from core.train.device import describe_device
from dashboard.lang import lang, tr
from dashboard.lang import switch as lang_switch

# session_state keys, in one place
DATASET_KIND = "dataset_kind"  # a key of core.data.KINDS


def dataset_kind() -> str:
    return st.session_state.get(DATASET_KIND, "cifar10")


@st.cache_resource(show_spinner=False, max_entries=4)
def _load(kind: str, root: str) -> data.Dataset:
    # read-only and shared by every session: the arrays are never modified in place
    return data.load_dataset(kind, root)


def get_dataset(kind: str | None = None, *, show_problems: bool = True) -> data.Dataset | None:
    """The dataset the user chose, or None after explaining what is missing and how to fix it."""
    kind = kind or dataset_kind()
    try:
        with st.spinner(tr("common.data.loading")):
            return _load(kind, str(data.dataset_root(kind)))
    except data.DataError as exc:
        if show_problems:
            _explain_missing(exc)
        return None


@st.cache_resource
def _store(root: str) -> RunStore:
    # one per folder for every session: it holds only its path (each call opens its own connection)
    return RunStore(root)


def run_store() -> RunStore:
    """The run store in settings.runs_dir(), with runs whose process is gone marked interrupted.
    A store that cannot be used stops the page with what is wrong and what to do; a read-only one
    and runs that cannot be read are named above the page."""
    try:
        store = _store(str(settings.runs_dir()))
    except RunError as exc:
        st.error(str(exc), icon=":material/database:")
        st.stop()
    if store.read_only:
        st.warning(tr("common.store.read_only", root=store.root, why=store.read_only), icon=":material/lock:")
    else:
        store.reconcile()
    for bad in store.unreadable_runs():
        st.warning(tr("common.store.unreadable", id=bad.id, reason=bad.reason), icon=":material/error:")
    return store


def polling_store() -> RunStore:
    """The run store for a fragment that polls it every second: runs whose process is gone are
    marked interrupted (one query over the active runs), but nothing is shown and the runs that
    cannot be read are not listed again (the page run around the fragment did that)."""
    store = _store(str(settings.runs_dir()))
    if not store.read_only:
        store.reconcile()
    return store


# Characters that can start markdown inside a line: emphasis, code, links and images, HTML, tables,
# strikethrough, LaTeX and Streamlit's :directives: (a name is never at the start of a line).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()<>!|~$:#])")


def plain(text: object) -> str:
    """User-supplied text (a run name, a file name, a message quoting one) made safe to put in
    Streamlit markdown: every markdown character is escaped, so it shows as typed and never
    becomes a link, an image (a request to someone's server) or formatting."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    return re.sub(r"(?i)\b(www)\.", r"\1\\.", escaped)  # bare www.host would become a link


def chart_text(text: object) -> str:
    """User-supplied text for a plotly label or legend (plotly reads a few HTML tags, links too)."""
    return html.escape(str(text), quote=False)


LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")


def exposure_warning(address: str | None, language: str = "en") -> str | None:
    """What to tell the user when the server listens beyond this machine (None when it does not)."""
    if address in LOCAL_ADDRESSES:
        return None
    where = (i18n.t("common.exposure.address", language, address=address) if address
             else i18n.t("common.exposure.everywhere", language))
    return i18n.t("common.exposure.warning", language, where=where)


def warn_if_reachable() -> None:
    message = exposure_warning(st.get_option("server.address"), lang())
    if message:
        st.warning(message, icon=":material/public:")


def _choose_synthetic() -> None:
    st.session_state[DATASET_KIND] = "synthetic"


def _explain_missing(exc: data.DataError) -> None:
    if lang() == i18n.DEFAULT_LANGUAGE:
        st.error(str(exc))
    else:  # what to do in the reader's language; the message with its paths and commands below it
        st.error(tr("common.data.missing_summary"))
        with st.expander(tr("common.words.details")):
            st.markdown(str(exc))
    cols = st.columns([3, 3, 4])
    # a callback: the sidebar's radio owning this key has already been drawn in this run
    cols[0].button(tr("common.data.use_synthetic"), type="primary", key="use_synthetic", on_click=_choose_synthetic)
    if isinstance(exc, data.DataMissingError) and not settings.offline():
        if cols[1].button(tr("common.data.download"), key="download_cifar"):
            bar = st.progress(0.0, text=tr("common.data.downloading"))

            def progress(done: int, total: int) -> None:
                frac = done / total if total else 0.0
                bar.progress(min(frac, 1.0), text=tr("common.data.downloading_mb", done=done / 1e6, total=total / 1e6))

            try:
                data.download_cifar10(settings.data_root(), progress=progress)
            except data.DataError as err:
                st.error(str(err))
            else:
                _load.clear()
                st.rerun()


def kind_label(kind: str) -> str:
    """'CIFAR-10' or 'Synthetic demo set' in the session's language."""
    return tr(f"common.datasets.{kind}")


def sidebar() -> None:
    with st.sidebar:
        lang_switch()
        st.radio(tr("common.sidebar.dataset"), options=list(data.KINDS), format_func=kind_label, key=DATASET_KIND,
                 help=tr("common.sidebar.dataset_help"))
        kind = dataset_kind()
        if kind == "synthetic":
            st.caption(tr("common.sidebar.synthetic", root=settings.synthetic_root()))
        else:
            status = data.cifar10_status(settings.data_root())
            icon = ":material/check_circle:" if status.usable else ":material/warning:"
            problem = "" if status.usable else tr("common.sidebar.damaged" if status.present else "common.sidebar.not_found")
            st.caption(tr("common.sidebar.cifar_found", icon=icon, root=status.root, problem=problem))
            if status.damaged:
                st.error(status.message)
        st.caption(tr("common.sidebar.device", device=describe_device()))
