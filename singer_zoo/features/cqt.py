"""Constant-Q front end in TF ops (paper section 3.2, Table 1's "CQT" rows).

`n_bins` bins from `fmin` (C1 = 32.70 Hz by default), `bins_per_octave` per octave, hop
`hop_length`, centred frames, same dB handling as the Mel front end.

Kernels are librosa's CQT wavelets (`librosa.filters.wavelet`: Hann-windowed complex
exponentials, length Q * sr / f_k with librosa's relative bandwidth, L1-normalised), each
scaled by sqrt(length) as librosa's `cqt(scale=True)` does, centred in one common frame of
`frame_length` samples (the longest kernel, rounded up to even: 11686 at the defaults).
Each bin's response is the inner product of the frame with its kernel, computed as ONE
real batch matmul: frames (batch, T, frame_length) @ [Re K, Im K] (1, frame_length, 2 n_bins).
This is what Brown-Puckette's spectral kernel computes (Parseval) without an FFT; with no
sparse ops in TFLite the dense spectral kernel would cost the same matmul, and the
time-domain form is exact and builtin-only (GATHER, BATCH_MATMUL, MUL, ADD).

Unlike `librosa.cqt`, nothing is downsampled octave by octave, so low bins see the full
band and the values differ slightly from librosa's (tolerance in docs/features.md).
"""
from __future__ import annotations

import keras
import librosa
import numpy as np
import tensorflow as tf

from singer_zoo.features.db import DbFrontend


def cqt_kernels(sample_rate: int, fmin: float, n_bins: int, bins_per_octave: int):
    """(frame_length, 2 * n_bins) float32 [real | imag] kernels (conjugated for correlation)."""
    freqs = librosa.cqt_frequencies(n_bins=n_bins, fmin=fmin, bins_per_octave=bins_per_octave)
    basis, lengths = librosa.filters.wavelet(freqs=freqs, sr=sample_rate, window="hann",
                                             filter_scale=1, norm=1, pad_fft=False, gamma=0)
    frame_length = 2 * int(np.ceil(basis.shape[1] / 2))
    basis = librosa.util.pad_center(basis, size=frame_length, axis=1)  # (n_bins, frame_length)
    basis = basis * np.sqrt(lengths)[:, None]
    # <frame, kernel> = sum frame * conj(kernel): real part from Re K, imaginary from -Im K
    return np.concatenate([basis.real, -basis.imag], axis=0).T.astype(np.float32)


@keras.saving.register_keras_serializable(package="singer_zoo")
class CQTSpectrogram(DbFrontend):
    """Waveform (batch, samples) -> CQT dB (batch, 1 + samples // hop, n_bins) in [0, top_db].

    Table 1's "CQT" front end (module doc); a registered Keras layer like `MelSpectrogram`,
    with the same `power` / `power_np` stages.

    Args:
        features: a `FeatureConfig` or its dict (`sample_rate`, `hop_length`, `n_bins`,
            `fmin`, `bins_per_octave`, `top_db`).
        **kwargs: Keras layer arguments (default name "cqt").

    Example:
        >>> import numpy as np
        >>> from singer_zoo.config import FeatureConfig
        >>> cqt = CQTSpectrogram(FeatureConfig(frontend="cqt"))
        >>> cqt.frame_length  # the longest kernel, at C1
        11686
        >>> y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(22050) / 22050)
        >>> tuple(cqt(y[None].astype(np.float32)).shape)
        (1, 44, 96)
    """

    def __init__(self, features=None, **kwargs):
        kwargs.setdefault("name", "cqt")
        super().__init__(features, **kwargs)
        f = self.features
        kernels = cqt_kernels(f.sample_rate, f.fmin, f.n_bins, f.bins_per_octave)
        self.frame_length = kernels.shape[0]
        self._kernels_np = kernels  # (frame_length, 2 n_bins)
        self._kernels = tf.constant(kernels[None])  # (1, frame_length, 2 n_bins): BATCH_MATMUL

    def projections(self):
        return [self._kernels]

    def power_frames(self, frames):
        # frames: (batch, T, frame_length) -> responses (batch, T, 2 * n_bins)
        resp = tf.matmul(frames, self._kernels)
        re, im = tf.split(resp, 2, axis=-1)  # (batch, T, n_bins) each
        return tf.square(re) + tf.square(im)

    def power_frames_np(self, frames):
        # a contiguous copy: BLAS cannot read the overlapping rows of the strided frames
        resp = np.ascontiguousarray(frames) @ self._kernels_np  # (T, 2 * n_bins)
        re, im = np.split(resp, 2, axis=-1)
        return np.square(re) + np.square(im)
