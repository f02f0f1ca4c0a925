"""The two decoders behind `singer_zoo.audio`: libsndfile and ffmpeg, to mono at the native rate.

`open_decoder(path)` gives a `SndfileDecoder` when libsndfile recognises the file (wav, flac,
ogg/vorbis, opus, mp3, aiff, ...: it decodes these fastest) and an `FFmpegDecoder` otherwise
(m4a/aac, mp4, webm, wma, ...: PyAV). Both expose `info` (an `AudioInfo` from the header),
`promised`/`slack` (the length the header promises, for truncation warnings) and
`blocks(block_seconds)`, which yields `(rate, mono float32 block)` pairs.

Channels are averaged here, before any resampling, by adding channel columns in one pass
per channel (`downmix`). Errors of the underlying libraries are left to the caller
(`singer_zoo.audio` turns them into `AudioError`s naming the file).
"""
from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass
from collections.abc import Iterator

import av
import numpy as np
import soundfile as sf

from singer_zoo.errors import CorruptAudioFile

# One ffmpeg decode at a time per process. PyAV hands every frame (1024 samples of AAC) to
# Python, so decoding holds the GIL about half the time and two threads decoding at once
# were slower than one (6 m4a files: 0.55 s vs 0.39 s); serialised, a batch's other thread
# computes features (GIL-free TF) while this one decodes. libsndfile needs no such lock.
FFMPEG_DECODING = threading.Lock()
COMPRESSED_LENGTH_SLACK = 0.01  # length in MP3/ffmpeg headers is an estimate: allow 1 %
# ffmpeg sample formats (planar ones end in "p") -> (numpy dtype, zero level, full scale)
FFMPEG_SAMPLES = {"u8": (np.uint8, 128, 128.0), "s16": (np.int16, 0, 2.0**15),
                  "s32": (np.int32, 0, 2.0**31), "flt": (np.float32, 0, 1.0),
                  "dbl": (np.float64, 0, 1.0)}


@dataclass(frozen=True)
class AudioInfo:
    """What the header says; `frames`/`duration` are None when the container does not say."""

    path: str
    sample_rate: int
    channels: int
    frames: int | None
    duration: float | None
    format: str  # container, e.g. "WAV", "FLAC", "OGG", "MP3", "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # e.g. "PCM_16", "VORBIS", "aac"


def downmix(x: np.ndarray, zero: float = 0.0, full_scale: float = 1.0) -> np.ndarray:
    """(n, channels) samples of any numeric dtype -> (n,) float32 channel mean, mapped by
    `(x - zero) / full_scale` (integer PCM to [-1, 1)). Adds channel columns: numpy's
    `mean(axis=1)` over the short channel axis took ~60 % of decoding time, and a
    matrix-vector product goes through multi-threaded BLAS, whose threads fight parallel
    decoding workers for the cores (2 workers scaled 1.4x instead of 1.9x)."""
    channels = x.shape[1]
    y = x[:, 0].astype(np.float32) if channels == 1 else np.add(x[:, 0], x[:, 1],
                                                                 dtype=np.float32)
    for c in range(2, channels):
        y += x[:, c]
    if zero:
        y -= np.float32(zero * channels)
    if channels * full_scale != 1:
        y *= np.float32(1.0 / (channels * full_scale))
    return y


def _riff_data_frames(path: str) -> int | None:
    """Frames the RIFF/WAVE 'data' chunk header promises (libsndfile silently clamps it to
    the bytes present); None when the size is unknown (0 or 0xFFFFFFFF, streamed WAV)."""
    block_align = None
    with open(path, "rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            return None
        while len(head := f.read(8)) == 8:
            cid, size = head[:4], struct.unpack("<I", head[4:])[0]
            if cid == b"fmt ":
                block_align = struct.unpack("<H", f.read(14)[12:14])[0]
                f.seek(size - 14 + (size & 1), os.SEEK_CUR)
            elif cid == b"data":
                ok = block_align and 0 < size < 0xFFFFFFFF
                return size // block_align if ok else None
            else:
                f.seek(size + (size & 1), os.SEEK_CUR)
    return None


class SndfileDecoder:
    """libsndfile decoder; reads with `read()` in a loop (soundfile's `blocks()` trusts the
    header's frame count and would repeat stale data past the real end of a cut file)."""

    def __init__(self, path: str):
        self.file = sf.SoundFile(path)
        f = self.file
        self.info = AudioInfo(path, f.samplerate, f.channels, f.frames, f.frames / f.samplerate,
                              f.format, f.subtype)
        riff = _riff_data_frames(path) if f.format in ("WAV", "WAVEX") else None
        self.promised = riff if riff is not None else f.frames
        self.slack = COMPRESSED_LENGTH_SLACK if f.format == "MP3" else 0.0

    def blocks(self, block_seconds: float) -> Iterator[tuple[int, np.ndarray]]:
        n = max(1, round(block_seconds * self.file.samplerate))
        while len(x := self.file.read(n, dtype="float32", always_2d=True)):  # (n, channels)
            yield self.file.samplerate, downmix(x)  # (n,)

    def close(self):
        self.file.close()


class _FrameBlocks:
    """Copies ffmpeg's decoded frames into one preallocated block in their own sample format
    and downmixes whole blocks: per-frame numpy conversions cost more than decoding itself
    for AAC (1024-sample frames). The format, layout and rate of the first frame are the
    block's; frames that differ (a stream that changes mid-way, HE-AAC decoding at twice the
    header's rate) go through an ffmpeg resampler to them, one per run of differing frames,
    drained before the next run so no samples are reordered or lost."""

    def __init__(self, first: av.AudioFrame, block_seconds: float):
        name = first.format.name
        if name.rstrip("p") not in FFMPEG_SAMPLES:  # e.g. s64: let ffmpeg make it float
            name = "fltp"
        self.key = (name, first.layout.name, first.sample_rate)
        self.rate, self.planar = first.sample_rate, name.endswith("p")
        self.dtype, self.zero, self.scale = FFMPEG_SAMPLES[name.rstrip("p")]
        self.channels = first.layout.nb_channels
        self.size = max(1, round(block_seconds * self.rate))
        self.buf, self.used = self._alloc(self.size), 0
        self.run_key, self.converter = self.key, None
        self.done: list[np.ndarray] = []  # completed (n,) float32 blocks, oldest first

    def _alloc(self, n):  # planar: one row per plane; packed: interleaved, flat
        return np.empty((self.channels, n) if self.planar else n * self.channels, self.dtype)

    def add(self, frame: av.AudioFrame) -> None:
        """Take one decoded frame; the blocks it completes are appended to `done`."""
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self.run_key:
            self._drain()
            self.run_key = key
            self.converter = None if key == self.key else av.AudioResampler(*self.key)
        if self.converter is None:
            self._put(frame)
        else:
            for out in self.converter.resample(frame):
                self._put(out)

    def finish(self) -> None:
        """Complete the last block once the stream has ended."""
        self._drain()
        if self.used:
            self.done.append(self._block())

    def _drain(self):
        if self.converter is not None:
            for out in self.converter.resample(None):
                self._put(out)
            self.converter = None

    def _put(self, frame):
        k = frame.samples
        if self.used and self.used + k > self.size:
            self.done.append(self._block())
        if k * self.channels > self.buf.size:  # a frame longer than a block (tiny block_seconds)
            self.buf = self._alloc(k)
        a, b = self.used, self.used + k
        if self.planar:
            for row, plane in zip(self.buf, frame.planes):
                row[a:b] = np.frombuffer(plane, self.dtype, k)  # planes may be padded
        else:
            c = self.channels
            self.buf[a * c:b * c] = np.frombuffer(frame.planes[0], self.dtype, k * c)
        self.used = b

    def _block(self):
        n, self.used = self.used, 0
        x = self.buf[:, :n].T if self.planar else self.buf[:n * self.channels].reshape(n, -1)
        return downmix(x, self.zero, self.scale)  # (n, channels) -> (n,)


class FFmpegDecoder:
    """PyAV decoder for what libsndfile does not read."""

    def __init__(self, path: str):
        self.container = av.open(path, metadata_errors="ignore")
        streams = self.container.streams
        if not streams.audio:
            kinds = sorted({s.type for s in streams}) or ["none"]
            self.container.close()
            raise CorruptAudioFile(path, f"contains no audio stream (streams: {', '.join(kinds)})")
        self.stream = s = streams.audio[0]
        rate = s.rate or s.codec_context.sample_rate
        if s.duration is not None:
            seconds = float(s.duration * s.time_base)
        elif self.container.duration is not None:
            seconds = self.container.duration / av.time_base
        else:
            seconds = None
        frames = round(seconds * rate) if seconds is not None else None
        self.info = AudioInfo(path, rate, s.codec_context.layout.nb_channels, frames, seconds,
                              self.container.format.name, s.codec_context.name)
        # only MP4's sample tables state the length; elsewhere ffmpeg may guess it from the
        # bit rate (ADTS, VBR streams), too loosely to call a short decode a truncation
        mp4 = "mp4" in self.container.format.name.split(",")
        self.promised, self.slack = (frames if mp4 else None), COMPRESSED_LENGTH_SLACK

    def blocks(self, block_seconds: float) -> Iterator[tuple[int, np.ndarray]]:
        frames, gather, ended = self.container.decode(self.stream), None, False
        while not ended:
            with FFMPEG_DECODING:  # held while decoding one block, never across a yield
                for frame in frames:
                    if gather is None:
                        gather = _FrameBlocks(frame, block_seconds)
                    gather.add(frame)
                    if gather.done:
                        break
                else:
                    ended = True
                    if gather is not None:
                        gather.finish()
            while gather is not None and gather.done:
                yield gather.rate, gather.done.pop(0)

    def close(self):
        self.container.close()


def open_decoder(path: str):
    """A decoder for an existing file: libsndfile if it recognises the file, else ffmpeg.
    Raises `CorruptAudioFile` when neither can read it; other errors of the libraries
    (ffmpeg's on a damaged stream) propagate."""
    try:
        return SndfileDecoder(path)
    except sf.SoundFileError as e:
        why_sndfile = getattr(e, "error_string", str(e)).rstrip(".")
    try:
        return FFmpegDecoder(path)
    except av.FFmpegError as e:
        raise CorruptAudioFile(path, f"not a readable audio file (libsndfile: {why_sndfile}; "
                                     f"ffmpeg: {e.strerror})") from e
