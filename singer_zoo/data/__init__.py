"""Datasets: manifests, the DAMP readers, the synthetic corpus and the tf.data pipeline.

- `read_manifest` / `Manifest` / `Recording`: the generic CSV description of a corpus.
- `read_damp`, `damp_balanced_split`, `DAMP_BALANCED_SONGS`: the paper's data sets.
- `generate_corpus`: a deterministic synthetic corpus shaped like DAMP-balanced.
- `load_feature_set`, `FeatureSet`, `window_dataset`, `pair_dataset`, `encode_labels`:
  features and batches for training (imports TensorFlow on first use only).

See docs/datasets.md.
"""
from singer_zoo.data.damp import DAMP_BALANCED_SONGS, damp_balanced_split, read_damp
from singer_zoo.data.manifest import SPLITS, Manifest, Recording, read_manifest
from singer_zoo.data.synthetic import generate_corpus

_PIPELINE = ("FeatureSet", "cached_features", "encode_labels", "load_feature_set",
             "pair_dataset", "window_dataset")


def __getattr__(name):
    if name in _PIPELINE:
        from singer_zoo.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DAMP_BALANCED_SONGS", "SPLITS", "Manifest", "Recording", "damp_balanced_split",
           "generate_corpus", "read_damp", "read_manifest", *_PIPELINE]
