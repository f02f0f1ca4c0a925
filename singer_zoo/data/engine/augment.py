"""Room reverberation and background noise for the training stream (robustness).

- Reverberation: a bank of room impulse responses simulated once per seed with
  pyroomacoustics (image-source method in shoebox rooms of random size, absorption from a
  target RT60 by Sabine's formula, random source and microphone positions), applied by FFT
  convolution. pyroomacoustics was chosen over pedalboard's algorithmic Reverb and
  audiomentations' RoomSimulator by measurement (bench/bench_augment.py, docs/training_data.md):
  a bank simulated once costs nothing per recording, and its rooms are physical ones.
- Noise: coloured Gaussian noise (spectral slope from white to brown) at a random SNR, drawn
  from the caller's seeded generator, so that a recording's augmentation is reproducible
  (audiomentations draws from numpy's global state).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from singer_zoo.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the augmentations (validated on creation)."""

    reverb_p: float = 0.6
    rt60: tuple = (0.2, 0.9)  # seconds
    noise_p: float = 0.7
    snr_db: tuple = (5.0, 35.0)
    n_rooms: int = 24  # size of the impulse-response bank

    def __post_init__(self):
        for name in ("reverb_p", "noise_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"AugmentConfig: {name} must be in [0, 1]")
        for name in ("rt60", "snr_db"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ConfigError(f"AugmentConfig: {name} must be (low, high), low <= high")
        if self.rt60[0] <= 0 or self.n_rooms < 1:
            raise ConfigError("AugmentConfig: rt60 must be positive and n_rooms >= 1")


def room_impulse_response(rt60: float, sr: int, rng) -> np.ndarray:
    """(taps,) float32, unit energy: one simulated shoebox room (pyroomacoustics)."""
    import pyroomacoustics as pra

    dims = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 4.0])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption),
                       max_order=min(max_order, 12))
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    h = np.asarray(room.rir[0][0], np.float64)
    return (h / np.sqrt((h ** 2).sum())).astype(np.float32)


class Augmenter:
    """`augmenter(y, rng)` -> (augmented y, description): reverberation then noise."""

    def __init__(self, cfg: AugmentConfig, sr: int, seed: int):
        self.cfg, self.sr = cfg, sr
        rng = np.random.default_rng([seed, 77])
        self.rooms = [room_impulse_response(rng.uniform(*cfg.rt60), sr, rng)
                      for _ in range(cfg.n_rooms if cfg.reverb_p > 0 else 0)]

    def __call__(self, y: np.ndarray, rng) -> tuple[np.ndarray, str]:
        y = np.asarray(y, np.float64)
        done = []
        if self.rooms and rng.random() < self.cfg.reverb_p:
            k = int(rng.integers(len(self.rooms)))
            y = fftconvolve(y, self.rooms[k])[:len(y)]
            done.append(f"room{k}")
        if rng.random() < self.cfg.noise_p:
            snr, slope = rng.uniform(*self.cfg.snr_db), rng.uniform(0.0, 2.0)
            spec = np.fft.rfft(rng.standard_normal(len(y)))
            f = np.maximum(np.fft.rfftfreq(len(y), 1 / self.sr), 20.0)
            noise = np.fft.irfft(spec * f ** (-slope / 2), len(y))  # power ~ 1 / f^slope
            scale = np.sqrt((y ** 2).mean() / ((noise ** 2).mean() + 1e-20) / 10 ** (snr / 10))
            y = y + scale * noise
            done.append(f"noise{snr:.0f}dB")
        y = 0.9 * y / (np.abs(y).max() + 1e-9)
        return y.astype(np.float32), "+".join(done) or "clean"
