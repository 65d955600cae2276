"""The Training form, generated from TrainConfig's description of itself (core.train.config.config_fields).

    config_form.fill(cfg)                    # put a config's values into the widgets (e.g. a preset's)
    config_form.draw({"device": [...]})      # every field's widget, inside the page's st.form
    cfg = base.replace(**config_form.changes())   # the widgets' values as TrainConfig settings

Widget keys come from `field_key` only. Two fields are not drawn here: `preset` (the page's preset
picker, which fills the form) and `dataset` (the sidebar's choice, shared by every page).
Bounds are stated in each widget's help rather than enforced by it: Streamlit would silently
reset an out-of-range number, while the config's ConfigError says what is wrong.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from core.train.config import GROUPS, FieldSpec, config_fields, field_spec
from dashboard import common

KEY_PREFIX = "train_"
KEYS_ELSEWHERE = {"dataset": common.DATASET_KIND}  # the sidebar's dataset choice
NOT_DRAWN = ("preset", "dataset")                  # the page's preset picker; the sidebar
MORE_SETTINGS = "More settings"                    # the expander holding the less-used fields


def field_key(name: str) -> str:
    """The widget (session_state) key of a TrainConfig field: 'train_batch_size'."""
    return KEYS_ELSEWHERE.get(name, KEY_PREFIX + name)


def form_fields() -> list[FieldSpec]:
    """The fields this form draws, in display order."""
    return [spec for spec in config_fields() if spec.name not in NOT_DRAWN]


def label(name: str) -> str:
    """The field's label as the form shows it ('Training images (0 = all)'); other names unchanged."""
    try:
        spec = field_spec(name)
    except KeyError:  # e.g. ConfigError("config", ...)
        return name
    return f"{spec.label} (0 = {spec.none_means})" if spec.kind == "optional_int" else spec.label


def help_text(spec: FieldSpec) -> str:
    """The field's sentence, then its unit and range and the command-line option."""
    values = spec.range_text().replace(">=", "≥").replace("<=", "≤")
    if spec.kind == "optional_int":
        values += f", or 0 for {spec.none_means}"
    details = "; ".join(filter(None, (spec.unit, values)))
    return f"{spec.help}" + (f" ({details})" if details else "") + f"  \nCommand line: `{spec.flag}`"


def widget_value(spec: FieldSpec, value: Any) -> Any:
    """A config value as its widget holds it (None of an optional number is 0)."""
    return 0 if spec.kind == "optional_int" and value is None else value


def config_value(spec: FieldSpec, value: Any) -> Any:
    """A widget's value as the config takes it (0 of an optional number is None)."""
    return None if spec.kind == "optional_int" and value == 0 else value


def values_of(cfg) -> dict[str, Any]:
    """{widget key: value} for every drawn field of `cfg`."""
    return {field_key(spec.name): widget_value(spec, getattr(cfg, spec.name)) for spec in form_fields()}


def fill(cfg) -> None:
    """Set every widget to `cfg`'s value (from a callback, or before the widgets are drawn)."""
    st.session_state.update(values_of(cfg))


def keep(cfg) -> None:
    """Widgets that have no value yet start at `cfg`'s; edits survive switching pages."""
    for key, value in values_of(cfg).items():
        st.session_state[key] = st.session_state.get(key, value)


def changes() -> dict[str, Any]:
    """{field: value} from the widgets, ready for TrainConfig.replace."""
    return {spec.name: config_value(spec, st.session_state[field_key(spec.name)]) for spec in form_fields()}


def draw_field(where, spec: FieldSpec, choices: Sequence[str] | None = None) -> Any:
    """The widget for one field, in `where` (a column or container); returns its value."""
    common_args = dict(label=label(spec.name), key=field_key(spec.name), help=help_text(spec))
    if spec.kind == "choice":
        return where.selectbox(options=list(choices if choices is not None else spec.choices),
                               format_func=spec.choice_label, **common_args)
    if spec.kind == "bool":
        return where.checkbox(**common_args)
    if spec.kind == "float":
        return where.number_input(step=spec.step or 0.01, format="%g", **common_args)
    if spec.is_number:
        return where.number_input(step=int(spec.step or 1), **common_args)
    return where.text_input(**common_args)


def _draw_fields(specs: list[FieldSpec], choices: dict[str, Sequence[str]]) -> None:
    """Numbers and choices in pairs of columns, then the checkboxes one per line (their labels stay whole)."""
    boxes = [s for s in specs if s.kind == "bool"]
    pairs = [s for s in specs if s.kind != "bool"]
    for i in range(0, len(pairs), 2):
        for column, spec in zip(st.columns(2, vertical_alignment="bottom"), pairs[i:i + 2]):
            draw_field(column, spec, choices.get(spec.name))
    for spec in boxes:
        draw_field(st, spec)


def draw(choices: dict[str, Sequence[str]] | None = None) -> None:
    """Every drawn field: the common ones first, the rest by group under MORE_SETTINGS.

    `choices` narrows a choice field's options (e.g. {"device": the devices this machine has})."""
    choices = choices or {}
    specs = form_fields()
    _draw_fields([s for s in specs if not s.advanced], choices)
    with st.expander(MORE_SETTINGS):
        for group in GROUPS:
            more = [s for s in specs if s.advanced and s.group == group]
            if more:
                st.caption(f"**{group}**")
                _draw_fields(more, choices)
