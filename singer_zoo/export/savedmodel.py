"""The deployable graph: waveform -> front end -> windows -> embedder, as a SavedModel.

Signatures (all float32; the front end is inside the graph, so callers pass raw audio):

- `embed_waveform(waveform: (samples,))` -> `embedding` (D,) = mean of the window
  embeddings, `window_embeddings` (n_windows, D). Any length; a recording shorter than one
  window (6 s) is padded to one window, as in training (`FrameWindows`).
- `embed_clip(waveform: (clip_samples,))` -> the same for exactly `clip_samples` samples:
  the fixed-shape function the TFLite files are converted from (see docs/mobile.md).
- `embed_windows(windows: (batch, window_frames, n_bins))` -> `embeddings` (batch, D), for
  callers that compute the Mel windows themselves.

Built with `keras.export.ExportArchive` (one `tf.function` endpoint per signature; the
archive saves the variables those endpoints use), so loading needs only
`tf.saved_model.load`, never this package's Python code. The embedder is deliberately not
`track()`ed: that adds the Keras variables as a second copy beside the endpoints' own
(a SavedModel twice the size of the weights), for nothing the signatures need.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError, ExportCheckError
from singer_zoo.features import FrameWindows, build_frontend, extract_windows
from singer_zoo.models import (SiameseModel, SingerClassifier, SingerEmbedder,
                               build_embedder)

SIGNATURES = ("embed_waveform", "embed_clip", "embed_windows")


def embedder_of(model: keras.Model, cfg: ZooConfig) -> SingerEmbedder:
    """The single-tower embedder of a trained model (a `SiameseModel`'s `embedder`, or a
    `SingerEmbedder` itself) as a float32 `SingerEmbedder` describing `cfg` (`as_current`).

    Files saved before the task classes hold plain functional models; such a model is taken
    as an embedder when it maps windows to `cfg.arch.embedding_dim` values through a last
    layer named "embedding" (the shipped embedders, older run folders).
    """
    emb = model.embedder if isinstance(model, SiameseModel) else model
    legacy = not isinstance(emb, (SingerEmbedder, SingerClassifier)) and \
        emb.output_shape == (None, cfg.arch.embedding_dim) and \
        emb.get_layer(index=-1).name == "embedding"
    if isinstance(emb, SingerEmbedder) or legacy:
        return as_current(emb, cfg)
    raise ConfigError(f"model {model.name!r} (output {model.output_shape}) is not a "
                      f"performance embedder; export supports siamese (embedding) rows: "
                      f"train one of those (e.g. mobile_resnext_attention or a t2_* row) to "
                      f"export it; a classifier (t1_*) is evaluated by `singer-zoo experiment "
                      f"table1`")


def as_current(embedder: keras.Model, cfg: ZooConfig) -> SingerEmbedder:
    """`embedder` when it is a float32 `SingerEmbedder` carrying `cfg`'s front end and name,
    else its weights in a new `build_embedder(cfg)` of the same input length.

    Rebuilt are: embedders saved before the task classes (plain functional models: the
    export then writes a self-describing embedder.keras); embedders whose front end differs
    from `cfg`'s only in how it is computed (`FeatureConfig.dft`); mixed-precision runs (bf16 on a
    GPU, `--mixed-precision`), whose layers keep their 16-bit compute dtype: the TFLite
    converter has no bfloat16 convolution kernels and CPUs are slow at float16, so the
    export computes in float32 (the variables are float32 either way).
    """
    if isinstance(embedder, SingerEmbedder) and \
            embedder.features.to_dict() == cfg.features.to_dict() and \
            embedder.zoo_name == cfg.name and all(
                layer.dtype_policy.compute_dtype == "float32"
                for layer in embedder.backbone.layers + embedder.layers):
        return embedder
    twin = build_embedder(cfg, n_frames=embedder.input_shape[1])
    try:
        twin.set_weights(embedder.get_weights())
    except ValueError as e:
        raise ConfigError(f"model {embedder.name!r} does not have the architecture of "
                          f"config {cfg.name!r} ({e})") from None
    return twin


class EmbeddingGraph:
    """The front end, the windowing and the embedder, with the three graph functions."""

    def __init__(self, embedder: keras.Model, cfg: ZooConfig):
        self.cfg = cfg
        self.embedder = embedder
        self.frontend = build_frontend(cfg.features, name="frontend")
        self.windows = FrameWindows.from_features(cfg.features, name="windows")

    def embed_windows(self, windows):
        return {"embeddings": self.embedder(windows, training=False)}  # (batch, D)

    def embed_waveform(self, waveform):
        x = tf.expand_dims(waveform, 0)  # (1, samples)
        feats = self.frontend(x)  # (1, frames, n_bins)
        win = self.windows(feats)[0]  # (n_windows, window_frames, n_bins)
        emb = self.embedder(win, training=False)  # (n_windows, D)
        return {"embedding": tf.reduce_mean(emb, axis=0), "window_embeddings": emb}

    def write(self, path, clip_samples: int) -> None:
        """Write the SavedModel with the three signatures to `path` (a new folder)."""
        f = self.cfg.features
        archive = keras.export.ExportArchive()
        archive.add_endpoint("embed_waveform", self.embed_waveform, input_signature=[
            tf.TensorSpec([None], tf.float32, name="waveform")])
        archive.add_endpoint("embed_clip", self.embed_waveform, input_signature=[
            tf.TensorSpec([clip_samples], tf.float32, name="waveform")])
        archive.add_endpoint("embed_windows", self.embed_windows, input_signature=[
            tf.TensorSpec([None, f.window_frames, f.n_bins], tf.float32, name="windows")])
        archive.write_out(str(path), verbose=False)


def keras_reference(embedder: keras.Model, cfg: ZooConfig, waveform: np.ndarray) -> np.ndarray:
    """(n_windows, D) window embeddings computed the training way: streamed numpy feature
    extraction and `chop`, then the Keras embedder. Independent of the exported graph, so
    comparing the two checks the front end, the windowing and the weights together."""
    windows = extract_windows(np.asarray(waveform, np.float32), cfg.features)
    return embedder.predict(windows, verbose=0, batch_size=32)


def check_savedmodel(path, reference: np.ndarray, waveform: np.ndarray,
                     tolerance: float) -> float:
    """Reload the SavedModel (graph only) and return the largest absolute difference of its
    window embeddings from `reference`; raises ExportCheckError above `tolerance`."""
    served = tf.saved_model.load(str(path))
    out = served.embed_waveform(tf.constant(waveform, tf.float32))
    got = out["window_embeddings"].numpy()
    if got.shape != reference.shape:
        raise ExportCheckError(f"{path}: SavedModel gives {got.shape} window embeddings, "
                               f"the Keras model {reference.shape}")
    err = float(np.abs(got - reference).max())
    mean_err = float(np.abs(out["embedding"].numpy() - reference.mean(0)).max())
    err = max(err, mean_err)
    if not err <= tolerance:
        raise ExportCheckError(f"{path}: SavedModel differs from the Keras model by {err:.3g} "
                               f"(tolerance {tolerance:g})")
    return err
