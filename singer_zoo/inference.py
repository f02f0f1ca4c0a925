"""`singer_zoo.load(name_or_path) -> Embedder`: performance embeddings from an exported model.

A name is a shipped embedder (`singer_zoo.pretrained`: its SavedModel/TFLite files are
rebuilt into the user cache on first use) or a folder of `./exported`; a path is any
exported folder (`singer-zoo export`). Loading never runs code from the model files: every
file's sha256 is first checked against metadata.json (`IntegrityError` if one differs),
then the SavedModel is loaded as a graph with `tf.saved_model.load`.

The model card is checked against the model itself on load: the card's front end (the
numpy extractor built from it) must give the SavedModel's own embeddings on a probe
signal, so an edited `sample_rate` (or any front-end field) is an `IntegrityError`.

Recordings up to STREAM_SECONDS (2 minutes) go through the graph's `embed_waveform` (front
end inside); longer ones, and files whose header does not state a length, are featurised by
the streaming numpy extractor straight from the file (same values within 1e-4; the waveform
is never held whole) and embedded through `embed_windows`, WINDOW_BATCH windows at a time,
each batch cut from the (frames, bins) features when it is needed. Memory then stays
bounded by the features (about 60 MB per hour of audio) plus one batch (measured:
docs/performance.md, "Memory").

Distances: the siamese models are trained on the squared Euclidean distance
D = ||a - b||^2 between embeddings (contrastive loss, margin 1), so same-singer pairs are
pulled to D near 0 and different singers pushed beyond D = 1. `similarity(a, b)` is
exp(-D): 1 for identical embeddings, exp(-1) = 0.37 at the training margin, toward 0 for
far-apart ones.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

from singer_zoo import pretrained
from singer_zoo.audio import audio_info, check_waveform, load_audio
from singer_zoo.batch import run_batch
from singer_zoo.config import FeatureConfig
from singer_zoo.errors import ConfigError, IntegrityError, UnknownNameError
from singer_zoo.export.card import CARD, verify
from singer_zoo.export.publish import recover
from singer_zoo.features import chop, extract_features, n_windows

PROGRESS_MIN = 20  # embed_many shows a progress bar from this many files on
STREAM_SECONDS = 120  # longer recordings are embedded window batch by batch (module doc)
WINDOW_BATCH = 16
CARD_TOLERANCE = 1e-3  # card's front end vs the SavedModel's, on the probe (same: < 1e-4)


def exported_dir() -> Path:
    """`./exported`, where the README's `export ... --out exported/my_model` puts a model:
    its folders are loadable by name too."""
    return Path.cwd() / "exported"


def available() -> list[str]:
    """Names `load` accepts: the shipped embedders and the models in `exported_dir()`."""
    root = exported_dir()
    local = {p.name for p in root.iterdir() if (p / CARD).is_file()} if root.is_dir() \
        else set()
    return sorted(set(pretrained.available()) | local)


def resolve(name_or_path) -> Path:
    """The folder of an exported model given by path, by shipped embedder name (built into
    the cache on first use: `singer_zoo.pretrained.build`) or by name in `exported_dir()`;
    an export interrupted between its two renames is first put back
    (`export.publish.recover`)."""
    text = os.fsdecode(name_or_path)
    p = Path(text)
    recover(p)
    if p.is_dir():
        return p
    if p.name == text:
        if text in pretrained.available():
            return pretrained.build(text)
        local = exported_dir() / text
        recover(local)
        if local.is_dir():
            return local
    raise UnknownNameError("exported model", text, available(),
                           hint="pass the export folder's path (e.g. exported/my_model) "
                                "for a model exported elsewhere")


def squared_distance(a, b) -> float:
    """||a - b||^2, the distance the siamese models are trained on."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(d @ d)


def similarity(a, b) -> float:
    """exp(-||a - b||^2) in (0, 1]: 1 for identical embeddings (see the module doc)."""
    return float(np.exp(-squared_distance(a, b)))


class Embedder:
    """An exported model, ready to embed recordings (made by `load`).

    Attributes:
        name: the model's name (from its card).
        path: the export folder.
        card: the model card (metadata.json), verified against the files and the model.
        dim: embedding size (16).
        sample_rate: the rate waveforms must have (22050 Hz); files are resampled to it.
        features: the `FeatureConfig` of its front end.

    Example:
        >>> emb = singer_zoo.load("mobile_resnext_attention")
        >>> a, b = emb.embed("a.wav"), emb.embed("b.m4a")
        >>> emb.similarity(a, b)  # exp(-||a - b||^2), in (0, 1]
    """

    def __init__(self, folder):
        self.path = Path(folder).resolve()
        self.card = verify(self.path)  # before any file is deserialised
        self._model = tf.saved_model.load(str(self.path / "saved_model"))
        self.name = self.card["name"]
        self.sample_rate = int(self.card["frontend"]["sample_rate"])
        self.dim = int(self.card["embedding_dim"])
        self.features = FeatureConfig.from_dict(self.card["config"]["features"])
        self._check_card()

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, path={str(self.path)!r})"

    def window_embeddings(self, audio_or_path) -> np.ndarray:
        """One embedding per 6-s window (20 % hop) of a recording.

        Args:
            audio_or_path: as `embed`.

        Returns:
            (n_windows, dim) float32; `embed` is their mean.
        """
        return self._run(audio_or_path)["window_embeddings"].numpy()

    def embed(self, audio_or_path) -> np.ndarray:
        """The embedding of one recording: the mean of its window embeddings.

        Args:
            audio_or_path: an audio file (str, bytes or PathLike; decoded, downmixed and
                resampled to `sample_rate`) or a 1-D finite float waveform already at
                `sample_rate` (int16 PCM is refused: divide by 32768).

        Returns:
            (dim,) float32.

        Raises:
            The `singer_zoo.errors` audio errors (`CorruptAudioFile`,
            `SilentAudioError`, `InvalidSamplesError`, ...).

        Example:
            >>> emb.embed("song.m4a").shape
            (16,)
        """
        return self._run(audio_or_path)["embedding"].numpy()

    def _check_card(self) -> None:
        """The card against the model itself (module doc): its front-end fields must agree
        with `config.features`, and the numpy front end built from them must reproduce the
        SavedModel's embeddings of a probe signal (8 s of a sung-like harmonic tone)."""
        card_path = self.path / CARD
        front = {k: v for k, v in self.card["frontend"].items()
                 if k not in ("clip_samples", "window_seconds")}
        if front != self.features.to_dict() or self.sample_rate != self.features.sample_rate:
            raise IntegrityError(card_path, "the card's frontend and config.features "
                                            "disagree (edited metadata.json?)")
        t = np.arange(8 * self.sample_rate) / self.sample_rate
        f0 = 220.0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / self.sample_rate
        probe = sum(0.3 / k * np.sin(k * phase) for k in range(1, 8)).astype(np.float32)
        try:
            graph = self._model.embed_waveform(tf.constant(probe))["window_embeddings"]
            ours = self._embed_features(extract_features(probe, self.features))
            err = float(np.abs(graph.numpy() - ours).max()) \
                if graph.shape == ours.shape and ours.shape[1] == self.dim else np.inf
        except (tf.errors.InvalidArgumentError, ValueError, TypeError):
            err = np.inf  # the card's shapes do not even fit the model's signatures
        if not err <= CARD_TOLERANCE:
            raise IntegrityError(card_path, f"the model card does not describe this model: "
                                            f"features made as the card says give "
                                            f"embeddings {err:.3g} away from the model's own "
                                            f"front end (edited metadata.json?)")

    def _embed_features(self, feats: np.ndarray) -> np.ndarray:
        """(n_windows, dim) of (frames, bins) features, WINDOW_BATCH windows at a time, each
        batch cut from `feats` only when it is embedded (all windows at once are 5x the
        features: 256-frame windows every 51 frames)."""
        cfg = self.features
        n, hop, w = n_windows(len(feats), cfg), cfg.window_hop_frames, cfg.window_frames
        out = []
        for i in range(0, n, WINDOW_BATCH):
            j = min(i + WINDOW_BATCH, n)
            out.append(self.embed_windows(chop(feats[i * hop:(j - 1) * hop + w], cfg)))
        return np.concatenate(out)

    def _run(self, audio_or_path) -> dict:
        limit = STREAM_SECONDS * self.sample_rate
        if isinstance(audio_or_path, (str, bytes, os.PathLike)):
            path = os.fsdecode(audio_or_path)
            duration = audio_info(path).duration
            if duration is not None and duration <= STREAM_SECONDS:
                return self._model.embed_waveform(tf.constant(load_audio(path,
                                                                         self.sample_rate)))
            feats = extract_features(path, self.features)  # streamed from the file
        else:
            # silence is refused as it is in a file
            y = check_waveform(audio_or_path, reject_silent=True)
            if len(y) <= limit:
                return self._model.embed_waveform(tf.constant(y))
            # long: the graph would hold every STFT frame (n_fft floats each)
            feats = extract_features(y, self.features)
        emb = self._embed_features(feats)
        return {"embedding": tf.constant(emb.mean(0)), "window_embeddings": tf.constant(emb)}

    def embed_many(self, paths: Iterable, progress: bool | None = None, workers: int = 2
                   ) -> tuple[dict, dict]:
        """Embed many files; a bad file is reported, never fatal.

        Args:
            paths: a list (or other iterable) of audio file paths; a single path is a
                `ConfigError`.
            progress: show a Keras progress bar (default: from PROGRESS_MIN files on).
            workers: decoding threads (`singer_zoo.batch.run_batch`).

        Returns:
            ({path: (dim,) embedding}, {path: "path: problem"}).

        Example:
            >>> ok, failed = emb.embed_many(["a.wav", "b.flac", "broken.mp3"])
            >>> sorted(failed)
            ['broken.mp3']
        """
        if isinstance(paths, (str, bytes, os.PathLike)):
            raise ConfigError(f"embed_many takes a list of paths, got the single path "
                              f"{os.fsdecode(paths)!r}; use embed(path) for one file")
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
        name_or_path: a shipped embedder's name, the name of a folder in `./exported`
            (`available()` lists both) or an exported folder.

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
