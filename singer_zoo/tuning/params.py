"""One hyperparameter of a search space: its YAML entry and its keras-tuner declaration.

An entry is `{choice: [...]}`, `{int: [low, high], step:, sampling:}`,
`{float: [low, high], step:, sampling: linear|log|reverse_log}`, `{fixed: value}` (or just
the value), with an optional `default:` and `when: {PARENT: value(s)}` (the hyperparameter
is active only while PARENT takes one of those values). `HYPERPARAMETERS` lists the names
and what each sets; values are coerced to the name's type, and a bad entry raises
`ConfigError` (or `UnknownNameError`) naming the file and the key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping

from singer_zoo.errors import ConfigError, UnknownNameError

# name -> (what it sets: an ArchConfig field, a TrainConfig field or the stages; value type)
HYPERPARAMETERS: dict[str, tuple[str, type]] = {
    "block": ("arch", str), "cardinality": ("arch", int), "bottleneck_ratio": ("arch", float),
    "stem_filters": ("arch", int), "stem_kernel": ("arch", int), "kernel": ("arch", int),
    "aggregation": ("arch", str), "dense_units": ("arch", int), "dense_layers": ("arch", int),
    "dropout": ("arch", float), "l2": ("arch", float), "embedding_dim": ("arch", int),
    "num_stages": ("stages", int), "blocks_per_stage": ("stages", int),
    "stage_filters": ("stages", int),
    "learning_rate": ("train", float), "batch_size": ("train", int), "margin": ("train", float),
}
KINDS = ("choice", "int", "float", "fixed")
SAMPLINGS = ("linear", "log", "reverse_log")


def coerce(where: str, name: str, value):
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
        kw["values"] = (coerce(where, name, spec),)
    elif kind == "choice":
        if not isinstance(spec, list) or not spec:
            raise ConfigError(f"{where}: choice needs a non-empty list, got {spec!r}")
        values = tuple(coerce(where, name, v) for v in spec)
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
        low, high = (coerce(where, name, v) for v in spec)
        sampling = entry.get("sampling", "linear")
        if sampling not in SAMPLINGS:
            raise UnknownNameError(f"sampling (in {where})", str(sampling), SAMPLINGS)
        if not low < high:
            raise ConfigError(f"{where}: range [{low}, {high}] is empty or reversed")
        if sampling != "linear" and low <= 0:
            raise ConfigError(f"{where}: {sampling} sampling needs low > 0, got {low}")
        step = entry.get("step")
        if step is not None:
            step = coerce(f"{where}.step", name, step)
            if step <= 0 or (sampling != "linear" and step <= 1):
                raise ConfigError(f"{where}: step must be > 0 (> 1 for {sampling} "
                                  f"sampling), got {step}")
        kw.update(low=low, high=high, step=step, sampling=sampling)
    if kind in ("choice", "fixed") and {"step", "sampling"} & set(entry):
        raise ConfigError(f"{where}: step and sampling apply to int and float ranges only")
    if entry.get("default") is not None:
        if kind == "fixed":
            raise ConfigError(f"{where}: a fixed hyperparameter takes no default")
        d = coerce(f"{where}.default", name, entry["default"])
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
            coerce(f"{where}.when", parent, v) for v in pvals))
    return ParamSpec(**kw)
