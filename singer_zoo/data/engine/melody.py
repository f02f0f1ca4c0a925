"""Songs as pitch tracks: the melody a voice is made to sing (issue 17, point 1).

A song is the synthetic corpus's melody (`singer_zoo.data.synthetic.song_params`: key, scale,
notes with durations, rests, tempo), so the engine and the synthetic singers share one notion
of a song. `pitch_track` turns it into a per-frame f0 in Hz with the singer's vibrato and a
short portamento, and returns each frame's note position so that the singing transform can
sustain the middle of a note (`note_phase`).
"""
from __future__ import annotations

import numpy as np

from singer_zoo.data.synthetic import song_params


def song(seed: int, index: int) -> dict:
    """The melody of song `index` under `seed` (independent of how many songs are made)."""
    return song_params(seed, index)


def fit_register(song_midi: np.ndarray, voice_f0: float) -> int:
    """Whole octaves to add to a melody so that its median lies nearest the voice's median
    f0 (Hz): every singer of a song sings the same melody in their own register."""
    voice_midi = 69 + 12 * np.log2(voice_f0 / 440.0)
    return int(np.round((voice_midi - np.median(song_midi)) / 12.0)) * 12


def pitch_track(song_: dict, n_frames: int, frame_s: float, rng, transpose: float = 0.0,
                vibrato_hz: float = 5.5, vibrato_cents: float = 40.0,
                tempo_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0 Hz (n_frames,), sung (n_frames,) bool, note_phase (n_frames,) in [0, 1)).

    The melody loops from a random start; `sung` is False in rests and in the short breath
    between notes (f0 is 0 there); note_phase is how far into its note each frame is.
    """
    spb = 60.0 / (song_["tempo"] * tempo_scale)  # seconds per beat
    note_s = song_["beats"] * spb
    gap_s = np.where(song_["rest"], 0.5 * spb, 0.05)
    ends = np.cumsum(note_s + gap_s)
    period = ends[-1]
    t = np.arange(n_frames) * frame_s + rng.uniform(0, period)
    pos = np.mod(t, period)
    idx = np.minimum(np.searchsorted(ends, pos, side="right"), len(ends) - 1)
    start = ends[idx] - note_s[idx] - gap_s[idx]
    sung = pos < ends[idx] - gap_s[idx]
    note_phase = np.clip((pos - start) / note_s[idx], 0.0, 1.0 - 1e-9)
    midi = song_["midi"][idx] + transpose
    k = max(int(0.04 / frame_s), 1)  # 40 ms portamento
    midi = np.convolve(np.pad(midi, (k // 2, k - 1 - k // 2), mode="edge"),
                       np.ones(k) / k, mode="valid")
    midi = midi + vibrato_cents / 100 * np.sin(2 * np.pi * vibrato_hz * t
                                               + rng.uniform(0, 2 * np.pi))
    f0 = np.where(sung, 440.0 * 2 ** ((midi - 69) / 12), 0.0)
    return f0, sung, note_phase
