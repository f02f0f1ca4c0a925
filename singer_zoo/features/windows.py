"""Chopping a recording's features into overlapping fixed-size windows (paper section 3.2:
6 s = 256 frames, 20 % hop = 51 frames).

Policy (`count_windows` and `gather_windows` hold it for `chop`, `FrameWindows` and the
training pipeline's window gather):
- a recording with F >= window_frames frames gives 1 + (F - window_frames) // hop
  windows, starting at frames 0, hop, 2 hop, ...; the tail after the last full window
  (fewer than `hop` frames) is dropped;
- a recording shorter than one window is repeated (its frames tiled) up to one window,
  so every recording gives at least one window and a window holds only the recording's
  own frames, as speaker-verification toolkits pad short utterances. Padding with silence
  (the dB floor) instead puts half a window of silence into a 3-s word's statistics, which
  cost the shipped mobile embedder 0.03 singer 1-NN and 0.016 EER on held-out speech
  (docs/pretrained.md, "Short recordings").
"""
from __future__ import annotations

import keras
import numpy as np

from singer_zoo.config import FeatureConfig
from singer_zoo.errors import ConfigError


def count_windows(n_frames, window_frames: int, hop: int):
    """Windows of `window_frames` frames at starts 0, hop, 2 hop, ... in `n_frames >=
    window_frames` frames (padded already); ints or scalar tensors."""
    return 1 + (n_frames - window_frames) // hop


def n_windows(n_frames: int, cfg: FeatureConfig) -> int:
    """How many windows `chop` makes from `n_frames` frames.

    Args:
        n_frames: frames of a recording's features.
        cfg: the `FeatureConfig` (`window_frames`, `window_hop_frames`).

    Returns:
        1 + (n_frames - window_frames) // window_hop_frames, and 1 for a recording shorter
        than one window.

    Example:
        >>> from singer_zoo.config import FeatureConfig
        >>> n_windows(431, FeatureConfig()), n_windows(100, FeatureConfig())
        (4, 1)
    """
    w = cfg.window_frames
    return count_windows(max(n_frames, w), w, cfg.window_hop_frames)


def fill_window(features: np.ndarray, window_frames: int) -> np.ndarray:
    """A recording's (frames, bins) features, tiled along time up to `window_frames` frames
    when it is shorter (the policy above); `features` itself when it is not.

    Example:
        >>> fill_window(np.arange(3.0)[:, None], 7)[:, 0]
        array([0., 1., 2., 0., 1., 2., 0.])
    """
    frames = len(features)
    if frames >= window_frames:
        return features
    if frames == 0:
        raise ConfigError("fill_window: a recording with no frames has no window")
    return np.tile(features, (-(-window_frames // frames), 1))[:window_frames]


def gather_windows(x, starts, window_frames: int, axis: int = 0):
    """The windows of a TF tensor at given start frames (builtin TFLite ops: GATHER).

    Args:
        x: a TF tensor with frames along `axis`.
        starts: (n,) integer tensor of start frames; each window must fit in `x`.
        window_frames: frames per window.
        axis: the frame axis of `x`.

    Returns:
        `x` with `axis` replaced by (n, window_frames).
    """
    import tensorflow as tf  # TF graphs only (FrameWindows, tf.data): training imports no TF

    offsets = tf.range(window_frames, dtype=starts.dtype)
    return tf.gather(x, tf.expand_dims(starts, 1) + tf.expand_dims(offsets, 0), axis=axis)


def chop(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Cut a recording's features into overlapping windows (module doc: the policy).

    Args:
        features: (frames, bins) features of one recording.
        cfg: the `FeatureConfig` (`window_frames`, `window_hop_frames`).

    Returns:
        (n_windows, window_frames, bins) float32, a copy (`n_windows(frames, cfg)` windows;
        a short recording is tiled to one, `fill_window`). Made from one strided view and one copy
        (docs/performance.md, "Feature pipeline").

    Raises:
        ConfigError: `features` is not 2-D.

    Example:
        >>> import numpy as np
        >>> from singer_zoo.config import FeatureConfig
        >>> chop(np.zeros((431, 96)), FeatureConfig()).shape
        (4, 256, 96)
        >>> chop(np.zeros((100, 96)), FeatureConfig()).shape  # tiled to one window
        (1, 256, 96)
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ConfigError(f"chop: features must be (frames, bins), got shape {features.shape}")
    w, hop = cfg.window_frames, cfg.window_hop_frames
    frames, bins = features.shape
    if frames < w:  # one window of the recording's frames, tiled
        return fill_window(features, w)[None].copy()
    s_frame, s_bin = features.strides
    view = np.lib.stride_tricks.as_strided(features, (n_windows(frames, cfg), w, bins),
                                           (hop * s_frame, s_frame, s_bin), writeable=False)
    return view.copy()


@keras.saving.register_keras_serializable(package="singer_zoo")
class FrameWindows(keras.layers.Layer):
    """(batch, frames, bins) -> (batch, n_windows, window_frames, bins), policy as `chop`.

    The in-graph windowing of exported models. Gathers with a computed index (builtin
    TFLite ops; works for any number of frames, known or not when the graph is traced).

    Args:
        window_frames: frames per window (`FeatureConfig.window_frames`).
        hop_frames: frames between window starts (`FeatureConfig.window_hop_frames`).
        **kwargs: Keras layer arguments (default name "windows").

    Example:
        >>> import numpy as np
        >>> from singer_zoo.config import FeatureConfig
        >>> layer = FrameWindows.from_features(FeatureConfig())  # 256 frames, hop 51
        >>> tuple(layer(np.zeros((2, 431, 96), np.float32)).shape)
        (2, 4, 256, 96)
    """

    def __init__(self, window_frames: int = 256, hop_frames: int = 51, **kwargs):
        kwargs.setdefault("name", "windows")
        super().__init__(**kwargs)
        self.window_frames, self.hop_frames = int(window_frames), int(hop_frames)

    @classmethod
    def from_features(cls, cfg: FeatureConfig, **kwargs) -> FrameWindows:
        """The layer with `cfg`'s window size and hop."""
        return cls(cfg.window_frames, cfg.window_hop_frames, **kwargs)

    def call(self, features):
        import tensorflow as tf  # a front-end layer: TF graphs only (export, in-graph features)

        w, hop = self.window_frames, self.hop_frames
        frames = tf.shape(features)[1]
        repeats = (w + frames - 1) // tf.maximum(frames, 1)  # 1 unless shorter than a window
        x = tf.tile(features, [1, repeats, 1])[:, :tf.maximum(frames, w)]
        # (batch, max(frames, w), bins): a short recording tiled to one window, as `chop`
        starts = tf.range(count_windows(tf.shape(x)[1], w, hop)) * hop  # (n,)
        return gather_windows(x, starts, w, axis=1)  # (batch, n, w, bins)

    def compute_output_shape(self, input_shape):
        frames, w = input_shape[1], self.window_frames
        n = None if frames is None else count_windows(max(frames, w), w, self.hop_frames)
        return (input_shape[0], n, self.window_frames, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "window_frames": self.window_frames,
                "hop_frames": self.hop_frames}
