"""Training packs: a whole training set's features in one compact .npz (issue 17).

A pack holds the Mel (or CQT) dB features of many recordings quantised to uint8 in steps of
`step_db(cfg)` dB (0.25 dB while [0, top_db] fits 255 steps: [0, 60] dB -> 0..240; for a
wider range the smallest multiple of 0.25 dB that fits, 0.5 dB for 80 dB), all frames in
one (total frames, bins) matrix with per-recording row offsets, and per recording its
singer, song and source (as codes into sorted name lists) and its recording id; the
FeatureConfig the features were made with is stored as JSON. About 4 KiB per second of
audio at the defaults (96 bins x 43 frames/s), so an hour is ~15 MB before compression.

Reading it back needs numpy only (`read_pack`): it is what travels to a training machine
without TensorFlow or audio decoders. `PackData.feature_set()` rebuilds the package's
`FeatureSet` (see `singer_zoo.data.pipeline`) with the recordings' labels.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singer_zoo.config import FeatureConfig
from singer_zoo.data.manifest import Recording
from singer_zoo.errors import ConfigError

STEP = 0.25  # dB per uint8 step, the finest (and the step of every top_db <= 63.75)
FORMAT = "singer_zoo.pack/1"


def step_db(cfg: FeatureConfig) -> float:
    """dB per uint8 step for `cfg`: the smallest multiple of STEP with top_db in 255 steps."""
    return STEP * max(1, math.ceil(cfg.top_db / (255 * STEP)))


def quantise(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """float dB in [0, top_db] -> uint8 codes of `step_db(cfg)` dB (rounded)."""
    return np.round(np.clip(features, 0, cfg.top_db) / step_db(cfg)).astype(np.uint8)


class PackWriter:
    """Collects (features, singer, song, source, recording id) and writes the .npz once.

    Only the uint8 features are held (the stream's audio is not), a quarter of float32.
    """

    def __init__(self, cfg: FeatureConfig | None = None):
        self.cfg = cfg or FeatureConfig()
        self.blocks, self.meta = [], []

    def add(self, features: np.ndarray, singer: str, song: str, source: str,
            recording: str) -> None:
        if np.ndim(features) != 2 or np.shape(features)[1] != self.cfg.n_bins:
            raise ConfigError(f"pack: features of {recording} have shape "
                              f"{np.shape(features)}, expected (frames, {self.cfg.n_bins})")
        self.blocks.append(quantise(features, self.cfg))
        self.meta.append((singer, song, source, recording))

    def write(self, path, extra: dict | None = None) -> Path:
        """Write the pack (np.savez_compressed, no pickled objects); return its path."""
        if not self.blocks:
            raise ConfigError("pack: no recordings to write")
        cols = {}
        for k, name in enumerate(("singer", "song", "source")):
            names, codes = np.unique([m[k] for m in self.meta], return_inverse=True)
            cols[name], cols[f"{name}_names"] = codes.astype(np.int32), names.astype(str)
        offsets = np.cumsum([0] + [len(b) for b in self.blocks]).astype(np.int64)
        info = {"format": FORMAT, "step_db": step_db(self.cfg), "features": self.cfg.to_dict(),
                **(extra or {})}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, frames=np.concatenate(self.blocks), offsets=offsets,
                            recording=np.array([m[3] for m in self.meta], dtype=str),
                            info=np.array(json.dumps(info)), **cols)
        os.replace(tmp, path)
        return path


@dataclass(frozen=True)
class PackData:
    """A pack in memory: features (float32 dB views of one matrix) and labels per recording."""

    features: list  # of (frames, bins) float32
    singer: np.ndarray  # (recordings,) int32 codes into singer_names
    song: np.ndarray
    source: np.ndarray
    singer_names: list
    song_names: list
    source_names: list
    recording: list
    config: FeatureConfig
    info: dict

    @property
    def n_recordings(self) -> int:
        return len(self.features)

    @property
    def hours(self) -> float:
        frames = sum(len(f) for f in self.features)
        return frames * self.config.hop_length / self.config.sample_rate / 3600

    def recordings(self) -> list[Recording]:
        """`Recording`s (path = recording id, no file behind it) with singer/song/source."""
        return [Recording(path=r, singer=self.singer_names[a], song=self.song_names[b],
                          recording=r, extra={"source": self.source_names[c]})
                for r, a, b, c in zip(self.recording, self.singer, self.song, self.source)]

    def feature_set(self):
        """(FeatureSet, singer codes, song codes): ready for `window_dataset` /
        `pair_dataset` and the trainer."""
        from singer_zoo.data.pipeline import FeatureSet

        return FeatureSet(self.features, self.recordings(), self.config), self.singer, self.song


def read_pack(path) -> PackData:
    """Load a pack written by `PackWriter` (numpy only; ConfigError naming the file if it is
    not a pack)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable training pack ({e})") from None
    missing = {"frames", "offsets", "info", "singer", "recording"} - set(data)
    if missing:
        raise ConfigError(f"{path}: not a training pack (missing {sorted(missing)})")
    info = json.loads(str(data["info"]))
    if info.get("format") != FORMAT:
        raise ConfigError(f"{path}: pack format {info.get('format')!r}, expected {FORMAT!r}")
    cfg = FeatureConfig.from_dict(info["features"])
    frames = data["frames"].astype(np.float32) * np.float32(info["step_db"])
    off = data["offsets"]
    return PackData([frames[a:b] for a, b in itertools.pairwise(off)], data["singer"],
                    data["song"], data["source"], data["singer_names"].tolist(),
                    data["song_names"].tolist(), data["source_names"].tolist(),
                    data["recording"].tolist(), cfg, info)


def merge_packs(paths, out, extra: dict | None = None) -> Path:
    """One pack of the recordings of several (e.g. one per voice, built in parallel or
    resumed); they must share the FeatureConfig and step. Numpy only, no requantisation."""
    writer, cfg = None, None
    for path in paths:
        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            if writer is None:
                cfg = FeatureConfig.from_dict(info["features"])
                writer = PackWriter(cfg)
            elif info["features"] != cfg.to_dict() or info["step_db"] != step_db(cfg):
                raise ConfigError(f"{path}: features differ from the other packs'")
            off = z["offsets"]
            names = {k: z[f"{k}_names"] for k in ("singer", "song", "source")}
            for i, (a, b) in enumerate(itertools.pairwise(off)):
                writer.blocks.append(z["frames"][a:b])
                writer.meta.append((*(str(names[k][z[k][i]]) for k in ("singer", "song",
                                                                       "source")),
                                    str(z["recording"][i])))
    if writer is None:
        raise ConfigError("merge_packs: no packs given")
    return writer.write(out, extra)


def write_pack(items: Iterable, path, cfg: FeatureConfig | None = None,
               extra: dict | None = None) -> Path:
    """Write (features, singer, song, source, recording) tuples as a pack at `path`."""
    writer = PackWriter(cfg)
    for item in items:
        writer.add(*item)
    return writer.write(path, extra)
