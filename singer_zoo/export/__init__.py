"""Export a trained embedder for deployment: SavedModel + TFLite + model card (docs/export.md).

`export(source, out)` takes a training run folder (config.yaml + best.keras), an exported or
published folder (its metadata.json gives the config, training record and other card
entries: this is how `singer_zoo.pretrained` rebuilds a shipped embedder), or a `.keras`
model file, which describes itself (its embedder carries its front end and zoo row; a file
saved before the task classes needs a config.yaml or metadata.json beside it, or
`config=`), and writes

    out/saved_model/        signatures embed_waveform, embed_clip, embed_windows
    out/embedder.keras      the single-tower Keras embedder (for fine-tuning)
    out/model_<mode>.tflite one per TFLite mode (float32, int8, full-int8)
    out/model.onnx          with onnx=True: windows -> embeddings (export/onnx.py)
    out/metadata.json       the model card, with the sha256 of every file above

Every file is reloaded and checked against the Keras model on audio before the folder is
published (`checks` in the card; tolerances below). Writes are atomic: everything goes to
a hidden temporary folder next to `out`, which replaces `out` only once complete, so an
interrupted export leaves the previous export (or nothing) in place; what a killed export
leaves behind is cleaned up by the next one (`singer_zoo.export.publish`).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from singer_zoo.audio import load_audio
from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError, ExportCheckError
from singer_zoo.export import card as card_mod
from singer_zoo.export import onnx as onnx_mod
from singer_zoo.export import publish, tflite
from singer_zoo.export.savedmodel import (EmbeddingGraph, check_savedmodel, embedder_of,
                                          keras_reference)
from singer_zoo.features import extract_windows
from singer_zoo.models import zoo_config_of

# What the exported graphs compute beyond the Keras embedder (front end, windowing),
# numbered so that exports built by an older package are rebuilt (`pretrained.build`):
# 2 = a recording shorter than one window is tiled to one (`FrameWindows`), not zero-padded;
# 3 = `FeatureConfig.dft` (the fast mobile rows compute their DFT as matrix products).
GRAPH_VERSION = 3
SAVEDMODEL_TOL = 1e-4  # max |SavedModel - Keras| per embedding value
TFLITE_TOL = 1e-3  # max |TFLite float32 - Keras|
MIN_COSINE = 0.99  # quantised (int8, full-int8) embeddings vs float32
DEFAULT_MODES = ("float32", "int8")
CLIP_SECONDS = 6.0  # the TFLite input: one 256-frame window of audio


@dataclass
class ExportResult:
    """What `export` returns: `path`, the published folder (absolute), and `card`, the
    model card written to its metadata.json."""

    path: Path
    card: dict


def _source(source, config) -> tuple[Path, ZooConfig | None, dict, dict]:
    """(.keras path, config, {"training": ..., "metrics": ...}, carried card entries) of a
    run folder (config.yaml + best.keras), an exported or published folder (metadata.json
    + embedder.keras: re-exported from its card), or a .keras file beside either. The
    config is None when none is given or beside the file: the model describes itself."""
    src = Path(source)
    if src.is_dir():
        folder = src
        model_path = src / ("embedder.keras" if (src / card_mod.CARD).is_file()
                            else "best.keras")
    else:
        folder, model_path = src.parent, src
    if not model_path.is_file():
        raise ConfigError(f"{source}: no trained model (expected a run folder with "
                          f"best.keras, an exported folder, or a .keras file)")
    if (folder / card_mod.CARD).is_file() and not (folder / "config.yaml").is_file():
        card = card_mod.read_card(folder)
        cfg = config if config is not None else card["config"]
        cfg = cfg if isinstance(cfg, ZooConfig) else \
            ZooConfig.from_yaml(cfg) if isinstance(cfg, (str, os.PathLike)) else \
            ZooConfig.from_dict(cfg)
        carried = {k: v for k, v in card.items()
                   if k not in card_mod.RESERVED and k != card_mod.ORIGIN}
        return model_path, cfg, {k: card.get(k) for k in ("training", "metrics")}, carried
    if config is None and (folder / "config.yaml").is_file():
        config = folder / "config.yaml"
    cfg = config if isinstance(config, ZooConfig) or config is None else \
        ZooConfig.from_yaml(config)
    info = {}
    for key, name in (("training", "run.json"), ("metrics", "metrics.json")):
        p = folder / name
        info[key] = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
    return model_path, cfg, info, {}


def _load_keras(path: Path) -> keras.Model:
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: cannot load the Keras model ({e})") from None


def load_trained(source, config=None) -> tuple[keras.Model, ZooConfig, Path, dict, dict]:
    """(model, its ZooConfig, .keras path, {"training", "metrics"}, carried card entries) of
    a run folder, an exported or published folder, or a .keras file (`export`'s sources).

    The config is `config` if given, else the config.yaml or model card beside the file,
    else the one the model carries (`singer_zoo.models.zoo_config_of`): a model saved by
    this version needs nothing beside it; one saved before the task classes does.
    """
    model_path, cfg, info, carried = _source(source, config)
    model = _load_keras(model_path)
    if cfg is None:
        cfg = zoo_config_of(model)
    if cfg is None:
        raise ConfigError(f"{model_path}: the model does not describe itself (saved before "
                          f"singer_zoo's task classes) and has no config.yaml or "
                          f"metadata.json beside it; pass its config (--config)")
    return model, cfg, model_path, info, carried


def _check_tflite(flat: bytes, mode: str, clips, reference, against: str
                  ) -> tuple[dict, list]:
    """Run one .tflite on the check clips and compare with `reference`, the clip
    embeddings of `against` ("keras", or "float32" for quantised modes when a float32 file
    was exported): float32 by max abs error, quantised modes by cosine. Returns (the card's
    check entry, the file's clip embeddings)."""
    outs = [tflite.run(flat, c)["embedding"] for c in clips]
    err = max(float(np.abs(o - r).max()) for o, r in zip(outs, reference))
    if mode == "float32":
        if not err <= TFLITE_TOL:
            raise ExportCheckError(f"TFLite float32 differs from the Keras model by {err:.3g} "
                                   f"(tolerance {TFLITE_TOL:g})")
        return {"max_abs_error_vs_keras": err, "tolerance": TFLITE_TOL}, outs
    cos = min(tflite.cosine(o, r) for o, r in zip(outs, reference))
    if not cos >= MIN_COSINE:
        raise ExportCheckError(f"TFLite {mode} embeddings have cosine {cos:.4f} with "
                               f"{against} (minimum {MIN_COSINE})")
    return {f"min_cosine_vs_{against}": cos, f"max_abs_error_vs_{against}": err,
            "min_cosine": MIN_COSINE}, outs


def _default_check_audio(sr: int) -> np.ndarray:
    """A 14-s synthetic sung performance (two TFLite clips, seven windows)."""
    from singer_zoo.data.synthetic import render, singer_params, song_params

    return render(singer_params(0, 0), song_params(0, 0), 14.0, sr, np.random.default_rng(0))


def _prepare_target(out: Path) -> None:
    if out.exists() and not (out.is_dir() and (not any(out.iterdir())
                                               or (out / card_mod.CARD).is_file())):
        raise ConfigError(f"{out}: exists and is not an exported model; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)


def export(source, out, tflite_modes=DEFAULT_MODES, representative=(), check_audio=None,
           config=None, name: str | None = None, card_extra: dict | None = None,
           onnx: bool = False) -> ExportResult:
    """Export `source` to the folder `out`, every file checked against Keras; see the
    module doc.

    Args:
        source: a run folder, an exported/published folder, or a .keras file.
        out: the export folder (replaced atomically if it holds a previous export).
        tflite_modes: TFLite files to write: "float32", "int8", "full-int8".
        representative: waveforms (22050 Hz) that calibrate full-int8.
        check_audio: an audio file or 22050 Hz waveform for the equality checks (default:
            a synthetic performance), named in the card's `check_audio`.
        config: the ZooConfig (or YAML path) of the model, for a .keras file that does not
            describe itself and has no config.yaml beside it (`load_trained`).
        name: the model's name in the card (default: the config's).
        card_extra: more top-level card entries (training data, licences, held-out
            results); they may not replace the entries export writes (`card.RESERVED`).
        onnx: also write model.onnx (windows -> embeddings; needs the `onnx` extra),
            checked with onnxruntime against Keras within SAVEDMODEL_TOL.

    Returns:
        `ExportResult(path, card)`.

    Raises:
        ConfigError: bad source or target. ExportCheckError: a file misses its tolerance.

    Example:
        >>> res = export("runs/r1", "exported/my_model", ("float32", "int8"))
        >>> res.card["checks"]["savedmodel"]["max_abs_error_vs_keras"] < SAVEDMODEL_TOL
        True
    """
    card_extra = dict(card_extra or {})
    clash = sorted(set(card_extra) & card_mod.RESERVED)
    if clash:
        raise ConfigError(f"export: card_extra may not set {', '.join(clash)} (written by "
                          f"export itself)")
    model, cfg, model_path, info, carried = load_trained(source, config)
    card_extra = {**carried, **card_extra}
    embedder = embedder_of(model, cfg)
    modes = tuple(tflite_modes)
    sr = cfg.features.sample_rate
    clip_samples = int(round(CLIP_SECONDS * sr))
    if check_audio is None:
        wave, check_name = _default_check_audio(sr), "synthetic performance (14 s)"
    elif isinstance(check_audio, (str, os.PathLike)):
        wave, check_name = load_audio(check_audio, sr=sr), os.fspath(check_audio)
    else:
        wave, check_name = check_audio, "<waveform>"
    wave = np.asarray(wave, np.float32)
    out = Path(out).resolve()
    publish.clean_stale(out)  # an earlier export killed part-way (export.publish)
    _prepare_target(out)
    staging = publish.staging_dir(out)
    try:
        graph = EmbeddingGraph(embedder, cfg)
        graph.write(staging / "saved_model", clip_samples)
        embedder.save(staging / "embedder.keras")
        checks = {"savedmodel": {"max_abs_error_vs_keras": check_savedmodel(
            staging / "saved_model", keras_reference(embedder, cfg, wave), wave,
            SAVEDMODEL_TOL), "tolerance": SAVEDMODEL_TOL}}
        if onnx:
            f = cfg.features
            onnx_mod.write(embedder, staging / onnx_mod.ONNX_FILE, f.window_frames, f.n_bins)
            windows = extract_windows(wave, f)
            checks["onnx"] = {"max_abs_error_vs_keras": onnx_mod.check(
                staging / onnx_mod.ONNX_FILE, windows,
                embedder.predict(windows, verbose=0, batch_size=32), SAVEDMODEL_TOL),
                "tolerance": SAVEDMODEL_TOL}
        clips = tflite.clips_of(wave, clip_samples)[:2]
        refs = [keras_reference(embedder, cfg, c).mean(0) for c in clips]
        calib = [c for y in representative for c in tflite.clips_of(y, clip_samples)]
        reference, against = refs, "keras"  # quantised files: vs float32 when exported
        for mode in sorted(modes, key=tflite.MODES.index):  # float32 first
            flat = tflite.convert(staging / "saved_model", mode, calib,
                                  [c.numpy() for c in graph.frontend.projections()])
            checks[f"tflite_{mode}"], outs = _check_tflite(flat, mode, clips, reference,
                                                           against)
            if mode == "float32":
                reference, against = outs, "float32"
            (staging / f"model_{mode}.tflite").write_bytes(flat)
        card = card_mod.write_card(staging, {
            "name": name or cfg.name, "source": str(model_path), "config": cfg.to_dict(),
            "frontend": {**cfg.features.to_dict(), "clip_samples": clip_samples,
                         "window_seconds": cfg.features.window_seconds},
            "embedding_dim": cfg.arch.embedding_dim,
            "tflite": {m: f"model_{m}.tflite" for m in modes},
            "onnx": onnx_mod.ONNX_FILE if onnx else None, **info, "checks": checks,
            "check_audio": check_name, **card_extra})
        publish.publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, card)


__all__ = ["DEFAULT_MODES", "ExportResult", "MIN_COSINE", "SAVEDMODEL_TOL", "TFLITE_TOL",
           "export", "load_trained"]
