"""Hyperparameter search with keras-tuner (paper section 3.3; docs/tuning.md).

- `params`: one hyperparameter's YAML entry (`ParamSpec`, `HYPERPARAMETERS`);
- `space`: search spaces declared in YAML (`load_space`, `SearchSpace`);
- `hypermodel`: `SingerHyperModel`, the zoo's own models and training as a keras-tuner
  `HyperModel`;
- `search`: `run_search` (resumable, optionally distributed) and the best config it writes.

Names are imported on first use, so `singer-zoo --help` does not load TensorFlow.
"""
import importlib

_WHERE = {"HYPERPARAMETERS": "params", "ParamSpec": "params", "SearchSpace": "space",
          "load_space": "space", "parse_fixed": "space", "space_from_dict": "space",
          "SingerHyperModel": "hypermodel", "TUNERS": "search", "SearchResult": "search",
          "make_tuner": "search", "run_search": "search", "write_best": "search"}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"singer_zoo.tuning.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
