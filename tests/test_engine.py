"""The training-data engine: singing from speech, pseudo-singers, augmentation, the stream.

The input voice is the package's synthetic singer (no Debian voices or TTS in CI).
"""
from __future__ import annotations

import librosa
import numpy as np
import pytest

from singer_zoo.data import synthetic
from singer_zoo.data.engine import (
    AugmentConfig,
    Augmenter,
    FileVoice,
    Identity,
    Plan,
    SyntheticVoice,
    TextVoice,
    lyrics,
    melody,
    performances,
    pseudo_singers,
    singing,
)
from singer_zoo.errors import ConfigError

SR = 22050


def voice_audio(index: int, seconds: float = 3.0) -> np.ndarray:
    """A synthetic singer's recording, standing in for a recorded speaker."""
    return synthetic.render(synthetic.singer_params(5, index), synthetic.song_params(5, index),
                            seconds, SR, np.random.default_rng(index))


@pytest.fixture(scope="module")
def analysis():
    return singing.analyse(voice_audio(0), SR)


def yin_midi(y):
    f0 = librosa.yin(y, fmin=60, fmax=900, sr=SR, frame_length=2048, hop_length=256)
    rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=256)[0][:len(f0)]
    return 69 + 12 * np.log2(f0[rms > 0.3 * rms.max()] / 440)


def on_notes(midi, notes):
    """Share of pitch estimates within 50 cents of one of `notes` (midi numbers)."""
    return float(np.mean(np.min(np.abs(midi[:, None] - notes[None, :]), axis=1) < 0.5))


def test_sing_follows_the_melody_and_transposes(analysis):
    song = melody.song(0, 3)
    shift = melody.fit_register(song["midi"], analysis.median_f0)
    y = singing.sing(analysis, song, 6.0, np.random.default_rng(1), vibrato_cents=0.0)
    assert y.dtype == np.float32 and len(y) == 6 * SR
    midi = yin_midi(y)
    notes = np.unique(song["midi"]) + shift
    assert on_notes(midi, notes) > 0.7  # sings this song's notes, in tune:
    assert on_notes(midi, notes + 1) < 0.4  # not the same melody a semitone up
    up = singing.sing(analysis, song, 6.0, np.random.default_rng(1), transpose=5.0,
                      vibrato_cents=0.0)
    assert on_notes(yin_midi(up), notes + 5) > 0.7


def test_vocal_tract_factor_moves_the_spectrum_up(analysis):
    song = melody.song(0, 1)

    def centroid(tract):
        y = singing.sing(analysis, song, 4.0, np.random.default_rng(2), tract=tract)
        spec = np.abs(librosa.stft(y, n_fft=2048)).mean(1)
        f = librosa.fft_frequencies(sr=SR, n_fft=2048)
        keep = f < 5000
        return (f[keep] * spec[keep]).sum() / spec[keep].sum()

    assert centroid(1.2) / centroid(1.0) > 1.08
    assert centroid(0.85) / centroid(1.0) < 0.95


def test_warp_envelope_moves_a_peak_by_the_factor():
    sp = np.zeros((1, 513))
    sp[0, 100] = 1.0
    assert np.argmax(singing.warp_envelope(sp, 1.2)[0]) == 120


def test_augmenter_reproducible_and_reaches_its_snr():
    aug = Augmenter(AugmentConfig(reverb_p=1.0, noise_p=1.0, snr_db=(10.0, 10.0), n_rooms=2),
                    SR, seed=0)
    y = voice_audio(1, 2.0)
    a, what = aug(y, np.random.default_rng(3))
    b, _ = aug(y, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert what.startswith("room") and "noise10dB" in what
    assert np.abs(a).max() == pytest.approx(0.9, abs=1e-3)
    noise_only = Augmenter(AugmentConfig(reverb_p=0.0, noise_p=1.0, snr_db=(10.0, 10.0)),
                           SR, seed=0)
    z, _ = noise_only(y, np.random.default_rng(4))
    clean = y * (np.dot(z, y) / np.dot(y, y))  # the signal's share of z
    snr = 10 * np.log10((clean ** 2).sum() / ((z - clean) ** 2).sum())
    assert snr == pytest.approx(10.0, abs=1.0)
    with pytest.raises(ConfigError, match="reverb_p"):
        AugmentConfig(reverb_p=1.5)


def small_plan(extra_identity: bool = False, seed: int = 0) -> Plan:
    recordings = {f"take{i}": voice_audio(2 + i, 2.0) for i in range(3)}
    file_voice = FileVoice("spk", "test", tuple(recordings), (2.0, 2.0, 2.0),
                           recordings.__getitem__, seconds=3.0)
    said = []
    text_voice = TextVoice("tts", "tts", lambda text: said.append(text) or voice_audio(6, 2.5))
    idents = [*pseudo_singers("spk", 2, np.random.default_rng(0)), Identity("tts", "tts"),
              Identity("syn", "syn")]
    if extra_identity:
        idents.insert(1, Identity("spk~extra", "spk", 2.0, 1.1, 1.1))
    songs = {i.name: [0, 1] for i in idents}
    return Plan((file_voice, text_voice, SyntheticVoice("syn", 3)), tuple(idents), songs,
                seed=seed, seconds=3.0)


def test_stream_is_deterministic_and_each_performance_independent():
    aug = Augmenter(AugmentConfig(n_rooms=2), SR, seed=0)
    first = list(performances(small_plan(), aug))
    again = {p.recording: p for p in performances(small_plan(extra_identity=True), aug)}
    assert len(first) == 8 and len(again) == 10
    assert {p.singer for p in first} == {"spk", "spk~p1", "tts", "syn"}
    assert {p.song for p in first} == {"s0-song000", "s0-song001"}
    for p in first:  # the same performance whatever else the plan holds
        assert len(p.audio) == 3 * SR and p.audio.dtype == np.float32
        np.testing.assert_array_equal(p.audio, again[p.recording].audio)
    other_seed = {p.recording: p for p in performances(small_plan(seed=1), aug)}
    assert not np.array_equal(first[0].audio, other_seed[first[0].recording.replace(
        "s0-", "s1-")].audio)


def test_pseudo_singers_and_lyrics():
    ids = pseudo_singers("v", 4, np.random.default_rng(0))
    assert ids[0].tract == 1.0 and ids[0].transpose == 0.0 and len({i.name for i in ids}) == 4
    assert all(abs(i.tract - 1) >= 0.06 and i.speed in (0.9, 1.0, 1.1) for i in ids[1:])
    assert lyrics(0, 3) == lyrics(0, 3) != lyrics(0, 4)


def test_plan_rejects_unknown_voices():
    with pytest.raises(ConfigError, match="unknown voices"):
        Plan((SyntheticVoice("a", 0),), (Identity("x", "b"),), {"x": [0]})


def test_unvoiced_recordings_are_left_out(caplog):
    pieces = {"good": voice_audio(7, 2.0), "silent": np.zeros(SR, np.float32)}
    mixed = FileVoice("mixed", "t", ("good", "silent"), (1.0, 1.0), pieces.__getitem__,
                      seconds=5.0)  # both pieces sung in every song
    mute = FileVoice("mute", "t", ("silent",), (1.0,), pieces.__getitem__)
    plan = Plan((mixed, mute), (Identity("mixed", "mixed"), Identity("mute", "mute")),
                {"mixed": [0], "mute": [0]}, seconds=2.0)
    out = list(performances(plan))
    assert [p.singer for p in out] == ["mixed"]
    assert "mute: nothing voiced" in caplog.text and "silent left out" in caplog.text


def test_speak_keeps_the_intonation_moved_by_the_transposition(analysis):
    rng = np.random.default_rng(0)
    plain = singing.speak(analysis, 4.0, np.random.default_rng(1))  # longer than the analysis
    up = singing.speak(analysis, 4.0, np.random.default_rng(1), transpose=5.0)
    assert len(plain) == len(up) == 4 * SR and np.abs(plain).max() == pytest.approx(0.9, abs=1e-3)
    shift = np.median(yin_midi(up)) - np.median(yin_midi(plain))
    assert shift == pytest.approx(5.0, abs=0.5)
    with pytest.raises(ConfigError, match="seconds"):
        singing.speak(analysis, 0.0, rng)


def test_plan_spoken_adds_spoken_performances_of_recorded_and_tts_voices():
    base = small_plan()
    plan = Plan(base.voices, base.identities, base.songs, seed=0, seconds=3.0, spoken=2)
    out = list(performances(plan))
    spoken = [p for p in out if "spoken" in p.song]
    assert len(out) == len(plan) == 8 + 2 * 3  # spk, spk~p1 and tts speak; syn does not
    assert {p.song for p in spoken} == {"s0-spoken0", "s0-spoken1"}
    assert {p.singer for p in spoken} == {"spk", "spk~p1", "tts"}
    sung = {p.recording: p.audio for p in performances(base)}
    for p in out:  # sung performances do not change when spoken ones are added
        assert len(p.audio) == 3 * SR
        if p.recording in sung:
            np.testing.assert_array_equal(p.audio, sung[p.recording])
    again = {p.recording: p.audio for p in performances(plan)}
    for p in spoken:
        np.testing.assert_array_equal(p.audio, again[p.recording])
    with pytest.raises(ConfigError, match="spoken"):
        Plan(base.voices, base.identities, base.songs, spoken=-1)
