"""The windowed real DFT's power spectrum as two matrix products (`FeatureConfig.dft`).

TFLite's RFFT2D kernel computes in double precision and is not delegated to XNNPACK: in the
fast mobile file it was 0.77 of the front end's 1.05 ms per 6-s clip (one thread). A DFT
of N = N1 * N2 points splits into two small ones (Cooley-Tukey, one split), and each is a
batch matmul that XNNPACK runs at its matrix-product rate. For frame samples
x[n2 + N2 n1] (n1 < N1, n2 < N2) and bins k = k1 + N1 k2:

    X[k1 + N1 k2] = sum_n2 W_N2^(n2 k2) * [ W_N^(n2 k1) * sum_n1 W_N1^(n1 k1) x[n2 + N2 n1] ]

- stage 1, one (N1, 2 N1) matrix per n2: the N1-point DFTs over n1 of the real samples,
  with the Hann window and the twiddle factors W_N^(n2 k1) folded into the matrices
  (applied as separate element-wise ops they cost more than they save);
- stage 2, one (2 N2, 2 (N2 // 2 + 1)) matrix: the complex N2-point DFTs over n2, only the
  k2 <= N2 / 2 that bins 0..N/2 need.

The constants are float32 (int8 would wreck the spectrum's dynamic range) and count
2 N N1 + 2 N2 (N2 + 2) values; `factors` picks the split with the fewest, which keeps the
files small: 16 x 64 at 1024 points (41 k values, 164 KB). Measured in TFLite on one core,
130 frames of 1024 points: RFFT2D 0.92 ms, 16 x 64 0.68 ms, 32 x 32 0.57 ms (67 k values).
TensorFlow's own FFT is faster than these matmuls, but the TF graph is not where the mobile
rows run. Equal to the FFT's power to float rounding (tests/test_features_mel.py).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def factors(n: int) -> tuple[int, int]:
    """n = n1 * n2 with the fewest constant values 2 n n1 + 2 n2 (n2 + 2) (module doc):
    16 x 64 at 1024 and 16 x 128 at 2048 points (a prime n: one plain DFT matrix)."""
    return min(((d, n // d) for d in range(1, n + 1) if n % d == 0),
               key=lambda f: 2 * n * f[0] + 2 * f[1] * (f[1] + 2))


def dft_matrices(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two stages' float32 constants for a real DFT of len(window) points:
    stage 1 (N2, N1, 2 N1) = [Re | Im] of window[n2 + N2 n1] W_N1^(n1 k1) W_N^(n2 k1);
    stage 2 (1, 2 N2, 2 K2), K2 = N2 // 2 + 1: rows [Re; Im] over n2 -> [Re | Im] over k2."""
    n = len(window)
    n1_, n2_ = factors(n)
    n1, n2, k1 = np.arange(n1_), np.arange(n2_), np.arange(n1_)
    # angle[n2, n1, k1] of W_N1^(n1 k1) W_N^(n2 k1)
    angle = -2 * np.pi * (np.outer(n1, k1)[None] / n1_ + n2[:, None, None] * k1 / n)
    win = np.asarray(window, np.float64).reshape(n1_, n2_).T[:, :, None]  # (N2, N1, 1)
    stage1 = np.concatenate([np.cos(angle), np.sin(angle)], axis=2) * win
    angle2 = -2 * np.pi * np.outer(n2, np.arange(n2_ // 2 + 1)) / n2_  # [n2, k2] of W_N2
    c, s = np.cos(angle2), np.sin(angle2)
    stage2 = np.block([[c, s], [-s, c]])[None]  # (a + ib)(c + is) = (ac - bs) + i(as + bc)
    return stage1.astype(np.float32), stage2.astype(np.float32)


def power_matmul(frames: tf.Tensor, stage1: tf.Tensor, stage2: tf.Tensor) -> tf.Tensor:
    """(batch, frames, N) raw (unwindowed) samples -> (batch, frames, N // 2 + 1) power of
    the windowed DFT, through the constants of `dft_matrices`."""
    n2_, n1_ = int(stage1.shape[0]), int(stage1.shape[1])
    k2 = int(stage2.shape[2]) // 2
    batch, count = tf.shape(frames)[0], tf.shape(frames)[1]
    x = tf.reshape(frames, [-1, n1_, n2_])  # (B*T, N1, N2): x[n2 + N2 n1]
    x = tf.transpose(x, [2, 0, 1])  # (N2, B*T, N1)
    a = tf.matmul(x, stage1)  # (N2, B*T, 2 N1): [Re | Im] over k1, twiddled
    a = tf.reshape(a, [n2_, -1, 2, n1_])  # (N2, B*T, 2, N1)
    a = tf.reshape(tf.transpose(a, [1, 3, 2, 0]), [-1, n1_, 2 * n2_])  # (B*T, N1, 2 N2)
    y = tf.matmul(a, stage2)  # (B*T, N1, 2 K2): [Re | Im] over k2
    p = tf.square(y[:, :, :k2]) + tf.square(y[:, :, k2:])  # (B*T, N1, K2)
    p = tf.reshape(tf.transpose(p, [0, 2, 1]), [batch, count, k2 * n1_])  # bin k1 + N1 k2
    return p[:, :, :n1_ * n2_ // 2 + 1]  # (batch, frames, N // 2 + 1)
