"""`singer_zoo.load(name_or_path) -> Embedder`: performance embeddings from an exported model.

A name is a shipped embedder (`singer_zoo.pretrained`: its SavedModel/TFLite files are
rebuilt into the user cache on first use); a path is any exported folder (`singer-zoo
export`). Loading never runs code from the model files: every
file's sha256 is first checked against metadata.json (`IntegrityError` if one differs),
then the SavedModel is loaded as a graph with `tf.saved_model.load`.

Recordings up to 10 minutes go through the graph's `embed_waveform` (front end inside);
longer ones are featurised by the streaming numpy extractor (same values within 1e-4,
bounded memory) and embedded through `embed_windows`, 64 windows at a time.

Distances: the siamese models are trained on the squared Euclidean distance
D = ||a - b||^2 between embeddings (contrastive loss, margin 1), so same-singer pairs are
pulled to D near 0 and different singers pushed beyond D = 1. `similarity(a, b)` is
exp(-D): 1 for identical embeddings, exp(-1) = 0.37 at the training margin, toward 0 for
far-apart ones.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from singer_zoo import pretrained
from singer_zoo.audio import check_waveform, load_audio
from singer_zoo.batch import run_batch
from singer_zoo.config import FeatureConfig
from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.export.card import verify
from singer_zoo.features import extract_windows

PROGRESS_MIN = 20  # embed_many shows a progress bar from this many files on
STREAM_SECONDS = 600  # longer waveforms are embedded window batch by batch
WINDOW_BATCH = 64


def available() -> list[str]:
    """Names of the shipped embedders `load` accepts by name."""
    return pretrained.available()


def resolve(name_or_path) -> Path:
    """The folder of an exported model given by path, or by shipped embedder name (built
    into the cache on first use: `singer_zoo.pretrained.build`)."""
    p = Path(os.fspath(name_or_path))
    if p.is_dir():
        return p
    if p.name == str(name_or_path) and str(name_or_path) in available():
        return pretrained.build(str(name_or_path))
    raise UnknownNameError("exported model", str(name_or_path), available())


def squared_distance(a, b) -> float:
    """||a - b||^2, the distance the siamese models are trained on."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(d @ d)


def similarity(a, b) -> float:
    """exp(-||a - b||^2) in (0, 1]: 1 for identical embeddings (see the module doc)."""
    return float(np.exp(-squared_distance(a, b)))


class Embedder:
    """An exported model, ready to embed recordings (see `load`)."""

    def __init__(self, folder):
        self.path = Path(folder).resolve()
        self.card = verify(self.path)  # before any file is deserialised
        self._model = tf.saved_model.load(str(self.path / "saved_model"))
        self.name = self.card["name"]
        self.sample_rate = int(self.card["frontend"]["sample_rate"])
        self.dim = int(self.card["embedding_dim"])
        self.features = FeatureConfig.from_dict(self.card["config"]["features"])

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, path={str(self.path)!r})"

    def window_embeddings(self, audio_or_path) -> np.ndarray:
        """(n_windows, dim): one embedding per 6-s window (20 % hop) of the recording."""
        return self._run(audio_or_path)["window_embeddings"].numpy()

    def embed(self, audio_or_path) -> np.ndarray:
        """(dim,) float32: the mean of the window embeddings of a file (decoded and
        resampled to 22050 Hz mono) or of a mono waveform already at 22050 Hz."""
        return self._run(audio_or_path)["embedding"].numpy()

    def _run(self, audio_or_path) -> dict:
        if isinstance(audio_or_path, (str, os.PathLike)):
            y = load_audio(audio_or_path, sr=self.sample_rate)
        else:
            y = check_waveform(audio_or_path)
        if len(y) <= STREAM_SECONDS * self.sample_rate:
            return self._model.embed_waveform(tf.constant(y))
        # long recording: the graph would hold every STFT frame (n_fft floats each);
        # streamed numpy features (same values, docs/features.md) + embed_windows instead
        windows = extract_windows(y, self.features)  # (n_windows, frames, bins)
        emb = np.concatenate([self.embed_windows(windows[i:i + WINDOW_BATCH])
                              for i in range(0, len(windows), WINDOW_BATCH)])
        return {"embedding": tf.constant(emb.mean(0)), "window_embeddings": tf.constant(emb)}

    def embed_many(self, paths, progress: bool | None = None, workers: int = 2
                   ) -> tuple[dict, dict]:
        """({path: (dim,) embedding}, {path: error message}) for many files.

        Files are decoded on `workers` threads; a bad file is reported in the second dict,
        never fatal. `progress` (default: on from PROGRESS_MIN files) shows a Keras Progbar.
        """
        paths = list(paths)
        if progress is None:
            progress = len(paths) >= PROGRESS_MIN
        res = run_batch(self.embed, paths, workers=workers, progress=progress,
                        label="recordings")
        return res.ok, res.failed

    def embed_windows(self, windows) -> np.ndarray:
        """(batch, dim) embeddings of precomputed Mel windows (batch, 256, n_bins)."""
        x = tf.constant(np.asarray(windows, np.float32))
        return self._model.embed_windows(x)["embeddings"].numpy()

    def verify(self, a, b) -> dict:
        """Same singer? `a` and `b` are recordings (paths or waveforms) or their (dim,)
        embeddings. Accepts when D = ||a - b||^2 is at most the card's calibrated threshold
        (`singer-zoo heldout --write-thresholds`, docs/pretrained.md), whose false-accept
        and false-reject rates on held-out voices the card states.
        Returns {"same": bool, "distance": D, "threshold": t}."""
        entry = self.card.get("verification")
        if not entry:
            raise ConfigError(f"{self.path}: the model card has no calibrated threshold "
                              f"(run `singer-zoo heldout ... --write-thresholds`)")
        ea, eb = (x if np.ndim(x) == 1 and len(x) == self.dim else self.embed(x)
                  for x in (a, b))
        d = squared_distance(ea, eb)
        return {"same": d <= entry["threshold"], "distance": d,
                "threshold": float(entry["threshold"])}

    similarity = staticmethod(similarity)
    squared_distance = staticmethod(squared_distance)


def load(name_or_path) -> Embedder:
    """The exported model `name_or_path`, ready to embed recordings.

    Args:
        name_or_path: a shipped embedder's name (`available()`) or an exported folder.

    Returns:
        An `Embedder`, after every file was checked against the card's sha256.

    Raises:
        UnknownNameError: neither a folder nor a shipped name (lists the names).
        IntegrityError: a file is missing, extra or modified.

    Example:
        >>> emb = load("mobile_resnext_attention")
        >>> emb.similarity(emb.embed("a.wav"), emb.embed("b.wav"))
    """
    return Embedder(resolve(name_or_path))
