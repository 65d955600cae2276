"""Every word of the Training form in every language: each setting, group, preset and model has its
translation (their keys are built from names, so tests/test_i18n.py's scan of literal keys cannot
see them), translations fill in only the values their English has, and validation messages read
in Chinese."""
from __future__ import annotations

import pytest

from core import i18n
from core.i18n import LANGUAGES, catalogue, placeholders
from core.train.config import (GROUP_KEYS, GROUPS, MESSAGES, PRESETS, ConfigError, FieldSpec, Preset, TrainConfig,
                               config_fields, field_spec)
from core.train.lr_finder import SUGGESTION_RULE
from core.train.models import MODELS, ModelSpec
from dashboard import lr_finder_panel, sweep_panel

OTHER_LANGUAGES = [lang for lang in LANGUAGES if lang != i18n.DEFAULT_LANGUAGE]
OUR_CORE_KEYS = ("core.field.", "core.group.", "core.preset.", "core.model.", "core.config_error.", "core.lr_finder.")


def core_texts() -> dict[str, str]:
    """{catalogue key: English template} of every text whose English lives in core and that the
    Training form shows: each setting's label, help, unit, none_means and choice titles, each
    group, each preset's and model's words, each validation message, the finder's rule."""
    texts: dict[str, str] = {}
    for spec in config_fields():
        for part in FieldSpec.TEXT_PARTS:
            if getattr(spec, part):
                texts[f"core.field.{spec.name}.{part}"] = getattr(spec, part)
        for value in spec.choices:
            texts[f"core.{spec.choice_text_key(value)}"] = spec.choice_label(value)
    texts.update({f"core.group.{GROUP_KEYS[group]}": group for group in GROUPS})
    for preset in PRESETS.values():
        texts.update({f"core.preset.{preset.name}.{part}": getattr(preset, part) for part in Preset.TEXT_PARTS})
    for model in MODELS.values():
        texts.update({f"core.model.{model.name}.{part}": getattr(model, part) for part in ModelSpec.TEXT_PARTS})
    texts.update({f"core.config_error.{key}": english for key, english in MESSAGES.items()})
    texts["core.lr_finder.rule"] = SUGGESTION_RULE
    return texts


def test_the_enumeration_sees_every_setting_preset_and_model():
    keys = core_texts()
    assert len([k for k in keys if k.endswith(".label")]) == len(config_fields()) == 30
    assert "core.model.cpu_cnn.title" in keys and "core.field.optimizer.choices.sgd" in keys
    assert "core.preset.fast_mlp.purpose" in keys and "core.group.tricks" in keys
    assert "core.field.train_subset.none_means" in keys and "core.field.batch_size.unit" in keys


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_every_setting_group_preset_and_model_has_its_translation(lang):
    have = catalogue(lang)
    missing = sorted(key for key in core_texts() if key not in have)
    assert not missing, f"not in the {lang} catalogue: {missing}"


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_translations_fill_in_only_values_their_english_has(lang):
    """A translation may leave a value out (Chinese says 'None（全部）' without the unit), never ask
    for one the code does not give."""
    have = catalogue(lang)
    for key, english in core_texts().items():
        assert placeholders(have[key]) <= placeholders(english), f"{lang} {key}: {have[key]!r}"


@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_no_translation_of_ours_names_a_setting_preset_or_model_that_does_not_exist(lang):
    known = core_texts()
    orphans = sorted(k for k in catalogue(lang) if k.startswith(OUR_CORE_KEYS) and k not in known)
    assert not orphans, f"{lang} translates texts the code does not have (a typo?): {orphans}"


def test_every_choice_has_a_title_in_every_language():
    for spec in config_fields():
        assert set(dict(spec.choice_labels)) == set(spec.choices), spec.name
        for value in spec.choices:
            titles = {lang: spec.choice_title(value, lang) for lang in LANGUAGES}
            assert titles["en"] == spec.choice_label(value) and all(titles.values())
    assert field_spec("model").choice_title("cpu_cnn", "zh") == MODELS["cpu_cnn"].text("title", "zh") == "小型 CNN（CPU）"


def test_the_keys_pages_build_from_names_exist_in_every_language():
    """Statuses, finder endings and the sweep table's columns are looked up by name (f-string keys)."""
    keys = [f"training.lr_finder.ended.{e.replace(' ', '_')}" for e in lr_finder_panel.ENDINGS]
    keys += [f"training.sweep.status.{s}" for s in sweep_panel.STATUSES]
    keys += [f"training.sweep.chosen_by.{k}" for k in sweep_panel.CHOSEN_BY.values()]
    keys += [f"training.sweep.column.{k}" for k in sweep_panel.COLUMNS.values()]
    for lang in LANGUAGES:
        assert not [k for k in keys if k not in catalogue(lang)], lang
    # English column names are core.runs.sweep.summary_table's own (tests and the CSV-minded read them)
    assert all(i18n.t(f"training.sweep.column.{key}", "en") == name for name, key in sweep_panel.COLUMNS.items())


def test_english_words_come_from_core_unchanged():
    spec = field_spec("batch_size")
    assert spec.text("label") == "Batch size" and spec.text("unit") == "images" and spec.text("none_means") == ""
    assert PRESETS["tutorial_mlp"].text("title") == PRESETS["tutorial_mlp"].title
    assert MODELS["tutorial_mlp"].text("description") == MODELS["tutorial_mlp"].description
    with pytest.raises(ValueError):
        spec.text("flag")


def _error(**settings) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        TrainConfig(**settings)
    return info.value


@pytest.mark.parametrize(("settings", "english", "chinese"), [
    ({"lr": 0.0}, "must be > 0, got 0", "必须大于 0，当前为 0"),
    ({"batch_size": 0}, "must be >= 1, got 0", "必须大于等于 1，当前为 0"),
    ({"label_smoothing": 1.0}, "must be in [0, 1), got 1", "必须在 [0, 1) 范围内，当前为 1"),
    ({"crop_padding": 17}, "must be between 0 and 16 pixels, got 17", "必须在 0 到 16 像素之间，当前为 17"),
    ({"train_subset": 0}, "must be at least 1 or None (all images), got 0", "必须至少为 1，或为 None（全部），当前为 0"),
    ({"epochs": 10_001}, "must be at most 10,000, got 10001", "必须不超过 10,000，当前为 10001"),
    ({"batch_size": 70_000}, "must be at most 65,536 images, got 70000", "必须不超过 65,536 张图片，当前为 70000"),
    ({"train_subset": 100, "batch_size": 128}, "must be at most the number of training images (100), got 128",
     "不能超过训练图片数（100），当前为 128"),
    ({"optimizer": "rmsprop"}, "must be one of adam, adamw, sgd, got 'rmsprop'",
     "必须是 adam, adamw, sgd 之一，当前为 'rmsprop'"),
])
def test_validation_messages_read_in_chinese_and_stay_english_by_default(settings, english, chinese):
    err = _error(**settings)
    assert err.message == english == err.text("en") and str(err) == f"{err.field}: {english}"
    assert err.text("zh") == chinese


def test_a_message_written_as_plain_text_stays_as_written():
    err = ConfigError("nproc", "this machine has 2 CPU cores: choose at most 2 processes, got 3")
    assert err.text("zh") == err.message and err.phrase is None


def test_help_ranges_read_in_chinese():
    assert field_spec("batch_size").range_text("zh") == "大于等于 1，不超过 65,536"
    assert field_spec("batch_size").range_text() == ">= 1, at most 65,536"
    assert field_spec("ema_decay").range_text("zh") == "在 (0, 1) 范围内"
    assert field_spec("epochs").cap_text("zh") == "不超过 10,000"
    assert field_spec("whiten_bias_epochs").cap_text("zh") == "不超过 10,000 个 epoch"
