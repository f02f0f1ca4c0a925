"""Hyperparameter search spaces declared in YAML (docs/tuning.md; paper section 3.3).

A space file names a zoo row as `base`, the `objective`, optional `train` overrides that
apply to the search's trials only (their epoch budget), and the tuned `hyperparameters`:

    base: t2_resnext_shallow_attention
    objective: val_loss
    train: {max_epochs: 20, validation_every: 2, patience: 10}
    hyperparameters:
      aggregation: {choice: [none, max, average, attention]}
      learning_rate: {float: [1.0e-5, 1.0e-3], sampling: log}
      dense_units: {int: [128, 1024], step: 128}
      cardinality: {choice: [2, 4], when: {block: resnext}}
      block: {fixed: resnext}

Every hyperparameter sets one field of the base `ZooConfig` (`HYPERPARAMETERS`), except the
three depth/width ones, which rebuild `arch.stages`: `num_stages` stages of
`blocks_per_stage` blocks, stage i of width `stage_filters * 2**i`. Loading validates the
whole file: unknown names or keys, wrong types, empty or reversed ranges, and values or
combinations of the structural hyperparameters that would not build a model all raise
`ConfigError` (or `UnknownNameError`) naming the file and the key.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError, UnknownNameError

# name -> (what it sets: an ArchConfig field, a TrainConfig field or the stages, value type)
HYPERPARAMETERS: dict[str, tuple[str, type]] = {
    "block": ("arch", str), "cardinality": ("arch", int), "bottleneck_ratio": ("arch", float),
    "stem_filters": ("arch", int), "stem_kernel": ("arch", int), "kernel": ("arch", int),
    "aggregation": ("arch", str), "dense_units": ("arch", int), "dense_layers": ("arch", int),
    "dropout": ("arch", float), "l2": ("arch", float), "embedding_dim": ("arch", int),
    "num_stages": ("stages", int), "blocks_per_stage": ("stages", int),
    "stage_filters": ("stages", int),
    "learning_rate": ("train", float), "batch_size": ("train", int), "margin": ("train", float),
}
# Hyperparameters whose combinations decide whether a model can be built at all.
STRUCTURAL = ("block", "cardinality", "bottleneck_ratio", "stage_filters", "num_stages")
OBJECTIVES = {"val_loss": "min", "val_accuracy": "max"}  # val_accuracy: classifiers only
KINDS = ("choice", "int", "float", "fixed")
SAMPLINGS = ("linear", "log", "reverse_log")
MAX_COMBINATIONS = 100_000
TOP_KEYS = ("base", "objective", "train", "hyperparameters", "name")
TRIAL_TRAIN_KEYS = ("max_epochs", "steps_per_epoch", "validation_every", "patience",
                    "min_improvement", "seed")


def _coerce(where: str, name: str, value):
    """`value` as the type of hyperparameter `name` (YAML 1.1 reads 1e-5 as a string)."""
    typ = HYPERPARAMETERS[name][1]
    if typ is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    ok = isinstance(value, typ) if typ is not float else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        raise ConfigError(f"{where}: expected {typ.__name__} values, got {value!r}")
    return typ(value)


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter: its kind (choice / int / float / fixed) and range, optionally
    active only `when` another one (`parent`) takes one of `parent_values`."""

    name: str
    kind: str
    values: tuple = ()  # choice values, or the one fixed value
    low: Any = None
    high: Any = None
    step: Any = None
    sampling: str = "linear"
    default: Any = None
    parent: str | None = None
    parent_values: tuple = ()

    def declare(self, hp):
        """Declare (or read) this hyperparameter on keras_tuner `hp`: its value, or None
        while its condition is inactive."""
        cond = ({"parent_name": self.parent, "parent_values": list(self.parent_values)}
                if self.parent else {})
        if self.kind == "fixed":
            return hp.Fixed(self.name, self.values[0], **cond)
        if self.kind == "choice":
            return hp.Choice(self.name, list(self.values), default=self.default, **cond)
        make = hp.Int if self.kind == "int" else hp.Float
        return make(self.name, self.low, self.high, step=self.step, sampling=self.sampling,
                    default=self.default, **cond)

    def candidates(self) -> tuple:
        """The values to check: every choice, every int on the grid, a float's end points."""
        if self.kind in ("choice", "fixed"):
            return self.values
        if self.kind == "float":
            return (self.low, self.high)
        if self.sampling != "linear" and self.step:  # log grid: low * step ** k
            n = int(math.floor(math.log(self.high / self.low, self.step) + 1e-9))
            return tuple(self.low * self.step ** k for k in range(n + 1))
        return tuple(range(self.low, self.high + 1, self.step or 1))

    def to_dict(self) -> dict:
        """The YAML entry of this hyperparameter (round-trips through `parse_entry`)."""
        if self.kind in ("choice", "fixed"):
            d = {"choice": list(self.values)} if self.kind == "choice" else \
                {"fixed": self.values[0]}
        else:
            d = {self.kind: [self.low, self.high], "sampling": self.sampling}
            if self.step is not None:
                d["step"] = self.step
        if self.default is not None:
            d["default"] = self.default
        if self.parent:
            d["when"] = {self.parent: list(self.parent_values)}
        return d


def parse_entry(source: str, name: str, entry) -> ParamSpec:
    """The `ParamSpec` of YAML entry `entry` of hyperparameter `name` (a scalar is fixed)."""
    where = f"{source}: hyperparameters.{name}"
    if name not in HYPERPARAMETERS:
        raise UnknownNameError(f"hyperparameter (in {source})", name, HYPERPARAMETERS)
    if not isinstance(entry, Mapping):
        if isinstance(entry, (list, type(None))):
            raise ConfigError(f"{where}: expected a mapping like {{choice: [...]}} or a "
                              f"single value, got {entry!r}")
        entry = {"fixed": entry}
    unknown = sorted(set(entry) - {*KINDS, "step", "sampling", "default", "when"})
    kinds = [k for k in KINDS if k in entry]
    if unknown or len(kinds) != 1:
        raise ConfigError(f"{where}: needs exactly one of {', '.join(KINDS)} and optionally "
                          f"step, sampling, default, when; got keys {sorted(entry)}")
    kind, spec = kinds[0], entry[kinds[0]]
    kw: dict = {"name": name, "kind": kind}
    if kind == "fixed":
        kw["values"] = (_coerce(where, name, spec),)
    elif kind == "choice":
        if not isinstance(spec, list) or not spec:
            raise ConfigError(f"{where}: choice needs a non-empty list, got {spec!r}")
        values = tuple(_coerce(where, name, v) for v in spec)
        if len(set(values)) != len(values):
            raise ConfigError(f"{where}: choice has repeated values {list(values)}")
        kw["values"] = values
    else:
        if HYPERPARAMETERS[name][1] is str or (kind == "int") != (
                HYPERPARAMETERS[name][1] is int):
            raise ConfigError(f"{where}: a {HYPERPARAMETERS[name][1].__name__} "
                              f"hyperparameter cannot be a {kind} range")
        if not isinstance(spec, list) or len(spec) != 2:
            raise ConfigError(f"{where}: {kind} needs [low, high], got {spec!r}")
        low, high = (_coerce(where, name, v) for v in spec)
        sampling = entry.get("sampling", "linear")
        if sampling not in SAMPLINGS:
            raise UnknownNameError(f"sampling (in {where})", str(sampling), SAMPLINGS)
        if not low < high:
            raise ConfigError(f"{where}: range [{low}, {high}] is empty or reversed")
        if sampling != "linear" and low <= 0:
            raise ConfigError(f"{where}: {sampling} sampling needs low > 0, got {low}")
        step = entry.get("step")
        if step is not None:
            step = _coerce(f"{where}.step", name, step)
            if step <= 0 or (sampling != "linear" and step <= 1):
                raise ConfigError(f"{where}: step must be > 0 (> 1 for {sampling} "
                                  f"sampling), got {step}")
        kw.update(low=low, high=high, step=step, sampling=sampling)
    if kind in ("choice", "fixed") and {"step", "sampling"} & set(entry):
        raise ConfigError(f"{where}: step and sampling apply to int and float ranges only")
    if entry.get("default") is not None:
        if kind == "fixed":
            raise ConfigError(f"{where}: a fixed hyperparameter takes no default")
        d = _coerce(f"{where}.default", name, entry["default"])
        inside = d in kw["values"] if kind == "choice" else kw["low"] <= d <= kw["high"]
        if not inside:
            raise ConfigError(f"{where}: default {d!r} is not among its values")
        kw["default"] = d
    if "when" in entry:
        when = entry["when"]
        if not isinstance(when, Mapping) or len(when) != 1:
            raise ConfigError(f"{where}: when needs one parent, e.g. {{block: resnext}}")
        (parent, pvals), = when.items()
        if parent not in HYPERPARAMETERS:
            raise UnknownNameError(f"hyperparameter (in {where}.when)", str(parent),
                                   HYPERPARAMETERS)
        pvals = pvals if isinstance(pvals, list) else [pvals]
        kw.update(parent=parent, parent_values=tuple(
            _coerce(f"{where}.when", parent, v) for v in pvals))
    return ParamSpec(**kw)


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: the base config, the hyperparameters and the objective.

    `config(values)` is the base config with hyperparameter values applied (the config to
    train); `config(values, trial=True)` also applies the trial budget (`trial_train`).
    """

    base: ZooConfig
    params: tuple = ()  # of ParamSpec, parents before the ones they condition
    objective: str = "val_loss"
    trial_train: dict = field(default_factory=dict)
    name: str = ""  # of the best config; default "<base>_tuned"
    source: str = "<space>"  # the file, for error messages

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", f"{self.base.name}_tuned")
        object.__setattr__(self, "params", _ordered(self.source, self.params))
        _validate(self)

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

    def spec(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise UnknownNameError(f"hyperparameter of {self.source}", name,
                               [p.name for p in self.params])

    def declare(self, hp) -> dict:
        """Declare every hyperparameter on `hp`; {name: value} of the active ones."""
        values = {p.name: p.declare(hp) for p in self.params}
        return {k: v for k, v in values.items() if v is not None}

    def active(self, values: Mapping) -> dict:
        """The values that apply: keras-tuner's own ("tuner/...") dropped, conditional ones
        whose parent takes another value dropped; unknown names are refused."""
        out = {}
        for k, v in values.items():
            if k.startswith("tuner/"):
                continue
            if k not in HYPERPARAMETERS:
                raise UnknownNameError("hyperparameter", k, HYPERPARAMETERS)
            out[k] = _coerce(f"hyperparameter {k}", k, v)
        for p in self.params:
            if p.parent and p.name in out and _value(self.base, out, p.parent) \
                    not in p.parent_values:
                del out[p.name]
        return out

    def config(self, values: Mapping, trial: bool = False) -> ZooConfig:
        """The base config with `values` applied (and the trial budget if `trial`)."""
        v = self.active(values)
        sections = {s: {k: x for k, x in v.items() if HYPERPARAMETERS[k][0] == s}
                    for s in ("arch", "train")}
        if any(HYPERPARAMETERS[k][0] == "stages" for k in v):
            sections["arch"]["stages"] = tuple(
                (_value(self.base, v, "stage_filters") * 2 ** i,)
                * _value(self.base, v, "blocks_per_stage")
                for i in range(_value(self.base, v, "num_stages")))
        if trial:
            sections["train"] = {**self.trial_train, **sections["train"]}
        return self.base.replace(**sections)

    def with_fixed(self, fixed: Mapping) -> "SearchSpace":
        """This space with some hyperparameters fixed (`hp.Fixed`) to the given values;
        a conditional one keeps its condition."""
        params = {p.name: p for p in self.params}
        for name, value in fixed.items():
            old = params.get(name)
            entry = {"fixed": value}
            if old is not None and old.parent:
                entry["when"] = {old.parent: list(old.parent_values)}
            params[name] = parse_entry(f"{self.source} (--fixed)", name, entry)
        return dataclasses.replace(self, params=tuple(params.values()))

    def with_trial_budget(self, **train) -> "SearchSpace":
        """This space with trial `train` overrides added (None values ignored)."""
        extra = {k: v for k, v in train.items() if v is not None}
        return dataclasses.replace(self, trial_train={**self.trial_train, **extra})

    def to_dict(self) -> dict:
        """A space file's content, the base inlined (so a stored space is self-contained)."""
        return {"base": self.base.to_dict(), "objective": self.objective,
                "train": dict(self.trial_train), "name": self.name,
                "hyperparameters": {p.name: p.to_dict() for p in self.params}}


def _value(base: ZooConfig, values: Mapping, name: str):
    """The value of hyperparameter `name`: from `values`, else what the base config has."""
    if name in values:
        return values[name]
    section = HYPERPARAMETERS[name][0]
    if section == "stages":
        stages = base.arch.stages
        return {"num_stages": len(stages), "blocks_per_stage": len(stages[0]),
                "stage_filters": stages[0][0]}[name]
    return getattr(getattr(base, section), name)


def _ordered(source: str, params) -> tuple:
    """Params with every parent before its children; parents must be unconditional."""
    by_name = {p.name: p for p in params}
    for p in params:
        if p.parent is None:
            continue
        parent = by_name.get(p.parent)
        if parent is None or parent.parent is not None or parent.kind not in ("choice",
                                                                               "fixed"):
            raise ConfigError(f"{source}: hyperparameters.{p.name}.when: the parent "
                              f"{p.parent!r} must be an unconditional choice or fixed "
                              f"hyperparameter of this space")
    return tuple(sorted(params, key=lambda p: p.parent is not None))


def _validate(space: SearchSpace) -> None:
    """Check the objective, the trial budget, and that every value (and every combination of
    the structural hyperparameters) gives a config whose model can be built."""
    from singer_zoo.models.backbone import check_input_size

    src = space.source
    if space.objective not in OBJECTIVES:
        raise UnknownNameError(f"objective (in {src})", str(space.objective), OBJECTIVES)
    if space.objective == "val_accuracy" and space.base.train.task != "classifier":
        raise ConfigError(f"{src}: objective val_accuracy needs a classifier base; "
                          f"{space.base.name} is a {space.base.train.task}")
    bad = sorted(set(space.trial_train) - set(TRIAL_TRAIN_KEYS))
    if bad:
        raise ConfigError(f"{src}: train: unknown or untunable field(s) {bad}; valid: "
                          f"{', '.join(TRIAL_TRAIN_KEYS)}")
    for key, change in (("train", {"train": space.trial_train}), ("name", {"name": space.name})):
        try:
            space.base.replace(**change)
        except ConfigError as e:
            raise ConfigError(f"{src}: {key}: {e}") from None

    def check(values: dict, where: str) -> None:
        try:
            cfg = space.config(values)
            check_input_size(cfg.arch, cfg.features.n_bins, cfg.features.window_frames)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{src}: {where}: {e}") from None

    for p in space.params:
        for v in p.candidates():
            check({p.name: v}, f"hyperparameters.{p.name}={v!r}")
        for v in p.parent_values:
            check({p.parent: v}, f"hyperparameters.{p.name}.when: {p.parent}={v!r}")
    structural = [p for p in space.params if p.name in STRUCTURAL]
    grid = [p.candidates() for p in structural]
    if math.prod(len(g) for g in grid) > MAX_COMBINATIONS:
        raise ConfigError(f"{src}: more than {MAX_COMBINATIONS} combinations of "
                          f"{', '.join(p.name for p in structural)} to check; use coarser "
                          f"steps")
    for combo in itertools.product(*grid):
        values = dict(zip((p.name for p in structural), combo))
        check(values, "hyperparameters " + ", ".join(f"{k}={v!r}" for k, v in values.items()))


def _base_config(source: str, base) -> ZooConfig:
    """`base:` as a zoo name, a YAML path (relative to the space file first) or a mapping."""
    from pathlib import Path

    from singer_zoo.registry import get_config

    if isinstance(base, Mapping):
        try:
            return ZooConfig.from_dict(base)
        except ConfigError as e:
            raise ConfigError(f"{source}: base: {e}") from None
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{source}: base must name a zoo model or a config YAML, "
                          f"got {base!r}")
    near = Path(source).parent / base
    return get_config(near if near.suffix in (".yaml", ".yml") and near.exists() else base)


def space_from_dict(data, source: str = "<space>") -> SearchSpace:
    """A `SearchSpace` from a space file's parsed content; `source` names it in errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a search space must be a YAML mapping")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; valid: {', '.join(TOP_KEYS)}")
    if "base" not in data:
        raise ConfigError(f"{source}: base (the zoo model to start from) is required")
    hps = data.get("hyperparameters")
    if not isinstance(hps, Mapping) or not hps:
        raise ConfigError(f"{source}: hyperparameters must be a non-empty mapping")
    train = data.get("train") or {}
    if not isinstance(train, Mapping):
        raise ConfigError(f"{source}: train must be a mapping of TrainConfig fields")
    name = data.get("name") or ""
    if not isinstance(name, str):
        raise ConfigError(f"{source}: name must be a string, got {name!r}")
    return SearchSpace(base=_base_config(source, data["base"]),
                       params=tuple(parse_entry(source, str(k), v) for k, v in hps.items()),
                       objective=data.get("objective", "val_loss"), trial_train=dict(train),
                       name=name, source=source)


def load_space(path, fixed: Mapping | None = None) -> SearchSpace:
    """Read and validate a space file; `fixed` ({name: value}) fixes hyperparameters."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read search space ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    space = space_from_dict(data, str(path))
    return space.with_fixed(fixed) if fixed else space


def parse_fixed(items) -> dict:
    """Command-line `NAME=VALUE` strings -> {name: value}, values read as YAML scalars."""
    import yaml

    out = {}
    for item in items or ():
        name, sep, text = str(item).partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--fixed {item!r}: expected NAME=VALUE, e.g. "
                              f"aggregation=attention")
        try:
            out[name.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--fixed {item!r}: cannot read the value") from None
    return out
