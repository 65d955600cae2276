"""One validated, frozen TrainConfig per run, the description of its settings, and the presets.

    cfg = TrainConfig(model="cpu_cnn", lr=0.1, ...)     # ConfigError(field, message) when invalid
    cfg = PRESETS["cpu_cnn"].config.replace(epochs=3)    # presets are starting points
    cfg = TrainConfig.from_json(cfg.to_json())           # exact round trip; unknown keys refused
    cfg = TrainConfig.smoke()                            # tiny: 512 synthetic images, 1 epoch, CPU
    for spec in config_fields(): ...                     # every setting: label, help, kind, bounds…
    spec.text("label", "zh"); PRESETS[n].text("purpose", "zh"); group_title(group, "zh")   # other languages
    plan = epoch_plan(cfg, 50_000)                       # steps per epoch, as the engine counts them

Each field of TrainConfig describes itself (its `dataclasses.field` metadata, read back as a
FieldSpec by `config_fields()`): label, one-sentence help, unit, kind, choices and bounds, and
where it belongs in a form. The command line (core.cli) and the dashboard's Training form are
generated from that, and `__post_init__` validates every value against it. The words are English
here; a page in another language reads their translations from the catalogues (core.i18n, keys
core.field.*, core.group.*, core.preset.*, and core.config_error.* for the messages of MESSAGES,
which a ConfigError carries as a Phrase so `exc.text(lang)` can say them in that language).
Validation checks values only, never this machine: whether `device` exists here is asked when a
run starts (core.train.device.resolve_device), so a run recorded on a GPU machine reads fine on a
laptop.

Learning-rate schedules (`schedule`, with `warmup` = fraction of all steps; the multiplier of
`lr` is computed per optimiser step by core.train.engine.lr_factor):

    constant       lr throughout (after the optional warmup)
    onecycle       rise linearly from 0.1 * lr to lr over the warmup fraction, then fall
                   linearly to 0 at the last step (a "triangle"; with warmup 0 it is linear_decay)
    linear_decay   lr falling linearly to 0 at the last step (after the optional warmup)
    cosine         lr following half a cosine down to 0 (after the optional warmup)

Precision (`precision`): "bf16" runs each training step's forward pass under bfloat16 autocast
(weights, gradients and optimiser state stay float32); "fp32" runs plain float32; "auto" picks
bf16 on CUDA and on CPUs with native bfloat16 matrix instructions (AVX512-BF16 or AMX, where it
measured 1.9x faster for the MLP and 1.35x for cpu_cnn), float32 elsewhere (see
core.train.engine.resolve_precision). Test evaluation on a CPU is always float32.

`lr` is the rate for the mean loss over a batch. Optimisers: "adam", "adamw" (decoupled weight
decay), "sgd" (always with Nesterov momentum `momentum`; weight decay added to the gradient).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass, fields
from typing import Any

from core import i18n
from core.data import KINDS as DATASET_KINDS
from core.train.device import DEVICE_CHOICES
from core.train.models import MODELS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "linear_decay", "cosine")
DATASETS = tuple(DATASET_KINDS)
PRECISIONS = ("auto", "fp32", "bf16")

# Upper bounds: far above any sensible run, low enough that every value fits SQLite's 64-bit
# integers, torch's seeds and a progress bar.
MAX_BATCH_SIZE = 65_536
MAX_EPOCHS = 10_000
MAX_IMAGES = 10_000_000
MAX_SEED = 2**32 - 1
MAX_LOG_EVERY = 1_000_000
MAX_PROCESSES = 4096         # data-parallel processes (torchrun), over all machines

# What a field holds. "optional_int" and "text" may also be None (FieldSpec.none_means says what
# None stands for).
KINDS = ("choice", "int", "float", "bool", "optional_int", "text")
# Where a field belongs in a form, in display order, and each group's catalogue key (core.group.<key>).
GROUPS = ("Model and data", "Optimiser", "Schedule", "Augmentation and tricks", "Run")
MODEL_DATA, OPTIMISER, SCHEDULE, TRICKS, RUN = GROUPS
GROUP_KEYS = dict(zip(GROUPS, ("model_data", "optimiser", "schedule", "tricks", "run")))


def group_title(group: str, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    """A group's name in `lang` ('Optimiser', '优化器')."""
    return i18n.core_text(f"group.{GROUP_KEYS[group]}", group, lang)


# The words of validation messages and allowed ranges. The English is here (the command line prints
# it); other languages translate each template under core.config_error.<key>.
MESSAGES = {
    "choice": "must be one of {choices}, got {value}",
    "bool": "must be true or false, got {value}",
    "text": "must be text or None ({none}), got {value}",
    "number": "must be a number, got {value}",
    "finite": "must be a finite number, got {value}",
    "whole": "must be a whole number, got {value}",
    "bounds": "must be {allowed}, got {value}",
    "batch_over_images": "must be at most the number of training images ({images:,}), got {batch:,}",
    # the allowed range, put into "bounds" (and into a form's help)
    "gt": "> {low}",
    "ge": ">= {low}",
    "lt": "< {high}",
    "le": "<= {high}",
    "between": "between {low} and {high}",
    "between_unit": "between {low} and {high} {unit}",
    "interval": "in {interval}",
    "at_most": "at most {cap}",
    "at_most_unit": "at most {cap} {unit}",
    "at_least_or_none": "at least {low} or None ({none})",
    "none_unit": "{none} {unit}",
    "range": "{bounds}, {cap}",
}


@dataclass(frozen=True)
class Phrase:
    """Text whose English template lives in core, with the values to fill in; `text(lang)` reads
    the template's translation (core.<key>) and puts values that are Phrases in the same language."""

    key: str                          # below "core." in a catalogue: "config_error.bounds"
    english: str                      # the template: "must be {allowed}, got {value}"
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    def text(self, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        values = {name: in_language(value, lang) for name, value in self.values.items()}
        return i18n.core_text(self.key, self.english, lang, **values)


def in_language(text: "str | Phrase", lang: str = i18n.DEFAULT_LANGUAGE) -> Any:
    """A Phrase in `lang`; anything else as it is."""
    return text.text(lang) if isinstance(text, Phrase) else text


def message(key: str, **values: Any) -> Phrase:
    """One of MESSAGES with its values: message("bounds", allowed=..., value="-1")."""
    return Phrase(f"config_error.{key}", MESSAGES[key], values)


class ConfigError(ValueError):
    """An invalid config value. `.field` names the field; str() reads 'field: message'.

    `message` is English text, or a Phrase (one of MESSAGES with its values), which `text(lang)`
    gives in another language; `.message` is always the English."""

    def __init__(self, field: str, message: "str | Phrase"):
        self.field = field
        self.phrase = message if isinstance(message, Phrase) else None
        self.message = in_language(message)
        super().__init__(f"{field}: {self.message}")

    def text(self, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """The message in `lang` (a message made from a Phrase is translated; others stay as written)."""
        return self.phrase.text(lang) if self.phrase else self.message


@dataclass(frozen=True)
class FieldSpec:
    """How one TrainConfig field describes itself (see `config_fields()`).

    Its words are English; `text(part, lang)` and `choice_title(value, lang)` give them in another
    language (catalogue keys core.field.<name>.<part> and core.field.<name>.choices.<value>)."""

    name: str                       # the TrainConfig field
    label: str                      # a short label for a form ("Batch size")
    help: str                       # one plain sentence
    kind: str                       # one of KINDS
    group: str                      # one of GROUPS
    default: Any                    # TrainConfig()'s value (the tutorial's recipe)
    choices: tuple[str, ...] = ()   # kind "choice": the allowed values
    choice_labels: tuple[tuple[str, str], ...] = ()  # (value, title) for a form to show instead of ids
    choice_key: str = ""            # catalogue key of a choice's title, "{value}" filled in (default below)
    unit: str = ""                  # "images", "pixels", ... ("" when the number has none)
    minimum: float | None = None    # bounds of a number (None: unbounded)
    maximum: float | None = None
    exclusive_minimum: bool = False  # True: the bound itself is not allowed
    exclusive_maximum: bool = False
    cap: float | None = None        # a sane upper limit (not a law of the setting): values above are refused
    none_means: str = ""            # optional kinds: what None stands for ("all", with the unit: "all images")
    step: float | None = None       # a sensible increment for a number (a form's +/- buttons)
    advanced: bool = False          # less used: a form may tuck it away

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.group not in GROUPS or bool(self.choices) != (self.kind == "choice"):
            raise ValueError(f"bad field description for {self.name!r}: kind {self.kind!r}, group {self.group!r}")

    # ---- words, in English or another language ---------------------------------------------
    TEXT_PARTS = ("label", "help", "unit", "none_means")   # the parts `text` translates

    def text(self, part: str, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """One of TEXT_PARTS in `lang`: spec.text("label", "zh") -> 'batchsize（每批图片数）'."""
        if part not in self.TEXT_PARTS:
            raise ValueError(f"part must be one of {', '.join(self.TEXT_PARTS)}, got {part!r}")
        english = getattr(self, part)
        return i18n.core_text(f"field.{self.name}.{part}", english, lang) if english else ""

    def choice_label(self, value: str) -> str:
        """A choice's title for a form ('Tutorial MLP' for 'tutorial_mlp'); the value when it has none."""
        return dict(self.choice_labels).get(value, value)

    def choice_text_key(self, value: str) -> str:
        """The catalogue key (below "core.") of a choice's title."""
        return (self.choice_key or f"field.{self.name}.choices.{{value}}").format(value=value)

    def choice_title(self, value: str, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """A choice's title in `lang` (the value itself for a value that is not a choice)."""
        if value not in self.choices:
            return str(value)
        return i18n.core_text(self.choice_text_key(value), self.choice_label(value), lang)

    def _unit(self) -> Phrase:
        return Phrase(f"field.{self.name}.unit", self.unit)

    def _none(self) -> Phrase:
        return Phrase(f"field.{self.name}.none_means", self.none_means)

    @property
    def flag(self) -> str:
        """The command-line option: '--batch-size'."""
        return "--" + self.name.replace("_", "-")

    @property
    def optional(self) -> bool:
        """Whether None is a valid value (it means `none_means`)."""
        return self.kind in ("optional_int", "text")

    @property
    def is_number(self) -> bool:
        return self.kind in ("int", "float", "optional_int")

    def show(self, value: Any, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """A value as messages and help texts write it: 0.0001, 16, True, 'all'."""
        if value is None:
            return self.text("none_means", lang) or "None"
        if isinstance(value, float) and not isinstance(value, bool):
            return f"{value:g}"
        return str(value)

    # ---- the allowed values, as phrases (English here, other languages via Phrase.text) -------
    def _bounds(self, *, with_unit: bool = False) -> Phrase | str:
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            if not (self.exclusive_minimum or self.exclusive_maximum):
                if with_unit and self.unit:
                    return message("between_unit", low=f"{lo:g}", high=f"{hi:g}", unit=self._unit())
                return message("between", low=f"{lo:g}", high=f"{hi:g}")
            left, right = "(" if self.exclusive_minimum else "[", ")" if self.exclusive_maximum else "]"
            return message("interval", interval=f"{left}{lo:g}, {hi:g}{right}")
        if lo is not None:
            return message("gt" if self.exclusive_minimum else "ge", low=f"{lo:g}")
        if hi is not None:
            return message("lt" if self.exclusive_maximum else "le", high=f"{hi:g}")
        return ""

    def _cap(self, *, with_unit: bool = True) -> Phrase | str:
        if self.cap is None:
            return ""
        number = f"{int(self.cap):,}" if float(self.cap).is_integer() else f"{self.cap:g}"
        if with_unit and self.unit:
            return message("at_most_unit", cap=number, unit=self._unit())
        return message("at_most", cap=number)

    def _allowed(self) -> Phrase | str:
        """The range as an error message says it: 'between 0 and 16 pixels', 'at least 1 or None (all images)'."""
        lo, hi = self.minimum, self.maximum
        if self.optional and lo is not None and hi is None and not self.exclusive_minimum:
            none = message("none_unit", none=self._none(), unit=self._unit()) if self.unit else self._none()
            return message("at_least_or_none", low=f"{lo:g}", none=none)
        return self._bounds(with_unit=True)

    def bounds_text(self, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """The allowed range in words: '> 0', '>= 1', 'in [0, 1)', 'between 0 and 16' ('' if unbounded)."""
        return in_language(self._bounds(), lang)

    def range_text(self, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """Everything allowed, for help texts: '>= 1, at most 10,000' ('' if unbounded)."""
        bounds, cap = self._bounds(), self._cap(with_unit=False)
        return in_language(message("range", bounds=bounds, cap=cap) if bounds and cap else bounds or cap, lang)

    def cap_text(self, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """'at most 10,000 epochs' ('' when the field has no cap)."""
        return in_language(self._cap(), lang)

    def check(self, value: Any) -> Any:
        """`value` as the config stores it (ints become floats for float fields); ConfigError if invalid."""
        if value is None and self.optional:
            return None
        if self.kind == "choice":
            if value not in self.choices:
                raise ConfigError(self.name, message("choice", choices=", ".join(self.choices), value=repr(value)))
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(self.name, message("bool", value=repr(value)))
            return value
        if self.kind == "text":
            if not isinstance(value, str):
                raise ConfigError(self.name, message("text", none=self._none(), value=repr(value)))
            return value
        if self.kind == "float":
            # Accept ints where floats are meant (JSON writes 1.0 as 1 in some tools) and store floats.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(self.name, message("number", value=repr(value)))
            if not math.isfinite(value):
                raise ConfigError(self.name, message("finite", value=repr(value)))
            value = float(value)
        elif isinstance(value, bool) or not isinstance(value, int):  # int, optional_int
            raise ConfigError(self.name, message("whole", value=repr(value)))
        lo, hi = self.minimum, self.maximum
        if ((lo is not None and (value <= lo if self.exclusive_minimum else value < lo))
                or (hi is not None and (value >= hi if self.exclusive_maximum else value > hi))):
            raise ConfigError(self.name, message("bounds", allowed=self._allowed(), value=self.show(value)))
        if self.cap is not None and value > self.cap:
            raise ConfigError(self.name, message("bounds", allowed=self._cap(), value=self.show(value)))
        return value


def _setting(default: Any, label: str, help: str, kind: str, group: str, **more: Any) -> Any:
    """A TrainConfig field that describes itself (read back by config_fields())."""
    return dataclasses.field(default=default, metadata={"spec": dict(label=label, help=help, kind=kind,
                                                                     group=group, **more)})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. The defaults are the tutorial's recipe."""

    model: str = _setting(
        "tutorial_mlp", "Model", "The network to train: the tutorial's MLP, a small CNN sized for a CPU or a "
        "speed-run CNN for a GPU.", "choice", MODEL_DATA, choices=tuple(MODELS),
        choice_labels=tuple((name, spec.title) for name, spec in MODELS.items()), choice_key="model.{value}.title")
    optimizer: str = _setting(
        "adam", "Optimizer", "How the weights follow their gradients: Adam, AdamW (decoupled weight decay) "
        "or SGD with Nesterov momentum.", "choice", OPTIMISER, choices=OPTIMIZERS,
        choice_labels=(("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD (Nesterov)")))
    lr: float = _setting(
        1e-4, "Learning rate", "The peak learning rate, for the mean loss over a batch.", "float", OPTIMISER,
        minimum=0, exclusive_minimum=True, step=1e-4)
    schedule: str = _setting(
        "constant", "LR schedule", "How the learning rate changes over the run: constant, one-cycle, "
        "linear decay to 0 or a half cosine to 0.", "choice", SCHEDULE, choices=SCHEDULES,
        choice_labels=(("constant", "Constant"), ("onecycle", "One-cycle"), ("linear_decay", "Linear to 0"),
                       ("cosine", "Cosine to 0")))
    warmup: float = _setting(
        0.0, "Warm-up fraction", "The fraction of all steps spent raising the learning rate at the start.",
        "float", SCHEDULE, minimum=0, maximum=1, exclusive_maximum=True, step=0.05, advanced=True)
    batch_size: int = _setting(
        16, "Batch size", "How many images each optimiser step learns from.", "int", OPTIMISER,
        unit="images", minimum=1, cap=MAX_BATCH_SIZE)
    epochs: int = _setting(
        10, "Epochs", "How many passes over the training images the run makes.", "int", SCHEDULE, minimum=1,
        cap=MAX_EPOCHS)
    weight_decay: float = _setting(
        0.0, "Weight decay", "How strongly the weights are pulled towards zero (added to the gradient for "
        "SGD and Adam, decoupled for AdamW).", "float", OPTIMISER, minimum=0, cap=1, step=1e-4)
    momentum: float = _setting(
        0.9, "Momentum / β1", "SGD's Nesterov momentum, or Adam's β1.", "float", OPTIMISER,
        minimum=0, maximum=1, exclusive_maximum=True, step=0.05, advanced=True)
    label_smoothing: float = _setting(
        0.0, "Label smoothing", "The share of each target's probability spread evenly over all classes.",
        "float", TRICKS, minimum=0, maximum=1, exclusive_maximum=True, step=0.05)
    augment: bool = _setting(
        False, "Augment images", "Randomly crop (with reflect padding) and mirror each training batch; test "
        "images are never augmented.", "bool", TRICKS)
    crop_padding: int = _setting(
        4, "Crop padding", "Pixels of reflect padding for the random crop; 0 mirrors only.", "int", TRICKS,
        unit="pixels", minimum=0, maximum=16, advanced=True)
    alternate_flip: bool = _setting(
        False, "Alternate flips", "With augmentation, mirror each image every other epoch instead of at "
        "random (as airbench does).", "bool", TRICKS, advanced=True)
    tta: bool = _setting(
        False, "Flip at test time (TTA)", "Score each test image by averaging the model's outputs for it and "
        "for its mirror image.", "bool", TRICKS, advanced=True)
    ema: bool = _setting(
        False, "Weight averaging (EMA)", "Evaluate an exponential moving average of the weights instead of "
        "the weights themselves.", "bool", TRICKS, advanced=True)
    ema_decay: float = _setting(
        0.99, "EMA decay", "How much of the weight average each optimiser step keeps.", "float", TRICKS,
        minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True, step=0.01, advanced=True)
    whiten_init: bool = _setting(
        False, "Whitening stem", "Set a conv net's first layer from 2x2 patch statistics of the training "
        "images, and freeze its weights.", "bool", TRICKS, advanced=True)
    whiten_bias_epochs: int = _setting(
        3, "Whitening bias epochs", "With the whitening stem, the epochs its bias keeps learning before it "
        "is frozen too.", "int", TRICKS, unit="epochs", minimum=0, cap=MAX_EPOCHS, advanced=True)
    bias_lr_scale: float = _setting(
        1.0, "Bias LR multiplier", "The learning rate's multiplier for biases and batch-norm shifts (SGD).",
        "float", OPTIMISER, minimum=0, exclusive_minimum=True, cap=1000, step=1.0, advanced=True)
    seed: int = _setting(
        0, "Seed", "Seeds the initial weights, the shuffling and the augmentation.", "int", RUN, minimum=0,
        cap=MAX_SEED)
    device: str = _setting(
        "auto", "Device", "Where to train; auto takes CUDA, then MPS, then the CPU.", "choice", RUN,
        choices=DEVICE_CHOICES, choice_labels=(("auto", "Auto"), ("cpu", "CPU"), ("cuda", "CUDA GPU"),
                                               ("mps", "Apple (MPS)")))
    nproc: int = _setting(
        1, "Processes", "How many processes train the run together (data parallel with torchrun): one per "
        "GPU, or CPU processes without one; each takes an equal share of every batch, so the batch size "
        "must be a multiple (checked when the run starts, with this machine's GPUs or cores).", "int", RUN,
        minimum=1, cap=MAX_PROCESSES)
    dataset: str = _setting(
        "cifar10", "Dataset", "The images to learn: CIFAR-10 or the synthetic demo set (works offline).",
        "choice", MODEL_DATA, choices=DATASETS,
        choice_labels=tuple((kind, labels[0]) for kind, labels in DATASET_KINDS.items()))
    train_subset: int | None = _setting(
        None, "Training images", "Train on only the first N training images.", "optional_int", MODEL_DATA,
        unit="images", minimum=1, cap=MAX_IMAGES, none_means="all")
    val_images: int = _setting(
        0, "Validation images", "Hold out this many training images (stratified by class, chosen by the seed) to "
        "measure each epoch and pick best.pt by; 0 holds out none, as the tutorial does.", "int", MODEL_DATA,
        unit="images", minimum=0, cap=MAX_IMAGES)
    test_subset: int | None = _setting(
        None, "Test images", "Evaluate on only the first N test images.", "optional_int", MODEL_DATA,
        unit="images", minimum=1, cap=MAX_IMAGES, none_means="all", advanced=True)
    log_every: int = _setting(
        50, "Report loss every N steps", "How many optimiser steps pass between training-loss reports. A stored "
        "run (the dashboard, `python -m core train`) also reports when a second passed without one, so its live "
        "charts keep growing (not across several processes).",
        "int", RUN, unit="steps", minimum=1, cap=MAX_LOG_EVERY, advanced=True)
    preset: str | None = _setting(
        None, "Preset", "The name of the preset this config started from.", "text", RUN, none_means="no preset")
    compile: bool = _setting(
        False, "Compile the model", "Compile the model with torch.compile (CUDA only; ignored elsewhere).",
        "bool", RUN, advanced=True)
    precision: str = _setting(
        "auto", "Precision", "The arithmetic of training steps: auto takes bf16 where the hardware has it "
        "and fp32 elsewhere.", "choice", RUN, choices=PRECISIONS, advanced=True,
        choice_labels=(("auto", "Auto"), ("fp32", "fp32"), ("bf16", "bf16")))

    def __post_init__(self) -> None:
        for spec in config_fields():
            value = getattr(self, spec.name)
            checked = spec.check(value)
            if checked is not value:
                object.__setattr__(self, spec.name, checked)
        # Rules across fields (crop_padding without augment is merely unused, not an error).
        if self.train_subset is not None and self.batch_size > self.train_subset:
            raise ConfigError("batch_size", message("batch_over_images", images=self.train_subset,
                                                    batch=self.batch_size))

    # ---- conversions -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        if not isinstance(data, dict):
            raise ConfigError("config", f"must be a dict of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                unknown[0],
                f"unknown setting(s) {', '.join(map(repr, unknown))}; known settings: {', '.join(sorted(known))}",
            )
        return cls(**data)

    @classmethod
    def from_stored(cls, text: str) -> tuple["TrainConfig", dict[str, Any]]:
        """A stored config's JSON -> (config, settings this version does not know).

        A newer version may have written settings this one lacks: they are returned (to keep and
        report) instead of refused. Invalid JSON or values still raise ConfigError.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError("config", f"is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError("config", f"must be a dict of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}), {k: v for k, v in data.items() if k not in known}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", f"is not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "TrainConfig":
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting(s) {', '.join(map(repr, unknown))}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def smoke(cls, **changes: Any) -> "TrainConfig":
        """A tiny run for tests and `--dry-run`: 512 synthetic images, 256 test images, 1 epoch, CPU."""
        base = cls(model="tutorial_mlp", optimizer="adam", lr=1e-3, schedule="constant", batch_size=64,
                   epochs=1, dataset="synthetic", device="cpu", train_subset=512, test_subset=256,
                   log_every=2, preset=None)
        return base.replace(**changes) if changes else base


@functools.cache
def _field_specs() -> tuple[FieldSpec, ...]:
    specs = [FieldSpec(name=f.name, default=f.default, **f.metadata["spec"]) for f in fields(TrainConfig)]
    return tuple(sorted(specs, key=lambda spec: GROUPS.index(spec.group)))  # stable: field order within a group


def config_fields() -> list[FieldSpec]:
    """Every TrainConfig field's description, in display order (by GROUPS, then field order)."""
    return list(_field_specs())


def field_spec(name: str) -> FieldSpec:
    """The description of one field; KeyError for a name that is not a TrainConfig field."""
    for spec in _field_specs():
        if spec.name == name:
            return spec
    raise KeyError(name)


# ---- presets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    """A named starting point. `purpose` says in plain words what it is for; `description` gives
    the recipe's details (the jargon). `text(part, lang)` reads each in another language
    (catalogue keys core.preset.<name>.<part>)."""

    name: str
    title: str
    purpose: str             # one plain line: what the preset is for
    description: str         # the details: network, optimiser, tricks, measured results
    config: TrainConfig
    cpu_time_hint: str       # e.g. "about 12 min on 2 CPU cores"
    gpu_time_hint: str       # e.g. "about 1 min on a modern GPU"

    TEXT_PARTS = ("title", "purpose", "description", "cpu_time_hint", "gpu_time_hint")

    def text(self, part: str, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """One of TEXT_PARTS in `lang`: preset.text("purpose", "zh")."""
        if part not in self.TEXT_PARTS:
            raise ValueError(f"part must be one of {', '.join(self.TEXT_PARTS)}, got {part!r}")
        return i18n.core_text(f"preset.{self.name}.{part}", getattr(self, part), lang)


def _preset(name: str, title: str, purpose: str, description: str, cpu: str, gpu: str, **settings: Any) -> Preset:
    return Preset(name, title, purpose, description, TrainConfig(preset=name, **settings), cpu, gpu)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    _preset(
        "tutorial_mlp", "Tutorial MLP (exact recipe)",
        "The tutorial's own recipe, unchanged: the baseline every other preset is measured against.",
        "The PyTorch tutorial's recipe, unchanged: the 3072-1000-500-10 MLP, Adam at lr 1e-4, "
        "batch 16, 10 epochs, no augmentation, plain float32. Ends near 54% test accuracy (53.7% "
        "measured on the 40k/10k development split). This engine runs it in about 4 minutes on 2 CPU "
        "cores; the tutorial's own DataLoader pipeline needs 8-12 minutes.",
        "about 4 min on 2 CPU cores (tutorial's own pipeline: 8-12 min)",
        "about 1-2 min on a GPU (batches of 16 leave a GPU mostly idle)",
        model="tutorial_mlp", optimizer="adam", lr=1e-4, schedule="constant", batch_size=16, epochs=10,
        augment=False, precision="fp32", log_every=250),
    _preset(
        "fast_mlp", "Fast MLP (same net, better recipe)",
        "The same network with a better recipe: the tutorial's accuracy in seconds instead of minutes.",
        "The tutorial's MLP, unchanged, with a better recipe: batch 512 instead of 16, AdamW with a "
        "one-cycle learning rate (peak 2e-3), random horizontal flips, bf16 arithmetic where the "
        "hardware has it, 6 epochs. Passes the tutorial recipe's 10-epoch accuracy (about 54%) "
        "after about 17 s on 2 CPU cores (the tutorial's pipeline: 8-12 min) and ends near 55% (the last "
        "epoch is the model; with 5,000 images held out for validation: 54.4% test, 56.4% validation accuracy).",
        "about 20 s on 2 CPU cores with bf16 (AVX512-BF16), about 35 s without", "a few seconds on a GPU",
        model="tutorial_mlp", optimizer="adamw", lr=2e-3, schedule="onecycle", warmup=0.1, batch_size=512,
        epochs=6, weight_decay=0.05, label_smoothing=0.0, augment=True, crop_padding=0, log_every=10),
    _preset(
        "cpu_cnn", "CPU CNN (85%+ in 5 minutes)",
        "A small convolutional network that looks at neighbouring pixels together: about 86% in five "
        "minutes on a laptop's CPU.",
        "A small conv net (16/64/128 channels) with a speed-run recipe scaled down for a CPU: "
        "patch-whitening stem, one-cycle Nesterov SGD (airbench's decoupled lr and weight decay, "
        "biases at 64x lr), label smoothing 0.2, 2-pixel translate + alternating flip, flip at test "
        "time, batch 256, 12 epochs. Measured: 85.95% test accuracy in 4.8 minutes on 2 CPU cores "
        "(3.4 of them training, the rest per-epoch test evaluation).",
        "about 4.5-5 min on 2 CPU cores with bf16 (AVX512-BF16), about 5.5 min without",
        "about 15 s on a GPU",
        model="cpu_cnn", optimizer="sgd", lr=0.375, schedule="onecycle", warmup=0.23, batch_size=256, epochs=12,
        weight_decay=0.00133, momentum=0.85, label_smoothing=0.2, augment=True, crop_padding=2,
        alternate_flip=True, tta=True, whiten_init=True, whiten_bias_epochs=1, bias_lr_scale=64.0, log_every=20),
    _preset(
        "gpu_cnn", "GPU CNN (speed run)",
        "A wider convolutional network for a graphics card: 90% or more in seconds there; far too slow "
        "for a CPU.",
        "An airbench94-style recipe for a GPU: 64/256/256-channel conv net with a patch-whitening "
        "stem, batch 1024, one-cycle Nesterov SGD (airbench's decoupled lr 11.5 and weight decay "
        "0.0153 per 1024 images, biases at 64x lr), label smoothing 0.2, flip + 2-pixel translate, "
        "flip at test time, weight averaging, bf16 on CUDA. Aims at 90%+ in under 5 s on an H200; "
        "far too slow for a CPU.",
        "about 45 min on 2 CPU cores (not recommended)", "about 5 s on an H200 (estimate, not yet measured)",
        model="gpu_cnn", optimizer="sgd", lr=1.5, schedule="onecycle", warmup=0.23, batch_size=1024,
        epochs=10, weight_decay=0.00133, momentum=0.85, label_smoothing=0.2, augment=True, crop_padding=2,
        alternate_flip=True, tta=True, ema=True, ema_decay=0.95, whiten_init=True, whiten_bias_epochs=3,
        bias_lr_scale=64.0, log_every=20),
)}


# Settings that only act while another one is on: {setting: the switch}. With the switch off they are
# kept (and stored) but change nothing, so a listing of what a run does should leave them out.
ACTS_ONLY_WITH = {"crop_padding": "augment", "alternate_flip": "augment", "ema_decay": "ema",
                  "whiten_bias_epochs": "whiten_init"}


def unused_settings(cfg: TrainConfig) -> set[str]:
    """The settings of `cfg` that change nothing because their switch is off (e.g. crop_padding without augment)."""
    return {name for name, switch in ACTS_ONLY_WITH.items() if not getattr(cfg, switch)}


NOT_TRAINING = ("preset", "log_every")   # settings that name or report a run but do not change its training


def changes_from_tutorial(cfg: TrainConfig) -> list[tuple[FieldSpec, Any, Any]]:
    """(field, the tutorial's value, cfg's value) for each setting where `cfg` trains differently from the
    tutorial's recipe, in the form's order; settings that are off in `cfg` are not listed as if they applied,
    nor those that only name or report the run (NOT_TRAINING)."""
    tutorial = PRESETS["tutorial_mlp"].config
    skip = {*NOT_TRAINING, *unused_settings(cfg)}
    return [(spec, getattr(tutorial, spec.name), getattr(cfg, spec.name)) for spec in config_fields()
            if spec.name not in skip and getattr(cfg, spec.name) != getattr(tutorial, spec.name)]


def preset_config(name: str, **changes: Any) -> TrainConfig:
    """The preset's config with `changes` applied; unknown preset names raise ValueError."""
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    cfg = PRESETS[name].config
    return cfg.replace(**changes) if changes else cfg


# ---- epochs, batches and steps ---------------------------------------------------------------

@dataclass(frozen=True)
class EpochPlan:
    """How a config walks through a training set: the tutorial's big loop (epochs) around its small
    loop (steps, one batch each). Counted as core.train.engine counts: the validation split is held
    out first, then `train_subset` keeps the first images, and a short last batch is dropped."""

    dataset_images: int    # the training split's size
    held_out: int          # images held out for validation (val_images)
    images: int            # images one epoch goes through
    batch_size: int
    steps_per_epoch: int   # images // batch_size
    left_over: int         # images % batch_size: skipped each epoch (a different few each time, reshuffled)
    epochs: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def subset(self) -> bool:
        """Whether train_subset leaves out images the split would otherwise give."""
        return self.images < self.dataset_images - self.held_out


def epoch_plan(cfg: TrainConfig, dataset_images: int) -> EpochPlan:
    """The plan of `cfg` on a training split of `dataset_images` images."""
    held = min(cfg.val_images, dataset_images)
    images = dataset_images - held
    if cfg.train_subset is not None:
        images = min(images, cfg.train_subset)
    steps, left = divmod(images, cfg.batch_size)
    return EpochPlan(dataset_images=dataset_images, held_out=held, images=images, batch_size=cfg.batch_size,
                     steps_per_epoch=steps, left_over=left, epochs=cfg.epochs)
