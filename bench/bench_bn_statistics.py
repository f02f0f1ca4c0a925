"""Batch-norm statistics after a short run: held-out accuracy per BN momentum, with the
moving statistics as training left them and after precise BN (docs/training.md).

The demo's Table 1 run (corpus 6 singers x 10 songs x 10 s, seed 0; fold 0 of the 10-fold
protocol; mobile_resnext_attention_classifier with the demo's budget), once per momentum,
with precise BN off in the trainer. Each trained best model is then scored in inference
mode twice: as trained, and after `recompute_bn_statistics` over `--bn-batches` batches of
32 training windows. Prints a markdown table and writes it, with the raw numbers, to
`--out`/bn_statistics.json.

    PYTHONPATH=$PWD python bench/bench_bn_statistics.py --out runs/bench_bn
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

from singer_zoo.cli.experiment import DEMO_BUDGET, DEMO_CORPUS, DEMO_TABLE1
from singer_zoo.data import generate_corpus, load_feature_set, read_manifest
from singer_zoo.evaluation.protocols import cv_folds
from singer_zoo.experiments import Budget
from singer_zoo.experiments.classification import accuracies
from singer_zoo.registry import all_configs
from singer_zoo.training import load_split, train
from singer_zoo.training.precise_bn import recompute_bn_statistics


def train_batches(feature_set, n: int, batch: int = 32, seed: int = 0):
    """`n` batches of `batch` training windows drawn without replacement per pass."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(feature_set.n_windows)
                            for _ in range(n * batch // feature_set.n_windows + 1)])
    for i in range(n):
        yield feature_set.windows(np.sort(order[i * batch:(i + 1) * batch]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench_bn")
    p.add_argument("--momenta", default="0.99,0.9")
    p.add_argument("--bn-batches", type=int, default=20)
    args = p.parse_args()
    out = Path(args.out)
    manifest = read_manifest(generate_corpus(out / "data", seed=0, **DEMO_CORPUS))
    fold = cv_folds(manifest, DEMO_CORPUS["n_songs"], 0)[0]
    base = Budget(**DEMO_BUDGET).apply(all_configs()[DEMO_TABLE1[0]])
    rows = []
    for m in (float(x) for x in args.momenta.split(",")):
        cfg = base.replace(arch={"bn_momentum": m}, train={"precise_bn_batches": 0})
        tr, va, classes, _ = load_split(cfg, fold.train, fold.validation, out / "cache")
        t0 = time.time()
        res = train(cfg, tr, va, out / f"momentum_{m}", class_names=classes, verbose=0)
        seconds = time.time() - t0
        model = keras.saving.load_model(res.best_model_path)
        test_fs, _ = load_feature_set(fold.test, cfg.features, cache_dir=out / "cache")
        index = {s: i for i, s in enumerate(classes)}
        test_labels = [index[r.singer] for r in test_fs.recordings]
        row = {"momentum": m, "best_epoch": res.metrics["best_epoch"],
               "epochs_run": res.metrics["epochs_run"], "train_seconds": round(seconds, 1)}
        for stage in ("trained", "precise"):
            if stage == "precise":
                recompute_bn_statistics(model, train_batches(tr.features, args.bn_batches),
                                        args.bn_batches)
            row[stage] = {"train": accuracies(model, tr.features, tr.labels)["recording"],
                          "test": accuracies(model, test_fs, test_labels)["recording"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "bn_statistics.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print("| BN momentum | best epoch / run | train acc | test acc | train acc, precise BN "
          "| test acc, precise BN |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['momentum']} | {r['best_epoch']} / {r['epochs_run']} | "
              f"{r['trained']['train']:.3f} | {r['trained']['test']:.3f} | "
              f"{r['precise']['train']:.3f} | {r['precise']['test']:.3f} |")


if __name__ == "__main__":
    main()
