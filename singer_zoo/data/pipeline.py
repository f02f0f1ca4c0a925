"""From a manifest to tf.data batches of feature windows (paper section 3.2, 3.4, 3.5).

- `load_feature_set` extracts every recording's (frames, bins) features in parallel
  (`run_batch`), optionally through an on-disk cache, and indexes its 256-frame windows
  (hop 51, as `singer_zoo.features.chop`); bad files are returned in `failed`, never fatal.
- `window_dataset` yields shuffled `(windows, labels)` batches for the classifier;
  `pair_dataset` yields 1:1 same/different-singer pairs for the siamese embedder.

Windows are cut when a batch is assembled, by a `tf.gather` in the tf.data graph from one
(total frames, bins) matrix, so overlapping windows are never all held in memory: the
FeatureSet holds one copy of the frames, which its datasets share with numpy (DLPack). Only
window indices are shuffled or sampled: by tf.data's seeded shuffle for windows, by a seeded
numpy generator for pairs; both reproducible.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from singer_zoo import features as feats
from singer_zoo.audio import check_audio_path
from singer_zoo.batch import Workers, run_batch
from singer_zoo.config import FeatureConfig
from singer_zoo.data.manifest import Manifest
from singer_zoo.errors import ConfigError

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # bump when extract_features changes its output (2: power in numpy)


def encode_labels(values) -> tuple[np.ndarray, list]:
    """Values (e.g. singer names) -> (int32 codes, sorted distinct values)."""
    classes, codes = np.unique(np.asarray(list(values)), return_inverse=True)
    return codes.astype(np.int32), classes.tolist()


def _aligned_zeros(shape: tuple) -> np.ndarray:
    """float32 zeros whose data starts on a 64-byte boundary, as TF requires of a tensor
    buffer it shares with numpy (see FeatureSet.frames_tensor)."""
    nbytes = int(np.prod(shape)) * 4
    buf = np.zeros(nbytes + 64, np.uint8)
    start = -buf.ctypes.data % 64
    return buf[start:start + nbytes].view(np.float32).reshape(shape)


@dataclass(eq=False)  # identity equality: comparing arrays element-wise is not meant
class FeatureSet:
    """Per-recording feature matrices and the index of their windows.

    All frames live in one contiguous (total frames, bins) float32 matrix; `features[i]` is
    a view of recording i's rows. A recording shorter than one window is followed by zero
    rows (the dB floor) up to one window, as `chop` pads. `window_index[i] = (recording
    index, start frame)`; `window_rows[i]` is that window's first row in the matrix.
    """

    features: list  # of (frames, bins) float32 arrays, one per recording
    recordings: list  # of Recording, aligned with features
    config: FeatureConfig = field(default_factory=FeatureConfig)
    window_index: np.ndarray = field(init=False, repr=False)
    window_rows: np.ndarray = field(init=False, repr=False)
    frames: np.ndarray = field(init=False, repr=False)  # (total frames, bins)
    _tensor: tf.Tensor | None = field(init=False, repr=False)

    def __post_init__(self):
        if len(self.features) != len(self.recordings):
            raise ConfigError(f"FeatureSet: {len(self.features)} feature matrices for "
                              f"{len(self.recordings)} recordings")
        w, hop, bins = self.config.window_frames, self.config.window_hop_frames, \
            self.config.n_bins
        for i, f in enumerate(self.features):
            if np.ndim(f) != 2 or np.shape(f)[1] != bins:
                raise ConfigError(f"FeatureSet: features of {self.recordings[i].path} have "
                                  f"shape {np.shape(f)}, expected (frames, {bins})")
        lengths = [len(f) for f in self.features]
        begin = np.cumsum([0] + [max(n, w) for n in lengths])  # short ones padded to w
        self.frames = _aligned_zeros((int(begin[-1]), bins))
        index = [np.zeros((0, 2), np.int64)]
        for i, f in enumerate(self.features):
            self.frames[begin[i]:begin[i] + len(f)] = f
            starts = np.arange(feats.n_windows(len(f), self.config), dtype=np.int64) * hop
            index.append(np.stack([np.full_like(starts, i), starts], axis=1))
        self.features = [self.frames[b:b + n] for b, n in zip(begin, lengths)]
        self.window_index = np.concatenate(index)
        self.window_rows = begin[self.window_index[:, 0]] + self.window_index[:, 1]
        self._tensor = None

    @property
    def n_recordings(self) -> int:
        return len(self.recordings)

    @property
    def n_windows(self) -> int:
        return len(self.window_index)

    def frames_tensor(self) -> tf.Tensor:
        """`frames` as a TF tensor sharing its memory (DLPack, no copy); made once."""
        if self._tensor is None:
            self._tensor = tf.experimental.dlpack.from_dlpack(self.frames.__dlpack__())
        return self._tensor

    def windows(self, indices) -> np.ndarray:
        """(len(indices), window_frames, bins) float32: the windows at these indices."""
        rows = self.window_rows[np.asarray(indices, np.int64)]
        return self.frames[rows[:, None] + np.arange(self.config.window_frames)]

    def recording_windows(self, i: int) -> np.ndarray:
        """(n_windows, window_frames, bins): all windows of recording i."""
        return self.windows(np.flatnonzero(self.window_index[:, 0] == i))

    def subset(self, indices) -> "FeatureSet":
        """The recordings at `indices` (e.g. one cross-validation fold)."""
        idx = [int(i) for i in indices]
        return FeatureSet([self.features[i] for i in idx], [self.recordings[i] for i in idx],
                          self.config)

    def window_labels(self, labels) -> np.ndarray:
        """Per-recording labels -> int32 label of every window."""
        labels = np.asarray(labels)
        if labels.shape != (self.n_recordings,):
            raise ConfigError(f"expected one label per recording ({self.n_recordings}), "
                              f"got shape {labels.shape}")
        return labels.astype(np.int32)[self.window_index[:, 0]]


def _cache_file(cache_dir: Path, path: str, cfg: FeatureConfig) -> Path:
    st = os.stat(check_audio_path(path))  # a missing file or symlink loop: named AudioError
    key = json.dumps({"path": os.path.abspath(path), "size": st.st_size,
                      "mtime_ns": st.st_mtime_ns, "features": cfg.to_dict(),
                      "version": CACHE_VERSION}, sort_keys=True)
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"


def save_atomic(target: Path, array: np.ndarray) -> None:
    """np.save to a temporary file in the same folder, then rename: readers never see a
    partial file, and concurrent writers of the same entry cannot corrupt it."""
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, target)


def cached_features(path: str, cfg: FeatureConfig, cache_dir=None) -> np.ndarray:
    """`extract_features(path, cfg)`, read from / written to `cache_dir` when given.

    A cache entry is keyed by the file's absolute path, size, mtime and the FeatureConfig, so
    an edited file or a changed config is recomputed; an unreadable entry is recomputed.
    """
    if cache_dir is None:
        return feats.extract_features(path, cfg)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = _cache_file(cache_dir, path, cfg)
    if target.exists():
        try:
            return np.load(target)
        except (OSError, ValueError) as e:
            log.warning("cache entry %s for %s unreadable (%s); recomputing", target, path, e)
    result = feats.extract_features(path, cfg)
    save_atomic(target, result)
    return result


def load_feature_set(manifest: Manifest, feature_cfg: FeatureConfig | None = None,
                     cache_dir=None, workers: int | Workers = 2, progress: bool = False
                     ) -> tuple[FeatureSet, dict]:
    """(FeatureSet of the recordings that decoded, {path: error message} of those that did
    not). Extraction runs on `workers` threads, or processes (`singer_zoo.batch.Workers`)."""
    cfg = feature_cfg or FeatureConfig()
    by_path = {r.path: r for r in manifest}
    result = run_batch(functools.partial(cached_features, cfg=cfg, cache_dir=cache_dir),
                       list(by_path), workers=workers, progress=progress, label="recordings")
    good = list(result.ok)
    return FeatureSet([result.ok[p] for p in good], [by_path[p] for p in good], cfg), \
        dict(result.failed)


def _gatherer(fs: FeatureSet):
    """A graph function: first rows (batch,) -> windows (batch, window_frames, bins), cut
    from the frame matrix (no Python, runs in parallel)."""
    frames = fs.frames_tensor()  # (total frames, bins)
    offsets = tf.range(fs.config.window_frames, dtype=tf.int64)

    @tf.autograph.experimental.do_not_convert
    def gather(rows):
        idx = tf.expand_dims(rows, 1) + tf.expand_dims(offsets, 0)  # (batch, window_frames)
        return tf.gather(frames, idx)  # (batch, window_frames, bins)

    return gather


def window_dataset(feature_set: FeatureSet, labels, batch_size: int = 32,
                   shuffle: bool = True, seed: int = 0, repeat: bool = False
                   ) -> tf.data.Dataset:
    """Batches `(windows (batch, 256, bins) float32, labels (batch,) int32)`.

    `labels` has one entry per recording. The window index is shuffled by tf.data with
    `seed`, reshuffled on every pass (reproducibly for a new dataset); windows are gathered
    per batch. Without `repeat`, one pass (the last batch may be short); with it, an endless
    stream of full batches.
    """
    win_labels = feature_set.window_labels(labels)
    if feature_set.n_windows == 0:
        raise ConfigError("window_dataset: the feature set has no windows")
    if batch_size < 1:
        raise ConfigError(f"window_dataset: batch_size must be >= 1, got {batch_size}")
    gather = _gatherer(feature_set)
    ds = tf.data.Dataset.from_tensor_slices((feature_set.window_rows, win_labels))
    if shuffle:
        ds = ds.shuffle(feature_set.n_windows, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=repeat)
    ds = ds.map(lambda rows, y: (gather(rows), y),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def pair_dataset(feature_set: FeatureSet, singer_labels, batch_size: int = 32,
                 seed: int = 0) -> tf.data.Dataset:
    """Endless batches `((x1, x2), y)` for the siamese task, y float32: 1 same singer,
    0 different, exactly batch_size / 2 of each per batch (in shuffled order).

    Singers are drawn uniformly. A same-singer pair takes two different windows, from two
    different recordings whenever the singer has several; a different-singer pair takes
    a random window of each of two distinct singers. Pairs are drawn by a numpy generator
    seeded with (seed, pass number), so a new dataset replays the same batches.
    """
    if batch_size < 2 or batch_size % 2:
        raise ConfigError(f"pair_dataset: batch_size must be even and >= 2, got {batch_size}")
    win_labels = feature_set.window_labels(singer_labels)
    # windows grouped by singer; within a singer each recording's windows stay contiguous
    order = np.argsort(win_labels, kind="stable")
    _, s_start, s_count = np.unique(win_labels[order], return_index=True, return_counts=True)
    rec = feature_set.window_index[order, 0]
    recs, r_start, r_count = np.unique(rec, return_index=True, return_counts=True)
    block_lo = np.zeros(feature_set.n_recordings, np.int64)
    block_n = np.zeros(feature_set.n_recordings, np.int64)
    block_lo[recs], block_n[recs] = r_start, r_count
    block_lo, block_n = block_lo[rec], block_n[rec]  # per sorted position: its recording
    pairable = np.flatnonzero(s_count >= 2)
    n_singers = len(s_count)
    if n_singers < 2 or not len(pairable):
        raise ConfigError("pair_dataset: needs at least 2 singers and one singer with 2 "
                          f"windows; got {n_singers} singer(s)")
    half, passes = batch_size // 2, itertools.count()

    def same_pairs(rng):
        si = rng.choice(pairable, half)
        start, count = s_start[si], s_count[si]
        a = start + rng.integers(0, count)
        # exclude a's recording if the singer has others, else just window a itself
        several = block_n[a] < count
        ex_lo, ex_n = np.where(several, block_lo[a], a), np.where(several, block_n[a], 1)
        j = start + rng.integers(0, count - ex_n)
        return a, np.where(j >= ex_lo, j + ex_n, j)  # skip over the excluded block

    def different_pairs(rng):
        s1 = rng.integers(0, n_singers, half)
        s2 = (s1 + rng.integers(1, n_singers, half)) % n_singers  # != s1
        return (s_start[s1] + rng.integers(0, s_count[s1]),
                s_start[s2] + rng.integers(0, s_count[s2]))

    def batches():  # window rows only; the windows are gathered in the graph
        rng = np.random.default_rng([seed, next(passes)])
        y = np.concatenate([np.ones(half), np.zeros(half)]).astype(np.float32)
        while True:
            (a1, b1), (a2, b2) = same_pairs(rng), different_pairs(rng)
            perm = rng.permutation(batch_size)
            first = feature_set.window_rows[order[np.concatenate([a1, a2])[perm]]]
            second = feature_set.window_rows[order[np.concatenate([b1, b2])[perm]]]
            yield first, second, y[perm]

    gather = _gatherer(feature_set)
    rows_spec = tf.TensorSpec((batch_size,), tf.int64)
    ds = tf.data.Dataset.from_generator(
        batches, output_signature=(rows_spec, rows_spec,
                                   tf.TensorSpec((batch_size,), tf.float32)))
    ds = ds.map(lambda r1, r2, y: ((gather(r1), gather(r2)), y),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
