"""`singer-zoo experiment table1|table2 --data MANIFEST --out DIR` and `singer-zoo demo`.

`experiment` runs every row of a paper table (or `--rows`) with its protocol, the baseline,
the plots and a markdown report next to the paper's figures (docs/experiments.md). `demo`
generates a small synthetic singers x songs corpus and runs a small version of both tables
on it, end to end, in a few minutes on a laptop CPU.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from singer_zoo.cli import add_extraction_options, add_verbose_option, extraction_workers

BUDGET = {"max_epochs": int, "steps_per_epoch": int, "validation_every": int, "patience": int,
          "batch_size": int, "learning_rate": float}
# The demo: the corpus, rows (the mobile-sized backbone, which trains ~10x faster on a CPU
# than the paper's rows) and budgets of the README's main command. The corpus has
# DAMP-balanced's shape (every singer sings 14 songs; Table 2 splits them 6 / 4 / 4 into
# train / validation / test songs, as the paper does), so each test performance has three
# same-singer neighbours for the k-NN. Table 2's embedder learns at 10x the paper's rate
# (docs/experiments.md, "The demo": at 1e-4 the 200 steps end near a collapsed embedding).
DEMO_CORPUS = {"n_singers": 6, "n_songs": 14, "seconds": 10.0}
DEMO_SPLIT = (6 / 14, 4 / 14, 4 / 14)
DEMO_TABLE1 = ["mobile_resnext_attention_classifier"]
DEMO_TABLE2 = ["mobile_resnext_attention"]
DEMO_BUDGET1 = {"max_epochs": 20, "steps_per_epoch": 6, "validation_every": 2, "patience": 8}
DEMO_BUDGET2 = {"max_epochs": 16, "steps_per_epoch": 10, "validation_every": 2, "patience": 8,
                "learning_rate": 1e-3}


def _rows(text: str | None):
    return [r.strip() for r in text.split(",") if r.strip()] if text else None


def _folds(text: str | None):
    return [int(k) for k in text.split(",")] if text else None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "experiment", help="run a whole paper table (train, evaluate, plots, report)",
        description="Run the rows of Table 1 (singer classification, k-fold CV) or Table 2 "
                    "(performance embedding) on a manifest and write report.md next to the "
                    "paper's figures.")
    p.add_argument("table", choices=("table1", "table2"))
    p.add_argument("--data", required=True, metavar="MANIFEST", help="manifest CSV")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--rows", metavar="A,B", help="comma-separated zoo rows (default: all)")
    p.add_argument("--n-folds", type=int, default=10,
                   help="table1: recordings per singer = number of CV folds (default 10)")
    p.add_argument("--folds", metavar="K,L",
                   help="table1: run only these fold indices (default: all)")
    p.add_argument("--no-baseline", action="store_true", help="table1: skip the SVM baseline")
    for name, kind in BUDGET.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=kind,
                       metavar="N" if kind is int else "X",
                       help=f"budget: override train.{name} of every row")
    _common(p)
    p.set_defaults(func=run_experiment)

    d = subparsers.add_parser(
        "demo", help="generate a small corpus and run a small version of both tables",
        description="End-to-end demo on generated singing: corpus, training, evaluation, "
                    "plots and report (a few minutes on CPU).")
    d.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="output folder (default runs/demo)")
    _common(d)
    d.set_defaults(func=run_demo)


def _common(p: argparse.ArgumentParser) -> None:
    add_extraction_options(p, cache_help="feature cache (default OUT/cache)")
    add_verbose_option(p, default=2)


def _run(table: str, manifest_path, out: Path, rows, budget, args, **options) -> Path:
    from singer_zoo.data import read_manifest
    from singer_zoo.experiments import run_table1, run_table2

    manifest = read_manifest(manifest_path)
    cache = Path(args.cache) if args.cache else out / "cache"
    workers = extraction_workers(args)
    if table == "table1":
        return run_table1(manifest, out, rows, budget, cache_dir=cache, workers=workers,
                          verbose=args.verbose, **options)
    return run_table2(manifest, out, rows, budget, cache_dir=cache, workers=workers,
                      verbose=args.verbose, **options)


def run_experiment(args) -> int:
    from singer_zoo.experiments import Budget

    budget = Budget(**{k: getattr(args, k) for k in BUDGET})
    table1 = {"n_folds": args.n_folds, "folds": _folds(args.folds),
              "baseline": not args.no_baseline} if args.table == "table1" else {}
    md = _run(args.table, args.data, Path(args.out), _rows(args.rows), budget, args, **table1)
    print(md.read_text(encoding="utf-8"))
    print(f"report: {md}")
    return 0


def run_demo(args) -> int:
    from singer_zoo.data import generate_corpus
    from singer_zoo.experiments import Budget

    out = Path(args.out)
    manifest = generate_corpus(out / "data", seed=0, **DEMO_CORPUS)
    print(f"corpus: {manifest}")
    reports = [_run("table1", manifest, out / "table1", DEMO_TABLE1, Budget(**DEMO_BUDGET1),
                    args, n_folds=DEMO_CORPUS["n_songs"], folds=[0], baseline=True),
               _run("table2", manifest, out / "table2", DEMO_TABLE2, Budget(**DEMO_BUDGET2),
                    args, fractions=DEMO_SPLIT)]
    for md in reports:
        print(md.read_text(encoding="utf-8"))
    print("reports: " + ", ".join(str(m) for m in reports))
    return 0
