"""The catalogues (core/i18n/<lang>/*.toml): every language has every key with the same placeholders,
every key the code asks for exists, and every page renders in every language without a missing key."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import data, i18n
from core.data.synthetic import SYNTHETIC_CLASSES
from core.i18n import LANGUAGES, catalogue, placeholders
from tests.i18n_checks import english_leftovers

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted((REPO / "dashboard" / "views").glob("*.py"))
UI_CALLS = {"tr", "t"}                # tr("key", ...) in pages, i18n.t("key", lang, ...) in core
CORE_CALLS = {"core_text"}           # core_text("key", english, ...)


def _ui_keys(lang: str) -> set[str]:
    return {k for k in catalogue(lang) if not k.startswith("core.")}


def test_every_language_has_every_ui_key():
    english = _ui_keys("en")
    for lang in LANGUAGES:
        keys = _ui_keys(lang)
        assert not english - keys, f"missing in {lang}: {sorted(english - keys)}"
        assert not keys - english, f"in {lang} but not in English: {sorted(keys - english)}"


def test_translations_fill_in_the_same_placeholders():
    english = catalogue("en")
    for lang in LANGUAGES:
        for key, text in catalogue(lang).items():
            if key in english:
                assert placeholders(text) == placeholders(english[key]), f"{lang} {key}: {text!r}"


def test_english_has_no_core_keys():  # English core text lives in the code, once
    assert not [k for k in catalogue("en") if k.startswith("core.")]


def _literal_calls(names: set[str]) -> list[tuple[Path, int, str]]:
    """(file, line, key) for every call of a function in `names` whose first argument is a string."""
    found = []
    for folder in ("core", "dashboard"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                        and isinstance(node.args[0].value, str):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in names:
                        found.append((path.relative_to(REPO), node.lineno, node.args[0].value))
    return found


def test_every_key_the_code_asks_for_exists_in_every_language():
    calls = _literal_calls(UI_CALLS)
    assert len(calls) > 500  # the scan sees the pages' calls (619 on 2026-11-30)
    for lang in LANGUAGES:
        missing = [f"{p}:{line} {key}" for p, line, key in calls if key not in catalogue(lang)]
        assert not missing, f"not in the {lang} catalogue:\n" + "\n".join(missing)


def test_every_core_text_has_a_translation():
    calls = _literal_calls(CORE_CALLS)
    for lang in LANGUAGES:
        if lang == i18n.DEFAULT_LANGUAGE:
            continue
        missing = [f"{p}:{line} core.{key}" for p, line, key in calls if f"core.{key}" not in catalogue(lang)]
        assert not missing, f"not in the {lang} catalogue:\n" + "\n".join(missing)


def test_page_titles_and_dataset_names_exist():
    for lang in LANGUAGES:
        for page in PAGES:
            assert f"common.pages.{page.stem}" in catalogue(lang)
        for kind in data.KINDS:
            assert f"common.datasets.{kind}" in catalogue(lang)


def test_strict_mode_raises_on_a_missing_key_and_the_app_falls_back_without_it(monkeypatch):
    with pytest.raises(i18n.MissingText):
        i18n.t("no.such.key", "zh")
    monkeypatch.setenv("CIFARLAB_I18N_STRICT", "0")
    assert i18n.t("no.such.key", "zh") == "no.such.key"
    assert i18n.t("common.pages.training", "zh") == "训练"


def test_class_names_keep_the_english_with_chinese_in_brackets():
    assert i18n.class_name("cat", "en") == "cat"
    assert i18n.class_name("cat", "zh") == "cat (猫)"
    assert set(i18n.CLASS_NAMES_ZH) == set(data.CLASSES)
    assert set(i18n.SYNTHETIC_NAMES_ZH) == set(SYNTHETIC_CLASSES)
    assert i18n.class_name("ring", "zh") == "ring (圆环)"
    assert i18n.class_name("my own class", "zh") == "my own class"


def test_placeholders_read_format_fields():
    assert placeholders("batch {n:,} of {total} ({pct:.0%})") == {"n", "total", "pct"}
    assert placeholders("no fields") == set()


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_every_page_renders_in_every_language(page, lang, synthetic_dataset):
    at = AppTest.from_file(str(REPO / "dashboard" / "views" / page), default_timeout=90)
    at.session_state["dataset_kind"] = "synthetic"
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, at.exception  # strict mode (conftest): a missing key raises
    if lang == "zh":
        left = english_leftovers(at)
        assert not left, f"{page} in Chinese still shows English: {left[:10]}"


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_the_sidebar_and_navigation_speak_the_chosen_language(lang, synthetic_dataset):
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=90)
    at.session_state["dataset_kind"] = "synthetic"
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, at.exception
    switch = at.sidebar.radio(key="lang")
    assert switch.value == lang
    assert at.sidebar.radio(key="dataset_kind").label == i18n.t("common.sidebar.dataset", lang)
    if lang == "zh":
        assert not english_leftovers(at.sidebar)


def test_switching_the_language_redraws_the_sidebar_in_chinese(synthetic_dataset):
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=90)
    at.session_state["dataset_kind"] = "synthetic"
    at.run()
    assert at.sidebar.radio(key="dataset_kind").label == "Dataset"
    at.sidebar.radio(key="lang").set_value("zh").run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="dataset_kind").label == "数据集"
    assert at.query_params.get("lang") in ("zh", ["zh"])
