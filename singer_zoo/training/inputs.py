"""What the trainer feeds the model: features of the train/validation recordings, integer
labels, and the tf.data pipelines of either task (paper sections 3.4, 3.5).

- `load_split`: extract (or read cached) features of both splits, skip bad files, encode
  singers as label indices.
- `make_datasets`: classifier -> shuffled, repeated `(windows, labels)` batches and one
  ordered pass of validation windows; siamese -> endless 1:1 same/different pairs and a
  FIXED set of validation pairs (drawn once with the seed, then cached), so validation
  losses of different epochs are comparable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from singer_zoo.batch import Workers
from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError


@dataclass(frozen=True)
class TrainData:
    """One split: its `FeatureSet` and one integer label (singer index) per recording."""

    features: object  # singer_zoo.data.FeatureSet
    labels: np.ndarray

    def __post_init__(self):
        labels = np.asarray(self.labels, dtype=np.int32)
        if labels.shape != (self.features.n_recordings,):
            raise ConfigError(f"TrainData: {labels.shape} labels for "
                              f"{self.features.n_recordings} recordings")
        object.__setattr__(self, "labels", labels)


def load_split(cfg: ZooConfig, train_recs, val_recs, cache_dir=None, workers: int | Workers = 2):
    """(train TrainData, validation TrainData, class names, {path: problem} of skipped files).

    Class names are the training singers (sorted); a classifier's validation singers must
    all be among them. The siamese task only needs same/different, so its classes are the
    singers of both splits.
    """
    from singer_zoo.data import load_feature_set

    sets, failed = [], {}
    for name, recs in (("training", train_recs), ("validation", val_recs)):
        fs, bad = load_feature_set(recs, cfg.features, cache_dir=cache_dir, workers=workers)
        failed.update(bad)
        if fs.n_recordings == 0:
            raise ConfigError(f"no usable {name} recordings ({len(recs)} selected, "
                              f"{len(bad)} unreadable)")
        sets.append(fs)
    train_fs, val_fs = sets
    train_singers = sorted({r.singer for r in train_fs.recordings})
    if cfg.train.task == "classifier":
        unseen = sorted({r.singer for r in val_fs.recordings} - set(train_singers))
        if unseen:
            raise ConfigError(f"validation singers without training recordings: {unseen}")
        classes = train_singers
    else:
        classes = sorted(set(train_singers) | {r.singer for r in val_fs.recordings})
    index = {s: i for i, s in enumerate(classes)}
    data = [TrainData(fs, [index[r.singer] for r in fs.recordings]) for fs in sets]
    return data[0], data[1], classes, failed


def _sharded(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Shard by batches across workers (the generators have no files to shard by)."""
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(opts)


def make_datasets(cfg: ZooConfig, train: TrainData, val: TrainData, batch_size: int):
    """(train dataset, validation dataset, steps per epoch, validation steps) for the task.

    `batch_size` is the global batch; steps per epoch is `cfg.train.steps_per_epoch`, or
    when 0 one pass over the training windows (siamese: windows // batch pairs batches).
    """
    from singer_zoo.data import pair_dataset, window_dataset

    t = cfg.train
    n_train, n_val = train.features.n_windows, val.features.n_windows
    if t.task == "classifier":
        train_ds = window_dataset(train.features, train.labels, batch_size, shuffle=True,
                                  seed=t.seed, repeat=True)
        val_ds = window_dataset(val.features, val.labels, batch_size, shuffle=False)
        steps = t.steps_per_epoch or math.ceil(n_train / batch_size)
        val_steps = math.ceil(n_val / batch_size)
    else:
        train_ds = pair_dataset(train.features, train.labels, batch_size, seed=t.seed)
        val_steps = max(1, n_val // batch_size)
        val_ds = pair_dataset(val.features, val.labels, batch_size, seed=t.seed) \
            .take(val_steps).cache()
        steps = t.steps_per_epoch or max(1, n_train // batch_size)
    return _sharded(train_ds), _sharded(val_ds), steps, val_steps
