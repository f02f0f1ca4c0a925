"""Mel-spectrogram front end in TF ops (paper section 3.2).

Hann window (periodic), FFT of `n_fft` samples, hop `hop_length`, centred frames, power
spectrogram |X|^2 projected on `n_bins` HTK-scale Mel filters (librosa `htk=True,
norm=None, fmin=0, fmax=sr/2`), then dB relative to the recording's maximum (`db.py`).

The filterbank is librosa's, computed once at build time and held as a constant: it
matches `librosa.feature.melspectrogram` far more closely than `tf.signal`'s own Mel
matrix (1e-4 dB vs 0.08 dB). The projection is a batch matmul (frames x freq) @
(1 x freq x mels), which TFLite keeps as BATCH_MATMUL (a `tensordot`, or a matmul with a
2-D constant, becomes FULLY_CONNECTED, which int8 quantisation ruins).
"""
from __future__ import annotations

import keras
import librosa
import numpy as np
import tensorflow as tf

from singer_zoo.features.db import DbFrontend


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(1 + n_fft // 2, n_mels) float32 HTK Mel filterbank without area normalisation."""
    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0,
                             fmax=sample_rate / 2, htk=True, norm=None)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


@keras.saving.register_keras_serializable(package="singer_zoo")
class MelSpectrogram(DbFrontend):
    """Waveform (batch, samples) -> Mel dB (batch, 1 + samples // hop, n_bins) in [0, top_db].

    `features` is a `FeatureConfig` (or its dict); `power(x, center=...)` gives the Mel
    power before dB, for streaming extraction.
    """

    def __init__(self, features=None, **kwargs):
        kwargs.setdefault("name", "mel")
        super().__init__(features, **kwargs)
        f = self.features
        self.frame_length = f.n_fft
        self._window = tf.constant(
            tf.signal.hann_window(f.n_fft, periodic=True).numpy().reshape(1, 1, -1))
        # (1, freq, mels): a rank-3 constant keeps the matmul a BATCH_MATMUL in TFLite (a 2-D
        # one is rewritten to FULLY_CONNECTED)
        self._filterbank = tf.constant(mel_filterbank(f.sample_rate, f.n_fft, f.n_bins)[None])

    def power_frames(self, frames):
        # frames: (batch, frames, n_fft) -> spectrum (batch, frames, 1 + n_fft // 2)
        spec = tf.signal.rfft(frames * self._window, fft_length=[self.features.n_fft])
        power = tf.square(tf.math.real(spec)) + tf.square(tf.math.imag(spec))
        return tf.matmul(power, self._filterbank)  # (batch, frames, n_mels)
