"""Datasets: manifests, the DAMP readers, the synthetic corpus and the tf.data pipeline.

- `read_manifest` / `Manifest` / `Recording`: the generic CSV description of a corpus.
- `read_damp`, `damp_balanced_split`, `DAMP_BALANCED_SONGS`: the paper's data sets.
- `generate_corpus`: a deterministic synthetic corpus shaped like DAMP-balanced.
- `load_feature_set`, `read_feature_folder`, `FeatureSet`, `encode_labels`: features for
  training (numpy); `WindowBatches`, `PairBatches`: backend-neutral training batches;
  `window_dataset`, `pair_dataset`: those batches as tf.data (imports TensorFlow on use).

See docs/datasets.md.
"""
from singer_zoo.data.damp import DAMP_BALANCED_SONGS, damp_balanced_split, read_damp
from singer_zoo.data.manifest import SPLITS, Manifest, Recording, read_manifest
from singer_zoo.data.synthetic import generate_corpus

_LAZY = {"FeatureSet": "pipeline", "cached_features": "pipeline", "encode_labels": "pipeline",
         "load_feature_set": "pipeline", "read_feature_folder": "pipeline",
         "PairBatches": "batches", "WindowBatches": "batches",
         "pair_dataset": "tfdata", "window_dataset": "tfdata"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"singer_zoo.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DAMP_BALANCED_SONGS",
    "SPLITS",
    "FeatureSet",
    "Manifest",
    "PairBatches",
    "Recording",
    "WindowBatches",
    "cached_features",
    "damp_balanced_split",
    "encode_labels",
    "generate_corpus",
    "load_feature_set",
    "pair_dataset",
    "read_damp",
    "read_feature_folder",
    "read_manifest",
    "window_dataset",
]
