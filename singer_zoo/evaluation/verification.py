"""Singer verification from performance embeddings: the equal error rate (EER).

A pair of performances is accepted as "same singer" when the squared Euclidean distance of
their embeddings, D = ||a - b||^2 (the distance the contrastive loss shapes, section 3.5),
is at most a threshold. The EER is the error rate at the threshold where false accepts and
false rejects are equally frequent; it is read off `sklearn.metrics.roc_curve` with score
-D, interpolating linearly between the two ROC points around the crossing.

Pairs:
- "all": every unordered pair; positive if the singers match.
- "hard": positives are the same singer singing DIFFERENT songs, negatives different
  singers singing the SAME song, so song similarity cannot help (needs song labels).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_curve
from sklearn.metrics import pairwise_distances

from singer_zoo.errors import ConfigError
from singer_zoo.evaluation.metrics import labelled_vectors

PAIRS = ("all", "hard")


@dataclass(frozen=True)
class EERResult:
    """`eer` in [0, 1]; `threshold` on the squared distance (accept if D <= threshold)."""

    eer: float
    threshold: float
    n_positive: int
    n_negative: int

    def to_dict(self) -> dict:
        return asdict(self)


def _pairs(singers, songs, pairs: str):
    """(i, j, label) arrays of the selected unordered pairs i < j."""
    i, j = np.triu_indices(len(singers), k=1)  # (n_pairs,) each
    same_singer = singers[i] == singers[j]
    if pairs == "all":
        return i, j, same_singer
    same_song = songs[i] == songs[j]
    keep = (same_singer & ~same_song) | (~same_singer & same_song)
    return i[keep], j[keep], same_singer[keep]


def equal_error_rate(labels, scores) -> tuple[float, float]:
    """(EER, score threshold) for binary `labels` (1 = positive) and `scores` (higher =
    more likely positive)."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    b = int(np.argmax(fnr <= fpr))  # first ROC point past the crossing (exists: last is 1, 0)
    a = max(b - 1, 0)
    gap_a, gap_b = fnr[a] - fpr[a], fnr[b] - fpr[b]
    t = 0.0 if gap_a == gap_b else gap_a / (gap_a - gap_b)
    return float(fpr[a] + t * (fpr[b] - fpr[a])), float(thresholds[b])


def verification_eer(embeddings, singer_labels, song_labels=None, pairs: str = "all"
                     ) -> EERResult:
    """Singer-verification EER of `embeddings` (n, D) over the `pairs` ("all" or "hard")."""
    x, singers = labelled_vectors(embeddings, singer_labels, ("embeddings", "singer_labels"))
    if pairs not in PAIRS:
        raise ConfigError(f"pairs={pairs!r} is not one of {', '.join(PAIRS)}")
    songs = None if song_labels is None else np.asarray(song_labels)
    if pairs == "hard" and (songs is None or songs.shape != (len(x),)):
        raise ConfigError("hard pairs need song_labels with one song per embedding")
    i, j, label = _pairs(singers, songs, pairs)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        raise ConfigError(f"{pairs} pairs: need both same-singer and different-singer pairs, "
                          f"got {n_pos} and {n_neg}")
    # "sqeuclidean" is computed from differences (SciPy), exact unlike the dot-product form.
    d = pairwise_distances(x, metric="sqeuclidean")[i, j]  # (n_pairs,)
    eer, score = equal_error_rate(label.astype(int), -d)
    return EERResult(eer, -score, n_pos, n_neg)


def verification_report(embeddings, singer_labels, song_labels) -> dict[str, EERResult]:
    """{"all": EERResult, "hard": EERResult} of the same embeddings."""
    return {p: verification_eer(embeddings, singer_labels, song_labels, p) for p in PAIRS}
