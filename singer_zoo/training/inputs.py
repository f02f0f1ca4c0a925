"""What the trainer feeds the model: features of the train/validation recordings, integer
labels, and the input streams of either task (paper sections 3.4, 3.5).

- `load_split`: extract (or read cached, or read from a features folder) features of both
  splits, skip bad files, encode singers as label indices.
- `make_sources`: the backend-neutral batch sources (`singer_zoo.data.batches`):
  classifier -> shuffled, repeated `(windows, labels)` batches and one ordered pass of
  validation windows; siamese -> endless 1:1 same/different pairs and a FIXED set of
  validation pairs (the seed's first batches), so validation losses of different epochs are
  comparable. Batch i of a stream is a function of (seed, i) alone.
- `fit_inputs` / `make_datasets`: those sources as what `fit` takes on the active backend,
  the training stream starting at a given batch (a resumed run continues there): tf.data on
  TensorFlow (tf.distribute needs it), a `SourceView` (keras.utils.PyDataset) elsewhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

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


def load_split(cfg: ZooConfig, train_recs, val_recs, cache_dir=None, workers: int | Workers = 2,
               features_dir=None):
    """(train TrainData, validation TrainData, class names, {path: problem} of skipped files).

    With `features_dir` (a `singer-zoo features` output folder) the features are read from
    it by recording id and no audio file is opened; else they are extracted (through the
    `cache_dir` cache when given).

    Class names are the training singers (sorted); a classifier's validation singers must
    all be among them. The siamese task only needs same/different, so its classes are the
    singers of both splits.
    """
    from singer_zoo.data import load_feature_set, read_feature_folder

    sets, failed = [], {}
    for name, recs in (("training", train_recs), ("validation", val_recs)):
        if features_dir is not None:
            fs, bad = read_feature_folder(recs, features_dir, cfg.features)
        else:
            fs, bad = load_feature_set(recs, cfg.features, cache_dir=cache_dir,
                                       workers=workers)
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


class SourceView(keras.utils.PyDataset):
    """Batches `start`, `start + 1`, ... of a batch source as a PyDataset (what `fit` takes
    on the JAX and torch backends): `n` batches, or endless when `n` is None."""

    def __init__(self, source, start: int = 0, n: int | None = None):
        super().__init__()  # one worker, no prefetch thread: batch i is read when asked for
        self.source, self.start, self.n = source, int(start), n

    @property
    def num_batches(self):
        return self.n

    def __len__(self):
        if self.n is None:
            raise TypeError("an endless stream has no length")
        return self.n

    def __getitem__(self, i):
        if self.n is not None and not 0 <= i < self.n:
            raise IndexError(i)
        return self.source[self.start + i]


def make_sources(cfg: ZooConfig, train: TrainData, val: TrainData, batch_size: int):
    """(train source, validation source, steps per epoch, validation steps) for the task.

    `batch_size` is the global batch; steps per epoch is `cfg.train.steps_per_epoch`, or
    when 0 one pass over the training windows (siamese: windows // batch pairs batches).
    """
    from singer_zoo.data.batches import PairBatches, WindowBatches

    t = cfg.train
    n_train, n_val = train.features.n_windows, val.features.n_windows
    if t.task == "classifier":
        train_src = WindowBatches(train.features, train.labels, batch_size, shuffle=True,
                                  seed=t.seed, repeat=True)
        val_src = WindowBatches(val.features, val.labels, batch_size, shuffle=False)
        steps = t.steps_per_epoch or math.ceil(n_train / batch_size)
        val_steps = val_src.n_batches
    else:
        train_src = PairBatches(train.features, train.labels, batch_size, seed=t.seed)
        val_steps = max(1, n_val // batch_size)
        val_src = PairBatches(val.features, val.labels, batch_size, seed=t.seed,
                              n_batches=val_steps)
        steps = t.steps_per_epoch or max(1, n_train // batch_size)
    return train_src, val_src, steps, val_steps


def fit_inputs(train_src, val_src, start: int = 0):
    """(training stream from batch `start`, validation data) as `fit` takes them on the
    active backend: tf.data on TensorFlow, `SourceView`s elsewhere."""
    if keras.backend.backend() != "tensorflow":
        return SourceView(train_src, start), SourceView(val_src, 0, val_src.n_batches)
    from singer_zoo.data.tfdata import source_dataset

    return _sharded(source_dataset(train_src, start)), _sharded(source_dataset(val_src))


def make_datasets(cfg: ZooConfig, train: TrainData, val: TrainData, batch_size: int,
                  start_epoch: int = 0):
    """(train stream from epoch `start_epoch`'s first batch, validation data, steps per
    epoch, validation steps): `make_sources` through `fit_inputs`."""
    train_src, val_src, steps, val_steps = make_sources(cfg, train, val, batch_size)
    return (*fit_inputs(train_src, val_src, start_epoch * steps), steps, val_steps)


def _sharded(ds):
    """Shard by batches across workers (the sources have no files to shard by)."""
    import tensorflow as tf

    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(opts)
