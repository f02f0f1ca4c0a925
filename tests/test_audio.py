"""singer_zoo.audio: formats, rates, channels, resampling, streaming and the error policy."""
from __future__ import annotations

import logging

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from singer_zoo import audio
from singer_zoo.batch import run_batch
from singer_zoo.errors import (AudioFileNotFound, ConfigError, CorruptAudioFile, EmptyAudioFile,
                               InvalidSamplesError, SilentAudioError)

SR = 22050


def peak_hz(y: np.ndarray, sr: int = SR) -> float:
    """Frequency of the largest FFT bin of a Hann-windowed signal."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[spec.argmax()])


# (extension, soundfile kwargs, input rate, channels, tolerance on duration in seconds)
LOSSLESS = 1.5 / SR
CASES = [
    ("wav", dict(subtype="PCM_U8"), 8000, 1, LOSSLESS),
    ("wav", dict(subtype="PCM_16"), 11025, 2, LOSSLESS),
    ("wav", dict(subtype="PCM_24"), 16000, 6, LOSSLESS),
    ("wav", dict(subtype="PCM_32"), 22050, 1, LOSSLESS),
    ("wav", dict(subtype="FLOAT"), 44100, 2, LOSSLESS),
    ("wav", dict(subtype="DOUBLE"), 48000, 1, LOSSLESS),
    ("wav", dict(subtype="PCM_16"), 96000, 2, LOSSLESS),
    ("flac", dict(subtype="PCM_24"), 96000, 6, LOSSLESS),
    ("flac", dict(subtype="PCM_16"), 32000, 1, LOSSLESS),
    ("ogg", dict(subtype="VORBIS"), 44100, 2, 0.03),
    ("opus", dict(format="OGG", subtype="OPUS"), 48000, 2, 0.03),
    ("mp3", dict(format="MP3", subtype="MPEG_LAYER_III"), 44100, 2, 0.06),
    ("mp3", dict(format="MP3", subtype="MPEG_LAYER_III"), 16000, 1, 0.06),
]


@pytest.mark.parametrize("ext,kwargs,sr,channels,tol", CASES,
                         ids=[f"{c[0]}-{c[1]['subtype']}-{c[2]}-{c[3]}ch" for c in CASES])
def test_formats_rates_channels(write_audio, tone, ext, kwargs, sr, channels, tol):
    path = write_audio(f"x.{ext}", tone(seconds=1.0, sr=sr, channels=channels), sr, **kwargs)
    info = audio.audio_info(path)
    assert (info.sample_rate, info.channels) == (sr, channels)
    y = audio.load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / SR - 1.0) <= tol
    assert abs(peak_hz(y) - 440) <= 2  # the tone stays 440 Hz through decode + resample


# raw ADTS has no length field: ffmpeg estimates the duration from the bit rate
@pytest.mark.parametrize("name,fmt,info_tol", [("x.m4a", "mp4", 0.05), ("x.mp4", "mp4", 0.05),
                                               ("x.aac", "adts", 0.1)])
def test_pyav_aac(write_av, tone, name, fmt, info_tol):
    path = write_av(name, tone(seconds=2.0, sr=44100, channels=2), 44100, format=fmt)
    info = audio.audio_info(path)
    assert (info.sample_rate, info.channels, info.codec) == (44100, 2, "aac")
    assert abs(info.duration - 2.0) < info_tol
    y = audio.load_audio(path, sr=16000)
    # AAC adds up to ~2 frames of priming/padding (2 x 1024 samples at 44.1 kHz)
    assert 2.0 <= len(y) / 16000 <= 2.0 + 2 * 1024 / 44100 + 1e-3
    assert abs(peak_hz(y, 16000) - 440) <= 2
    # mono downmix of the (x, x/2) channels: amplitude 0.5 * 0.75, AAC is near-transparent here
    assert abs(np.abs(y[4000:-4000]).max() - 0.375) < 0.02


def test_info_is_header_only(write_audio, tone):
    path = write_audio("x.flac", tone(seconds=2.0, sr=16000), 16000)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # the header survives, the frames do not
    info = audio.audio_info(path)
    assert (info.frames, info.duration, info.format, info.codec) == (32000, 2.0, "FLAC", "PCM_16")
    with pytest.raises(CorruptAudioFile, match="lost sync"):
        audio.load_audio(path)


def test_downmix_is_channel_mean(write_audio):
    rng = np.random.default_rng(0)
    data = rng.uniform(-0.9, 0.9, (SR, 6)).astype(np.float32)
    path = write_audio("six.wav", data, SR, subtype="FLOAT")
    np.testing.assert_allclose(audio.load_audio(path), data.mean(axis=1), atol=1e-7)


def test_downmix_before_silence_check(write_audio, tone):
    x = tone(sr=SR)[:, 0]
    path = write_audio("phase.wav", np.stack([x, -x], axis=1), SR, subtype="FLOAT")
    with pytest.raises(SilentAudioError, match="phase.wav"):
        audio.load_audio(path)


def test_resampler_matches_soxr_hq_and_rejects_aliases(write_audio):
    t = np.arange(3 * 44100) / 44100
    x = (0.4 * np.sin(2 * np.pi * 9000 * t) + 0.4 * np.sin(2 * np.pi * 15000 * t))
    path = write_audio("alias.wav", x.astype(np.float32), 44100, subtype="FLOAT")
    y = audio.load_audio(path)
    ref = soxr.resample(x.astype(np.float32), 44100, SR, quality="HQ")
    np.testing.assert_allclose(y, ref, atol=1e-6)
    mid = y[SR:-SR]
    spec = np.abs(np.fft.rfft(mid * np.hanning(len(mid))))
    freqs = np.fft.rfftfreq(len(mid), 1 / SR)
    alias = spec[np.abs(freqs - (44100 - 15000 - SR)) < 5].max()  # 15 kHz folds to 7050 Hz
    assert peak_hz(mid) == pytest.approx(9000, abs=2)
    assert 20 * np.log10(alias / spec.max()) < -100


@pytest.mark.parametrize("block_seconds", [0.37, 2.0])
@pytest.mark.parametrize("kind", ["flac", "m4a"])
def test_stream_concatenation_equals_load(write_audio, write_av, tone, kind, block_seconds):
    data = tone(seconds=5.0, sr=44100, channels=2)
    data[:, 0] += 0.1 * np.random.default_rng(1).standard_normal(len(data)).astype(np.float32)
    path = (write_audio("x.flac", data.clip(-1, 1), 44100) if kind == "flac"
            else write_av("x.m4a", data.clip(-1, 1), 44100, format="mp4"))
    blocks = list(audio.stream_audio(path, block_seconds=block_seconds))
    assert len(blocks) > 2 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    # a block is one decoded chunk (+ one AAC frame) resampled; soxr's internal chunking
    # moves a few hundred samples between neighbouring blocks
    assert max(map(len, blocks)) <= 1.1 * (block_seconds + 1024 / 44100) * SR
    np.testing.assert_array_equal(np.concatenate(blocks), audio.load_audio(path))


def test_native_rate_is_passed_through(tone_wav):
    y = audio.load_audio(tone_wav)
    ref = sf.read(tone_wav, dtype="float32")[0]
    np.testing.assert_array_equal(y, ref)


# ---- bad input -----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(AudioFileNotFound, match="nope.wav: no such file") as err:
        audio.load_audio(tmp_path / "nope.wav")
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(AudioFileNotFound):
        audio.audio_info(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(CorruptAudioFile, match="is a directory"):
        audio.load_audio(tmp_path)


def test_zero_bytes(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(EmptyAudioFile, match=r"empty.wav: the file is empty \(0 bytes\)"):
        audio.load_audio(tmp_path / "empty.wav")


def test_header_without_samples(write_audio):
    path = write_audio("nodata.wav", np.zeros((0, 1), np.float32), SR)
    with pytest.raises(EmptyAudioFile, match="decodes to zero samples"):
        audio.load_audio(path)


@pytest.mark.parametrize("name", ["notes.wav", "notes.mp3", "notes.m4a"])
def test_text_file_renamed(tmp_path, name):
    (tmp_path / name).write_text("these are my singing notes, not audio\n" * 50)
    with pytest.raises(CorruptAudioFile, match=f"{name}: not a readable audio file"):
        audio.load_audio(tmp_path / name)
    with pytest.raises(CorruptAudioFile):
        audio.audio_info(tmp_path / name)


def test_no_audio_stream(tmp_path):
    path = tmp_path / "silent_film.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(CorruptAudioFile, match="no audio stream .streams: video"):
        audio.load_audio(path)


def _cut(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


@pytest.mark.parametrize("ext,kwargs", [
    ("wav", dict(subtype="PCM_16")),
    ("mp3", dict(format="MP3", subtype="MPEG_LAYER_III")),
])
def test_truncated_file_decodes_what_is_there_with_warning(write_audio, tone, caplog, ext,
                                                           kwargs):
    path = _cut(write_audio(f"cut.{ext}", tone(seconds=4.0, sr=16000), 16000, **kwargs))
    with caplog.at_level(logging.WARNING, logger="singer_zoo.audio"):
        y = audio.load_audio(path)
    assert 1.5 < len(y) / SR < 2.5
    assert f"cut.{ext}: truncated: the header promises 4.00 s" in caplog.text


def test_truncated_wav_with_list_chunk_before_data(tmp_path, tone, caplog):
    path = tmp_path / "tagged.wav"
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        f.title = "a title, written as a LIST chunk before 'data'"
        f.write(tone(seconds=2.0))
    _cut(path, 0.75)
    with caplog.at_level(logging.WARNING, logger="singer_zoo.audio"):
        audio.load_audio(path)
    assert "truncated: the header promises 2.00 s" in caplog.text


def test_whole_and_streamed_wav_do_not_warn(tmp_path, tone_wav, caplog):
    streamed = tmp_path / "streamed.wav"  # data size 0xFFFFFFFF: length unknown, not short
    data = bytearray(tone_wav.read_bytes())
    at = data.find(b"data") + 4
    data[at:at + 4] = b"\xff\xff\xff\xff"
    streamed.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="singer_zoo.audio"):
        assert len(audio.load_audio(tone_wav)) == len(audio.load_audio(streamed)) == 3 * SR
    assert "truncated" not in caplog.text


@pytest.mark.parametrize("ext,match", [("flac", "lost sync"), ("ogg", "not a readable")])
def test_truncated_file_decoder_error_is_corrupt(write_audio, tone, ext, match):
    path = _cut(write_audio(f"cut.{ext}", tone(seconds=3.0, sr=16000), 16000))
    with pytest.raises(CorruptAudioFile, match=f"cut.{ext}: .*{match}"):
        audio.load_audio(path)


def test_truncated_m4a_is_corrupt(write_av, tone):
    path = _cut(write_av("cut.m4a", tone(seconds=3.0, sr=44100), 44100,
                         format="mp4"))  # moov atom at the end is lost
    with pytest.raises(CorruptAudioFile, match="cut.m4a: not a readable audio file"):
        audio.load_audio(path)


def test_truncated_faststart_m4a(write_av, tone, caplog):
    """Index first, samples after: a cut between packets ends early (warning, kept); a cut
    inside a packet hands the decoder half a packet (CorruptAudioFile)."""
    path = write_av("cut.m4a", tone(seconds=4.0, sr=44100), 44100, format="mp4",
                    options={"movflags": "faststart"})
    with av.open(str(path)) as container:
        starts = [p.pos for p in container.demux(audio=0) if p.size]
    data = path.read_bytes()
    path.write_bytes(data[:starts[len(starts) // 2]])
    with caplog.at_level(logging.WARNING, logger="singer_zoo.audio"):
        assert 1.9 < len(audio.load_audio(path)) / SR < 2.1
    assert "cut.m4a: truncated: the header promises 4.02 s" in caplog.text
    path.write_bytes(data[:starts[len(starts) // 2] + 20])
    with pytest.raises(CorruptAudioFile, match=r"cut.m4a: cannot decode after \d\.\d\d s"):
        audio.load_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(write_audio, tone, bad):
    data = tone(seconds=2.0, sr=44100, channels=2)
    data[int(1.5 * 44100), 1] = bad
    path = write_audio("bad.wav", data, 44100, subtype="FLOAT")
    with pytest.raises(InvalidSamplesError,
                       match="bad.wav: NaN or infinite sample values at 1.50 s"):
        audio.load_audio(path)
    stream = audio.stream_audio(path, block_seconds=0.5)
    assert len(next(stream)) > 0  # blocks before the bad sample still arrive
    with pytest.raises(InvalidSamplesError):
        list(stream)


@pytest.mark.parametrize("peak,silent", [(0.0, True), (0.5e-4, True), (2e-4, False)])
def test_silence_threshold(write_audio, tone, peak, silent):
    path = write_audio("quiet.wav", tone(amp=peak), SR, subtype="FLOAT")
    if silent:
        with pytest.raises(SilentAudioError, match="quiet.wav: all silent: peak .* below 0.0001"):
            audio.load_audio(path)
    else:
        assert np.abs(audio.load_audio(path)).max() == pytest.approx(peak, rel=1e-3)


@pytest.mark.parametrize("sr", [0, -8000, 22050.5])
def test_bad_sample_rate(tone_wav, sr):
    with pytest.raises(ConfigError, match="sr must be a positive integer"):
        audio.load_audio(tone_wav, sr=sr)


@pytest.mark.parametrize("block_seconds", [0, -1.0, "30"])
def test_bad_block_seconds(tone_wav, block_seconds):
    with pytest.raises(ConfigError, match="block_seconds must be a positive number"):
        next(audio.stream_audio(tone_wav, block_seconds=block_seconds))


def test_run_batch_keeps_good_results(write_audio, tone, tmp_path):
    good1 = str(write_audio("a.wav", tone(seconds=1.0), SR))
    good2 = str(write_audio("b.flac", tone(seconds=2.0, sr=48000), 48000))
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    result = run_batch(audio.load_audio, [good1, str(bad), good2], workers=2)
    assert list(result.ok) == [good1, good2]
    assert [len(result.ok[g]) for g in (good1, good2)] == [SR, 2 * SR]
    assert list(result.failed) == [str(bad)]
    assert result.failed[str(bad)].startswith(f"{bad}: not a readable audio file")


def test_run_batch_warns_once_per_bad_file_and_always_lists_it(tmp_path, caplog):
    """Experiments read the same recordings for every row and fold: one warning per file."""
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with caplog.at_level(logging.DEBUG, logger="singer_zoo.batch"):
        results = [run_batch(audio.load_audio, [str(bad)], workers=w) for w in (1, 2, 1)]
    assert all(list(r.failed) == [str(bad)] for r in results)
    levels = [r.levelno for r in caplog.records if "bad.wav" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_run_batch_progress_is_one_line_when_not_a_terminal(capsys):
    run_batch(str, range(7), progress=True, label="things")  # pytest's stdout is no tty
    out = capsys.readouterr().out
    assert "\r" not in out and out.count("\n") == 1 and out.startswith("7/7")
    assert "things" in out


def test_check_waveform_names_the_in_memory_waveform():
    from singer_zoo.audio import check_waveform
    from singer_zoo.errors import EmptyAudioFile, InvalidSamplesError, SilentAudioError

    np.testing.assert_array_equal(check_waveform([0.5, -0.25]), np.float32([0.5, -0.25]))
    with pytest.raises(InvalidSamplesError, match="<waveform>: expected a mono"):
        check_waveform(np.zeros((2, 3)))
    with pytest.raises(EmptyAudioFile, match="zero samples"):
        check_waveform([])
    with pytest.raises(InvalidSamplesError, match="NaN"):
        check_waveform([0.1, np.nan])
    assert check_waveform(np.zeros(10)).shape == (10,)  # silence allowed unless rejected
    with pytest.raises(SilentAudioError, match="all silent"):
        check_waveform(np.zeros(10), reject_silent=True)
