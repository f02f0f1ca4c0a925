"""tf.data views of the backend-neutral batch sources (`singer_zoo.data.batches`), for the
TensorFlow backend (tf.distribute needs a tf.data.Dataset) and TF-side tools.

The source decides which windows form batch i (`source.rows(i)`, numpy, run by
`tf.numpy_function`); the windows are then cut in the tf.data graph by a `tf.gather` from
the FeatureSet's frame matrix, shared with numpy through DLPack, so overlapping windows are
never all held in memory and the gathering runs in parallel outside the Python lock.
"""
from __future__ import annotations

import tensorflow as tf

from singer_zoo.data.batches import PairBatches, WindowBatches


def frames_tensor(feature_set) -> tf.Tensor:
    """The FeatureSet's (total frames, bins) matrix as a TF tensor sharing its memory
    (DLPack, no copy); made once per FeatureSet."""
    if feature_set._tensor is None:
        feature_set._tensor = tf.experimental.dlpack.from_dlpack(feature_set.frames.__dlpack__())
    return feature_set._tensor


def _gatherer(feature_set):
    """A graph function: first rows (batch,) -> windows (batch, window_frames, bins)."""
    frames = frames_tensor(feature_set)  # (total frames, bins)
    offsets = tf.range(feature_set.config.window_frames, dtype=tf.int64)

    @tf.autograph.experimental.do_not_convert
    def gather(rows):
        idx = tf.expand_dims(rows, 1) + tf.expand_dims(offsets, 0)  # (batch, window_frames)
        return tf.gather(frames, idx)  # (batch, window_frames, bins)

    return gather


def source_dataset(source, start: int = 0, stop: int | None = None) -> tf.data.Dataset:
    """Batches start .. stop - 1 of `source` (to its end, or endless, when `stop` is None)
    as a tf.data.Dataset of the same structure as `source[i]`."""
    stop = source.n_batches if stop is None else stop
    index = tf.data.Dataset.range(start, stop) if stop is not None else \
        tf.data.Dataset.counter(start)
    gather = _gatherer(source.feature_set)
    cfg = source.feature_set.config
    batch = tf.TensorShape([source.batch_size if source.full_batches else None])
    windows = batch.concatenate([cfg.window_frames, cfg.n_bins])  # (batch, frames, bins)
    pairs = isinstance(source, PairBatches)
    if not isinstance(source, (PairBatches, WindowBatches)):
        raise TypeError(f"source_dataset: unsupported source {type(source).__name__}")
    dtypes = (tf.int64, tf.int64, tf.float32) if pairs else (tf.int64, tf.int32)

    def make(i):
        *rows, y = tf.numpy_function(source.rows, [i], dtypes, stateful=False)
        x = tuple(tf.ensure_shape(gather(r), windows) for r in rows)
        return (x if pairs else x[0]), tf.ensure_shape(y, batch)

    ds = index.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def window_dataset(feature_set, labels, batch_size: int = 32, shuffle: bool = True,
                   seed: int = 0, repeat: bool = False) -> tf.data.Dataset:
    """`WindowBatches(...)` as a tf.data.Dataset: `(windows (batch, window_frames, bins)
    float32, labels (batch,) int32)`, one pass or (`repeat`) an endless stream."""
    return source_dataset(WindowBatches(feature_set, labels, batch_size, shuffle, seed, repeat))


def pair_dataset(feature_set, singer_labels, batch_size: int = 32,
                 seed: int = 0) -> tf.data.Dataset:
    """`PairBatches(...)` as an endless tf.data.Dataset of `((x1, x2), y)`."""
    return source_dataset(PairBatches(feature_set, singer_labels, batch_size, seed))
