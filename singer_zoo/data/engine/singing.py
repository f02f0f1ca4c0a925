"""Speech -> singing with the WORLD vocoder (pyworld), and vocal-tract-length shifts.

`analyse` splits a voice recording into WORLD's f0, spectral envelope and aperiodicity
(DIO + StoneMask + CheapTrick + D4C, 5 ms frames) once; `sing` then re-synthesises it any
number of times onto a melody (`melody.pitch_track`), or `speak` re-synthesises it as speech:

- time: the recording is stretched over the performance by a time map that advances slowly
  in the middle of a note and quickly at its edges and in rests, so vowels are sustained and
  consonants stay short, as in singing (the recording is covered once, start to end);
- pitch: voiced frames take the melody's f0 (with vibrato and portamento), unvoiced frames
  (consonants) stay unvoiced; rests are attenuated by 40 dB;
- timbre: `tract` scales the spectral envelope along frequency (formants x tract), the
  vocal-tract-length perturbation that makes a new pseudo-singer from a voice.

pyworld was chosen over praat-parselmouth's PSOLA by measurement (bench/bench_singing.py,
figures in docs/training_data.md): it separates the envelope, which a VTL shift needs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from singer_zoo.data.engine import melody
from singer_zoo.errors import ConfigError

FRAME_MS = 5.0
F0_FLOOR = 71.0  # WORLD's default: a 1024-point envelope at 22050 Hz (60 Hz doubles it)
SUSTAIN = 0.8  # time-map rate is 1 +- SUSTAIN over a note: 0.2 mid-note, 1.8 at its edges
MIN_STRETCH = 1.3  # singing is at least this much slower than the speech it comes from


@dataclass(frozen=True)
class Analysis:
    """WORLD parameters of one recording: f0 (frames,), sp and ap (frames, fft // 2 + 1)."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    sr: int

    @property
    def n_frames(self) -> int:
        return len(self.f0)

    @property
    def median_f0(self) -> float:
        voiced = self.f0[self.f0 > 0]
        return float(np.median(voiced)) if len(voiced) else 150.0


def analyse(wave: np.ndarray, sr: int) -> Analysis:
    """WORLD analysis of a mono float waveform (ConfigError if it holds no voiced frame).

    f0 by DIO + StoneMask; where DIO finds under 5 % of frames voiced (it misses some clipped
    or DC-shifted recordings entirely) by Harvest, slower but more robust."""
    import pyworld

    x = np.ascontiguousarray(wave, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, frame_period=FRAME_MS, f0_floor=F0_FLOOR, f0_ceil=800.0)
    f0 = pyworld.stonemask(x, f0, t, sr)
    if np.mean(f0 > 0) < 0.05:
        f0, t = pyworld.harvest(x, sr, frame_period=FRAME_MS, f0_floor=F0_FLOOR, f0_ceil=800.0)
    if not np.any(f0 > 0):
        raise ConfigError("analyse: no voiced frame in the recording")
    return Analysis(f0, pyworld.cheaptrick(x, f0, t, sr), pyworld.d4c(x, f0, t, sr), sr)


def concatenate(parts: list[Analysis]) -> Analysis:
    """One Analysis of several recordings of the same voice, back to back."""
    if len({p.sr for p in parts}) != 1:
        raise ConfigError("concatenate: analyses at different sample rates")
    return Analysis(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("f0", "sp", "ap")),
                    parts[0].sr)


def warp_envelope(sp: np.ndarray, tract: float) -> np.ndarray:
    """sp (frames, bins) with every formant moved from f to f * tract (linear interpolation
    along frequency; the top bins repeat the last value when tract < 1)."""
    bins = sp.shape[1]
    src = np.minimum(np.arange(bins) / tract, bins - 1.0)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, bins - 1)
    frac = src - lo
    return sp[:, lo] * (1 - frac) + sp[:, hi] * frac


def time_map(sung: np.ndarray, note_phase: np.ndarray, n_in: int) -> np.ndarray:
    """Input frame position (float) of every output frame: slow mid-note, fast elsewhere,
    from 0 to n_in - 1."""
    rate = np.where(sung, 1.0 + SUSTAIN * np.cos(2 * np.pi * note_phase), 1.0 + SUSTAIN)
    pos = np.concatenate([[0.0], np.cumsum(rate[:-1])])
    return pos * (n_in - 1) / max(pos[-1], 1e-9)


def sing(an: Analysis, song: dict, seconds: float, rng, transpose: float = 0.0,
         tract: float = 1.0, vibrato_hz: float = 5.5, vibrato_cents: float = 40.0
         ) -> np.ndarray:
    """(samples,) float32 peak 0.9: the analysed voice singing `song` for `seconds`, in its
    own register (whole octaves, `melody.fit_register`) moved by `transpose` semitones.
    Speech longer than seconds / MIN_STRETCH is cut to a random run of that length."""
    if seconds <= 0:
        raise ConfigError(f"sing: seconds must be positive, got {seconds}")
    n_out = round(seconds * 1000 / FRAME_MS)
    n_in = min(an.n_frames, int(n_out / MIN_STRETCH))
    first = int(rng.integers(0, an.n_frames - n_in + 1))  # a random run of long speech
    an = Analysis(an.f0[first:first + n_in], an.sp[first:first + n_in],
                  an.ap[first:first + n_in], an.sr)
    shift = melody.fit_register(song["midi"], an.median_f0) + transpose
    f0, sung, phase = melody.pitch_track(song, n_out, FRAME_MS / 1000, rng, shift,
                                         vibrato_hz, vibrato_cents)
    pos = time_map(sung, phase, an.n_frames)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, an.n_frames - 1)
    w = (pos - lo)[:, None]
    sp = an.sp[lo] * (1 - w) + an.sp[hi] * w  # (n_out, bins)
    ap = an.ap[lo] * (1 - w) + an.ap[hi] * w
    voiced = (an.f0[lo] > 0) & (an.f0[hi] > 0)
    f0 = np.where(voiced, f0, 0.0)
    sp = np.where(sung[:, None], sp, sp * 1e-4)  # rests: -40 dB
    if tract != 1.0:
        sp = warp_envelope(sp, tract)
    return _synthesize(f0, sp, ap, an.sr, seconds)


def speak(an: Analysis, seconds: float, rng, transpose: float = 0.0,
          tract: float = 1.0) -> np.ndarray:
    """(samples,) float32 peak 0.9: a random run of `seconds` of the analysed speech at its own
    timing and intonation, moved by `transpose` semitones and `tract` (a pseudo-singer's
    speaking voice; speech shorter than `seconds` repeats)."""
    if seconds <= 0:
        raise ConfigError(f"speak: seconds must be positive, got {seconds}")
    n_out = round(seconds * 1000 / FRAME_MS)
    reps = -(-n_out // an.n_frames)  # ceil: enough copies to cover the performance
    first = int(rng.integers(0, reps * an.n_frames - n_out + 1))
    idx = np.arange(first, first + n_out) % an.n_frames
    f0 = an.f0[idx] * 2.0 ** (transpose / 12)
    sp = an.sp[idx] if tract == 1.0 else warp_envelope(an.sp[idx], tract)
    return _synthesize(f0, sp, an.ap[idx], an.sr, seconds)


def _synthesize(f0, sp, ap, sr: int, seconds: float) -> np.ndarray:
    """WORLD synthesis of (f0, sp, ap), cut to `seconds`, as float32 at peak 0.9."""
    import pyworld

    y = pyworld.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp),
                           np.ascontiguousarray(ap), sr, frame_period=FRAME_MS)
    y = y[:round(seconds * sr)]
    return (0.9 * y / (np.abs(y).max() + 1e-9)).astype(np.float32)
