"""Held-out evaluation of singer embedders against baselines (issue 17, point 2).

A held-out folder holds `sung/manifest.csv` (voices never in training singing songs never in
training; singer and song columns), `sung_rooms/manifest.csv` (the same performances through
rooms and noise never used in training, as karaoke recordings from different phones and rooms
are) and/or `speech/manifest.csv` (held-out speakers' speech; no song), as
`recipes/training_pack.py` writes them. Every method turns each recording into
one vector; on each set it is scored by

- singer 1-NN: leave-one-out nearest-neighbour singer accuracy (`knn.knn_accuracies`);
- EER over all pairs, and on the sung set over hard pairs (same singer different song
  against different singer same song; `verification.verification_eer`);
- song 1-NN on the sung set: lower is better (the song effect; chance 1 / songs);
- on the speech set, when its manifest has a `source` column, singer 1-NN with neighbours
  searched within the query's own source (recording channel): speakers recorded through
  different channels can be told apart by the channel alone, so this is the voice test.

Methods, all in the same run on the same recordings:
- `MFCC mean+std`: mean and standard deviation of 20 librosa MFCCs over the recording;
- `MFCC mean+std, cosine`: the same scaled to unit length after z-scoring, so that the
  squared distance ranks by cosine (a stronger baseline on the sets of docs/pretrained.md);
- `handcrafted`: the paper's features (`baseline.baseline_performance_vectors`);
  the baselines are z-scored per dimension over the set;
- networks: mean of the window embeddings (numpy features of the network's own front end,
  the `FeatureConfig` its model carries) of a `.keras` file (an embedder, or a siamese
  model's `.embedder`), of an exported model (`singer_zoo.load`), or of an untrained
  network of a zoo row (random init, seed 0).

`calibrate` picks the same-singer threshold on the squared distance for `verify` (the EER
point of all within-set pairs of the sung and speech sets pooled) and its error rates.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singer_zoo.config import FeatureConfig
from singer_zoo.data.manifest import Manifest, read_manifest
from singer_zoo.errors import ConfigError
from singer_zoo.evaluation.knn import knn_accuracies
from singer_zoo.evaluation.verification import equal_error_rate, verification_eer

log = logging.getLogger(__name__)
SETS = ("sung", "sung_rooms", "speech")
N_MFCC = 20
MFCC, MFCC_COSINE, HANDCRAFTED = ("MFCC mean+std", "MFCC mean+std, cosine",
                                  "paper's handcrafted features")
BASELINES = (MFCC, MFCC_COSINE, HANDCRAFTED)


@dataclass(frozen=True)
class HeldoutSet:
    name: str  # one of SETS
    manifest: Manifest

    @property
    def sung(self) -> bool:
        return len(self.manifest.songs) > 1


def load_sets(folder) -> list[HeldoutSet]:
    """The sets present under `folder` (ConfigError naming it if there is none)."""
    found = [HeldoutSet(n, read_manifest(Path(folder) / n / "manifest.csv"))
             for n in SETS if (Path(folder) / n / "manifest.csv").is_file()]
    if not found:
        raise ConfigError(f"{folder}: no held-out set (expected one or more of "
                          f"{', '.join(n + '/manifest.csv' for n in SETS)})")
    return found


def zscore(x: np.ndarray) -> np.ndarray:
    std = x.std(0)
    return (x - x.mean(0)) / np.where(std > 0, std, 1.0)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def mfcc_stats(path, sr: int = 22050) -> np.ndarray:
    """(40,) mean and standard deviation of 20 MFCCs of the recording."""
    import librosa

    from singer_zoo.audio import load_audio

    m = librosa.feature.mfcc(y=load_audio(path, sr), sr=sr, n_mfcc=N_MFCC)  # (20, frames)
    return np.concatenate([m.mean(1), m.std(1)])


class Windows:
    """Each recording's feature windows, extracted once per FeatureConfig and reused."""

    def __init__(self):
        self._cache = {}

    def __call__(self, path: str, cfg: FeatureConfig) -> np.ndarray:
        from singer_zoo.features import extract_windows

        if (path, cfg) not in self._cache:
            self._cache[path, cfg] = extract_windows(path, cfg)
        return self._cache[path, cfg]


def keras_embedder(path):
    """The embedder of a `.keras` file: the model itself, or a siamese model's `.embedder`."""
    import keras

    import singer_zoo.models  # noqa: F401  (registers the custom layers)

    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: cannot load the Keras model ({e})") from None
    return getattr(model, "embedder", model)


def untrained_embedder(row: str, seed: int = 0):
    """The embedder of zoo row `row` at random initialisation (seeded)."""
    import keras

    from singer_zoo.models.tasks import build_embedder
    from singer_zoo.registry import get_config

    keras.utils.set_random_seed(seed)
    return build_embedder(get_config(row))


def network_vectors(embed, paths, windows: Windows, cfg: FeatureConfig) -> np.ndarray:
    """(n, dim): the mean window embedding of each recording; `embed(windows) -> (k, dim)`."""
    return np.stack([np.asarray(embed(windows(p, cfg)), np.float64).mean(0) for p in paths])


def same_source_1nn(vectors, singers, sources) -> float | None:
    """Leave-one-out singer 1-NN with the neighbour searched among the recordings of the
    query's own source (recording channel) only, over the queries of sources that hold 2+
    singers: a channel cannot tell their singers apart. None if no source holds 2."""
    from sklearn.metrics import pairwise_distances

    x, singers, sources = np.asarray(vectors), np.asarray(singers), np.asarray(sources)
    d = pairwise_distances(x, metric="sqeuclidean")
    np.fill_diagonal(d, np.inf)
    d[sources[:, None] != sources[None, :]] = np.inf
    multi = [s for s in np.unique(sources) if len(np.unique(singers[sources == s])) > 1]
    queries = np.flatnonzero(np.isin(sources, multi))
    if not len(queries):
        return None
    return float(np.mean(singers[d[queries].argmin(1)] == singers[queries]))


def set_metrics(vectors, singers, songs, sung: bool, sources=None) -> dict:
    """Singer 1-NN, EER over all pairs; on a sung set hard-pair EER and song 1-NN; with
    `sources` (one per recording) the same-source singer 1-NN (`same_source_1nn`)."""
    out = {"singer_1nn": knn_accuracies(vectors, singers, (1,))[1],
           "eer_all": verification_eer(vectors, singers, pairs="all").eer}
    if sung:
        out["eer_hard"] = verification_eer(vectors, singers, songs, "hard").eer
        out["song_1nn"] = knn_accuracies(vectors, songs, (1,))[1]
    within = None if sources is None else same_source_1nn(vectors, singers, sources)
    if within is not None:
        out["singer_1nn_same_source"] = within
    return out


def calibrate(per_set: dict) -> dict:
    """Same-singer threshold on the squared distance from {set: (vectors, singers)}: the EER
    point of all within-set pairs pooled; with its false-accept / false-reject rates, overall
    and per set."""
    from sklearn.metrics import pairwise_distances

    pairs = {}
    for name, (x, singers) in per_set.items():
        i, j = np.triu_indices(len(x), k=1)
        pairs[name] = (pairwise_distances(x, metric="sqeuclidean")[i, j],
                       np.asarray(singers)[i] == np.asarray(singers)[j])
    d = np.concatenate([p[0] for p in pairs.values()])
    same = np.concatenate([p[1] for p in pairs.values()])
    _, score = equal_error_rate(same.astype(int), -d)
    threshold = -score

    def rates(dist, lab):
        accept = dist <= threshold
        return {"false_accept": float(accept[~lab].mean()),
                "false_reject": float((~accept[lab]).mean())}

    return {"threshold": float(threshold), "distance": "squared_euclidean",
            **rates(d, same), "per_set": {n: rates(*p) for n, p in pairs.items()},
            "pairs": int(len(d))}


def evaluate(sets: list[HeldoutSet], methods: dict, workers: int = 1) -> dict:
    """{method: {set: metrics}} plus the vectors: `methods` maps a name to a function
    (HeldoutSet) -> (n, D) vectors aligned with the set's recordings."""
    results, vectors = {}, {}
    for name, fn in methods.items():
        for s in sets:
            log.info("%s on %s (%d recordings)", name, s.name, len(s.manifest))
            v = np.asarray(fn(s), np.float64)
            singers = np.array([r.singer for r in s.manifest])
            songs = np.array([r.song for r in s.manifest])
            sources = [r.extra.get("source", "") for r in s.manifest]
            results.setdefault(name, {})[s.name] = set_metrics(
                v, singers, songs, s.sung, None if s.sung or not any(sources) else sources)
            vectors.setdefault(name, {})[s.name] = v
    return {"results": results, "vectors": vectors}


COLUMNS = (("sung", "singer_1nn", "sung: singer 1-NN"), ("sung", "eer_all", "sung: EER, all"),
           ("sung", "eer_hard", "sung: EER, hard"), ("sung", "song_1nn", "sung: song 1-NN"),
           ("sung_rooms", "singer_1nn", "rooms: singer 1-NN"),
           ("sung_rooms", "eer_all", "rooms: EER, all"),
           ("sung_rooms", "eer_hard", "rooms: EER, hard"),
           ("speech", "singer_1nn", "speech: 1-NN"), ("speech", "eer_all", "speech: EER"),
           ("speech", "singer_1nn_same_source", "speech: 1-NN within a source"))


def markdown_table(results: dict) -> str:
    cols = [c for c in COLUMNS if any(c[1] in r.get(c[0], {}) for r in results.values())]
    lines = ["| embedder | " + " | ".join(c[2] for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for name, r in results.items():
        cells = [f"{r[s][k]:.3f}" if k in r.get(s, {}) else "" for s, k, _ in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
