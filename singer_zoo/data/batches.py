"""Backend-neutral training batches: numpy only, addressed by batch number.

A source gives batch `i` of its stream as numpy arrays, as a pure function of (seed, i):
no iterator state, so a resumed run continues the stream exactly where the interrupted one
stopped (`batches(start)`), on any Keras backend. The TF path wraps the same source in
tf.data (`singer_zoo.data.tfdata`, needed by tf.distribute); the other backends get a
`keras.utils.PyDataset` view (`singer_zoo.training.inputs.SourceView`).

- `WindowBatches`: `(windows (batch, window_frames, bins) float32, labels (batch,) int32)`,
  one pass or an endless stream; shuffled passes are seeded permutations (seed, pass).
- `PairBatches`: endless `((x1, x2), y)`, y float32 1 same singer / 0 different, exactly
  batch / 2 of each per batch; batch i is drawn by a generator seeded with (seed, i).

Every source has `rows(i)` (the window rows of batch i in `FeatureSet.frames`: what the
tf.data path gathers in its graph), `__getitem__(i)` (the numpy batch) and
`batches(start, stop)` (a plain iterator of numpy batches, e.g. for a statistics pass).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from singer_zoo.errors import ConfigError


class BatchSource:
    """Batches of windows cut from one FeatureSet; subclasses define `rows(i)`."""

    n_batches: int | None = None  # None: an endless stream
    full_batches = True  # every batch has batch_size items

    def __init__(self, feature_set, batch_size: int):
        self.feature_set = feature_set
        self.batch_size = int(batch_size)
        # every window as a strided view (windows start at any row): (rows - w + 1, w, bins);
        # indexing it copies each window as one contiguous block, 3x faster than indexing
        # the frame matrix with a (batch, w) array of rows
        frames, w = feature_set.frames, feature_set.config.window_frames
        self._windows = np.lib.stride_tricks.as_strided(
            frames, (len(frames) - w + 1, w, frames.shape[1]),
            (frames.strides[0], *frames.strides), writeable=False)

    def rows(self, i: int) -> tuple:
        raise NotImplementedError

    def gather(self, rows) -> np.ndarray:
        """(batch,) first rows -> (batch, window_frames, bins) float32 windows."""
        return self._windows[np.asarray(rows)]

    def _check(self, i: int) -> int:
        i = int(i)
        if i < 0 or (self.n_batches is not None and i >= self.n_batches):
            raise IndexError(f"batch {i} of a source of {self.n_batches} batches")
        return i

    def batches(self, start: int = 0, stop: int | None = None):
        """Numpy batches start, start + 1, ... (up to `stop`, or the end of a finite source)."""
        stop = self.n_batches if stop is None else stop
        for i in (itertools.count(start) if stop is None else range(start, stop)):
            yield self[i]


class WindowBatches(BatchSource):
    """`(windows, labels)` batches of a FeatureSet's windows (classifier training).

    `labels` has one entry per recording. Without `repeat`: one pass, in order or (with
    `shuffle`) in a permutation seeded by (seed, 0), the last batch possibly short. With it:
    an endless stream of full batches over consecutive passes, pass p in the permutation
    seeded by (seed, p) (a batch may span two passes, as tf.data's repeat-then-batch).
    """

    def __init__(self, feature_set, labels, batch_size: int = 32, shuffle: bool = True,
                 seed: int = 0, repeat: bool = False):
        if batch_size < 1:
            raise ConfigError(f"window batches: batch_size must be >= 1, got {batch_size}")
        self.labels = feature_set.window_labels(labels)
        if feature_set.n_windows == 0:
            raise ConfigError("window batches: the feature set has no windows")
        super().__init__(feature_set, batch_size)
        self.shuffle, self.seed, self.repeat = shuffle, int(seed), repeat
        self.n_batches = None if repeat else math.ceil(feature_set.n_windows / batch_size)
        self.full_batches = repeat or feature_set.n_windows % batch_size == 0
        self._orders = {}  # pass -> window order, the last two passes

    def _order(self, p: int) -> np.ndarray:
        """Window order of pass p (cached: the last passes asked for). Safe from several
        threads (tf.data's parallel map): the order is a pure function of (seed, p)."""
        order = self._orders.get(p)
        if order is None:
            n = self.feature_set.n_windows
            order = np.random.default_rng([self.seed, p]).permutation(n) if self.shuffle \
                else np.arange(n)
            self._orders = {**{k: v for k, v in self._orders.items() if k >= p - 1}, p: order}
        return order

    def rows(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(window rows (batch,) int64, labels (batch,) int32) of batch i."""
        i, n = self._check(i), self.feature_set.n_windows
        pos = np.arange(i * self.batch_size, min((i + 1) * self.batch_size,
                                                 n if not self.repeat else 1 << 62))
        idx = np.concatenate([self._order(int(p))[pos[pos // n == p] % n]
                              for p in np.unique(pos // n)])
        return self.feature_set.window_rows[idx], self.labels[idx].astype(np.int32)

    def __getitem__(self, i: int):
        rows, labels = self.rows(i)
        return self.gather(rows), labels


class PairBatches(BatchSource):
    """Endless 1:1 same/different-singer pair batches `((x1, x2), y)` (siamese training).

    Singers are drawn uniformly. A same-singer pair takes two different windows, from two
    different recordings whenever the singer has several; a different-singer pair takes a
    random window of each of two distinct singers. `n_batches` limits the stream (e.g. a
    fixed validation set: the first n batches of the seed's stream).
    """

    def __init__(self, feature_set, singer_labels, batch_size: int = 32, seed: int = 0,
                 n_batches: int | None = None):
        if batch_size < 2 or batch_size % 2:
            raise ConfigError(f"pair batches: batch_size must be even and >= 2, "
                              f"got {batch_size}")
        super().__init__(feature_set, batch_size)
        self.seed, self.n_batches = int(seed), n_batches
        win_labels = feature_set.window_labels(singer_labels)
        # windows grouped by singer; within a singer each recording's windows stay contiguous
        self._order = np.argsort(win_labels, kind="stable")
        _, self._s_start, self._s_count = np.unique(win_labels[self._order],
                                                    return_index=True, return_counts=True)
        rec = feature_set.window_index[self._order, 0]
        recs, r_start, r_count = np.unique(rec, return_index=True, return_counts=True)
        block_lo = np.zeros(feature_set.n_recordings, np.int64)
        block_n = np.zeros(feature_set.n_recordings, np.int64)
        block_lo[recs], block_n[recs] = r_start, r_count
        self._block_lo, self._block_n = block_lo[rec], block_n[rec]  # per sorted position
        self._pairable = np.flatnonzero(self._s_count >= 2)
        self._n_singers = len(self._s_count)
        if self._n_singers < 2 or not len(self._pairable):
            raise ConfigError("pair batches: need at least 2 singers and one singer with 2 "
                              f"windows; got {self._n_singers} singer(s)")

    def _same(self, rng, half):
        si = rng.choice(self._pairable, half)
        start, count = self._s_start[si], self._s_count[si]
        a = start + rng.integers(0, count)
        # exclude a's recording if the singer has others, else just window a itself
        several = self._block_n[a] < count
        ex_lo = np.where(several, self._block_lo[a], a)
        ex_n = np.where(several, self._block_n[a], 1)
        j = start + rng.integers(0, count - ex_n)
        return a, np.where(j >= ex_lo, j + ex_n, j)  # skip over the excluded block

    def _different(self, rng, half):
        n = self._n_singers
        s1 = rng.integers(0, n, half)
        s2 = (s1 + rng.integers(1, n, half)) % n  # != s1
        return (self._s_start[s1] + rng.integers(0, self._s_count[s1]),
                self._s_start[s2] + rng.integers(0, self._s_count[s2]))

    def rows(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first rows, second rows, y) of batch i, each (batch,)."""
        rng = np.random.default_rng([self.seed, self._check(i)])
        half = self.batch_size // 2
        (a1, b1), (a2, b2) = self._same(rng, half), self._different(rng, half)
        perm = rng.permutation(self.batch_size)
        y = np.concatenate([np.ones(half), np.zeros(half)]).astype(np.float32)[perm]
        rows = self.feature_set.window_rows
        return (rows[self._order[np.concatenate([a1, a2])[perm]]],
                rows[self._order[np.concatenate([b1, b2])[perm]]], y)

    def __getitem__(self, i: int):
        first, second, y = self.rows(i)
        return (self.gather(first), self.gather(second)), y


def spec_augment(windows: np.ndarray, rng, bands: int = 2, band_bins: int = 12,
                 spans: int = 2, span_frames: int = 20) -> np.ndarray:
    """SpecAugment-style masking (Park et al. 2019) of a batch (batch, frames, bins): per
    window, `bands` frequency bands of 0..`band_bins` bins and `spans` time spans of
    0..`span_frames` frames set to that window's mean; a new array, drawn from `rng`."""
    x = np.array(windows, np.float32, copy=True)
    n = len(x)
    mean = x.mean(axis=(1, 2))
    for axis, count, width in ((2, bands, band_bins), (1, spans, span_frames)):
        size = x.shape[axis]
        w = rng.integers(0, min(width, size) + 1, (n, count))
        lo = rng.integers(0, size - w + 1)
        pos = np.arange(size)
        mask = ((pos >= lo[..., None]) & (pos < (lo + w)[..., None])).any(1)  # (n, size)
        x = np.where(np.expand_dims(mask, 3 - axis), mean[:, None, None], x)
    return x


def channel_eq(windows: np.ndarray, rng, max_db: float = 10.0, terms: int = 4) -> np.ndarray:
    """Recording-channel augmentation of a batch of dB windows (batch, frames, bins) in
    [0, top_db]: each window gets its own random linear filter, i.e. one smooth gain curve
    over the bins (a cosine series of `terms` terms, peak |gain| drawn in 0..`max_db` dB)
    added to every frame, then shifted so that the window's maximum is unchanged and
    clipped to [0, that maximum]; bins at 0 (below the front end's range) stay there.
    Each training identity comes from one recording source, so without it the source's
    frequency response is a shortcut to the identity, and voices that share a source at
    test time are confused. A new array."""
    x = np.asarray(windows, np.float32)
    n, _, bins = x.shape
    k = np.arange(1, terms + 1)
    basis = np.cos(np.pi * np.outer(k, (np.arange(bins) + 0.5) / bins))  # (terms, bins)
    curve = (rng.uniform(-1, 1, (n, terms)) / k) @ basis  # (n, bins)
    curve *= (rng.uniform(0, max_db, n) / (np.abs(curve).max(1) + 1e-9))[:, None]
    top = x.max(axis=(1, 2), keepdims=True)
    y = x + curve[:, None, :].astype(np.float32)
    y += top - y.max(axis=(1, 2), keepdims=True)
    return np.where(x > 0, np.clip(y, 0, top), x)


def short_crops(windows: np.ndarray, rng, fraction: float = 0.25,
                min_frames: int | None = None) -> np.ndarray:
    """Short-recording augmentation of a batch (batch, frames, bins): a `fraction` of the
    windows (drawn from `rng`) become a random crop of `min_frames`..frames - 1 frames
    (default a quarter of a window: 1.5 s of a 6-s window), tiled back to a whole window as
    inference tiles a recording shorter than one (`features.windows.fill_window`). Without
    it a model trained on long performances meets a 3-s utterance's tiled window only at
    test time. A new array."""
    from singer_zoo.features.windows import fill_window

    x = np.array(windows, np.float32, copy=True)
    n, frames = x.shape[:2]
    lo = max(1, min(frames - 1, frames // 4 if min_frames is None else int(min_frames)))
    for i in np.flatnonzero(rng.random(n) < fraction):
        length = int(rng.integers(lo, frames))
        start = int(rng.integers(0, frames - length + 1))
        x[i] = fill_window(x[i, start:start + length], frames)
    return x
