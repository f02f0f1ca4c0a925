"""Leave-one-out k-nearest-neighbour classification of performance vectors (section 3.5,
Figure 5).

Every performance vector (a learned 16-d embedding or a baseline handcrafted vector) is
classified by its k nearest OTHER vectors (Euclidean, uniform votes) and the accuracy is
the fraction classified correctly, for singer labels and for song labels. High singer
accuracy with low song accuracy means the space captures the singer and not the "song
effect".

Leave-one-out is scikit-learn's own: `KNeighborsClassifier.predict(None)` classifies every
fitted point without counting it as its own neighbour, which gives the same predictions as
`cross_val_predict(..., cv=LeaveOneOut())` with one fit instead of n (a test checks this).

Ties are deterministic: among equally distant neighbours the brute-force search keeps the
lower index, and a tied vote goes to the label that sorts first (scikit-learn's rule).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from singer_zoo.errors import ConfigError
from singer_zoo.evaluation.metrics import labelled_vectors

KS = (1, 3, 5, 7)


def knn_accuracies(vectors, labels, ks: Sequence[int] = KS) -> dict[int, float]:
    """{k: leave-one-out accuracy} of k-NN on `vectors` (n, D) with `labels` (n,)."""
    x, y = labelled_vectors(vectors, labels)
    bad = [k for k in ks if not isinstance(k, (int, np.integer)) or not 1 <= k < len(x)]
    if bad:
        raise ConfigError(f"each k must be an integer in [1, {len(x) - 1}] (n - 1 = the "
                          f"size of a leave-one-out training set), got {bad}")
    out = {}
    for k in ks:
        clf = KNeighborsClassifier(n_neighbors=int(k), algorithm="brute").fit(x, y)
        pred = clf.predict(None)  # (n,): each point by its k nearest others
        out[int(k)] = float(np.mean(pred == y))
    return out


def knn_table(methods: Mapping[str, object], singer_labels, song_labels,
              ks: Sequence[int] = KS) -> dict[str, dict[str, dict[int, float]]]:
    """{"singer": {method: {k: acc}}, "song": {...}} for several sets of performance vectors
    of the SAME performances (rows aligned with `singer_labels` and `song_labels`); the
    input of `plots.plot_knn_bars`."""
    if not methods:
        raise ConfigError("knn_table needs at least one method")
    return {task: {name: knn_accuracies(v, labels, ks) for name, v in methods.items()}
            for task, labels in (("singer", singer_labels), ("song", song_labels))}
