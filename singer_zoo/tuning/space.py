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
from collections.abc import Mapping

from singer_zoo.config import ZooConfig, given
from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.tuning.params import HYPERPARAMETERS, ParamSpec, coerce, parse_entry

# Hyperparameters whose combinations decide whether a model can be built at all.
STRUCTURAL = ("block", "cardinality", "bottleneck_ratio", "stage_filters", "num_stages")
OBJECTIVES = {"val_loss": "min", "val_accuracy": "max"}  # val_accuracy: classifiers only
MAX_COMBINATIONS = 100_000
TOP_KEYS = ("base", "objective", "train", "hyperparameters", "name")
TRIAL_TRAIN_KEYS = ("max_epochs", "steps_per_epoch", "validation_every", "patience",
                    "min_improvement", "seed")


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
            out[k] = coerce(f"hyperparameter {k}", k, v)
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

    def with_fixed(self, fixed: Mapping) -> SearchSpace:
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

    def with_trial_budget(self, **train) -> SearchSpace:
        """This space with trial `train` overrides added (None values ignored)."""
        return dataclasses.replace(self, trial_train={**self.trial_train, **given(**train)})

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
        except ConfigError as e:
            raise ConfigError(f"{src}: {where}: {e}") from None

    for p in space.params:
        active_when = {p.parent: p.parent_values[0]} if p.parent else {}
        for v in p.candidates():
            check({**active_when, p.name: v}, f"hyperparameters.{p.name}={v!r}")
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
    """Read and validate a space file, or a space shipped in the package by name (e.g.
    "default": zoo_configs/search_spaces/default.yaml); `fixed` ({name: value}) fixes
    hyperparameters. A relative `zoo_configs/...` path that does not exist from the current
    folder is the zoo's own file (the README's `tune zoo_configs/search_spaces/default.yaml`
    then works from any folder)."""
    from pathlib import Path

    from singer_zoo.config import read_yaml
    from singer_zoo.resources import configs_dir

    p = Path(path)
    if not p.exists() and not p.is_absolute() and p.parts[:1] == ("zoo_configs",):
        zoo = configs_dir().joinpath(*p.parts[1:])
        path = zoo if zoo.exists() else path
    elif p.suffix not in (".yaml", ".yml") and "/" not in str(path):
        shipped = {q.stem: q for q in (configs_dir() / "search_spaces").glob("*.yaml")}
        if str(path) not in shipped:
            raise UnknownNameError("search space", str(path), shipped)
        path = shipped[str(path)]
    space = space_from_dict(read_yaml(path, "search space"), str(path))
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
