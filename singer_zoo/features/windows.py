"""Chopping a recording's features into overlapping fixed-size windows (paper section 3.2:
6 s = 256 frames, 20 % hop = 51 frames).

Policy (same in `chop` and `FrameWindows`):
- a recording with F >= window_frames frames gives 1 + (F - window_frames) // hop
  windows, starting at frames 0, hop, 2 hop, ...; the tail after the last full window
  (fewer than `hop` frames) is dropped;
- a recording shorter than one window is padded at the end with 0 (the dB floor,
  i.e. silence) to one window, so every recording gives at least one window.
"""
from __future__ import annotations

import keras
import numpy as np

from singer_zoo.config import FeatureConfig
from singer_zoo.errors import ConfigError


def n_windows(n_frames: int, cfg: FeatureConfig) -> int:
    """How many windows `chop` makes from `n_frames` frames (at least 1)."""
    return 1 + max(n_frames - cfg.window_frames, 0) // cfg.window_hop_frames


def chop(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, bins) -> (n_windows, window_frames, bins) float32 (a copy). Strided view +
    one copy: `np.pad` and `sliding_window_view` cost 75 us per short recording, this 4 us."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ConfigError(f"chop: features must be (frames, bins), got shape {features.shape}")
    w, hop = cfg.window_frames, cfg.window_hop_frames
    frames, bins = features.shape
    if frames < w:  # one window, zero-padded at the end
        out = np.zeros((1, w, bins), np.float32)
        out[0, :frames] = features
        return out
    s_frame, s_bin = features.strides
    view = np.lib.stride_tricks.as_strided(features, (n_windows(frames, cfg), w, bins),
                                           (hop * s_frame, s_frame, s_bin), writeable=False)
    return view.copy()


@keras.saving.register_keras_serializable(package="singer_zoo")
class FrameWindows(keras.layers.Layer):
    """(batch, frames, bins) -> (batch, n_windows, window_frames, bins), policy as `chop`.

    Gathers with a computed index (builtin TFLite ops; works for any number of frames).
    """

    def __init__(self, window_frames: int = 256, hop_frames: int = 51, **kwargs):
        kwargs.setdefault("name", "windows")
        super().__init__(**kwargs)
        self.window_frames, self.hop_frames = int(window_frames), int(hop_frames)

    @classmethod
    def from_features(cls, cfg: FeatureConfig, **kwargs) -> FrameWindows:
        return cls(cfg.window_frames, cfg.window_hop_frames, **kwargs)

    def call(self, features):
        import tensorflow as tf  # a front-end layer: TF graphs only (export, in-graph features)

        w, hop = self.window_frames, self.hop_frames
        short = tf.maximum(w - tf.shape(features)[1], 0)
        x = tf.pad(features, [[0, 0], [0, short], [0, 0]])  # (batch, max(frames, w), bins)
        n = 1 + (tf.shape(x)[1] - w) // hop
        idx = tf.expand_dims(tf.range(n) * hop, 1) + tf.expand_dims(tf.range(w), 0)  # (n, w)
        return tf.gather(x, idx, axis=1)  # (batch, n, w, bins)

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        n = None if frames is None else 1 + max(frames - self.window_frames, 0) // self.hop_frames
        return (input_shape[0], n, self.window_frames, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "window_frames": self.window_frames,
                "hop_frames": self.hop_frames}
