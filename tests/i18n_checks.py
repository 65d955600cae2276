"""Checks shared by the language tests: text a Chinese page still shows in English."""
from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

# Four or more English words in a row: a sentence or label nobody translated. Code, paths, commands,
# numbers with units and the names kept in English on purpose (class names, model ids) are shorter
# or sit in code spans, which are removed before looking.
_ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ ,'-]+[A-Za-z][a-z]+){3,}\b")
_CODE = re.compile(r"`[^`]*`|```.*?```", re.S)


def _texts(at: AppTest | Block) -> list[str]:
    """What the page shows as text: headings, markdown, captions, alerts, and widgets' labels and help."""
    found: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        for element in getattr(at, kind):
            found.append(str(element.value))
    for kind in ("button", "checkbox", "toggle", "radio", "selectbox", "multiselect", "slider", "select_slider",
                 "number_input", "text_input", "text_area"):
        for widget in getattr(at, kind):
            proto = widget.proto
            found.append(getattr(proto, "label", ""))
            found.append(getattr(proto, "help", ""))
            if kind in ("radio", "selectbox", "multiselect", "select_slider"):
                found.extend(str(o) for o in getattr(widget, "options", []))
    for expander in at.expander:
        found.append(expander.label)
    for tab in at.tabs:
        found.append(tab.label)
    return [t for t in found if t]


def english_leftovers(at: AppTest | Block) -> list[str]:
    """Runs of English words on a page that should be in Chinese (empty when all is translated)."""
    left = []
    for text in _texts(at):
        bare = _CODE.sub(" ", text)
        left.extend(m.group(0) for m in _ENGLISH_RUN.finditer(bare))
    return left
