"""Every zoo row on the JAX backend: training and inference throughput (windows/s) in float32
and in bf16 mixed precision, FLOPs per window and the share of the chip's measured bf16 matrix
rate; then short training runs of embedder rows from a training pack. Needs no TensorFlow:
it is what runs on the GPU machine (docs/performance.md, "GPU").

    KERAS_BACKEND=jax python bench/bench_gpu.py --out OUT [--pack PACK.npz]
        [--rows mobile_resnext_attention,...] [--throughput-s 240] [--train ROW=SECONDS,...]

Throughput: each row's own task model (Table 1 rows: the 46-singer softmax classifier; the
others: the siamese model, two windows per pair), Adam, `--batch` windows a step on random
feature windows (speed does not depend on the values), timed over at least 0.5 s after two
warm-up steps that include XLA compilation; inference is the classifier or the single-tower
embedder in inference mode on the same batch. FLOPs per window are XLA's count for one
inference forward pass (training is about 3x that). Rows are measured in order until
`--throughput-s` is spent; the rest are listed as not measured.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from singer_zoo import get_config, list_models  # noqa: E402
from singer_zoo.models import build_from_config  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16")


def matmul_rate(n: int = 8192, reps: int = 20) -> float:
    """Measured dense bf16 matrix-product rate (FLOP/s) on the default device."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(k1, (n, n), jnp.bfloat16)
    b = jax.random.normal(k2, (n, n), jnp.bfloat16)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()
    start = time.perf_counter()
    for _ in range(reps):
        out = f(a, b)
    out.block_until_ready()
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def _timed(step, min_seconds: float = 0.5) -> float:
    """Seconds per call of `step` (which must block), after two warm-up calls."""
    step(), step()
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 3:
            return elapsed / n


def forward_flops(model: keras.Model, x: np.ndarray) -> float:
    """XLA's FLOP count of one inference forward pass of `model` on the batch `x`."""
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    fn = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
    lowered = fn.lower(tv, ntv, x)
    # The lowered module's count is None on the GPU machine's jax (0.11, CUDA): fall back to
    # the compiled executable's.
    for stage in (lowered, lowered.compile()):
        cost = stage.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
        if cost and "flops" in cost:
            return float(cost["flops"])
    return float("nan")


def measure_row(name: str, policy: str, batch: int) -> dict:
    """Training and inference windows/s and forward FLOPs per window of one row."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)
    try:
        cfg = get_config(name)
        frames, bins = cfg.features.window_frames, cfg.features.n_bins
        model = build_from_config(cfg, num_singers=46, n_frames=frames)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 60, (batch, frames, bins)).astype("float32")
        if cfg.train.task == "classifier":
            model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy",
                          jit_compile=True)
            y = rng.integers(0, 46, batch)
            train_in, infer = x, model
        else:
            from singer_zoo.models import ContrastiveLoss
            model.compile(keras.optimizers.Adam(1e-4), ContrastiveLoss(cfg.train.margin),
                          jit_compile=True)
            half = batch // 2
            train_in, y = [x[:half], x[half:]], rng.integers(0, 2, half).astype("float32")
            infer = model.embedder
        losses = []
        train_s = _timed(lambda: losses.append(float(model.train_on_batch(train_in, y))))
        predict = jax.jit(lambda tv, ntv, x: infer.stateless_call(tv, ntv, x)[0])
        tv = [v.value for v in infer.trainable_variables]
        ntv = [v.value for v in infer.non_trainable_variables]
        xj = jnp.asarray(x)
        infer_s = _timed(lambda: predict(tv, ntv, xj).block_until_ready())
        try:  # a missing FLOP count must not lose the measured throughput
            flops = forward_flops(infer, x) / batch
        except Exception:  # noqa: BLE001
            flops = float("nan")
        return {"row": name, "policy": policy, "batch": batch,
                "params": int(model.count_params()),
                "train_windows_s": batch / train_s, "infer_windows_s": batch / infer_s,
                "forward_flops_per_window": flops,
                "finite_loss": bool(np.all(np.isfinite(losses)))}
    finally:
        keras.mixed_precision.set_global_policy("float32")


def throughput(rows, batch: int, budget_s: float, peak: float, log) -> list[dict]:
    """measure_row for each row and policy until `budget_s` is spent."""
    results, start = [], time.perf_counter()
    for name in rows:
        for policy in POLICIES:
            if time.perf_counter() - start > budget_s:
                results.append({"row": name, "policy": policy, "skipped": "time budget"})
                continue
            t0 = time.perf_counter()
            try:
                r = measure_row(name, policy, batch)
            except Exception as e:  # one row's failure must not lose the others' figures
                r = {"row": name, "policy": policy, "error": f"{type(e).__name__}: {e}"}
            else:
                r["train_peak_share"] = 3 * r["forward_flops_per_window"] * \
                    r["train_windows_s"] / peak
                r["infer_peak_share"] = r["forward_flops_per_window"] * \
                    r["infer_windows_s"] / peak
            r["seconds"] = round(time.perf_counter() - t0, 1)
            results.append(r)
            log(json.dumps(r))
    return results


def markdown(results, peak: float, batch: int) -> str:
    """The throughput table of docs/performance.md."""
    out = [f"Windows of 256 x 96 Mel frames, batch {batch} windows, Adam; measured bf16 "
           f"matrix rate {peak / 1e12:.0f} TFLOP/s (8192^3 product). Share: FLOPs done per "
           "second (training counted as 3x the forward pass) over that rate.", "",
           "| row | policy | params | GFLOP / window | train windows/s | share | "
           "inference windows/s | share |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "train_windows_s" not in r:
            out.append(f"| `{r['row']}` | {r['policy']} | - | - | "
                       f"{r.get('skipped') or r.get('error', '')[:80]} | - | - | - |")
            continue
        out.append(f"| `{r['row']}` | {r['policy']} | {r['params']:,} | "
                   f"{r['forward_flops_per_window'] / 1e9:.2f} | {r['train_windows_s']:,.0f} | "
                   f"{100 * r['train_peak_share']:.1f} % | {r['infer_windows_s']:,.0f} | "
                   f"{100 * r['infer_peak_share']:.1f} % |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--rows", default="", help="comma-separated rows (default: every row)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--throughput-s", type=float, default=240.0)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logfile = open(args.out / "bench_gpu.log", "a", encoding="utf-8")

    def log(line: str) -> None:
        print(line, flush=True)
        logfile.write(line + "\n")
        logfile.flush()

    log(f"jax {jax.__version__}, keras {keras.__version__}, python {platform.python_version()}"
        f", devices {jax.devices()}")
    peak = matmul_rate() if jax.default_backend() == "gpu" else matmul_rate(1024, 3)
    log(f"bf16 matrix rate {peak / 1e12:.1f} TFLOP/s")
    rows = [r for r in args.rows.split(",") if r] or list_models()
    results = throughput(rows, args.batch, args.throughput_s, peak, log)
    (args.out / "throughput.json").write_text(json.dumps(
        {"peak_bf16_flops": peak, "device": str(jax.devices()[0]), "results": results},
        indent=1), encoding="utf-8")
    table = markdown(results, peak, args.batch)
    (args.out / "throughput.md").write_text(table, encoding="utf-8")
    log(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
