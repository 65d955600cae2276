"""Sweeps: one preset, every combination of one or two settings' values, one queued run each.

    axes = [parse_axis("seed=0,1,2"), parse_axis("lr=1e-3,2e-3")]   # ConfigError naming the setting
    plan = plan_sweep("fast_mlp", axes, dataset="synthetic")       # [(name, TrainConfig)], all validated
    sweep, runs = start_sweep(store, "fast_mlp", axes, dataset="synthetic")   # runs wait in the queue
    summary = summarize(store, sweep.id)        # a row per setting: mean ± std over seeds

The runs of a sweep are ordinary runs (evaluate, compare, delete them as any other) with the
sweep's id; they go through the queue (core.runs.jobs), which spreads them over the free devices
(one GPU each; on a CPU as many at a time as CIFARLAB_MAX_ACTIVE_RUNS allows, the threads split).

The summary groups the runs by the values of the sweep's settings other than `seed`, so a row
shows the spread that only the seed causes (noise) beside the difference a setting makes
(effect). Final test accuracy is the last epoch's model. "Best" is the store's best_test_acc: the
test accuracy of best.pt, the epoch with the highest validation accuracy, which only a run that
holds out a validation split (val_images > 0) has; without one there is no "best" (choosing the
epoch by test accuracy would be choosing on the split that is reported) and the column stays
empty (`chosen_by` says which).
Mean and standard deviation are over the row's completed runs (sample standard deviation, n - 1;
none for a single run). The best setting is the row with the highest mean final test accuracy.
"""
from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Any

from core.runs.store import Run, RunStore, Sweep
from core.train.config import PRESETS, ConfigError, TrainConfig, config_fields, field_spec

MAX_AXES = 2
MAX_RUNS = 64
NOT_SWEPT = ("preset", "dataset")   # what the sweep itself fixes
TRUE_WORDS, FALSE_WORDS = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


def _number(spec, text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        extra = f" or '{spec.none_means}'" if spec.kind == "optional_int" else ""
        raise ConfigError(spec.name, f"must be {what}{extra}, got {text!r}") from None
    return spec.check(value)  # the field's own bounds and message


def _parse_value(spec, text: str) -> Any:
    text = text.strip()
    if spec.kind == "int":
        return _number(spec, text, int)
    if spec.kind == "float":
        return _number(spec, text, float)
    if spec.kind == "optional_int":
        return None if text.lower() in (spec.none_means, "none") else _number(spec, text, int)
    if spec.kind == "bool":
        if text.lower() in TRUE_WORDS + FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        raise ConfigError(spec.name, f"must be true or false, got {text!r}")
    return spec.check(text)


def parse_axis(text: str) -> tuple[str, tuple[Any, ...]]:
    """'seed=0,1,2' -> ('seed', (0, 1, 2)); each value checked as the setting's own field checks
    it (ConfigError naming the setting). 'batch-size' and 'batch_size' both name batch_size."""
    name, sep, values = str(text).partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    if not sep or not name:
        raise ConfigError(name or "setting", f"write a sweep setting as NAME=V1,V2,... (e.g. seed=0,1,2), got {text!r}")
    try:
        spec = field_spec(name)
    except KeyError:
        known = ", ".join(s.name for s in config_fields() if s.name not in NOT_SWEPT)
        raise ConfigError(name, f"is not a setting; settings a sweep can vary: {known}") from None
    if name in NOT_SWEPT:
        raise ConfigError(name, "cannot be swept: a sweep starts from one preset on one dataset")
    parts = [p for p in values.split(",") if p.strip()]
    if not parts:
        raise ConfigError(name, "needs at least one value, e.g. seed=0,1,2")
    parsed = tuple(_parse_value(spec, p) for p in parts)
    if len(set(parsed)) != len(parsed):
        raise ConfigError(name, f"lists a value twice: {', '.join(spec.show(v) for v in parsed)}")
    return name, parsed


def check_axes(axes: list[tuple[str, tuple[Any, ...]]]) -> None:
    if not 1 <= len(axes) <= MAX_AXES:
        raise ConfigError("sweep", f"give one or two settings to sweep, got {len(axes)}")
    if len(axes) == 2 and axes[0][0] == axes[1][0]:
        raise ConfigError(axes[0][0], "is given twice; sweep two different settings")
    count = math.prod(len(v) for _, v in axes)
    if count > MAX_RUNS:
        raise ConfigError(axes[-1][0], f"makes {count} runs; a sweep holds at most {MAX_RUNS}")


def combo_text(values: dict[str, Any]) -> str:
    """{'lr': 0.001, 'seed': 0} -> 'lr=0.001 seed=0' (in the given order)."""
    return " ".join(f"{k}={field_spec(k).show(v)}" for k, v in values.items())


def plan_sweep(preset: str, axes: list[tuple[str, tuple[Any, ...]]], name: str | None = None,
               **changes: Any) -> list[tuple[str, TrainConfig]]:
    """(run name, config) for every combination, in order; every config validated before any
    run is stored (ConfigError names the setting, also for a rule across settings)."""
    if preset not in PRESETS:
        raise ConfigError("preset", f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    check_axes(axes)
    base = PRESETS[preset].config.replace(**changes) if changes else PRESETS[preset].config
    label = name or preset
    out = []
    for combo in itertools.product(*(values for _, values in axes)):
        values = dict(zip((n for n, _ in axes), combo))
        out.append((f"{label} {combo_text(values)}", base.replace(**values)))
    return out


def default_name(preset: str, axes: list[tuple[str, tuple[Any, ...]]]) -> str:
    return f"{preset} × " + " × ".join(name for name, _ in axes)


def start_sweep(store: RunStore, preset: str, axes: list[tuple[str, tuple[Any, ...]]], *,
                name: str | None = None, **changes: Any) -> tuple[Sweep, list[Run]]:
    """Store the sweep and one queued run per combination (core.runs.jobs.start_run: they start
    as slots and devices free up). Nothing is stored when a combination is invalid."""
    from core.runs import jobs

    plan = plan_sweep(preset, axes, name, **changes)
    sweep = store.create_sweep(name or default_name(preset, axes), preset, axes)
    runs = [jobs.start_run(store, cfg, run_name, sweep_id=sweep.id) for run_name, cfg in plan]
    return sweep, [store.get(r.id) for r in runs]


# ---- the summary ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Stat:
    mean: float | None
    std: float | None     # sample standard deviation (n - 1); None with fewer than 2 values
    n: int

    def text(self, scale: float = 100.0) -> str:
        """'54.20 ± 0.31' (percent), '54.20' for one value, '–' for none."""
        if self.mean is None:
            return "–"
        return f"{scale * self.mean:.2f}" + (f" ± {scale * self.std:.2f}" if self.std is not None else "")


def stat(values: list[float]) -> Stat:
    values = [float(v) for v in values if v is not None]
    if not values:
        return Stat(None, None, 0)
    return Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


@dataclass(frozen=True)
class SweepRow:
    setting: dict[str, Any]     # the swept values other than seed ({} when only seeds are swept)
    runs: tuple[Run, ...]       # every run of this setting that still exists
    final: Stat                 # final test accuracy over the completed runs
    best: Stat                  # best.pt's test accuracy over the completed runs with a validation split
    chosen_by: str              # "validation" | "no validation split" | "mixed"
    is_best: bool = False

    @property
    def label(self) -> str:
        return combo_text(self.setting) if self.setting else "all runs"

    @property
    def completed(self) -> int:
        return sum(r.status == "completed" for r in self.runs)

    @property
    def seeds(self) -> tuple[Any, ...]:
        return tuple(r.config.seed for r in self.runs)


@dataclass(frozen=True)
class SweepSummary:
    sweep: Sweep
    rows: tuple[SweepRow, ...]
    group_by: tuple[str, ...]   # the settings a row stands for (the sweep's, without seed)

    @property
    def runs(self) -> list[Run]:
        return [r for row in self.rows for r in row.runs]

    @property
    def best(self) -> SweepRow | None:
        return next((row for row in self.rows if row.is_best), None)

    @property
    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts


def _chosen_by(runs: list[Run]) -> str:
    kinds = {"validation" if r.config.val_images else "no validation split" for r in runs}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def best_of(run: Run) -> float | None:
    """The run's best.pt test accuracy, only where a validation split chose it (a run without one
    has no "best"; one trained before that rule may still hold a best chosen by test accuracy)."""
    return run.best_test_acc if run.config.val_images else None


def summarize(store: RunStore, sweep_id: int) -> SweepSummary:
    """A row per combination of the sweep's settings other than seed, in the sweep's order, with
    mean ± std of final and best test accuracy over its completed runs; the row with the highest
    mean final test accuracy is marked best (only once a row has a completed run)."""
    sweep = store.sweep(sweep_id)
    group_by = tuple(name for name, _ in sweep.axes if name != "seed")
    runs = store.sweep_runs(sweep_id)
    order = list(itertools.product(*(values for name, values in sweep.axes if name != "seed")))
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        key = tuple(getattr(run.config, name) for name in group_by)
        groups.setdefault(key, []).append(run)
    keys = [k for k in order if k in groups] + [k for k in groups if k not in order]
    rows = []
    for key in keys:
        members = groups[key]
        done = [r for r in members if r.status == "completed"]
        rows.append(SweepRow(setting=dict(zip(group_by, key)), runs=tuple(members),
                             final=stat([r.final_test_acc for r in done]),
                             best=stat([best_of(r) for r in done]), chosen_by=_chosen_by(members)))
    scored = [i for i, row in enumerate(rows) if row.final.mean is not None]
    if len(rows) > 1 and scored:
        top = max(scored, key=lambda i: rows[i].final.mean)
        rows[top] = SweepRow(**{**rows[top].__dict__, "is_best": True})
    return SweepSummary(sweep, tuple(rows), group_by)


def summary_table(summary: SweepSummary) -> list[dict[str, Any]]:
    """The summary as plain rows (for a table): setting, seeds, runs done, final and best test
    accuracy as 'mean ± std' percent, how best.pt was chosen, best."""
    out = []
    for row in summary.rows:
        out.append({
            "setting": row.label,
            "seeds": ", ".join(str(s) for s in row.seeds),
            "completed": f"{row.completed}/{len(row.runs)}",
            "final test acc (%)": row.final.text(),
            "best.pt test acc (%)": row.best.text(),
            "best.pt chosen by": row.chosen_by,   # validation accuracy; none without a validation split
            "best setting": "★" if row.is_best else "",
        })
    return out
