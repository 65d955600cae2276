"""The language the pages speak, chosen in the sidebar and remembered for the session.

    from dashboard.lang import tr
    st.subheader(tr("training.page.new_run"))
    st.caption(tr("training.page.steps_per_epoch", n=78))

Pages never hold English or Chinese text of their own: every word comes from the catalogues in
core/i18n/<lang>/ (see core.i18n). The choice lives in session state and in the address (?lang=zh),
so a reload or a shared link keeps it.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core import i18n

LANG = "lang"  # session-state key of the sidebar's language switch


def lang() -> str:
    """The session's language: the switch's value, else the address's ?lang=, else English."""
    chosen = st.session_state.get(LANG)
    if chosen in i18n.LANGUAGES:
        return chosen
    asked = st.query_params.get(LANG)
    return asked if asked in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


def tr(key: str, /, **values: Any) -> str:
    """UI text in the session's language."""
    return i18n.t(key, lang(), **values)


def core_text(key: str, english: str, /, **values: Any) -> str:
    """Text whose English lives in core (a setting's label, a preset's description), in the session's language."""
    return i18n.core_text(key, english, lang(), **values)


def class_name(name: str) -> str:
    """A CIFAR-10 class name as pages show it ('cat', or 'cat (猫)' in Chinese)."""
    return i18n.class_name(name, lang())


def _keep_in_address() -> None:
    """The address carries a language other than English (a page change drops it, a reload reads it)."""
    chosen = st.session_state[LANG]
    if chosen == i18n.DEFAULT_LANGUAGE:
        if LANG in st.query_params:
            del st.query_params[LANG]
    elif st.query_params.get(LANG) != chosen:
        st.query_params[LANG] = chosen


def _relabel_choices() -> None:
    """The switch's callback: every widget keeps its choice in the new language.

    The browser holds an option widget's choice (selectbox, radio, select_slider, ...) as its label, and
    sends that label back on every page run; after a switch the old language's label matches no option
    and Streamlit would hand the page the label instead of the option. Writing each value again makes
    Streamlit send the browser the new label. Only plain values are written: buttons (bool) and
    uploads cannot be set, and checkboxes have no label to change."""
    for key in list(st.session_state.keys()):
        value = st.session_state[key]
        plain = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        if key != LANG and (plain or (isinstance(value, (list, tuple)) and all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value))):
            st.session_state[key] = value


def switch() -> None:
    """The sidebar's language switch. Drawn on every page run, so its value outlives page changes."""
    if st.session_state.get(LANG) not in i18n.LANGUAGES:
        st.session_state[LANG] = lang()  # first run of the session: the address's choice, if any
    st.radio(tr("common.sidebar.language"), options=list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get,
             key=LANG, horizontal=True, on_change=_relabel_choices)
    _keep_in_address()
