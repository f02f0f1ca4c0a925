"""Mobile benchmark (issue 18): the fast mobile row against today's mobile file, side by side.

One process, one core: every .tflite is timed with `num_threads=1` (LiteRT + XNNPACK), the
calls of all files interleaved, so a loaded machine slows them alike and the ratios hold.
Measured:
- latency per 6-s clip (`embed_clip`, median of `--calls`) of today's
  `mobile_resnext_attention` files, of the shipped `mobile_tdnn_statistics` files (both
  `model_{float32,int8}.tflite`, built from the shipped embedders) and of the new row's
  float32 / int8 / full-int8 files (a trained run with `--run`, else random weights: speed
  and size do not depend on the values), and each one's ratio to today's int8 file;
- the parts: the front end alone (and, for the new row, the same front end through TFLite's
  RFFT2D instead of its matrix-product DFT, `FeatureConfig.dft`) and the network alone
  (float32 / int8 / full-int8), which
  is also what a streaming signature could save (it would reuse the front end of
  overlapping windows; consecutive non-overlapping clips share nothing);
- multiply-adds per clip, front end and network separately (`macs`), and the ceiling they
  imply: the peak multiply-add rate of this core, measured in the same run as a large
  float32 / int8 matrix product through LiteRT, divided into them;
- file sizes, and the smallest cosine of the int8 files' embeddings with float32.

    .venv/bin/python bench/bench_mobile.py [--run RUN_DIR] [--calls 50]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from singer_zoo import get_config, pretrained
from singer_zoo.data.synthetic import render, singer_params, song_params
from singer_zoo.export import export, tflite
from singer_zoo.features import build_frontend
from singer_zoo.models import build_from_config

SR, CLIP = 22050, 132300
ROW = "mobile_fast_attention"
# the "today" file, and the shipped x-vector mobile embedder (built into the cache)
TODAY, XVECTOR = "mobile_resnext_attention", "mobile_tdnn_statistics"
MODES = ("float32", "int8", "full-int8")


def voice(seconds, singer, song, seed):
    return render(singer_params(0, singer), song_params(0, song), seconds, SR,
                  np.random.default_rng(seed))


def frontend_macs(f) -> dict:
    """Multiply-adds of the Mel front end per 6-s clip: window and real FFT (counted as
    n_fft log2(n_fft) per frame), or the two matrix products of `dft="matmul"` (window
    folded in, 2 N N1 + 2 N1 N2 (N2 + 2)); power; the non-zero Mel filter weights."""
    from singer_zoo.features import dft
    from singer_zoo.features.mel import MelSpectrogram

    frames = 1 + CLIP // f.hop_length
    mel = sum(b.size for _, _, b in MelSpectrogram(f)._groups_np)
    n, (n1, n2) = f.n_fft, dft.factors(f.n_fft)
    spectrum = 2 * n * n1 + 2 * n1 * n2 * (n2 + 2) if f.dft == "matmul" else n + n * np.log2(n)
    per = spectrum + 2 * (f.n_fft // 2 + 1) + mel
    return {"frames": frames, "macs": int(frames * per)}


def network_macs(embedder) -> int:
    """Multiply-adds of one window through the embedder (conv, separable, dense, attention)."""
    total = 0
    for layer in embedder.get_layer("backbone").layers + [embedder.get_layer("embedding")]:
        out = layer.output.shape
        if isinstance(layer, keras.layers.SeparableConv2D):
            k, c_in = layer.kernel_size, layer.input.shape[-1]
            total += out[1] * out[2] * (k[0] * k[1] * c_in + c_in * out[-1])
        elif isinstance(layer, keras.layers.Conv2D):  # also GroupedConv2D's parts
            k, c_in = layer.kernel_size, layer.input.shape[-1] // layer.groups
            total += out[1] * out[2] * k[0] * k[1] * c_in * out[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * out[-1]
        elif layer.name.startswith("aggregation_attention"):
            total += 2 * layer.input.shape[1] * layer.input.shape[2]
        elif hasattr(layer, "convs"):  # GroupedConv2D
            for c in layer.convs:
                total += out[1] * out[2] * c.kernel_size[0] * c.kernel_size[1] * \
                    (layer.input.shape[-1] // layer.groups) * c.filters
    return int(total)


def _convert(fn, spec, mode, rep=()):
    conc = tf.function(fn, input_signature=[spec]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc])
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "full-int8":
        conv.representative_dataset = lambda: ([r] for r in rep)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def peak_models(rng) -> dict:
    """Large matrix products (256 x 1024 @ 1024 x 1024) in float32 and full int8: the
    peak multiply-add rate LiteRT reaches on this core."""
    w = tf.constant(rng.standard_normal((1024, 1024)).astype(np.float32) * 0.03)
    spec = tf.TensorSpec([256, 1024], tf.float32)
    rep = [rng.standard_normal((256, 1024)).astype(np.float32) for _ in range(4)]
    return {f"peak {m}": (_convert(lambda x: tf.matmul(x, w), spec, m, rep), rep[0],
                          256 * 1024 * 1024) for m in ("float32", "full-int8")}


class Timed:
    def __init__(self, flat: bytes, x: np.ndarray):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_content=flat, num_threads=1)
        self.it.allocate_tensors()
        self.index, self.x, self.times = self.it.get_input_details()[0]["index"], x, []
        self()

    def __call__(self):
        t = time.perf_counter()
        self.it.set_tensor(self.index, self.x)
        self.it.invoke()
        self.times.append((time.perf_counter() - t) * 1e3)

    @property
    def ms(self) -> float:
        return statistics.median(self.times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="trained run folder of the new row (default: random weights)")
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cfg = get_config(ROW)
    clip = voice(6.0, 1, 1, 7)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else Path(tmp) / "run"
        if not args.run:
            keras.utils.set_random_seed(0)
            run.mkdir()
            build_from_config(cfg, n_frames=cfg.features.window_frames).save(run / "best.keras")
            cfg.to_yaml(run / "config.yaml")
        calib = [voice(12.0, i, 4, 50 + i) for i in range(4)]
        out = export(run, Path(tmp) / "out", MODES, representative=calib).path
        files = {f"{label} {m}": (pretrained.build(name) / f"model_{m}.tflite").read_bytes()
                 for label, name in (("today", TODAY), ("x-vector", XVECTOR))
                 for m in ("float32", "int8")}
        files.update({f"new {m}": (out / f"model_{m}.tflite").read_bytes() for m in MODES})
        embedder = keras.saving.load_model(run / "best.keras", safe_mode=True).embedder
    today_cfg = get_config("mobile_resnext_attention")
    today_emb = build_from_config(today_cfg, n_frames=256).embedder
    parts = {}
    for name, c, emb in (("today", today_cfg, today_emb), ("new", cfg, embedder)):
        f = c.features
        front = build_frontend(f, name="frontend")
        parts[f"{name} front end float32"] = (_convert(lambda w, fr=front: fr(tf.expand_dims(w, 0)),
                                                       tf.TensorSpec([CLIP], tf.float32),
                                                       "float32"), clip)
        if f.dft != "rfft":  # the same front end through TFLite's RFFT2D, for the ratio
            rfft = build_frontend(dataclasses.replace(f, dft="rfft"), name="frontend")
            parts[f"{name} front end float32, RFFT2D"] = (_convert(
                lambda w, fr=rfft: fr(tf.expand_dims(w, 0)), tf.TensorSpec([CLIP], tf.float32),
                "float32"), clip)
        spec = tf.TensorSpec([1, f.window_frames, f.n_bins], tf.float32)
        rep = [rng.uniform(0, 60, (1, f.window_frames, f.n_bins)).astype(np.float32)
               for _ in range(8)]
        for m in MODES:
            parts[f"{name} network {m}"] = (_convert(lambda x, e=emb: e(x, training=False), spec, m,
                                                     rep), rep[0])
    timed = {k: Timed(v, clip) for k, v in files.items()}
    timed.update({k: Timed(flat, x) for k, (flat, x) in parts.items()})
    peaks = peak_models(rng)
    timed.update({k: Timed(flat, x) for k, (flat, x, _) in peaks.items()})
    for _ in range(args.calls):
        for t in timed.values():
            t()
    ref = timed["today int8"].ms
    print("| file / part | size (KB) | ms per 6-s clip, 1 thread | / today's int8 file |")
    print("|---|---|---|---|")
    for k, t in timed.items():
        if k.startswith("peak"):
            continue
        size = f"{len(files[k]) / 1e3:.0f}" if k in files else "-"
        print(f"| {k} | {size} | {t.ms:.3f} | {t.ms / ref:.3f} |")
    peak = {m: peaks[f"peak {m}"][2] / (timed[f"peak {m}"].ms * 1e-3) for m in
            ("float32", "full-int8")}
    print(f"\npeak multiply-adds per second on this core: float32 {peak['float32'] / 1e9:.1f} G,"
          f" int8 {peak['full-int8'] / 1e9:.1f} G")
    print("\n| row | front end MACs | network MACs | ceiling (float32 peak) | measured float32 |")
    print("|---|---|---|---|---|")
    for name, c, emb in (("today", today_cfg, today_emb), ("new", cfg, embedder)):
        fe, net = frontend_macs(c.features)["macs"], network_macs(emb)
        ceil = (fe + net) / peak["float32"] * 1e3
        print(f"| {name} | {fe / 1e6:.1f} M | {net / 1e6:.1f} M | {ceil:.3f} ms | "
              f"{timed[f'{name} float32'].ms:.3f} ms |")
    embs = {m: [tflite.run(files[f"new {m}"], voice(6.0, s, 11, s))["embedding"]
                for s in range(10)] for m in MODES}
    for m in ("int8", "full-int8"):
        cos = min(tflite.cosine(a, b) for a, b in zip(embs[m], embs["float32"]))
        print(f"new {m}: min cosine with float32 over 10 clips {cos:.4f}")


if __name__ == "__main__":
    main()
