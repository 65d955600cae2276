"""TrainConfig validation, its description of itself (config_fields), JSON round trips and presets."""
from __future__ import annotations

import dataclasses
import json

import pytest

from core.train.config import (GROUPS, KINDS, PRESETS, SCHEDULES, ConfigError, FieldSpec, Preset, TrainConfig,
                               config_fields, field_spec, preset_config)
from core.train.device import DEVICE_CHOICES, DeviceError, available_devices, resolve_device
from core.train.models import MODELS


def test_defaults_and_the_tutorial_preset_are_the_tutorial_recipe():
    for cfg in (TrainConfig(), PRESETS["tutorial_mlp"].config):
        assert (cfg.model, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("tutorial_mlp", "adam", 1e-4, 16, 10)
        assert cfg.schedule == "constant" and cfg.augment is False and cfg.weight_decay == 0
        assert cfg.label_smoothing == 0 and cfg.tta is False and cfg.ema is False
    assert PRESETS["tutorial_mlp"].config.precision == "fp32"          # exact: plain float32


@pytest.mark.parametrize("field,value,text", [
    ("lr", -1, "lr: must be > 0, got -1"),
    ("lr", 0, "lr: must be > 0"),
    ("lr", float("nan"), "lr: must be a finite number"),
    ("batch_size", 0, "batch_size: must be >= 1, got 0"),
    ("batch_size", 2.5, "batch_size: must be a whole number"),
    ("epochs", 0, "epochs: must be >= 1, got 0"),
    ("model", "lenet", "model: must be one of tutorial_mlp"),
    ("optimizer", "rmsprop", "optimizer: must be one of adam, adamw, sgd, got 'rmsprop'"),
    ("schedule", "step", "schedule: must be one of"),
    ("label_smoothing", 1.0, "label_smoothing: must be in [0, 1), got 1"),
    ("label_smoothing", -0.1, "label_smoothing: must be in [0, 1)"),
    ("momentum", 1.0, "momentum: must be in [0, 1)"),
    ("weight_decay", -1e-4, "weight_decay: must be >= 0"),
    ("warmup", 1.0, "warmup: must be in [0, 1)"),
    ("dataset", "mnist", "dataset: must be one of cifar10, synthetic"),
    ("device", "tpu", "device: must be one of auto, cpu, cuda, mps"),
    ("train_subset", 0, "train_subset: must be at least 1"),
    ("test_subset", -5, "test_subset: must be at least 1"),
    ("log_every", 0, "log_every: must be >= 1"),
    ("augment", "yes", "augment: must be true or false"),
    ("seed", -1, "seed: must be >= 0"),
    ("ema_decay", 1.0, "ema_decay: must be in (0, 1)"),
    ("whiten_bias_epochs", -1, "whiten_bias_epochs: must be >= 0"),
    ("crop_padding", 20, "crop_padding: must be between 0 and 16"),
    ("bias_lr_scale", 0, "bias_lr_scale: must be > 0"),
    ("precision", "fp16", "precision: must be one of auto, fp32, bf16"),
])
def test_invalid_values_raise_config_error_naming_the_field(field, value, text):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value})
    assert info.value.field == field
    assert str(info.value).startswith(text)
    assert isinstance(info.value, ValueError)


def _missing_device() -> str:
    missing = [d for d in ("cuda", "mps") if d not in available_devices()]
    if not missing:
        pytest.skip("every device is present here")
    return missing[0]


def test_a_device_this_machine_lacks_validates_and_fails_only_when_a_run_starts():
    missing = _missing_device()
    cfg = TrainConfig(device=missing)  # a config written on a machine that has it: values are fine
    assert cfg.device == missing and TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(DeviceError) as info:  # what core.train.engine.fit calls when the run starts
        resolve_device(cfg.device)
    message = str(info.value)
    assert isinstance(info.value, ValueError)  # core.runs.worker fails the run with this message
    assert f"device '{missing}' is not available on this machine" in message
    assert f"(it has: {', '.join(available_devices())})" in message
    assert "choose " + " or ".join(f'"{d}"' for d in ("auto", *available_devices())) + " instead" in message


def test_unknown_device_names_are_refused_by_the_config_and_by_resolve_device():
    with pytest.raises(ConfigError, match="device: must be one of auto, cpu, cuda, mps, got 'tpu'"):
        TrainConfig(device="tpu")
    with pytest.raises(DeviceError, match="device must be one of auto, cpu, cuda, mps, got 'tpu'"):
        resolve_device("tpu")
    assert resolve_device("auto").type in available_devices() and resolve_device("cpu").type == "cpu"


# ---- the description of every field ------------------------------------------------------------

def test_every_field_describes_itself_in_display_order():
    specs = config_fields()
    assert sorted(s.name for s in specs) == sorted(f.name for f in dataclasses.fields(TrainConfig))
    assert [GROUPS.index(s.group) for s in specs] == sorted(GROUPS.index(s.group) for s in specs)
    assert {s.group for s in specs} == set(GROUPS)
    defaults = TrainConfig()
    for spec in specs:
        assert isinstance(spec, FieldSpec) and field_spec(spec.name) == spec
        assert spec.kind in KINDS and spec.label and spec.label[0].isupper()
        assert spec.help.endswith(".") and "\n" not in spec.help and spec.help[0].isupper(), spec.name
        assert spec.default == getattr(defaults, spec.name)
        assert spec.flag == "--" + spec.name.replace("_", "-")
        if spec.kind == "choice":
            assert spec.default in spec.choices
        if spec.optional:
            assert spec.none_means
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs[0].label = "x"
    with pytest.raises(KeyError):
        field_spec("learning_rate")


def test_choices_come_from_their_one_definition():
    assert field_spec("model").choices == tuple(MODELS)
    assert field_spec("device").choices == DEVICE_CHOICES
    assert field_spec("schedule").choices == SCHEDULES
    assert field_spec("precision").choices == ("auto", "fp32", "bf16")


def _outside_and_inside(spec: FieldSpec) -> tuple[list, list]:
    """Values just outside the field's bounds, and values on or inside them."""
    step = 1 if spec.kind != "float" else 1e-3
    outside, inside = [], []
    if spec.minimum is not None:
        lo = spec.minimum
        (outside if spec.exclusive_minimum else inside).append(lo if spec.kind != "float" else float(lo))
        outside.append(lo - step)
        inside.append(lo + step)
    if spec.maximum is not None:
        hi = spec.maximum
        (outside if spec.exclusive_maximum else inside).append(hi if spec.kind != "float" else float(hi))
        outside.append(hi + step)
        inside.append(hi - step)
    return outside, inside


@pytest.mark.parametrize("spec", [s for s in config_fields() if s.is_number], ids=lambda s: s.name)
def test_bounds_in_the_description_are_what_validation_enforces(spec):
    outside, inside = _outside_and_inside(spec)
    assert outside, f"{spec.name} has no bounds"
    for value in outside:
        with pytest.raises(ConfigError) as info:
            TrainConfig(**{spec.name: value})
        assert info.value.field == spec.name and str(info.value).startswith(f"{spec.name}: must be ")
    # batch 1, so that a subset of 1 image is not refused by the rule across fields (tested on its own below)
    others = {} if spec.name == "batch_size" else {"batch_size": 1}
    for value in inside:
        assert getattr(TrainConfig(**others, **{spec.name: value}), spec.name) == value


@pytest.mark.parametrize("spec", config_fields(), ids=lambda s: s.name)
def test_every_kind_refuses_values_of_the_wrong_type(spec):
    wrong = {"choice": 3, "int": 2.5, "optional_int": "all", "float": "fast", "bool": "yes", "text": 7}[spec.kind]
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{spec.name: wrong})
    assert info.value.field == spec.name
    if spec.optional:
        assert getattr(TrainConfig(**{spec.name: None}), spec.name) is None


@pytest.mark.parametrize("cfg", [TrainConfig(), TrainConfig.smoke(), *(p.config for p in PRESETS.values())],
                         ids=["default", "smoke", *PRESETS])
def test_json_and_dict_round_trips_are_exact(cfg):
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert set(json.loads(cfg.to_json())) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_unknown_keys_are_refused_by_name():
    data = TrainConfig().to_dict() | {"learning_rate": 0.1}
    with pytest.raises(ConfigError, match="unknown setting.*'learning_rate'") as info:
        TrainConfig.from_dict(data)
    assert info.value.field == "learning_rate"
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json("{lr: 1")
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig().replace(learning_rate=0.1)


def test_whole_number_floats_from_json_become_floats():
    cfg = TrainConfig.from_json(json.dumps(TrainConfig().to_dict() | {"lr": 1, "momentum": 0}))
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and isinstance(cfg.momentum, float)


def test_config_is_frozen_and_replace_validates():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.1
    assert cfg.replace(lr=0.5).lr == 0.5 and cfg.lr == 1e-4
    with pytest.raises(ConfigError, match="^epochs:"):
        cfg.replace(epochs=0)


def test_smoke_config_is_tiny_cpu_and_synthetic():
    cfg = TrainConfig.smoke()
    assert (cfg.train_subset, cfg.test_subset, cfg.epochs, cfg.device, cfg.dataset) == (512, 256, 1, "cpu", "synthetic")
    assert TrainConfig.smoke(model="cpu_cnn").model == "cpu_cnn"


def test_presets_cover_the_four_recipes_with_time_hints():
    assert list(PRESETS) == ["tutorial_mlp", "fast_mlp", "cpu_cnn", "gpu_cnn"]
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset) and preset.name == name and preset.config.preset == name
        assert preset.config.model in MODELS and preset.config.schedule in SCHEDULES
        assert preset.title and len(preset.description) > 40
        assert "CPU" in preset.cpu_time_hint and "GPU" in preset.gpu_time_hint.upper() or "H200" in preset.gpu_time_hint
    assert PRESETS["fast_mlp"].config.model == "tutorial_mlp"
    assert PRESETS["gpu_cnn"].config.model == "gpu_cnn" and PRESETS["cpu_cnn"].config.model == "cpu_cnn"


def test_preset_config_applies_changes_and_names_unknown_presets():
    assert preset_config("cpu_cnn", epochs=2).epochs == 2
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset_config("huge")


def test_every_count_has_a_sane_upper_bound():
    """Epochs, batch size, subsets, seed, log interval (and the other counts) refuse absurd values by name."""
    from core.train.config import config_fields

    for spec in config_fields():
        if spec.kind in ("int", "optional_int") and spec.maximum is None:
            assert spec.cap is not None, f"{spec.name} has no upper bound"
            with pytest.raises(ConfigError) as err:
                TrainConfig(**{spec.name: int(spec.cap) + 1})
            assert err.value.field == spec.name and "at most" in err.value.message
            assert getattr(TrainConfig(**{spec.name: int(spec.cap)}), spec.name) == int(spec.cap)  # the cap itself is fine


def test_a_batch_larger_than_the_training_subset_is_refused_by_name():
    with pytest.raises(ConfigError) as err:
        TrainConfig(train_subset=100, batch_size=128)
    assert err.value.field == "batch_size"
    assert "at most the number of training images (100)" in err.value.message and "128" in err.value.message
    assert TrainConfig(train_subset=128, batch_size=128).batch_size == 128      # exactly one batch is fine
    with pytest.raises(ConfigError, match="^batch_size: "):
        TrainConfig.smoke().replace(batch_size=1024)                             # smoke keeps 512 images


def test_settings_whose_switch_is_off_are_unused_and_not_listed_as_changes():
    from core.train.config import changes_from_tutorial, unused_settings

    assert unused_settings(TrainConfig()) == {"crop_padding", "alternate_flip", "ema_decay", "whiten_bias_epochs"}
    assert unused_settings(PRESETS["cpu_cnn"].config) == {"ema_decay"}
    assert changes_from_tutorial(PRESETS["tutorial_mlp"].config) == []
    # crop padding 4 without augmentation trains like the tutorial: not a change
    tutorial = PRESETS["tutorial_mlp"].config
    assert changes_from_tutorial(tutorial.replace(crop_padding=2)) == []
    rows = {spec.name: (tut, new) for spec, tut, new in changes_from_tutorial(tutorial.replace(augment=True, crop_padding=2))}
    assert rows == {"augment": (False, True), "crop_padding": (4, 2)}
    fast = {spec.name for spec, _, _ in changes_from_tutorial(PRESETS["fast_mlp"].config)}
    assert {"augment", "epochs", "batch_size"} <= fast and "model" not in fast and "preset" not in fast
    cnn = {spec.name: new for spec, _, new in changes_from_tutorial(PRESETS["cpu_cnn"].config)}
    assert cnn["model"] == "cpu_cnn" and "ema_decay" not in cnn
    # how often the loss is reported changes no weight: not a change to the recipe
    assert PRESETS["cpu_cnn"].config.log_every != tutorial.log_every and "log_every" not in cnn
    assert changes_from_tutorial(tutorial.replace(log_every=1, preset="x")) == []
