"""Power -> decibels, referenced to each recording's maximum (paper section 3.2).

`10 * log10(max(power, AMIN))` minus the same of the recording's largest value (over all
frames and bins), clipped below at `-top_db`, then offset by `+top_db`: values lie in
`[0, top_db]`. This is librosa's `power_to_db(S, ref=np.max, amin=1e-10, top_db=top_db)
+ top_db`. The reference is the maximum of *that recording*, so in a batch each example is
referenced to its own maximum; streaming extraction therefore keeps power until the whole
recording is seen (`power_to_db_np`).

Two versions with identical arithmetic: `power_to_db` in TF ops (inside Keras layers and
exported graphs; builtin TFLite ops only) and `power_to_db_np` in numpy (streaming).
`DbFrontend` is the base layer of the Mel and CQT front ends: centring, framing, dB; each
front end also computes its power in numpy (`power_np`), with the same constants and the
same arithmetic, for streaming extraction (`extract.py`).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from singer_zoo.config import FeatureConfig

AMIN = 1e-10  # floor on power before the log (librosa's default amin): -100 dB


def power_to_db(power: tf.Tensor, top_db: float) -> tf.Tensor:
    """Power -> dB in TF ops, each example referenced to its own maximum (module doc).

    Args:
        power: (batch, frames, bins) float32 power.
        top_db: the dynamic range kept below the maximum.

    Returns:
        (batch, frames, bins) dB in [0, top_db].
    """
    log_p = tf.math.log(tf.maximum(power, AMIN)) * (10.0 / np.log(10.0))
    ref = tf.reduce_max(log_p, axis=[1, 2], keepdims=True)  # (batch, 1, 1)
    return tf.maximum(log_p - ref, -top_db) + top_db


def power_to_db_np(power: np.ndarray, top_db: float, out: np.ndarray | None = None
                   ) -> np.ndarray:
    """Power of one whole recording -> dB, referenced to its maximum, in numpy.

    Args:
        power: (frames, bins) power of the whole recording.
        top_db: the dynamic range kept below the maximum.
        out: float32 array of the same shape to compute into (it may be `power` itself,
            as streaming extraction does: an hour of Mel frames is about 60 MB), or None
            for a new array.

    Returns:
        (frames, bins) float32 dB in [0, top_db] (`out` when given).

    Example:
        >>> import numpy as np
        >>> power_to_db_np(np.array([[1.0, 1e-3, 1e-9]]), 60.0).round(3)
        array([[60., 30.,  0.]], dtype=float32)
    """
    db = np.maximum(power, AMIN, out=out, dtype=np.float32)
    np.log(db, out=db)  # as the TF version; float32 log is SIMD in numpy, log10 is 4x slower
    db *= np.float32(10.0 / np.log(10.0))
    if db.size:
        db -= db.max()
        np.maximum(db, -top_db, out=db)
        db += top_db
    return db


class DbFrontend(keras.layers.Layer):
    """Base of the spectral front ends: waveform -> power -> dB (see module docstring).

    Subclasses implement `power_frames(frames)`: (batch, frames, frame_length) samples ->
    (batch, frames, n_bins) power, and `projections()`, its matmul constants. This base
    centres the waveform (`frame_length // 2` zeros each side, librosa's `center=True,
    pad_mode="constant"`), frames it with the hop, and applies `power_to_db`.
    `power(..., center=False)` is the stage streaming extraction uses on overlapping blocks.
    """

    frame_length: int  # samples per frame; set by each subclass's __init__

    def __init__(self, features: FeatureConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(features, dict) or features is None:
            features = FeatureConfig.from_dict(features)
        self.features = features

    def power(self, waveform: tf.Tensor, center: bool = True) -> tf.Tensor:
        """(batch, samples) -> (batch, frames, n_bins) power; frames = 1 + samples // hop
        when centred, else 1 + (samples - frame_length) // hop."""
        x = tf.convert_to_tensor(waveform, tf.float32)
        if center:
            half = self.frame_length // 2
            x = tf.pad(x, [[0, 0], [half, self.frame_length - half]])
        # padded length = samples + frame_length -> (batch, frames, frame_length)
        hop = self.features.hop_length
        if hop == self.frame_length:  # frames end to end: a reshape (no GATHER in TFLite)
            n = tf.shape(x)[1] // hop  # = 1 + (length - hop) // hop, and 0 when shorter
            frames = tf.reshape(x[:, :n * hop], [tf.shape(x)[0], n, hop])
        else:
            frames = tf.signal.frame(x, self.frame_length, hop, axis=1)
        return self.power_frames(frames)

    def power_frames(self, frames: tf.Tensor) -> tf.Tensor:
        """(batch, frames, frame_length) -> (batch, frames, n_bins) power (per front end)."""
        raise NotImplementedError(f"{type(self).__name__} must implement power_frames")

    def power_np(self, padded: np.ndarray) -> np.ndarray:
        """(samples,) float32 waveform, not centred -> (frames, n_bins) float32 power, frames
        = 1 + (samples - frame_length) // hop: `power(padded[None], center=False)[0]` in
        numpy, for streaming extraction, which calls it per chunk of frames. numpy and
        scipy.fft release the GIL, so batch threads run it side by side (speed against a
        TF call: docs/performance.md, "Feature pipeline")."""
        x = np.ascontiguousarray(padded, np.float32)
        hop, size = self.features.hop_length, x.itemsize
        n = 1 + (len(x) - self.frame_length) // hop if len(x) >= self.frame_length else 0
        # overlapping rows of x, no copy: (frames, frame_length)
        frames = np.lib.stride_tricks.as_strided(x, (n, self.frame_length), (hop * size, size),
                                                 writeable=False)
        return self.power_frames_np(frames)

    def power_frames_np(self, frames: np.ndarray) -> np.ndarray:
        """(frames, frame_length) -> (frames, n_bins) float32 power: `power_frames` in numpy."""
        raise NotImplementedError(f"{type(self).__name__} must implement power_frames_np")

    def projections(self) -> list[tf.Tensor]:
        """The rank-3 float constants `power_frames` multiplies by (its BATCH_MATMUL
        weights, which int8 TFLite export keeps float: export/tflite.py)."""
        raise NotImplementedError(f"{type(self).__name__} must implement projections")

    def call(self, waveform):
        return power_to_db(self.power(waveform), self.features.top_db)

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        frames = None if n is None else 1 + n // self.features.hop_length
        return (input_shape[0], frames, self.features.n_bins)

    def get_config(self):
        return {**super().get_config(), "features": self.features.to_dict()}
