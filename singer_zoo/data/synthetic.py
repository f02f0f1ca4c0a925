"""A deterministic synthetic singing corpus shaped like DAMP-balanced (docs/datasets.md).

Every singer sings every song once (singer x song is balanced). A voice is a harmonic source
(additive synthesis, vectorised over harmonics) through a formant filter, plus breath noise:

- a singer is a timbre and a vibrato: vocal-tract length (formant scale), formant bandwidth,
  harmonic richness (spectral tilt), a "singer's formant" near 3 kHz, breathiness, vibrato
  rate and depth, and a register (every other singer sings an octave lower);
- a song is a melody: key, major/minor scale, tempo, a looped sequence of notes with
  durations, rests and the vowel sung on each note;
- a recording varies slightly: gain, detuning (+-30 cents), tempo (+-4 %), start point in the
  melody, vibrato phase and background-noise level.

The melody (pitch classes, vowels, rhythm) is shared by all singers of a song, so handcrafted
features find songs easier than singers: the paper's "song effect" (section 3.5).
Randomness comes from `numpy.random.default_rng([seed, kind, index...])`, so a singer's or a
song's parameters do not depend on how many singers or songs are generated.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from singer_zoo.data.manifest import Manifest, Recording
from singer_zoo.errors import ConfigError

FORMATS = ("wav", "flac", "ogg", "m4a")
# (F1, F2, F3) in Hz of the vowels a, e, i, o, u (adult male averages); F4 is 3500 Hz.
VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                   [570, 840, 2410], [300, 870, 2240]], dtype=np.float64)
CTRL = 64  # control-rate hop in samples (pitch, loudness, formants)
N_HARMONICS = 48
MAJOR, MINOR = np.array([0, 2, 4, 5, 7, 9, 11]), np.array([0, 2, 3, 5, 7, 8, 10])


def singer_params(seed: int, i: int) -> dict:
    rng = np.random.default_rng([seed, 0, i])
    return {"tract": rng.uniform(0.88, 1.18), "bandwidth": rng.uniform(0.7, 1.6),
            "tilt": rng.uniform(0.6, 1.8), "ring": rng.uniform(0.0, 1.2),
            "breath": rng.uniform(0.01, 0.2), "vib_rate": rng.uniform(4.5, 7.0),
            "vib_cents": rng.uniform(15, 90), "octave": -12 * (i % 2)}


def song_params(seed: int, j: int) -> dict:
    rng = np.random.default_rng([seed, 1, j])
    n = int(rng.integers(12, 20))
    degrees = np.clip(np.cumsum(rng.integers(-2, 3, n)) + int(rng.integers(0, 5)), -3, 10)
    scale = MAJOR if rng.random() < 0.5 else MINOR
    midi = 57 + int(rng.integers(0, 12)) + 12 * (degrees // 7) + scale[degrees % 7]
    beats = rng.choice([0.5, 1.0, 1.0, 1.5, 2.0], n)
    rest = rng.random(n) < 0.2  # a short rest after this note
    return {"midi": midi.astype(np.float64), "beats": beats, "rest": rest,
            "vowel": rng.integers(0, len(VOWELS), n), "tempo": rng.uniform(70, 140)}


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Moving average over n control frames (n >= 1), same length, edges held."""
    if n <= 1:
        return x
    pad = np.pad(x, [(n // 2, n - 1 - n // 2)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), pad]), axis=0)
    return (c[n:] - c[:-n]) / n


def _control(singer: dict, song: dict, rng, n_ctrl: int, sr: int):
    """Per control frame: pitch (midi), loudness (0..1) and formants (n_ctrl, 4)."""
    spb = 60.0 / (song["tempo"] * rng.uniform(0.96, 1.04))  # seconds per beat
    note_s = song["beats"] * spb
    gap_s = np.where(song["rest"], 0.5 * spb, 0.06)  # a rest, or a breath between notes
    period = (note_s + gap_s).sum()
    t = np.arange(n_ctrl) * CTRL / sr + rng.uniform(0, period)  # (n_ctrl,) seconds
    ends = np.cumsum(note_s + gap_s)
    pos = np.mod(t, period)
    idx = np.minimum(np.searchsorted(ends, pos, side="right"), len(ends) - 1)
    voiced = pos < ends[idx] - gap_s[idx]
    midi = song["midi"][idx] + singer["octave"] + rng.uniform(-0.3, 0.3)
    midi = _smooth(midi, int(0.04 * sr / CTRL))  # portamento
    midi = midi + singer["vib_cents"] / 100 * np.sin(
        2 * np.pi * singer["vib_rate"] * t + rng.uniform(0, 2 * np.pi))
    loud = _smooth(voiced.astype(np.float64) * rng.uniform(0.7, 1.0, len(ends))[idx],
                   int(0.03 * sr / CTRL))
    f123 = VOWELS[song["vowel"][idx]]
    formants = np.concatenate([f123, np.full((n_ctrl, 1), 3500.0)], axis=1)
    formants = _smooth(formants, int(0.05 * sr / CTRL)) * singer["tract"]  # (n_ctrl, 4)
    return midi, loud, formants


def _envelope(freq: np.ndarray, formants: np.ndarray, singer: dict) -> np.ndarray:
    """Formant filter gain at `freq` (n, K) for per-frame formants (n, 4): Lorentzian peaks
    plus the singer's formant near 3 kHz."""
    bw = np.array([80.0, 100.0, 140.0, 200.0]) * singer["bandwidth"]
    g = np.array([1.0, 0.6, 0.3, 0.15])
    d = (freq[:, :, None] - formants[:, None, :]) / (bw / 2)  # (n, K, 4)
    env = (g / (1 + d ** 2)).sum(-1)
    ring = singer["ring"] / (1 + ((freq - 3000 * singer["tract"]) / 250) ** 2)
    return env + ring + 0.01


def render(singer: dict, song: dict, seconds: float, sr: int, rng) -> np.ndarray:
    """(samples,) float32 in [-1, 1]: one performance of `song` by `singer`."""
    n = int(round(seconds * sr))
    n_ctrl = n // CTRL + 2
    midi, loud, formants = _control(singer, song, rng, n_ctrl, sr)
    f0_ctrl = 440.0 * 2 ** ((midi - 69) / 12)  # (n_ctrl,)
    k = np.arange(1, N_HARMONICS + 1, dtype=np.float64)
    freq = f0_ctrl[:, None] * k  # (n_ctrl, K)
    amp = _envelope(freq, formants, singer) * k ** -singer["tilt"] * loud[:, None]
    amp[freq > 0.45 * sr] = 0.0  # no aliasing
    audible = amp.max(0) > 1e-4 * amp.max()  # skip harmonics too weak to matter
    amp, k = amp[:, audible].astype(np.float32), k[audible].astype(np.float32)
    pos = np.arange(n) / CTRL  # sample -> control frame position
    f0 = np.interp(pos, np.arange(n_ctrl), f0_ctrl)
    phase = np.mod(2 * np.pi * np.cumsum(f0) / sr, 2 * np.pi).astype(np.float32)
    y = np.zeros(n)
    for s in range(0, n, 1 << 16):  # chunks bound memory for long recordings
        sl = slice(s, min(s + (1 << 16), n))
        lo = pos[sl].astype(np.int64)
        frac = (pos[sl] - lo).astype(np.float32)[:, None]
        a = amp[lo] * (1 - frac) + amp[lo + 1] * frac  # (chunk, K)
        y[sl] = (a * np.sin(phase[sl, None] * k)).sum(-1)
    # breath: white noise through the singer's average formant filter, following loudness
    spec = np.fft.rfft(rng.standard_normal(n))
    fgrid = np.fft.rfftfreq(n, 1 / sr)[:, None]
    spec *= _envelope(fgrid, formants.mean(0, keepdims=True), singer)[:, 0]
    breath = np.fft.irfft(spec, n) * np.interp(pos, np.arange(n_ctrl), loud)
    y = y / (np.abs(y).max() + 1e-9) + singer["breath"] * breath / (breath.std() + 1e-9) * 0.3
    y += 10 ** (rng.uniform(-55, -45) / 20) * rng.standard_normal(n)
    y *= 10 ** (rng.uniform(-6, 0) / 20) * 0.8 / (np.abs(y).max() + 1e-9)
    return y.astype(np.float32)


def write_recording(path, y: np.ndarray, sr: int, fmt: str) -> None:
    """Write float32 samples, (n,) mono or (n, channels), as `fmt` (one of `FORMATS`): 16-bit
    wav/flac, Vorbis ogg, or AAC in .m4a (PyAV; mono or stereo)."""
    if fmt == "m4a":
        import av

        planes = np.ascontiguousarray(y.reshape(len(y), -1).T)  # (channels, n)
        layout = {1: "mono", 2: "stereo"}[len(planes)]
        with av.open(str(path), "w", format="ipod") as out:
            stream = out.add_stream("aac", rate=sr, layout=layout)
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    else:
        import soundfile as sf

        subtype = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS"}[fmt]
        sf.write(path, y, sr, subtype=subtype, format=fmt.upper())


def generate_corpus(out_dir, n_singers: int = 8, n_songs: int = 4, seconds: float = 10.0,
                    seed: int = 0, sr: int = 22050, fmt: str = "wav") -> Path:
    """Write `n_singers x n_songs` recordings under out_dir/audio/ and out_dir/manifest.csv
    (columns path, singer, song, recording, split); return the manifest's path.

    Singers are "singer00"..., songs "song00"...; the same arguments give byte-identical
    wav, flac and m4a files (ogg files differ: libsndfile picks a random Ogg stream serial number).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"generate_corpus: fmt={fmt!r} is not one of {', '.join(FORMATS)}")
    if n_singers < 1 or n_songs < 1 or seconds <= 0:
        raise ConfigError("generate_corpus: n_singers and n_songs must be >= 1, seconds > 0")
    out = Path(out_dir).resolve()
    (out / "audio").mkdir(parents=True, exist_ok=True)
    songs = [song_params(seed, j) for j in range(n_songs)]
    records = []
    for i in range(n_singers):
        singer = singer_params(seed, i)
        for j, song in enumerate(songs):
            rec = f"singer{i:02d}_song{j:02d}"
            path = out / "audio" / f"{rec}.{fmt}"
            y = render(singer, song, seconds, sr, np.random.default_rng([seed, 2, i, j]))
            write_recording(path, y, sr, fmt)
            records.append(Recording(str(path), f"singer{i:02d}", f"song{j:02d}", rec))
    return Manifest(records, out).write(out / "manifest.csv")
