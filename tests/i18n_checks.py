"""Checks shared by the language tests: text a Chinese page still shows in English (in its text and its
charts), and charts or pictures without a caption."""
from __future__ import annotations

import json
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


# Words a Chinese chart may keep in Latin letters: the tutorial's code names and the model's terms.
KEPT_WORDS = {"ToTensor", "Normalize", "logit", "softmax", "epoch", "batch", "step"}


def _nodes(block: Block) -> list:
    return [block.children[k] for k in sorted(block.children)]


def uncaptioned(at: AppTest | Block) -> list[str]:
    """Charts and pictures with no caption: a chart must be followed by a non-empty st.caption, a
    picture must carry its own caption (st.image(caption=...)) or be followed by one."""
    missing: list[str] = []

    def visit(block: Block) -> None:
        nodes = _nodes(block)
        for i, node in enumerate(nodes):
            following = nodes[i + 1] if i + 1 < len(nodes) else None
            captioned = following is not None and following.type == "caption" and str(following.value).strip()
            if node.type == "plotly_chart" and not captioned:
                missing.append(f"chart {json.loads(node.proto.spec).get('layout', {}).get('title', '')}")
            elif node.type == "image" and not (captioned or any(c.strip() for c in node.captions)):
                missing.append("picture")
            elif isinstance(node, Block):
                visit(node)

    visit(at.main if isinstance(at, AppTest) else at)
    return missing


def chart_words(at: AppTest, skip_names: frozenset[str] = frozenset()) -> list[str]:
    """Every word a chart shows as its own text: titles, axis titles, subplot titles, legend names and
    hover templates (not the plotted categories, which are class or layer names; nor the legend
    names in `skip_names`, e.g. runs named by the user)."""
    texts: list[str] = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        layout = spec.get("layout", {})
        for key, value in layout.items():
            if isinstance(value, dict) and ("title" in value or key == "title"):
                title = value.get("title", value) if key != "title" else value
                texts.append(title.get("text", "") if isinstance(title, dict) else str(title))
        texts += [a.get("text", "") for a in layout.get("annotations", [])]
        for trace in spec.get("data", []):
            if trace.get("name") not in skip_names:
                texts.append(str(trace.get("name", "")))
            texts.append(str(trace.get("hovertemplate", "")))
    return texts


def english_in_charts(at: AppTest, allowed: frozenset[str] = frozenset(),
                      skip_names: frozenset[str] = frozenset()) -> list[str]:
    """English words (3+ letters, outside KEPT_WORDS and `allowed`) left in a Chinese page's charts."""
    left = []
    for text in chart_words(at, skip_names):
        bare = re.sub(r"%\{[^}]*\}|<[^>]+>", " ", text)
        left += [w for w in re.findall(r"[A-Za-z]{3,}", bare) if w not in KEPT_WORDS and w not in allowed]
    return left


def assert_all_chinese(at: AppTest, what: str) -> None:
    """The page ran, and shows no English in its text or charts and no chart or picture without a caption."""
    assert not at.exception, at.exception
    left = english_leftovers(at)
    assert not left, f"{what}: still in English: {left[:5]}"
    charts = english_in_charts(at)
    assert not charts, f"{what}: charts still in English: {charts[:5]}"
    assert not uncaptioned(at), f"{what}: {uncaptioned(at)}"
