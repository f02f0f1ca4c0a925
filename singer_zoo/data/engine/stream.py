"""The singers x songs stream: voices -> pseudo-singers -> sung, augmented performances.

- A *voice* gives speech (or singing) of one real or synthetic person: `FileVoice` (recorded
  files of one speaker), `TextVoice` (a text-to-speech voice: any text, here each song's
  lyrics), `SyntheticVoice` (one of the package's synthetic singers, rendered directly).
- An *identity* is a voice plus a fixed pitch transposition, a vocal-tract-length factor and a
  speed factor (as WeSpeaker's speed perturbation), so one voice gives several pseudo-singers;
  the identity with no shift is the voice itself.
- `performances` yields one `Performance` per (identity, song) of a `Plan`, in order: the
  voice's speech for a song is analysed once (WORLD) and sung by each identity of that voice,
  then reverberated and noised (`augment.Augmenter`); with `Plan.spoken` = n, each identity of a
  recorded or text-to-speech voice also *speaks* n performances (its shifted speaking voice,
  `singing.speak`, song name `s<seed>-spoken<k>`), so that an embedder learns the voice
  spoken as well as sung. Nothing but the current voice's current
  analysis is held, and every random choice comes from `default_rng([seed, ...])` keyed by
  names, so a seed reproduces the stream and a performance does not depend on the others.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import resample_poly

from singer_zoo.data import synthetic
from singer_zoo.data.engine import melody, singing
from singer_zoo.data.engine.augment import Augmenter
from singer_zoo.errors import ConfigError

log = logging.getLogger(__name__)
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + list("aeiou")


def key(*parts) -> int:
    """A stable 32-bit integer of names (for seeding; Python's hash() is salted)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


SPOKEN_BASE = 100_000  # the k-th spoken performance reads the pieces of "song" SPOKEN_BASE + k


def song_name(seed: int, song: int) -> str:
    """Song `song` of `seed`: the seed is in the name, as it picks the melody."""
    return f"s{seed}-song{song:03d}"


def lyrics(seed: int, song: int, words: int = 12) -> str:
    """Nonsense lyrics of a song (two- or three-syllable words): the same for every singer."""
    rng = np.random.default_rng([seed, 2, song])
    return " ".join("".join(rng.choice(SYLLABLES, int(rng.integers(2, 4))))
                    for _ in range(words))


@dataclass(frozen=True)
class FileVoice:
    """A recorded speaker: `load(path) -> waveform at the plan's rate`; `durations` (seconds,
    aligned with `paths`) lets a song take a seeded random run of its recordings of about
    `seconds` of speech (at least one), without loading them."""

    name: str
    source: str
    paths: tuple
    durations: tuple
    load: Callable = field(compare=False)
    seconds: float = 5.0

    def __post_init__(self):
        if not self.paths or len(self.paths) != len(self.durations):
            raise ConfigError(f"FileVoice {self.name}: needs paths, with one duration each")

    def pieces(self, seed: int, song: int) -> list:
        """The paths sung in `song`."""
        rng = np.random.default_rng([seed, 3, key(self.name), song])
        out, total = [], 0.0
        for i in rng.permutation(len(self.paths)):
            out.append(self.paths[i])
            total += self.durations[i]
            if total >= self.seconds:
                break
        return out

    def audio(self, piece) -> np.ndarray:
        return self.load(piece)


@dataclass(frozen=True)
class TextVoice:
    """A text-to-speech voice: `speak(text) -> waveform at the plan's rate` says the song's
    lyrics (so every TTS singer of a song sings the same words)."""

    name: str
    source: str
    speak: Callable = field(compare=False)
    words: int = 12

    def pieces(self, seed: int, song: int) -> list:
        return [lyrics(seed, song, self.words)]

    def audio(self, piece) -> np.ndarray:
        return self.speak(piece)


@dataclass(frozen=True)
class SyntheticVoice:
    """Synthetic singer `index` of `synthetic.singer_params(corpus_seed, index)`."""

    name: str
    index: int
    corpus_seed: int = 0
    source: str = "synthetic"


@dataclass(frozen=True)
class Identity:
    """A (pseudo-)singer: a voice with a fixed transposition (semitones), vocal-tract factor
    and speed factor, and its own vibrato."""

    name: str
    voice: str
    transpose: float = 0.0
    tract: float = 1.0
    speed: float = 1.0
    vibrato_hz: float = 5.5
    vibrato_cents: float = 40.0


@dataclass(frozen=True)
class Performance:
    audio: np.ndarray  # (samples,) float32 at the plan's sample rate
    singer: str
    song: str
    source: str
    recording: str
    augmentation: str


@dataclass(frozen=True)
class Plan:
    """Who sings what: `songs[identity name]` = song indices (into the seed's songs), and
    `spoken` spoken performances by each identity of a recorded or text-to-speech voice."""

    voices: tuple
    identities: tuple
    songs: dict
    seed: int = 0
    seconds: float = 10.0
    sr: int = 22050
    spoken: int = 0

    def __post_init__(self):
        names = {v.name for v in self.voices}
        missing = sorted({i.voice for i in self.identities} - names)
        if missing:
            raise ConfigError(f"Plan: identities of unknown voices {missing}")
        if len({i.name for i in self.identities}) != len(self.identities):
            raise ConfigError("Plan: identity names must be unique")
        if self.seconds <= 0:
            raise ConfigError("Plan: seconds must be positive")
        if self.spoken < 0:
            raise ConfigError(f"Plan: spoken must be >= 0, got {self.spoken}")

    def __len__(self) -> int:
        synthetic_voices = {v.name for v in self.voices if isinstance(v, SyntheticVoice)}
        return sum(len(self.songs[i.name]) + (0 if i.voice in synthetic_voices else self.spoken)
                   for i in self.identities)


def pseudo_singers(voice: str, n: int, rng, prefix: str | None = None) -> list[Identity]:
    """The voice itself plus n - 1 shifted pseudo-singers: tract in [0.85, 1.18] at least
    0.06 away from 1, transposition within +-4 semitones, speed 0.9 / 1.0 / 1.1."""
    out = [Identity(voice, voice, vibrato_hz=rng.uniform(4.5, 7.0),
                    vibrato_cents=rng.uniform(15, 80))]
    for k in range(1, n):
        tract = rng.choice([rng.uniform(0.85, 0.94), rng.uniform(1.06, 1.18)])
        out.append(Identity(f"{prefix or voice}~p{k}", voice, rng.uniform(-4, 4), tract,
                            float(rng.choice([0.9, 1.0, 1.1])), rng.uniform(4.5, 7.0),
                            rng.uniform(15, 80)))
    return out


def _speed(y: np.ndarray, speed: float) -> np.ndarray:
    """Speed perturbation (pitch, formants and tempo together), as sox `speed`."""
    if speed == 1.0:
        return y
    up, down = 20, round(20 * speed)
    return resample_poly(y, up, down).astype(np.float32)


def _synthetic(voice: SyntheticVoice, ident: Identity, song: dict, plan: Plan, rng):
    params = dict(synthetic.singer_params(voice.corpus_seed, voice.index))
    params["tract"] *= ident.tract
    params["octave"] += ident.transpose
    params["vib_rate"], params["vib_cents"] = ident.vibrato_hz, ident.vibrato_cents
    return synthetic.render(params, song, plan.seconds * ident.speed, plan.sr, rng)


def _analyse(voice, piece, sr: int):
    """The WORLD analysis of one recording / text of a voice, or None (said) when it has no
    voiced frame: an unvoiced clip (a whisper, a click) is left out of the songs."""
    try:
        return singing.analyse(voice.audio(piece), sr)
    except ConfigError as e:
        log.warning("%s: %s left out (%s)", voice.name, piece, e)
        return None


def _voice_analysis(voice, plan: Plan, song: int, cache: dict):
    """One analysis of the pieces `voice` says for `song` (each recording / text analysed once
    per voice: `cache`), or None (said) when none of them is voiced."""
    parts = []
    for piece in voice.pieces(plan.seed, song):
        if piece not in cache:
            cache[piece] = _analyse(voice, piece, plan.sr)
        parts.append(cache[piece])
    parts = [p for p in parts if p is not None]
    if not parts:
        log.warning("%s: nothing voiced for song %d; skipped", voice.name, song)
        return None
    return singing.concatenate(parts)


def _performance(y, ident: Identity, voice, song: str, rng, augmenter) -> Performance:
    y = _speed(y, ident.speed)
    aug = "clean"
    if augmenter is not None:
        y, aug = augmenter(y, rng)
    return Performance(y, ident.name, song, voice.source, f"{ident.name}|{song}", aug)


def performances(plan: Plan, augmenter: Augmenter | None = None) -> Iterator[Performance]:
    """Every (identity, song) of the plan, then every identity's spoken performances, voice by
    voice; see the module docstring."""
    by_voice = {v.name: [i for i in plan.identities if i.voice == v.name] for v in plan.voices}
    for voice in plan.voices:
        idents = by_voice[voice.name]
        synthetic_voice = isinstance(voice, SyntheticVoice)
        cache = {}  # this voice's analyses, by recording path or text
        for s in sorted({s for i in idents for s in plan.songs[i.name]}):
            song = melody.song(plan.seed, s)
            analysis = None if synthetic_voice else _voice_analysis(voice, plan, s, cache)
            if analysis is None and not synthetic_voice:
                continue
            for ident in idents:
                if s not in plan.songs[ident.name]:
                    continue
                rng = np.random.default_rng([plan.seed, 4, key(ident.name), s])
                if analysis is None:
                    y = _synthetic(voice, ident, song, plan, rng)
                else:
                    y = singing.sing(analysis, song, plan.seconds * ident.speed, rng,
                                     ident.transpose, ident.tract, ident.vibrato_hz,
                                     ident.vibrato_cents)
                yield _performance(y, ident, voice, song_name(plan.seed, s), rng, augmenter)
        for k in range(0 if synthetic_voice else plan.spoken):
            analysis = _voice_analysis(voice, plan, SPOKEN_BASE + k, cache)
            if analysis is None:
                continue
            for ident in idents:
                rng = np.random.default_rng([plan.seed, 5, key(ident.name), k])
                y = singing.speak(analysis, plan.seconds * ident.speed, rng, ident.transpose,
                                  ident.tract)
                yield _performance(y, ident, voice, f"s{plan.seed}-spoken{k}", rng, augmenter)
