"""Benchmark zoo models on this machine, with and without XLA, side by side.

For each row: training throughput (windows/s; Adam, batch 32, classifier loss, timed over
`--steps` steps after `--warmup` warm-up steps that include compilation) and inference
latency (one 6-s window, batch 1, median of `--calls` calls of a `tf.function` after
warm-up). `jit_compile` is set in `model.compile` for training and on the `tf.function` for
inference. Inputs are random feature windows (batch, 256, 96): speed does not depend on
the values.

    .venv/bin/python bench/bench_models.py            # print the markdown table
    .venv/bin/python bench/bench_models.py --write    # also replace "## Models" in
                                                      # docs/performance.md
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from singer_zoo import get_config
from singer_zoo.models import DEFAULT_JIT_COMPILE, build_classifier

ROWS = ("t1_resnext_shallow_attention", "t1_resnext_deep_attention", "t1_cnn_deep_attention",
        "mobile_resnext_attention")
DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def train_throughput(name: str, jit: bool, steps: int, warmup: int, batch: int = 32) -> float:
    """Training windows per second of `name`'s classifier (46 singers)."""
    keras.backend.clear_session()
    cfg = get_config(name)
    model = build_classifier(cfg, 46, cfg.features.window_frames)
    model.compile(keras.optimizers.Adam(cfg.train.learning_rate),
                  "sparse_categorical_crossentropy", jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 60, (batch, cfg.features.window_frames, cfg.features.n_bins))
    x, y = x.astype("float32"), rng.integers(0, 46, batch)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    elapsed = time.perf_counter() - start
    assert np.isfinite(loss)
    return steps * batch / elapsed


def infer_latency_ms(name: str, jit: bool, calls: int, warmup: int) -> float:
    """Median milliseconds to embed one window (batch 1) with `name`'s backbone + head."""
    keras.backend.clear_session()
    cfg = get_config(name)
    model = build_classifier(cfg, 46, cfg.features.window_frames)
    fn = tf.function(lambda v: model(v, training=False), jit_compile=jit)
    x = tf.constant(np.random.default_rng(0).uniform(
        0, 60, (1, cfg.features.window_frames, cfg.features.n_bins)).astype("float32"))
    for _ in range(warmup):
        fn(x).numpy()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(x).numpy()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def run(rows, steps: int, calls: int, warmup: int) -> list[dict]:
    results = []
    for name in rows:
        r = {"name": name}
        for jit in (False, True):
            tag = "xla" if jit else "eager"
            r[f"train_{tag}"] = train_throughput(name, jit, steps, warmup)
            r[f"infer_{tag}"] = infer_latency_ms(name, jit, calls, warmup)
            print(f"{name} jit={jit}: {r[f'train_{tag}']:.1f} windows/s, "
                  f"{r[f'infer_{tag}']:.1f} ms", flush=True)
        results.append(r)
    return results


def command(results, steps: int, calls: int) -> str:
    """The command line that reproduces `results` and writes them into the doc."""
    rows = [r["name"] for r in results]
    chosen = "" if tuple(rows) == ROWS else f" --rows {' '.join(rows)}"
    return f"python bench/bench_models.py{chosen} --steps {steps} --calls {calls} --write"


def markdown(results, steps: int, calls: int) -> str:
    lines = ["## Models", "",
             f"Measured by `bench/bench_models.py` on {platform.processor() or platform.machine()}"
             f", {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}; training: Adam, "
             f"batch 32 windows of 256 x 96, {steps} steps after warm-up; inference: one window, "
             f"batch 1, median of {calls} calls. \"no XLA\" is `jit_compile=False`. Load "
             f"average at the end: {os.getloadavg()[0]:.1f} (other jobs share the cores, so "
             f"compare columns within a row rather than absolute numbers).", "",
             f"    {command(results, steps, calls)}   # rewrites this section", "",
             "| model | train windows/s, no XLA | train windows/s, XLA | speed-up "
             "| infer ms, no XLA | infer ms, XLA | speed-up |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| `{r['name']}` | {r['train_eager']:.1f} | {r['train_xla']:.1f} "
                     f"| {r['train_xla'] / r['train_eager']:.2f}x | {r['infer_eager']:.1f} "
                     f"| {r['infer_xla']:.1f} | {r['infer_eager'] / r['infer_xla']:.2f}x |")
    train_wins = sum(r["train_xla"] > r["train_eager"] for r in results)
    infer_wins = sum(r["infer_xla"] < r["infer_eager"] for r in results)
    lines += ["", f"XLA was faster for training in {train_wins} of {len(results)} rows and for "
              f"inference in {infer_wins} of {len(results)} rows. The default used by the "
              f"training and inference code is `singer_zoo.models.DEFAULT_JIT_COMPILE = "
              f"{DEFAULT_JIT_COMPILE}` (XLA compiles once per input shape: fixed 256-frame "
              f"windows compile once)."]
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """`text` with its "## Models" section (up to the next "## ") replaced or appended."""
    pattern = re.compile(r"^## Models\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _: section + "\n", text, count=1)
    return text.rstrip("\n") + ("\n\n" if text.strip() else "") + section


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", default=list(ROWS))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = p.parse_args(argv)
    section = markdown(run(args.rows, args.steps, args.calls, args.warmup), args.steps,
                       args.calls)
    print(section)
    if args.write:
        old = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n"
        DOC.write_text(replace_section(old, section), encoding="utf-8")


if __name__ == "__main__":
    main()
