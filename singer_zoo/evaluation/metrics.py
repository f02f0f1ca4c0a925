"""Classification metrics of the singer-classification protocol (paper section 3.4).

The networks classify 6-second windows; a recording's prediction is the argmax of the MEAN
of its windows' class scores (probabilities for the networks, SVM decision values for the
baseline). Fold results are summarised as mean and standard deviation and printed the way
the paper's tables print them, "0.742(0.022)".
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from singer_zoo.errors import ConfigError


def _as_2d(scores, name: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ConfigError(f"{name} must be a non-empty (n_windows, n_classes) array, "
                          f"got shape {scores.shape}")
    return scores


def labelled_vectors(vectors, labels, names: tuple[str, str] = ("vectors", "labels")
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(float64 (n, D), (n,)) after checking the shapes agree and the vectors are finite;
    errors name the arguments as `names` (the caller's parameter names)."""
    x, y = np.asarray(vectors, dtype=np.float64), np.asarray(labels)
    if x.ndim != 2 or y.shape != (len(x),):
        raise ConfigError(f"{names[0]} must be (n, D) and {names[1]} (n,), got {x.shape} and "
                          f"{y.shape}")
    if not np.isfinite(x).all():
        raise ConfigError(f"{names[0]} contain NaN or infinite values")
    return x, y


def recording_scores(window_scores, window_recording_index, n_recordings: int) -> np.ndarray:
    """Mean of the window scores of each recording: (n_windows, C) -> (n_recordings, C).

    `window_recording_index[i]` is the index (0 .. n_recordings-1) of window i's recording.
    Every recording must own at least one window. Applied to window EMBEDDINGS it gives the
    paper's performance vectors (section 3.5: the mean embedding of a performance's windows).
    """
    scores = _as_2d(window_scores, "window_scores")
    index = np.asarray(window_recording_index)
    if index.shape != (scores.shape[0],) or not np.issubdtype(index.dtype, np.integer):
        raise ConfigError(f"window_recording_index must be {scores.shape[0]} integers "
                          f"(one per window), got shape {index.shape} dtype {index.dtype}")
    if index.min() < 0 or index.max() >= n_recordings:
        raise ConfigError(f"window_recording_index must lie in [0, {n_recordings}), "
                          f"got [{index.min()}, {index.max()}]")
    counts = np.bincount(index, minlength=n_recordings)  # (n_recordings,)
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0).tolist()
        raise ConfigError(f"recordings {missing[:10]} have no windows")
    sums = np.zeros((n_recordings, scores.shape[1]))
    np.add.at(sums, index, scores)  # (n_recordings, C)
    return sums / counts[:, None]


def window_accuracy(window_scores, window_labels) -> float:
    """Fraction of windows whose argmax class equals their label (class indices)."""
    scores = _as_2d(window_scores, "window_scores")
    labels = np.asarray(window_labels)
    if labels.shape != (scores.shape[0],):
        raise ConfigError(f"window_labels must have shape ({scores.shape[0]},), "
                          f"got {labels.shape}")
    return float(np.mean(scores.argmax(axis=1) == labels))


def recording_accuracy(window_scores, window_recording_index, recording_labels) -> float:
    """Recording-level accuracy: argmax of the mean window scores of each recording,
    compared with `recording_labels[r]` (class index of recording r)."""
    labels = np.asarray(recording_labels)
    if labels.ndim != 1:
        raise ConfigError(f"recording_labels must be 1-D, got shape {labels.shape}")
    means = recording_scores(window_scores, window_recording_index, len(labels))
    return float(np.mean(means.argmax(axis=1) == labels))


def summarise_folds(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard deviation) of per-fold values; the population std (ddof=0)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise ConfigError(f"summarise_folds needs a non-empty list of finite numbers, "
                          f"got {values!r}")
    return float(arr.mean()), float(arr.std())


def _short(x: float, digits: int) -> str:
    return np.format_float_positional(round(float(x), digits), precision=digits, trim="-")


def format_mean_std(mean: float, std: float | None = None, digits: int = 3) -> str:
    """The paper's notation: 0.742(0.022); trailing zeros dropped as in its tables
    (0.7(0.021)); without a std just the rounded mean."""
    if std is None:
        return _short(mean, digits)
    return f"{_short(mean, digits)}({_short(std, digits)})"
