"""Frozen, validated configuration dataclasses: one per concern, plus the zoo entry.

- `FeatureConfig`: the audio front end (paper section 3.2).
- `ArchConfig`: the backbone and head (sections 2, 3.3).
- `TrainConfig`: the task and the optimisation (section 3.3).
- `ZooConfig`: a named table row: the three above plus the paper's reported figures.

Every dataclass validates itself on creation and raises `ConfigError` naming the field.
`ZooConfig.from_yaml` / `to_yaml` round-trip the files in `singer_zoo/zoo_configs/`, which
hold only the fields that differ from the defaults (`to_yaml(path, minimal=True)`); a full
file (every field spelt out, as a training run's config.yaml) reads the same.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

import yaml

from singer_zoo.errors import ConfigError

FRONTENDS = ("mel", "cqt")
DFTS = ("rfft", "matmul")  # FeatureConfig.dft
# block kind -> how the tables name the network
BLOCK_NAMES = {"vanilla": "CNN", "resnext": "ResNeXt", "separable": "separable CNN",
               "tdnn": "TDNN"}
BLOCKS = tuple(BLOCK_NAMES)
AGGREGATIONS = ("none", "max", "average", "attention", "statistics")
TASKS = ("classifier", "siamese")


def _check(cond: bool, cls: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{cls}: {msg}")


def _choice(cls: str, name: str, value, valid) -> None:
    _check(value in valid, cls, f"{name}={value!r} is not one of {', '.join(valid)}")


def _positive(cls: str, obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        _check(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, cls,
               f"{n} must be a positive number, got {v!r}")


def _reject_unknown(cls, data: dict) -> None:
    """ConfigError listing the valid fields when `data` has keys `cls` does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    _check(not unknown, cls.__name__, f"unknown field(s) {unknown}; valid: {sorted(names)}")


def bottleneck_width(width: int, ratio: float) -> int:
    """Channels of a ResNeXt block's grouped conv: the block's width x bottleneck ratio
    (`ArchConfig` checks on creation that the cardinality divides it)."""
    return int(round(width * ratio))


def given(**values) -> dict:
    """The values that are not None: the overrides of a section, None meaning "keep the
    config's value" (unset CLI options, unset `Budget` fields, trial budgets)."""
    return {k: v for k, v in values.items() if v is not None}


_TYPES = {"int": "an integer", "float": "a finite number", "str": "a string",
          "bool": "true or false"}


def _check_types(obj) -> None:
    """ConfigError naming the first field whose value is not of its declared type (int: not
    bool, not 1.5; float: int or float, finite), before any check that would trip over it
    with a TypeError."""
    for f in dataclasses.fields(obj):
        v, kind = getattr(obj, f.name), f.type
        if kind not in _TYPES:
            continue
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        ok = {"int": number and isinstance(v, int),
              "float": number and math.isfinite(v),
              "str": isinstance(v, str), "bool": isinstance(v, bool)}[kind]
        _check(ok, type(obj).__name__, f"{f.name} must be {_TYPES[kind]}, got {v!r}")


class _Section:
    """dict round trip of a config section (a frozen dataclass); YAML holds these dicts."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None):
        """Build the section from a mapping, rejecting unknown keys with the valid ones.
        Float fields also take numbers written as strings: YAML 1.1 reads `1e-4` (no dot) as
        the string "1e-4"."""
        _check(data is None or isinstance(data, Mapping), cls.__name__,
               f"expected a mapping of fields, got {data!r}")
        data = dict(data or {})
        _reject_unknown(cls, data)
        for f in dataclasses.fields(cls):
            if f.type == "float" and isinstance(data.get(f.name), str):
                try:
                    data[f.name] = float(data[f.name])
                except ValueError:
                    pass  # left to _check_types, which names the field
        return cls(**data)


def read_yaml(path, what: str):
    """The parsed content of a YAML file; an unreadable file or bad YAML is a ConfigError
    naming the file and `what` it should hold."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None


@dataclass(frozen=True)
class FeatureConfig(_Section):
    """Audio front end. Defaults are the paper's Mel settings (section 3.2).

    Values are power in dB relative to the recording's maximum, clipped at -top_db and
    offset by +top_db, so they lie in [0, top_db] (see docs/features.md).
    """

    frontend: str = "mel"
    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_bins: int = 96
    top_db: float = 60.0
    fmin: float = 32.703195662574764  # CQT only: C1
    bins_per_octave: int = 12  # CQT only
    window_frames: int = 256  # 6 s at 22050 Hz / hop 512
    window_hop_frames: int = 51  # 20 % of 256
    # how the in-graph Mel front end (SavedModel, TFLite) computes the power spectrum:
    # "rfft" (tf.signal.rfft) or "matmul" (two matrix products, features/dft.py: faster in
    # TFLite, larger files). The values agree to float rounding, so it is not part of
    # equality (a pack made either way serves both) and is left out of `to_dict` at "rfft"
    dft: str = field(default="rfft", compare=False)

    def __post_init__(self):
        c = "FeatureConfig"
        _check_types(self)
        _choice(c, "frontend", self.frontend, FRONTENDS)
        _choice(c, "dft", self.dft, DFTS)
        _check(self.dft == "rfft" or self.frontend == "mel", c,
               "dft 'matmul' is a Mel front end option (the CQT is already a matrix product)")
        _positive(c, self, "sample_rate", "n_fft", "hop_length", "n_bins", "top_db", "fmin",
                  "bins_per_octave", "window_frames", "window_hop_frames")
        _check(self.hop_length <= self.n_fft, c, "hop_length must not exceed n_fft")
        _check(self.window_hop_frames <= self.window_frames, c,
               "window_hop_frames must not exceed window_frames")
        if self.frontend == "cqt":
            top = self.fmin * 2 ** (self.n_bins / self.bins_per_octave)
            _check(top < self.sample_rate / 2, c,
                   f"CQT top frequency {top:.0f} Hz is above Nyquist ({self.sample_rate / 2:.0f})")

    def to_dict(self) -> dict:
        d = super().to_dict()
        if self.dft == "rfft":  # the default: not written, so older cards and dicts compare equal
            del d["dft"]
        return d

    @property
    def window_seconds(self) -> float:
        return self.window_frames * self.hop_length / self.sample_rate


@dataclass(frozen=True)
class ArchConfig(_Section):
    """Backbone + head. A stem conv layer, then stages of blocks (one width per block).

    Max pooling (2, 2) follows the stem and each stage; this placement reproduces every
    parameter count of the paper's tables (docs/model_table.md). `stem_stride` s > 1 makes
    the stem convolution stride by s *instead of* the max pooling after it (striding
    instead of pooling, the paper's future work; 1 in every paper row), and block
    "separable" uses depthwise-separable convolutions (both for the fast mobile row).
    Block "tdnn" (beyond the paper) replaces the 2-D stack by per-frame layers
    (`blocks.tdnn_stack`: a learnt cepstrum of `stem_filters`, one time-delay layer per
    stage width) and keeps every frame (pooling factor 1).
    """

    block: str = "resnext"
    stem_filters: int = 64
    stages: tuple = ((128,),)
    cardinality: int = 4
    bottleneck_ratio: float = 0.5
    stem_kernel: int = 10
    stem_stride: int = 1
    kernel: int = 5
    aggregation: str = "attention"
    dense_units: int = 1024
    dense_layers: int = 3
    dropout: float = 0.1
    l2: float = 1e-6
    embedding_dim: int = 16
    unit_embedding: bool = False  # the embedder's output is L2-normalised (length 1)
    bn_momentum: float = 0.9  # BatchNormalization momentum (docs/training.md); Keras: 0.99

    def __post_init__(self):
        c = "ArchConfig"
        _check_types(self)
        _check(isinstance(self.stages, (list, tuple)) and all(
            isinstance(s, (list, tuple)) and all(isinstance(w, int) and not isinstance(w, bool)
                                                 for w in s) for s in self.stages), c,
               f"stages must be a list of stages, each a list of integer block widths "
               f"(e.g. [[128], [256, 256]]), got {self.stages!r}")
        stages = tuple(tuple(s) for s in self.stages)
        object.__setattr__(self, "stages", stages)
        _choice(c, "block", self.block, BLOCKS)
        _choice(c, "aggregation", self.aggregation, AGGREGATIONS)
        _positive(c, self, "stem_filters", "cardinality", "stem_kernel", "stem_stride",
                  "kernel", "embedding_dim")
        _check(all(len(s) > 0 and all(w > 0 for w in s) for s in stages), c,
               f"stages must be non-empty lists of positive widths, got {self.stages!r}")
        _check(isinstance(self.dense_layers, int) and self.dense_layers >= 0, c,
               "dense_layers must be an integer >= 0")
        _check(self.dense_layers == 0 or self.dense_units > 0, c, "dense_units must be > 0")
        _check(0 <= self.dropout < 1, c, f"dropout must be in [0, 1), got {self.dropout}")
        _check(self.l2 >= 0, c, f"l2 must be >= 0, got {self.l2}")
        _check(isinstance(self.bn_momentum, (int, float)) and 0 < self.bn_momentum < 1, c,
               f"bn_momentum must be in (0, 1), got {self.bn_momentum!r}")
        _check(0 < self.bottleneck_ratio <= 4, c, "bottleneck_ratio must be in (0, 4]")
        if self.block == "tdnn":
            _check(self.stem_stride == 1, c, "block 'tdnn' has no stem convolution to "
                   "stride (stem_stride must be 1)")
        if self.block == "resnext":
            for w in (x for s in stages for x in s):
                width = bottleneck_width(w, self.bottleneck_ratio)
                _check(width % self.cardinality == 0, c,
                       f"bottleneck width {width} (block {w} x {self.bottleneck_ratio}) "
                       f"is not divisible by cardinality {self.cardinality}")

    @property
    def tdnn_layers(self) -> tuple:
        """Block "tdnn": (width, kernel, dilation) of each time-delay layer, one per stage
        width: kernel `kernel` then 3, dilation 1, 2, 3, ... (the x-vector pattern)."""
        widths = [w for stage in self.stages for w in stage]
        return tuple((w, self.kernel if i == 1 else 3, i) for i, w in enumerate(widths, 1))

    @property
    def pooling_factor(self) -> int:
        """How many input frames (and bins) map to one output frame: 2 ** (1 + stages)
        with the paper's pooled stem, stem_stride x 2 ** stages with a strided one; 1 for
        block "tdnn" (no pooling)."""
        if self.block == "tdnn":
            return 1
        return (2 if self.stem_stride == 1 else self.stem_stride) * 2 ** len(self.stages)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["stages"] = [list(s) for s in self.stages]
        if self.stem_stride == 1:  # the paper's stem: not written, so its rows stay as they are
            del d["stem_stride"]
        return d


@dataclass(frozen=True)
class TrainConfig(_Section):
    """Task and optimisation. Defaults are the paper's (section 3.3); `max_epochs` and
    `steps_per_epoch` are budgets for demos and tests."""

    task: str = "classifier"
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_epochs: int = 10000
    steps_per_epoch: int = 0  # 0: one pass over the training windows (or pairs)
    validation_every: int = 50
    patience: int = 300  # epochs without improvement before stopping
    min_improvement: float = 0.005  # a new best must beat the old by 0.5 % (paper: 99.5 %)
    margin: float = 1.0  # contrastive loss margin m
    seed: int = 0
    precise_bn_batches: int = 20  # re-estimate BN statistics on this many batches; 0: off

    def __post_init__(self):
        c = "TrainConfig"
        _check_types(self)
        _choice(c, "task", self.task, TASKS)
        _positive(c, self, "learning_rate", "batch_size", "max_epochs", "validation_every",
                  "patience", "margin")
        _check(self.steps_per_epoch >= 0, c, "steps_per_epoch must be >= 0")
        _check(isinstance(self.precise_bn_batches, int) and self.precise_bn_batches >= 0, c,
               "precise_bn_batches must be an integer >= 0")
        _check(0 <= self.min_improvement < 1, c, "min_improvement must be in [0, 1)")
        _check(self.task != "siamese" or self.batch_size % 2 == 0, c,
               "siamese batch_size must be even (1:1 same/different pairs)")


SECTIONS = ("features", "arch", "train")  # a ZooConfig's dataclass sections


@dataclass(frozen=True)
class ZooConfig:
    """One named model of the zoo (a row of the paper's Table 1 or 2, or our own)."""

    name: str
    table: str  # "table1", "table2" or "beyond"
    description: str = ""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    paper: dict = field(default_factory=dict)  # reported figures, e.g. total_params

    def __post_init__(self):
        c = "ZooConfig"
        _check(isinstance(self.name, str) and self.name.replace("_", "").isalnum(), c,
               f"name must be letters, digits and underscores, got {self.name!r}")
        _choice(c, "table", self.table, ("table1", "table2", "beyond"))
        for f, t in (("features", FeatureConfig), ("arch", ArchConfig), ("train", TrainConfig)):
            _check(isinstance(getattr(self, f), t), c, f"{f} must be a {t.__name__}")

    def with_train(self, **values) -> ZooConfig:
        """Copy with train-section fields overridden, None meaning "keep this config's
        value" (the CLI's unset options, `Budget`'s unset fields, a trial budget).

        Example:
            >>> cfg.with_train(max_epochs=5, patience=None).train.max_epochs
            5
        """
        overrides = given(**values)
        return self.replace(train=overrides) if overrides else self

    def replace(self, **sections) -> ZooConfig:
        """Copy with some sections' fields overridden: replace(train={"max_epochs": 5})."""
        kw = {}
        for key, value in sections.items():
            cur = getattr(self, key)
            kw[key] = dataclasses.replace(cur, **value) if isinstance(value, Mapping) and \
                dataclasses.is_dataclass(cur) else value
        return dataclasses.replace(self, **kw)

    def to_dict(self, minimal: bool = False) -> dict:
        """The config as plain data. `minimal` keeps, of the three sections, only the fields
        that differ from the dataclass defaults, plus `train.task` (stated in every config),
        and drops an empty description or paper: the form of `singer_zoo/zoo_configs/`.
        `from_dict` reads both forms to the same config."""
        d = {"name": self.name, "table": self.table, "description": self.description,
             "features": self.features.to_dict(), "arch": self.arch.to_dict(),
             "train": self.train.to_dict(), "paper": dict(self.paper)}
        if not minimal:
            return d
        for key in SECTIONS:
            default = type(getattr(self, key))().to_dict()
            d[key] = {k: v for k, v in d[key].items()
                      if k not in default or v != default[k] or (key, k) == ("train", "task")}
        return {k: v for k, v in d.items() if v or k in ("name", "table", "train")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ZooConfig:
        """A config from its full or minimal dict (`to_dict`): a field or a whole section
        left out takes the dataclass default, except `train.task`, which a config must
        state (a siamese row whose task went missing would otherwise train, silently, as a
        classifier)."""
        data = dict(data)
        _reject_unknown(cls, data)
        _check("name" in data and "table" in data, "ZooConfig", "name and table are required")
        train = data.get("train")
        _check(not isinstance(train, Mapping | None) or "task" in (train or {}), "ZooConfig",
               f"train.task is required: a config states its task "
               f"({' or '.join(TASKS)}) in its train section")
        return cls(name=data["name"], table=data["table"],
                   description=data.get("description") or "",
                   features=FeatureConfig.from_dict(data.get("features")),
                   arch=ArchConfig.from_dict(data.get("arch")),
                   train=TrainConfig.from_dict(train),
                   paper=dict(data.get("paper") or {}))

    @classmethod
    def from_yaml(cls, path) -> ZooConfig:
        data = read_yaml(path, "config")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: a zoo config must be a YAML mapping")
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_yaml(self, path, minimal: bool = False) -> None:
        """Write the config (atomically); `minimal`: the non-default fields only (`to_dict`),
        as the zoo's own files are written."""
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            yaml.safe_dump(self.to_dict(minimal), fh, sort_keys=False)
        os.replace(tmp, path)
