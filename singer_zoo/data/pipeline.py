"""From a manifest to the feature windows that training batches are cut from (paper
sections 3.2, 3.4, 3.5). Numpy only: no TensorFlow, no audio library until audio is decoded.

- `load_feature_set` extracts every recording's (frames, bins) features in parallel
  (`run_batch`), optionally through an on-disk cache, and indexes its 256-frame windows
  (hop 51, as `singer_zoo.features.chop`); bad files are returned in `failed`, never fatal.
- `read_feature_folder` builds the same FeatureSet from a `singer-zoo features` output
  folder (matched by recording id), with no audio file present.

Batches are cut from the FeatureSet's one (total frames, bins) matrix when they are
assembled (`singer_zoo.data.batches`; `singer_zoo.data.tfdata` for tf.data), so overlapping
windows are never all held in memory.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from singer_zoo import features as feats
from singer_zoo.batch import Workers, run_batch
from singer_zoo.config import FeatureConfig
from singer_zoo.data.manifest import Manifest
from singer_zoo.errors import ConfigError

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # bump when extract_features changes its output (2: power in numpy)


def encode_labels(values) -> tuple[np.ndarray, list]:
    """Values (e.g. singer names) -> (int32 codes, sorted distinct values)."""
    classes, codes = np.unique(np.asarray(list(values)), return_inverse=True)
    return codes.astype(np.int32), classes.tolist()


def _aligned_zeros(shape: tuple) -> np.ndarray:
    """float32 zeros whose data starts on a 64-byte boundary, as TF requires of a tensor
    buffer it shares with numpy (see singer_zoo.data.tfdata.frames_tensor)."""
    nbytes = int(np.prod(shape)) * 4
    buf = np.zeros(nbytes + 64, np.uint8)
    start = -buf.ctypes.data % 64
    return buf[start:start + nbytes].view(np.float32).reshape(shape)


@dataclass(eq=False)  # identity equality: comparing arrays element-wise is not meant
class FeatureSet:
    """Per-recording feature matrices and the index of their windows.

    All frames live in one contiguous (total frames, bins) float32 matrix; `features[i]` is
    a view of recording i's rows. A recording shorter than one window is followed by its
    own frames again up to one window, as `chop` tiles it (`fill_window`).
    `window_index[i] = (recording index, start frame)`; `window_rows[i]` is that window's
    first row in the matrix.
    """

    features: list  # of (frames, bins) float32 arrays, one per recording
    recordings: list  # of Recording, aligned with features
    config: FeatureConfig = field(default_factory=FeatureConfig)
    window_index: np.ndarray = field(init=False, repr=False)
    window_rows: np.ndarray = field(init=False, repr=False)
    frames: np.ndarray = field(init=False, repr=False)  # (total frames, bins)
    _tensor: object = field(init=False, repr=False)  # tf.Tensor of `frames`, made on use

    def __post_init__(self):
        if len(self.features) != len(self.recordings):
            raise ConfigError(f"FeatureSet: {len(self.features)} feature matrices for "
                              f"{len(self.recordings)} recordings")
        w, hop, bins = self.config.window_frames, self.config.window_hop_frames, \
            self.config.n_bins
        for i, f in enumerate(self.features):
            if np.ndim(f) != 2 or np.shape(f)[1] != bins:
                raise ConfigError(f"FeatureSet: features of {self.recordings[i].path} have "
                                  f"shape {np.shape(f)}, expected (frames, {bins})")
        lengths = [len(f) for f in self.features]
        begin = np.cumsum([0] + [max(n, w) for n in lengths])  # short ones tiled to w
        self.frames = _aligned_zeros((int(begin[-1]), bins))
        index = [np.zeros((0, 2), np.int64)]
        for i, f in enumerate(self.features):
            self.frames[begin[i]:begin[i + 1]] = feats.fill_window(f, w)
            starts = np.arange(feats.n_windows(len(f), self.config), dtype=np.int64) * hop
            index.append(np.stack([np.full_like(starts, i), starts], axis=1))
        self.features = [self.frames[b:b + n] for b, n in zip(begin, lengths)]
        self.window_index = np.concatenate(index)
        self.window_rows = begin[self.window_index[:, 0]] + self.window_index[:, 1]
        self._tensor = None

    @property
    def n_recordings(self) -> int:
        return len(self.recordings)

    @property
    def n_windows(self) -> int:
        return len(self.window_index)

    def frames_tensor(self):
        """`frames` as a TF tensor sharing its memory (DLPack, no copy); made once."""
        from singer_zoo.data.tfdata import frames_tensor

        return frames_tensor(self)

    def windows(self, indices) -> np.ndarray:
        """(len(indices), window_frames, bins) float32: the windows at these indices."""
        rows = self.window_rows[np.asarray(indices, np.int64)]
        return self.frames[rows[:, None] + np.arange(self.config.window_frames)]

    def recording_windows(self, i: int) -> np.ndarray:
        """(n_windows, window_frames, bins): all windows of recording i."""
        return self.windows(np.flatnonzero(self.window_index[:, 0] == i))

    def subset(self, indices) -> FeatureSet:
        """The recordings at `indices` (e.g. one cross-validation fold)."""
        idx = [int(i) for i in indices]
        return FeatureSet([self.features[i] for i in idx], [self.recordings[i] for i in idx],
                          self.config)

    def window_labels(self, labels) -> np.ndarray:
        """Per-recording labels -> int32 label of every window."""
        labels = np.asarray(labels)
        if labels.shape != (self.n_recordings,):
            raise ConfigError(f"expected one label per recording ({self.n_recordings}), "
                              f"got shape {labels.shape}")
        return labels.astype(np.int32)[self.window_index[:, 0]]


def _cache_file(cache_dir: Path, path: str, cfg: FeatureConfig) -> Path:
    from singer_zoo.audio import check_audio_path  # lazy: training from features needs no decoders

    st = os.stat(check_audio_path(path))  # a missing file or symlink loop: named AudioError
    key = json.dumps({"path": os.path.abspath(path), "size": st.st_size,
                      "mtime_ns": st.st_mtime_ns, "features": cfg.to_dict(),
                      "version": CACHE_VERSION}, sort_keys=True)
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"


def save_atomic(target: Path, array: np.ndarray) -> None:
    """np.save to a temporary file in the same folder, then rename: readers never see a
    partial file, and concurrent writers of the same entry cannot corrupt it."""
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, target)


def cached_features(path: str, cfg: FeatureConfig, cache_dir=None) -> np.ndarray:
    """`extract_features(path, cfg)`, read from / written to `cache_dir` when given.

    A cache entry is keyed by the file's absolute path, size, mtime and the FeatureConfig, so
    an edited file or a changed config is recomputed; an unreadable entry is recomputed.
    """
    if cache_dir is None:
        return feats.extract_features(path, cfg)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = _cache_file(cache_dir, path, cfg)
    if target.exists():
        try:
            return np.load(target)
        except (OSError, ValueError) as e:
            log.warning("cache entry %s for %s unreadable (%s); recomputing", target, path, e)
    result = feats.extract_features(path, cfg)
    save_atomic(target, result)
    return result


def load_feature_set(manifest: Manifest, feature_cfg: FeatureConfig | None = None,
                     cache_dir=None, workers: int | Workers = 2, progress: bool = False
                     ) -> tuple[FeatureSet, dict]:
    """(FeatureSet of the recordings that decoded, {path: error message} of those that did
    not). Extraction runs on `workers` threads, or processes (`singer_zoo.batch.Workers`)."""
    cfg = feature_cfg or FeatureConfig()
    by_path = {r.path: r for r in manifest}
    result = run_batch(functools.partial(cached_features, cfg=cfg, cache_dir=cache_dir),
                       list(by_path), workers=workers, progress=progress, label="recordings")
    good = list(result.ok)
    return FeatureSet([result.ok[p] for p in good], [by_path[p] for p in good], cfg), \
        dict(result.failed)


def read_feature_folder(manifest: Manifest, folder, feature_cfg: FeatureConfig | None = None
                        ) -> tuple[FeatureSet, dict]:
    """(FeatureSet, {path: problem}) of `manifest`'s recordings from a `singer-zoo features`
    output `folder` (index.csv, feature_config.json, one .npy per recording), matched by
    recording id: the audio files need not exist. A recording missing from the folder, or
    whose file is unreadable or of the wrong shape, is reported in the dict, not fatal; a
    folder made with another FeatureConfig is refused with a ConfigError.
    """
    cfg = feature_cfg or FeatureConfig()
    folder = Path(folder)
    index_csv, cfg_json = folder / "index.csv", folder / "feature_config.json"
    for f in (index_csv, cfg_json):
        if not f.is_file():
            raise ConfigError(f"{folder}: not a features folder ({f.name} missing; make one "
                              f"with `singer-zoo features MANIFEST --out {folder}`)")
    stored = FeatureConfig.from_dict(json.loads(cfg_json.read_text(encoding="utf-8")))
    if stored != cfg:
        differ = sorted(k for k, v in cfg.to_dict().items() if stored.to_dict().get(k) != v)
        raise ConfigError(f"{folder}: features made with another configuration (differs in "
                          f"{', '.join(differ)}); extract them again with this model's "
                          f"front end")
    with open(index_csv, newline="", encoding="utf-8") as fh:
        files = {row["recording"]: folder / row["features"] for row in csv.DictReader(fh)}
    good, arrays, failed = [], [], {}
    for rec in manifest:
        if rec.recording not in files:
            failed[rec.path] = f"{rec.path}: recording {rec.recording!r} is not in {index_csv}"
            continue
        try:
            arr = np.load(files[rec.recording])
        except (OSError, ValueError) as e:
            failed[rec.path] = f"{files[rec.recording]}: unreadable features ({e})"
            continue
        if arr.ndim != 2 or arr.shape[1] != cfg.n_bins:
            failed[rec.path] = (f"{files[rec.recording]}: features of shape {arr.shape}, "
                                f"expected (frames, {cfg.n_bins})")
            continue
        good.append(rec)
        arrays.append(arr.astype(np.float32, copy=False))
    return FeatureSet(arrays, good, cfg), failed
