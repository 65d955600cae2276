"""What every page shares: session keys, the dataset choice, the run store handle, the sidebar."""
from __future__ import annotations

import streamlit as st

from core import data, settings
from core.runs.store import RunStore
from core.train.device import describe_device

# session_state keys, in one place
DATASET_KIND = "dataset_kind"  # a key of core.data.KINDS


def dataset_kind() -> str:
    return st.session_state.get(DATASET_KIND, "cifar10")


@st.cache_resource(show_spinner="Loading images…", max_entries=4)
def _load(kind: str, root: str) -> data.Dataset:
    # read-only and shared by every session: the arrays are never modified in place
    return data.load_dataset(kind, root)


def get_dataset(kind: str | None = None, *, show_problems: bool = True) -> data.Dataset | None:
    """The dataset the user chose, or None after explaining what is missing and how to fix it."""
    kind = kind or dataset_kind()
    try:
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
    """The run store in settings.runs_dir(), with runs whose process is gone marked interrupted."""
    store = _store(str(settings.runs_dir()))
    store.reconcile()
    return store


def _choose_synthetic() -> None:
    st.session_state[DATASET_KIND] = "synthetic"


def _explain_missing(exc: data.DataError) -> None:
    st.error(str(exc))
    cols = st.columns([3, 3, 4])
    # a callback: the sidebar's radio owning this key has already been drawn in this run
    cols[0].button("Use the synthetic demo set", type="primary", key="use_synthetic", on_click=_choose_synthetic)
    if isinstance(exc, data.DataMissingError) and not settings.offline():
        if cols[1].button("Download CIFAR-10 (163 MB)", key="download_cifar"):
            bar = st.progress(0.0, text="Downloading CIFAR-10…")

            def progress(done: int, total: int) -> None:
                frac = done / total if total else 0.0
                bar.progress(min(frac, 1.0), text=f"Downloading CIFAR-10… {done / 1e6:.0f} / {total / 1e6:.0f} MB")

            try:
                data.download_cifar10(settings.data_root(), progress=progress)
            except data.DataError as err:
                st.error(str(err))
            else:
                _load.clear()
                st.rerun()


def sidebar() -> None:
    with st.sidebar:
        st.radio(
            "Dataset",
            options=list(data.KINDS),
            format_func=data.kind_label,
            key=DATASET_KIND,
            help="CIFAR-10 is read from CIFAR10_ROOT (default ./data). The synthetic demo set is "
            "drawn by the app itself, so it works offline.",
        )
        kind = dataset_kind()
        if kind == "synthetic":
            st.caption(f"**Synthetic** demo images (not CIFAR-10), in `{settings.synthetic_root()}`")
        else:
            status = data.cifar10_status(settings.data_root())
            icon = ":material/check_circle:" if status.present else ":material/warning:"
            st.caption(f"{icon} CIFAR-10 from `{status.root}`" + ("" if status.present else " — not found"))
        st.caption(f"Device: **{describe_device()}**")
