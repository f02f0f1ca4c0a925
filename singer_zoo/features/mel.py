"""Mel-spectrogram front end in TF ops (paper section 3.2).

Hann window (periodic), FFT of `n_fft` samples, hop `hop_length`, centred frames, power
spectrogram |X|^2 projected on `n_bins` HTK-scale Mel filters (librosa `htk=True,
norm=None, fmin=0, fmax=sr/2`), then dB relative to the recording's maximum (`db.py`).

The filterbank is librosa's, computed once at build time and held as constants: it
matches `librosa.feature.melspectrogram` far more closely than `tf.signal`'s own Mel
matrix (1e-4 dB vs 0.08 dB). It is 98 % zeros (each frequency row feeds at most two
filters), so the projection is split into `MEL_GROUPS` groups of consecutive filters, each
a batch matmul of only the frequency rows it touches, (frames x rows) @ (1 x rows x
filters), concatenated: 13 % of the dense product's multiply-adds at the defaults, and
22 % less time per frame for the whole front end on one core (docs/features.md). Rank-3
constants keep each matmul a BATCH_MATMUL in TFLite (a `tensordot`, or a matmul with a 2-D
constant, becomes FULLY_CONNECTED, which int8 quantisation ruins). `power_frames_np` is the
same computation in numpy and scipy.fft, for streaming extraction. `FeatureConfig.dft =
"matmul"` computes the power spectrum as two matrix products instead (`dft.py`), which
TFLite runs faster than its RFFT2D: the mobile rows built for speed use it.
"""
from __future__ import annotations

import keras
import librosa
import numpy as np
import scipy.fft
import tensorflow as tf

from singer_zoo.features import dft as dft_mod
from singer_zoo.features.db import DbFrontend

MEL_GROUPS = 8  # filter groups of the projection: 4 -> 12 gave 19 -> 23 % less time per frame


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(1 + n_fft // 2, n_mels) float32 HTK Mel filterbank without area normalisation."""
    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0,
                             fmax=sample_rate / 2, htk=True, norm=None)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


def filter_groups(filterbank: np.ndarray, n_groups: int) -> list[tuple[int, int, np.ndarray]]:
    """Split a (freq, mels) filterbank into `n_groups` runs of consecutive filters (as equal
    as possible), each with the rows it touches: [(first row, end row, (rows, filters))].
    Every non-zero of `filterbank` is in exactly one group's block."""
    edges = np.linspace(0, filterbank.shape[1], min(n_groups, filterbank.shape[1]) + 1)
    groups = []
    for a, b in zip(edges[:-1].astype(int), edges[1:].astype(int)):
        rows = np.flatnonzero((filterbank[:, a:b] != 0).any(axis=1))
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 1)  # empty filters
        groups.append((lo, hi, np.ascontiguousarray(filterbank[lo:hi, a:b])))
    return groups


@keras.saving.register_keras_serializable(package="singer_zoo")
class MelSpectrogram(DbFrontend):
    """Waveform (batch, samples) -> Mel dB (batch, 1 + samples // hop, n_bins) in [0, top_db].

    The paper's front end (module doc); a registered Keras layer, so it is saved inside
    `.keras` files and exported graphs. `power(x, center=...)` gives the Mel power before
    dB and `power_np(x)` the same in numpy, for streaming extraction.

    Args:
        features: a `FeatureConfig` or its dict (`sample_rate`, `n_fft`, `hop_length`,
            `n_bins`, `top_db`, `dft`); default: the paper's settings.
        **kwargs: Keras layer arguments (default name "mel").

    Example:
        >>> import numpy as np
        >>> from singer_zoo.config import FeatureConfig
        >>> mel = MelSpectrogram(FeatureConfig())
        >>> y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(22050) / 22050)
        >>> tuple(mel(y[None].astype(np.float32)).shape)  # 1 s at 22050 Hz, hop 512
        (1, 44, 96)
    """

    def __init__(self, features=None, **kwargs):
        kwargs.setdefault("name", "mel")
        super().__init__(features, **kwargs)
        f = self.features
        self.frame_length = f.n_fft
        self._window_np = tf.signal.hann_window(f.n_fft, periodic=True).numpy()  # (n_fft,)
        self._window = tf.constant(self._window_np.reshape(1, 1, -1))
        self._groups_np = filter_groups(mel_filterbank(f.sample_rate, f.n_fft, f.n_bins),
                                        MEL_GROUPS)
        # ((first row, end row, (1, rows, filters)), ...): rank-3 constants keep each matmul
        # a BATCH_MATMUL in TFLite (a 2-D one is rewritten to FULLY_CONNECTED)
        self._groups = tuple((lo, hi, tf.constant(block[None]))
                             for lo, hi, block in self._groups_np)
        # dft "matmul": (N2, N1, 2 N1) and (1, 2 N2, 2 K2) constants, the window folded in
        self._dft = tuple(tf.constant(m) for m in dft_mod.dft_matrices(self._window_np)) \
            if f.dft == "matmul" else ()

    def projections(self):
        return [block for _, _, block in self._groups] + list(self._dft)

    def power_frames(self, frames):
        # frames: (batch, frames, n_fft) -> power (batch, frames, 1 + n_fft // 2)
        if self._dft:
            power = dft_mod.power_matmul(frames, *self._dft)
        else:
            spec = tf.signal.rfft(frames * self._window, fft_length=[self.features.n_fft])
            power = tf.square(tf.math.real(spec)) + tf.square(tf.math.imag(spec))
        # per group (batch, frames, rows) @ (1, rows, filters) -> (batch, frames, n_mels)
        return tf.concat([tf.matmul(power[:, :, lo:hi], block) for lo, hi, block in self._groups],
                         axis=2)

    def power_frames_np(self, frames):
        # frames: (frames, n_fft) -> spectrum (frames, 1 + n_fft // 2) complex64
        spec = scipy.fft.rfft(frames * self._window_np, axis=-1, overwrite_x=True)
        power = np.square(spec.real)
        power += np.square(spec.imag)
        out = np.empty((len(frames), self.features.n_bins), np.float32)  # (frames, n_mels)
        first = 0
        for lo, hi, block in self._groups_np:
            np.matmul(power[:, lo:hi], block, out=out[:, first:first + block.shape[1]])
            first += block.shape[1]
        return out
