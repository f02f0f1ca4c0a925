"""Audio decoding: any common file -> float32 mono waveform at the model's sample rate.

- `stream_audio(path, sr, block_seconds)` decodes incrementally and yields 1-D float32 blocks
  of about `block_seconds`, so an hour-long recording never sits in memory whole.
- `load_audio(path, sr)` is the concatenation of those blocks.
- `audio_info(path)` reads the header only (rate, channels, length, format, codec).

Decoders (`singer_zoo.decoders`): libsndfile (`soundfile`: wav, flac, ogg/vorbis, opus, mp3,
aiff, ...) is tried first; whatever it does not recognise goes to ffmpeg (PyAV: m4a/aac, mp4,
webm, wma, ...). Channels are averaged to mono at the native rate, then `soxr` resamples
with the 'HQ' preset (20-bit precision, linear phase) in one streaming resampler per file.

Every problem with the input raises a `singer_zoo.errors.AudioError` subclass naming the
file; no soundfile/ffmpeg exception escapes. Policy (see docs/audio.md):
- a file that ends before its header says (a truncated WAV, a cut MP3) is decoded as far as
  it goes and a warning is logged; a decoder *error* (lost sync, unreadable container) is
  `CorruptAudioFile`;
- all-silent audio (peak below `SILENCE_PEAK` of full scale) is `SilentAudioError`, raised
  after the last block, since silence is only known once everything has been seen.
Short recordings are not an error here: the feature layer pads them.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
from collections.abc import Iterator

import av
import numpy as np
import soundfile as sf
import soxr

from singer_zoo.decoders import AudioInfo, open_decoder
from singer_zoo.errors import (AudioError, AudioFileNotFound, ConfigError, CorruptAudioFile,
                               EmptyAudioFile, InvalidSamplesError, SilentAudioError)

__all__ = ["MAX_SAMPLE_RATE", "MAX_SECONDS", "MIN_SAMPLE_RATE", "RESAMPLE_QUALITY",
           "SILENCE_PEAK", "AudioInfo", "audio_info", "check_audio_path", "check_waveform",
           "load_audio", "stream_audio"]

log = logging.getLogger(__name__)

SILENCE_PEAK = 1e-4  # full scale = 1.0; -80 dBFS, a few LSB of 16-bit audio
# plausible recordings (checked on the header, before any allocation): a rate below 4 kHz
# cannot hold a voice (a 400-KB WAV claiming 1 Hz resampled to 55 hours at 22050 Hz), and
# nothing sung lasts longer than MAX_SECONDS
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 768000
MAX_SECONDS = 6 * 3600
RESAMPLE_QUALITY = "HQ"  # libsoxr 20-bit preset: alias rejection far below the 60-80 dB front end


@contextlib.contextmanager
def _decoder_errors(path, where=lambda: ""):
    """Turn the decoders' own exceptions into `CorruptAudioFile` naming `path`; `where()`
    says how far decoding got (" after 1.50 s") for errors in the middle of a file."""
    try:
        yield
    except AudioError:  # ours (AudioFileNotFound is an OSError too): already says it all
        raise
    except sf.LibsndfileError as e:
        raise CorruptAudioFile(path, f"cannot decode{where()} "
                                     f"(libsndfile: {e.error_string.rstrip('.')})") from e
    except sf.SoundFileError as e:
        raise CorruptAudioFile(path, f"cannot decode{where()} (libsndfile: {e})") from e
    except av.FFmpegError as e:
        raise CorruptAudioFile(path, f"cannot decode{where()} (ffmpeg: {e.strerror})") from e
    except OSError as e:
        raise CorruptAudioFile(path, f"cannot read{where()}: {e.strerror or e}") from e


def check_audio_path(path) -> str:
    """`path` (str, bytes or PathLike) as a str, if it names an existing, non-empty file;
    else the `AudioError` that says why: missing, a broken symlink (named as given, with
    its target), a symlink loop, a directory, 0 bytes."""
    path = os.fsdecode(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):  # name the entry the user gave, then where it points
            raise AudioFileNotFound(path, f"broken symlink: its target {os.readlink(path)!r} "
                                          "does not exist") from None
        raise AudioFileNotFound(path, "no such file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CorruptAudioFile(path, "symlink loop: the link resolves back to itself") \
                from None
        raise CorruptAudioFile(path, f"cannot read: {e.strerror or e}") from None
    if os.path.isdir(path):
        raise CorruptAudioFile(path, "is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise EmptyAudioFile(path, "the file is empty (0 bytes)")
    return path


def _check_args(sr, block_seconds) -> None:
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise ConfigError(f"audio: sr must be a positive integer, got {sr!r}")
    if not (isinstance(block_seconds, (int, float)) and block_seconds > 0):
        raise ConfigError(f"audio: block_seconds must be a positive number, got {block_seconds!r}")


def _open(path):
    """A decoder whose header describes a plausible recording (else `CorruptAudioFile`,
    before any sample is decoded or allocated)."""
    dec = open_decoder(check_audio_path(path))
    info = dec.info
    problem = None
    if not info.sample_rate or not info.channels:
        problem = ("not a readable audio file (the decoder finds no sample rate or channels "
                   "in it)")
    elif not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        problem = (f"implausible sample rate {info.sample_rate} Hz in the header (expected "
                   f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz): a damaged or forged header")
    elif info.duration is not None and info.duration > MAX_SECONDS:
        problem = (f"implausible length {info.duration / 3600:.1f} h in the header (at most "
                   f"{MAX_SECONDS / 3600:g} h)")
    if problem:
        dec.close()
        raise CorruptAudioFile(info.path, problem)
    return dec


def audio_info(path) -> AudioInfo:
    """Header facts of an audio file without decoding its samples."""
    with _decoder_errors(path):
        dec = _open(path)
    dec.close()
    return dec.info


def stream_audio(path, sr: int = 22050, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Yield the recording as float32 mono blocks at `sr` Hz, each about `block_seconds` long
    (the resampler's delay makes the first shorter). Raises the `AudioError`s of the module
    docstring; `SilentAudioError`/`EmptyAudioFile` come after the last block."""
    _check_args(sr, block_seconds)
    with _decoder_errors(path):
        dec = _open(path)
    path, decoded, emitted, peak, resampler = dec.info.path, 0, 0, 0.0, None
    try:
        with _decoder_errors(path, lambda: f" after {decoded / dec.info.sample_rate:.2f} s"):
            for rate, x in dec.blocks(block_seconds):  # x: (n,) float32 at the native rate
                if not np.isfinite(x).all():
                    at = (decoded + np.flatnonzero(~np.isfinite(x))[0]) / rate
                    raise InvalidSamplesError(path, f"NaN or infinite sample values at {at:.2f} s")
                decoded += len(x)
                if decoded > MAX_SECONDS * rate:  # a header that did not state the length
                    raise CorruptAudioFile(path, f"longer than {MAX_SECONDS / 3600:g} h: "
                                                 "not a plausible recording")
                if rate != sr and resampler is None:
                    resampler = soxr.ResampleStream(rate, sr, 1, dtype="float32",
                                                    quality=RESAMPLE_QUALITY)
                y = resampler.resample_chunk(x) if resampler is not None else x
                if len(y):
                    peak, emitted = max(peak, float(np.abs(y).max())), emitted + len(y)
                    yield y
            if resampler is not None and len(y := resampler.resample_chunk(
                    np.zeros(0, np.float32), last=True)):
                peak, emitted = max(peak, float(np.abs(y).max())), emitted + len(y)
                yield y
    finally:
        dec.close()
    if emitted == 0:
        promised = dec.promised
        raise EmptyAudioFile(path, "decodes to zero samples" + (
            f" (the header promises {promised / dec.info.sample_rate:.2f} s; no audio data "
            "follows it)" if promised else ""))
    _check_length(dec, decoded)
    if peak < SILENCE_PEAK:
        raise SilentAudioError(path, f"all silent: peak {peak:.1e} is below {SILENCE_PEAK:g} "
                                     "of full scale")


WAVEFORM = "<waveform>"  # how errors name an in-memory waveform


def check_waveform(waveform, reject_silent: bool = False) -> np.ndarray:
    """An in-memory waveform as float32 (samples,), checked like a decoded file: not a
    floating-point array (int16 PCM must be scaled to [-1, 1) first), not mono, empty or
    NaN/inf -> typed errors naming "<waveform>"; all silent (peak below SILENCE_PEAK) ->
    `SilentAudioError` when `reject_silent`."""
    try:
        y = np.asarray(waveform)
    except (TypeError, ValueError) as e:
        raise InvalidSamplesError(WAVEFORM, f"not an array of samples ({e})") from None
    if y.dtype.kind != "f":
        hint = (f" (integer PCM: divide by {2.0 ** (8 * y.dtype.itemsize - 1):g} first)"
                if y.dtype.kind in "iu" else "")
        raise InvalidSamplesError(WAVEFORM, f"expected floating-point samples in [-1, 1], got "
                                            f"dtype {y.dtype}{hint}")
    y = y.astype(np.float32, copy=False)
    if y.ndim != 1:
        raise InvalidSamplesError(WAVEFORM, f"expected a mono (samples,) array, got {y.shape}")
    if y.size == 0:
        raise EmptyAudioFile(WAVEFORM, "the waveform has zero samples")
    if not np.isfinite(y).all():
        raise InvalidSamplesError(WAVEFORM, "the waveform contains NaN or infinite values")
    peak = float(np.abs(y).max())
    if reject_silent and peak < SILENCE_PEAK:
        raise SilentAudioError(WAVEFORM, f"all silent: peak {peak:.1e} is below "
                                         f"{SILENCE_PEAK:g} of full scale")
    return y


def _check_length(dec, decoded: int) -> None:
    """Log a warning when fewer frames decoded than the header promised (a cut file)."""
    promised = dec.promised
    if promised and decoded < promised * (1 - dec.slack):
        rate = dec.info.sample_rate
        log.warning("%s: truncated: the header promises %.2f s, only %.2f s could be decoded; "
                    "keeping the decoded part", dec.info.path, promised / rate, decoded / rate)


def load_audio(path, sr: int = 22050) -> np.ndarray:
    """The whole recording as a float32 mono (samples,) array at `sr` Hz: the concatenation
    of `stream_audio(path, sr)`, written into an array sized from the header's length so
    that peak memory stays about one result plus one block."""
    _check_args(sr, 30.0)
    info = audio_info(path)
    expected = math.ceil(info.frames * sr / info.sample_rate) if info.frames else 0
    out, n, extra = np.empty(expected, np.float32), 0, []
    for block in stream_audio(path, sr):
        k = min(len(block), expected - n)
        out[n:n + k] = block[:k]
        n += k
        if k < len(block):  # longer than the header said (an estimated length)
            extra.append(block[k:])
    if extra:
        return np.concatenate([out, *extra])
    return out if n == expected else out[:n].copy()
