"""The Training form, generated from TrainConfig's description of itself (core.train.config.config_fields).

    config_form.fill(cfg)                    # put a config's values into the widgets (e.g. a preset's)
    config_form.draw({"device": [...]})      # every field's widget, inside the page's st.form
    config_form.preset_summary(preset, 50_000)   # what a preset is for, its steps, what it changes
    config_form.model_summary("cpu_cnn")     # the model in plain words, its parameters, why a CNN sees more
    cfg = base.replace(**config_form.changes())   # the widgets' values as TrainConfig settings

Widget keys come from `field_key` only. Two fields are not drawn here: `preset` (the page's preset
picker, which fills the form) and `dataset` (the sidebar's choice, shared by every page); the page
may draw a field before the form itself (`draw_field`, e.g. the model, whose description it shows)
and leave it out of `draw`. Bounds are stated in each widget's help rather than enforced by it:
Streamlit would silently reset an out-of-range number, while the config's ConfigError says what is
wrong. Every word is in the session's language: a setting's label, help, unit and choices from the
catalogues' core.field.* keys, the form's own words from training.form.*.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.train.config import (GROUPS, ConfigError, EpochPlan, FieldSpec, Preset, changes_from_tutorial,
                               config_fields, epoch_plan, field_spec, group_title)
from core.i18n import t
from core.train.models import MODELS, parameter_count
from dashboard import common
from dashboard.lang import lang, tr

KEY_PREFIX = "train_"
KEYS_ELSEWHERE = {"dataset": common.DATASET_KIND}  # the sidebar's dataset choice
NOT_DRAWN = ("preset", "dataset")                  # the page's preset picker; the sidebar


def field_key(name: str) -> str:
    """The widget (session_state) key of a TrainConfig field: 'train_batch_size'."""
    return KEYS_ELSEWHERE.get(name, KEY_PREFIX + name)


def form_fields() -> list[FieldSpec]:
    """The fields this form draws, in display order."""
    return [spec for spec in config_fields() if spec.name not in NOT_DRAWN]


def label(name: str, language: str | None = None) -> str:
    """The field's label as the form shows it ('Training images (0 = all)'), in `language` (default:
    the session's); names that are not settings unchanged."""
    try:
        spec = field_spec(name)
    except KeyError:  # e.g. ConfigError("config", ...)
        return name
    language = language or lang()
    text = spec.text("label", language)
    if spec.kind == "optional_int":
        return t("training.form.optional_label", language, label=text, none=spec.text("none_means", language))
    return text


def help_text(spec: FieldSpec) -> str:
    """The field's sentence, then its unit and range and the command-line option."""
    here = lang()
    values = spec.range_text(here).replace(">=", "≥").replace("<=", "≤")
    if spec.kind == "optional_int":
        values = tr("training.form.or_zero", range=values, none=spec.text("none_means", here))
    unit = tr("training.form.unit", unit=spec.text("unit", here)) if spec.unit else ""
    details = tr("training.form.separator").join(filter(None, (unit, values)))
    sentence = spec.text("help", here)
    if details:
        sentence = tr("training.form.help_details", help=sentence, details=details)
    return tr("training.form.help", help=sentence, flag=spec.flag)


def value_text(spec: FieldSpec, value: Any) -> str:
    """A setting's value as a page shows it: a choice's title, on/off, 0.0001, 'all'."""
    if spec.kind == "choice":
        return spec.choice_title(value, lang())
    if spec.kind == "bool":
        return tr("training.form.on") if value else tr("training.form.off")
    return spec.show(value, lang())


def error_text(exc: ConfigError) -> str:
    """'**Learning rate**: must be > 0, got -1', in the session's language (markdown)."""
    return tr("training.form.error", label=common.plain(label(exc.field)), message=common.plain(exc.text(lang())))


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
    """The widget for one field, in `where` (a column or container); returns its value. Options
    stay the config's ids; the widget shows their titles."""
    common_args = dict(label=label(spec.name), key=field_key(spec.name), help=help_text(spec))
    if spec.kind == "choice":
        here = lang()   # format_func may be called later (e.g. by a test), outside this page run
        return where.selectbox(options=list(choices if choices is not None else spec.choices),
                               format_func=lambda value: spec.choice_title(value, here), **common_args)
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


def draw(choices: dict[str, Sequence[str]] | None = None, *, skip: Iterable[str] = ()) -> None:
    """Every drawn field (but those in `skip`, which the page draws itself): the common ones first,
    the rest by group under "More settings".

    `choices` narrows a choice field's options (e.g. {"device": the devices this machine has})."""
    choices = choices or {}
    specs = [s for s in form_fields() if s.name not in set(skip)]
    _draw_fields([s for s in specs if not s.advanced], choices)
    with st.expander(tr("training.form.more_settings")):
        for group in GROUPS:
            more = [s for s in specs if s.advanced and s.group == group]
            if more:
                st.caption(f"**{group_title(group, lang())}**")
                _draw_fields(more, choices)


# ---- the preset and the model, explained above the form ---------------------------------------

def changes_table(cfg) -> pd.DataFrame:
    """What `cfg` changes from the tutorial's recipe (core.train.config.changes_from_tutorial): a row
    per setting with its label, the tutorial's value and cfg's value, as the form words them."""
    rows = [(label(spec.name), value_text(spec, tutorial), value_text(spec, value))
            for spec, tutorial, value in changes_from_tutorial(cfg)]
    return pd.DataFrame(rows, columns=[tr("training.form.changes_setting"), tr("training.form.changes_tutorial"),
                                       tr("training.form.changes_preset")])


def plan_text(plan: EpochPlan) -> str:
    """'batch 16 → 2,500 steps per epoch × 10 epochs (25,000 steps) over 40,000 training images'."""
    if plan.steps_per_epoch == 0:
        return tr("training.form.plan_too_few", batch=plan.batch_size, images=plan.images)
    over = (tr("training.form.plan_first", n=plan.images, of=plan.dataset_images - plan.held_out) if plan.subset
            else tr("training.form.plan_all", n=plan.images))
    text = tr("training.form.plan", batch=plan.batch_size, steps=plan.steps_per_epoch, epochs=plan.epochs,
              total=plan.total_steps, over=over)
    if plan.held_out:
        text += tr("training.form.plan_held_out", n=plan.held_out)
    if plan.left_over:
        text += tr("training.form.plan_left_over", n=plan.left_over)
    return text


def preset_summary(preset: Preset, dataset_images: int | None) -> None:
    """The preset's purpose and time hints, its epochs, batches and steps on the chosen data
    (`dataset_images`: the training split's size; None leaves that line out), and what it changes
    from the tutorial's recipe, with the recipe's details (the jargon) below the table."""
    here = lang()
    st.markdown(preset.text("purpose", here))
    st.caption(tr("training.form.time_hints", cpu=preset.text("cpu_time_hint", here),
                  gpu=preset.text("gpu_time_hint", here)))
    if dataset_images is not None:
        st.caption(plan_text(epoch_plan(preset.config, dataset_images)), help=tr("training.form.plan_help"))
    table = changes_table(preset.config)
    title = (tr("training.form.changes_title", n=len(table)) if len(table)
             else tr("training.form.changes_title_none"))
    with st.expander(title):
        if len(table):
            st.table(table, hide_index=True)
        else:
            st.caption(tr("training.form.no_changes"))
        st.caption(tr("training.form.details", details=preset.text("description", here)))


def models_table() -> pd.DataFrame:
    """Every model's title and parameter count (counted on the built model)."""
    return pd.DataFrame([(spec.text("title", lang()), f"{parameter_count(name):,}") for name, spec in MODELS.items()],
                        columns=[tr("training.form.models_model"), tr("training.form.models_parameters")])


def model_summary(name: str) -> None:
    """The chosen model in plain words with its parameter count, and why a convolutional net sees
    more than the MLP (what a convolution shares; every model's size; the model's layers as details)."""
    spec, here = MODELS[name], lang()
    st.caption(tr("training.form.model_line", parameters=parameter_count(name),
                  description=spec.text("description", here)))
    with st.expander(tr("training.form.why_cnn")):
        st.markdown(tr("training.form.conv_shares", mlp=parameter_count("tutorial_mlp"),
                       cnn=parameter_count("cpu_cnn")))
        st.table(models_table(), hide_index=True)
        st.caption(tr("training.form.details", details=spec.text("details", here)))
