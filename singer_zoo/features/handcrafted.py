"""The paper's baseline features (section 3.4, after Casey et al. 2008), with librosa.

For each ~6 s clip: the mean and the standard deviation over the clip's frames of
chroma (12), MFCC (20), spectral centroid, spectral roll-off and spectral flux, i.e.
D = 2 x 35 = 70 values, in the order of `FEATURE_NAMES`.

Spectral flux is librosa's onset strength: the mean positive frame-to-frame difference of
the log-power Mel spectrogram (`librosa.onset.onset_strength`).

All frame features come from one STFT of the whole recording (n_fft 2048, hop 512); clips are
consecutive, non-overlapping runs of frames; a tail shorter than half a clip is dropped unless
it is the only clip.
"""
from __future__ import annotations

import librosa
import numpy as np

from singer_zoo.audio import check_waveform

N_FFT, HOP, N_MFCC = 2048, 512, 20
_BASE = ([f"chroma{i}" for i in range(12)] + [f"mfcc{i}" for i in range(N_MFCC)]
         + ["centroid", "rolloff", "flux"])
FEATURE_NAMES = tuple([f"{n}_mean" for n in _BASE] + [f"{n}_std" for n in _BASE])


def frame_features(y: np.ndarray, sr: int) -> np.ndarray:
    """(frames, 35): chroma, MFCC, centroid, roll-off and flux of every STFT frame."""
    y = check_waveform(y)
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))  # (1 + n_fft/2, frames)
    power = mag ** 2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))
    rows = [
        librosa.feature.chroma_stft(S=power, sr=sr),  # (12, frames)
        librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC),  # (20, frames)
        librosa.feature.spectral_centroid(S=mag, sr=sr),  # (1, frames)
        librosa.feature.spectral_rolloff(S=mag, sr=sr),  # (1, frames)
        librosa.onset.onset_strength(S=mel_db, sr=sr)[None, :],  # (1, frames)
    ]
    return np.concatenate(rows, axis=0).T.astype(np.float32)  # (frames, 35)


def clip_statistics(frames: np.ndarray, sr: int, clip_seconds: float = 6.0) -> np.ndarray:
    """(n_clips, 2 * columns): per-clip mean then std of frame features (frames, columns)."""
    per_clip = max(int(round(clip_seconds * sr / HOP)), 1)
    n = len(frames) // per_clip
    if len(frames) - n * per_clip >= per_clip / 2 or n == 0:
        n += 1
    clips = [frames[i * per_clip:(i + 1) * per_clip] for i in range(n)]
    return np.stack([np.concatenate([c.mean(0), c.std(0)]) for c in clips]).astype(np.float32)


def handcrafted_features(y: np.ndarray, sr: int, clip_seconds: float = 6.0) -> np.ndarray:
    """The paper's baseline features of a recording, per clip (module doc).

    Args:
        y: 1-D float waveform.
        sr: its sample rate.
        clip_seconds: clip length; a tail shorter than half a clip is dropped unless it is
            the only clip.

    Returns:
        (n_clips, 70) float32: per clip, the mean then the standard deviation of the 35
        frame features (names in `FEATURE_NAMES`).

    Example:
        >>> import numpy as np
        >>> y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * 22050) / 22050)
        >>> handcrafted_features(y.astype(np.float32), 22050).shape  # 6 s + a 4-s tail
        (2, 70)
    """
    return clip_statistics(frame_features(y, sr), sr, clip_seconds)


def recording_features(y: np.ndarray, sr: int, clip_seconds: float = 6.0) -> np.ndarray:
    """(70,): the mean of `handcrafted_features` over a recording's clips."""
    return handcrafted_features(y, sr, clip_seconds).mean(axis=0)
