"""The app's words in each language it speaks: one catalogue per language, no if-else in pages.

    t("training.title", "zh")                      # '训练'
    t("training.steps_per_epoch", "en", n=78)      # placeholders are str.format fields
    core_text("field.batch_size.label", "Batch size", "zh")   # text whose English lives in core
    class_name("cat", "zh")                        # 'cat (猫)'

Catalogues are TOML files in core/i18n/<lang>/, one file per part of the app (common.toml,
training.toml, ...), each holding whole keys: `title = "..."` under `[training.page]` is the key
"training.page.title". A key defined in two files of a language is an error. Every language has the
same keys with the same {placeholders}; tests/test_i18n.py fails when one is missing.

Two kinds of text:
- UI text (headings, labels, captions, messages of the dashboard) lives in every catalogue, English
  included, and is read with t().
- Text whose English belongs to core because the command line prints it too (a setting's label and
  help, a preset's description, a walkthrough step's name) stays in the code; other languages
  translate it under "core.<key>" and it is read with core_text(key, english, lang).

A key missing at run time falls back to English (then to the key itself), so a user never sees a
crash for a missing word; with CIFARLAB_I18N_STRICT=1 (the tests) it raises MissingText instead.
"""
from __future__ import annotations

import functools
import os
import string
import tomllib
from pathlib import Path
from typing import Any

LANGUAGES: dict[str, str] = {"en": "English", "zh": "简体中文"}
DEFAULT_LANGUAGE = "en"
FOLDER = Path(__file__).parent

# The ten CIFAR-10 classes in the tutorial's (and torchvision's) order, with their Chinese names.
CLASS_NAMES_ZH = {"airplane": "飞机", "automobile": "汽车", "bird": "鸟", "cat": "猫", "deer": "鹿",
                  "dog": "狗", "frog": "青蛙", "horse": "马", "ship": "船", "truck": "卡车"}
# The synthetic demo set's shapes and textures (core.data.synthetic.SYNTHETIC_CLASSES).
SYNTHETIC_NAMES_ZH = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "ring": "圆环", "cross": "十字",
                      "diamond": "菱形", "stripes": "条纹", "checker": "棋盘格", "dots": "圆点", "gradient": "渐变"}


class MissingText(KeyError):
    """A key a catalogue does not have (raised only in strict mode)."""


def strict() -> bool:
    return os.environ.get("CIFARLAB_I18N_STRICT", "").lower() in {"1", "true", "yes"}


def _flatten(table: dict[str, Any], prefix: str, into: dict[str, tuple[str, Path]], source: Path) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            _flatten(value, key, into, source)
        elif not isinstance(value, str):
            raise ValueError(f"{source}: {key} must be text, got {type(value).__name__}")
        elif key in into:
            raise ValueError(f"{key} is in both {into[key][1]} and {source}")
        else:
            into[key] = (value, source)


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """Every key of one language's catalogue and its text (read once per process)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of: {', '.join(LANGUAGES)}")
    found: dict[str, tuple[str, Path]] = {}
    for path in sorted((FOLDER / lang).glob("*.toml")):
        with path.open("rb") as fh:
            _flatten(tomllib.load(fh), "", found, path)
    return {key: text for key, (text, _) in found.items()}


def placeholders(text: str) -> set[str]:
    """The {fields} a text fills in: {'n'} for 'batch {n:,}'."""
    return {field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(text) if field}


def _fill(text: str, values: dict[str, Any]) -> str:
    return text.format(**values) if values else text


def _missing(key: str, lang: str) -> None:
    if strict():
        raise MissingText(f"{key!r} is not in the {LANGUAGES.get(lang, lang)} catalogue (core/i18n/{lang}/)")


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **values: Any) -> str:
    """The text of `key` in `lang` with `values` filled in."""
    text = catalogue(lang).get(key)
    if text is None:
        _missing(key, lang)
        text = catalogue(DEFAULT_LANGUAGE).get(key, key)
    return _fill(text, values)


def core_text(key: str, english: str, lang: str = DEFAULT_LANGUAGE, /, **values: Any) -> str:
    """Text whose English is written in core (given as `english`), in `lang`: the translation
    under "core.<key>" in that language's catalogue."""
    if lang == DEFAULT_LANGUAGE:
        return _fill(english, values)
    text = catalogue(lang).get(f"core.{key}")
    if text is None:
        _missing(f"core.{key}", lang)
        text = english
    return _fill(text, values)


def class_name(name: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A class as a page shows it: the English name, with the Chinese in brackets in Chinese
    ('cat (猫)'), so the names match the dataset's files and the tutorial's print-out. CIFAR-10's
    classes and the synthetic set's shapes; any other name as it is."""
    chinese = CLASS_NAMES_ZH.get(name) or SYNTHETIC_NAMES_ZH.get(name)
    return f"{name} ({chinese})" if lang == "zh" and chinese else name
