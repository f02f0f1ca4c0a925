"""Export benchmark: TFLite float32 / int8 / full-int8 vs SavedModel, side by side.

For each row (`--rows`, default the mobile row and Table 2 row 4) a siamese model is
exported with all three TFLite modes (full-int8 calibrated on synthetic performances):
the trained run given by `--run ROW=RUN_DIR`, else random weights (speed and file size
do not depend on the values). Measured:
- file size of each .tflite and of the SavedModel;
- TFLite latency per 6-s clip (one window) with `num_threads=1` (median of `--calls`);
- throughput in seconds of audio per second: TFLite = 6 s / latency (clip by clip, no
  overlap); SavedModel = a 60-s recording through `embed_waveform` (26 windows at the
  training's 20 % hop, i.e. 2.6 times as many windows per second of audio);
- agreement with float32: the smallest cosine between a file's and the float32 file's
  embeddings over the kNN corpus;
- for trained runs only: leave-one-out 1-NN singer accuracy of performance embeddings
  (mean of three 6-s clip embeddings) of 10 singers x 3 songs the run never saw
  (synthetic corpus songs 10-12).

    .venv/bin/python bench/bench_export.py [--rows a,b] [--run ROW=RUN_DIR] [--calls 20]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from singer_zoo import get_config
from singer_zoo.data.synthetic import render, singer_params, song_params
from singer_zoo.evaluation.knn import knn_accuracies
from singer_zoo.export import export, tflite
from singer_zoo.models import build_from_config

SR = 22050
MODES = ("float32", "int8", "full-int8")


def voice(seconds, singer, song, seed):
    return render(singer_params(0, singer), song_params(0, song), seconds, SR,
                  np.random.default_rng(seed))


def latency_ms(path, clip, calls) -> float:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=1).get_signature_runner("embed_clip")
    runner(waveform=clip)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        runner(waveform=clip)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def bench_row(name: str, run: Path | None, calls: int, tmp: Path) -> list[str]:
    if run is None:
        cfg = get_config(name)
        keras.utils.set_random_seed(0)
        run = tmp / name
        run.mkdir()
        build_from_config(cfg, n_frames=cfg.features.window_frames).save(run / "best.keras")
        cfg.to_yaml(run / "config.yaml")
    trained = (run / "metrics.json").is_file()
    calib = [voice(12.0, i, 4, 50 + i) for i in range(4)]
    t = time.perf_counter()
    out = export(run, tmp / f"{name}_export", MODES, representative=calib).path
    export_s = time.perf_counter() - t
    clip = voice(6.0, 1, 1, 7)
    perfs = [(i, tflite.clips_of(voice(18.0, i, j, 100 + 3 * i + j), 132300))
             for i in range(10) for j in range(10, 13)]
    labels = [i for i, _ in perfs]
    embs = {m: np.stack([np.mean([tflite.run(out / f"model_{m}.tflite", c)["embedding"]
                                  for c in clips], 0) for _, clips in perfs]) for m in MODES}
    served = tf.saved_model.load(str(out / "saved_model"))
    long = tf.constant(voice(60.0, 2, 2, 9))
    served.embed_waveform(long)
    t = time.perf_counter()
    for _ in range(3):
        served.embed_waveform(long)
    sm_tput = 3 * 60.0 / (time.perf_counter() - t)
    sm_mb = sum(p.stat().st_size for p in (out / "saved_model").rglob("*") if p.is_file()) / 1e6
    label = f"{name} ({'trained' if trained else 'random weights'})"
    rows = [f"| {label} | SavedModel (all threads) | {sm_mb:.2f} | - | {sm_tput:.0f} | - | - |"]
    for m in MODES:
        ms = latency_ms(out / f"model_{m}.tflite", clip, calls)
        cos = min(tflite.cosine(a, b) for a, b in zip(embs[m], embs["float32"]))
        acc = f"{knn_accuracies(embs[m], labels, ks=(1,))[1]:.3f}" if trained else "-"
        mb = (out / f"model_{m}.tflite").stat().st_size / 1e6
        rows.append(f"| {label} | TFLite {m} (1 thread) | {mb:.2f} | {ms:.1f} | "
                    f"{6000 / ms:.0f} | {cos:.4f} | {acc} |")
    print(f"{name}: export with 3 TFLite modes took {export_s:.0f} s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="mobile_resnext_attention,t2_cnn_shallow_attention")
    ap.add_argument("--run", action="append", default=[], metavar="ROW=RUN_DIR",
                    help="use this trained run for ROW (repeatable)")
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    runs = {k: Path(v) for k, v in (r.split("=", 1) for r in args.run)}
    lines = ["| row | file | size (MB) | latency per 6-s clip (ms) | audio s / s | "
             "min cosine vs float32 | 1-NN singer acc (30 performances, 10 singers) |",
             "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.rows.split(","):
            lines += bench_row(name, runs.get(name), args.calls, Path(tmp))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
