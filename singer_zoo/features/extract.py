"""Feature extraction for one recording, streamed block by block.

`extract_features(path, cfg)` decodes with `singer_zoo.audio.stream_audio`, computes the
front end's *power* per block (in numpy, `DbFrontend.power_np`: no TF call per block) and
applies the dB conversion (reference: the recording's maximum) once the whole recording is
seen, so memory is bounded by two blocks (one of look-ahead) plus the (frames, bins) result
(about 60 MB of float32 per hour of audio at the defaults) and the result equals the
front-end layer applied to the whole waveform.

Frame alignment: the stream is treated as the centred signal [frame_length // 2 zeros,
audio, frame_length - frame_length // 2 zeros]; every frame whose samples have all arrived is
computed, and the unused remainder (less than `frame_length` samples, i.e. blocks overlap
by frame_length - hop samples) is carried into the next block.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from singer_zoo import audio
from singer_zoo.config import FeatureConfig
from singer_zoo.errors import ConfigError
from singer_zoo.features.db import power_to_db_np
from singer_zoo.features.registry import build_frontend
from singer_zoo.features.windows import chop

CHUNK_FRAMES = 128  # frames per power call (3 s at the defaults), measured fastest on 2 threads:
# Mel power of 6 x 60 s in 0.077 s, against 0.079-0.087 s at 64, 256 and 512 frames


@functools.lru_cache(maxsize=8)
def _frontend(cfg: FeatureConfig):
    """The front-end layer of `cfg`, built once (its constants: filterbank, window, kernels)."""
    return build_frontend(cfg)


def _blocks_of(waveform: np.ndarray, size: int):
    for start in range(0, len(waveform), size):
        yield waveform[start:start + size]


def stream_power(blocks, cfg: FeatureConfig) -> np.ndarray:
    """Power (frames, bins) of the centred concatenation of `blocks` (float32 1-D arrays)."""
    layer = _frontend(cfg)
    fl, hop = layer.frame_length, cfg.hop_length
    buf = np.zeros(fl // 2, np.float32)
    out = []

    def flush(buf):  # compute every complete frame of buf; return what the next one needs
        n = 1 + (len(buf) - fl) // hop if len(buf) >= fl else 0
        for first in range(0, n, CHUNK_FRAMES):
            m = min(CHUNK_FRAMES, n - first)
            chunk = buf[first * hop:(first + m - 1) * hop + fl]  # m frames
            out.append(layer.power_np(chunk))
        return buf[n * hop:]

    # one block of look-ahead: the last block is flushed together with the end padding, so
    # a recording of one block (most files under 30 s) is one pass, not two
    pending = None
    for block in blocks:
        if pending is not None:
            buf = flush(np.concatenate([buf, pending]))
        pending = np.asarray(block, np.float32)
    tail = [] if pending is None else [pending]
    flush(np.concatenate([buf, *tail, np.zeros(fl - fl // 2, np.float32)]))
    return np.concatenate(out, axis=0)


def extract_features(path_or_waveform, cfg: FeatureConfig | None = None,
                     block_seconds: float = 30.0) -> np.ndarray:
    """The front end's features of one recording, streamed block by block.

    Equals the front-end layer (`build_frontend(cfg)`) applied to the whole waveform, with
    dB referenced to the recording's maximum, while holding only two blocks of audio plus
    the result (module doc).

    Args:
        path_or_waveform: an audio file (any format `singer_zoo.audio` decodes; downmixed
            to mono and resampled to `cfg.sample_rate`) or a 1-D float waveform already
            at `cfg.sample_rate`.
        cfg: the `FeatureConfig` (default: the paper's Mel settings).
        block_seconds: seconds of audio decoded at a time (positive).

    Returns:
        (frames, n_bins) float32 dB in [0, top_db], frames = 1 + samples // hop_length.

    Raises:
        ConfigError: `block_seconds` is not positive.
        The `singer_zoo.errors` audio errors: a missing, empty, corrupt or silent file,
        NaN samples.

    Example:
        >>> import numpy as np
        >>> from singer_zoo.features import extract_features
        >>> y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * 22050) / 22050)
        >>> extract_features(y.astype(np.float32)).shape  # 10 s: 1 + 220500 // 512 frames
        (431, 96)
        >>> feats = extract_features("song.m4a")  # decoded, mono, resampled to 22050 Hz
    """
    cfg = cfg or FeatureConfig()
    if not block_seconds > 0:
        raise ConfigError(f"extract_features: block_seconds must be positive, "
                          f"got {block_seconds!r}")
    size = max(int(block_seconds * cfg.sample_rate), 1)
    if isinstance(path_or_waveform, (str, os.PathLike)):
        blocks = audio.stream_audio(path_or_waveform, sr=cfg.sample_rate,
                                    block_seconds=block_seconds)
    else:
        blocks = _blocks_of(audio.check_waveform(path_or_waveform, reject_silent=True), size)
    power = stream_power(blocks, cfg)
    return power_to_db_np(power, cfg.top_db, out=power)


def extract_windows(path_or_waveform, cfg: FeatureConfig | None = None) -> np.ndarray:
    """The model inputs of one recording: `chop(extract_features(path_or_waveform, cfg))`.

    Args:
        path_or_waveform: an audio file or a 1-D float waveform at `cfg.sample_rate`
            (as `extract_features`).
        cfg: the `FeatureConfig` (default: the paper's Mel settings).

    Returns:
        (n_windows, window_frames, n_bins) float32 dB windows, at least one (the windowing
        policy of `singer_zoo.features.windows`).

    Example:
        >>> import numpy as np
        >>> from singer_zoo.features import extract_windows
        >>> y = 0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * 22050) / 22050)
        >>> extract_windows(y.astype(np.float32)).shape  # 431 frames: starts 0, 51, 102, 153
        (4, 256, 96)
    """
    cfg = cfg or FeatureConfig()
    return chop(extract_features(path_or_waveform, cfg), cfg)
