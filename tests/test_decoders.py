"""singer_zoo.decoders: ffmpeg's sample formats, streams that change mid-way, the downmix."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from singer_zoo import audio, decoders
from singer_zoo.decoders import FFmpegDecoder, downmix

SR = 16000


# Matroska PCM/ALAC: libsndfile cannot read .mka, so these go through ffmpeg. (codec, channels,
# the sample format ffmpeg decodes it to, tolerance: half a quantisation step)
FFMPEG_CASES = [
    ("pcm_u8", 1, "u8", 1 / 256),
    ("pcm_s16le", 2, "s16", 2.0**-16),
    ("pcm_s24le", 3, "s32", 2.0**-24),
    ("pcm_s32le", 2, "s32", 1e-7),
    ("pcm_f32le", 2, "flt", 0.0),
    ("pcm_f64le", 1, "dbl", 1e-7),  # float32 result of float64 samples
    ("pcm_s64le", 1, "s64", 1e-7),  # a format the block gatherer converts with ffmpeg first
    ("alac", 2, "s32p", 2.0**-16),  # planar
]


@pytest.mark.parametrize("codec,channels,decoded,tol", FFMPEG_CASES,
                         ids=[c[0] for c in FFMPEG_CASES])
def test_ffmpeg_sample_formats_decode_to_the_channel_mean(write_av, codec, channels, decoded,
                                                          tol):
    data = np.random.default_rng(0).uniform(-0.8, 0.8, (SR, channels)).astype(np.float32)
    path = write_av("x.mka", data, SR, codec=codec)
    dec = FFmpegDecoder(str(path))
    first = next(dec.container.decode(dec.stream))
    dec.close()
    assert first.format.name == decoded
    assert audio.audio_info(path).format == "matroska,webm"  # not libsndfile's
    y = audio.load_audio(path, sr=SR)
    # ALAC 16-bit input keeps 16 bits; channel-mean of quantised channels stays within tol
    np.testing.assert_allclose(y, data.mean(axis=1), rtol=0, atol=tol + 1e-7)


def _peak_hz(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[spec.argmax()])


def test_stream_that_changes_rate_and_channels_keeps_every_sample(tmp_path, write_av, tone):
    """Raw ADTS pieces at 44.1 kHz stereo, 22.05 kHz mono, 44.1 kHz stereo, one after the
    other: the middle piece is converted to the first's rate and layout, in place, and
    nothing is lost (the old per-frame converter dropped 0.5 s of it)."""
    a = write_av("a.aac", tone(660, seconds=1.0, sr=44100, channels=2), 44100, format="adts")
    b = write_av("b.aac", tone(440, seconds=1.0, sr=22050), 22050, format="adts")
    path = tmp_path / "abc.aac"
    path.write_bytes(a.read_bytes() + b.read_bytes() + a.read_bytes())
    y = audio.load_audio(path, sr=44100)
    n_a, n_b = len(audio.load_audio(a, sr=44100)), len(audio.load_audio(b, sr=22050))
    # every sample of every piece, the middle one at twice its rate (a converter that is not
    # drained before the stream switches back loses its last 32 samples)
    assert abs(len(y) - (2 * n_a + 2 * n_b)) <= 2
    piece = [n_a, 2 * n_b]
    s = 44100 // 4
    assert [_peak_hz(y[i:i + s], 44100) for i in (s, piece[0] + s, piece[0] + piece[1] + s)] \
        == pytest.approx([660, 440, 660], abs=5)


@pytest.mark.parametrize("block_seconds", [0.005, 0.37])
def test_blocks_shorter_than_a_frame(write_av, tone, block_seconds):
    """AAC frames are 1024 samples; a block of 220 samples still gets every sample once."""
    path = write_av("x.m4a", tone(seconds=2.0, sr=44100, channels=2), 44100, format="mp4")
    dec = FFmpegDecoder(str(path))
    blocks = [x for _, x in dec.blocks(block_seconds)]
    dec.close()
    assert max(map(len, blocks)) <= max(round(block_seconds * 44100), 1024)
    np.testing.assert_array_equal(np.concatenate(blocks), audio.load_audio(path, sr=44100))


@pytest.mark.parametrize("dtype,zero,full", [(np.uint8, 128, 128.0), (np.int16, 0, 2.0**15),
                                             (np.int32, 0, 2.0**31), (np.float64, 0, 1.0)])
@pytest.mark.parametrize("channels", [1, 2, 5])
def test_downmix_maps_to_unit_scale(dtype, zero, full, channels):
    rng = np.random.default_rng(channels)
    ref = rng.uniform(-0.9, 0.9, (1000, channels))
    x = np.round(ref * full + zero).astype(dtype) if dtype != np.float64 else ref
    y = downmix(x, zero, full)
    assert y.dtype == np.float32 and y.shape == (1000,)
    np.testing.assert_allclose(y, ref.mean(axis=1), atol=0.5 / full + 1e-6)


def test_ffmpeg_decoding_is_serialised_but_never_across_a_yield(write_av, tone, monkeypatch):
    """Frames are gathered under `FFMPEG_DECODING` (two threads decoding at once were slower
    than one); blocks are handed out without it, so two open streams can be read in turns
    from one thread (a lock held across a yield would deadlock here)."""
    paths = [write_av(f"{i}.m4a", tone(seconds=1.0, sr=44100), 44100, format="mp4")
             for i in range(2)]
    held = []
    add = decoders._FrameBlocks.add
    monkeypatch.setattr(decoders._FrameBlocks, "add", lambda self, frame: (
        held.append(decoders.FFMPEG_DECODING.locked()), add(self, frame))[1])
    done = []

    def interleave():
        streams = [audio.stream_audio(p, block_seconds=0.1) for p in paths]
        blocks = [list(b) for b in zip(*streams)]  # one block of each in turn
        done.append(len(blocks))

    worker = threading.Thread(target=interleave, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done and done[0] >= 5  # finished, block by block
    assert held and all(held)
