"""`singer-zoo train CONFIG --data MANIFEST --out RUN_DIR`: fit a zoo model (docs/training.md).

CONFIG is a zoo name or a YAML path; the options override its `train` section. The data
split: a classifier uses the manifest's `split` column when every row has one, else fold
`--fold` of the paper's 10-fold cross validation (section 3.4); an embedder uses the
song-disjoint train/validation split of section 3.5. Recordings that cannot be read are
reported and skipped. Re-running the same command resumes an interrupted run.

`--features DIR` reads the features from a `singer-zoo features` output folder instead of
decoding audio (the audio files need not exist: only DIR and the manifest travel), which is
how a machine without the audio libraries or TensorFlow trains (KERAS_BACKEND=jax).
"""
from __future__ import annotations

import sys

from singer_zoo.cli import add_training_options, extraction_workers

STRATEGIES = ("default", "data-parallel", "mirrored", "multiworker")  # distribute.STRATEGIES

OVERRIDES = ("max_epochs", "steps_per_epoch", "validation_every", "patience", "batch_size",
             "seed")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a zoo model (resumable)",
        description="Train a zoo model into a run directory; re-run to resume.")
    p.add_argument("config", metavar="CONFIG", help="zoo model name or YAML config path")
    p.add_argument("--data", required=True, metavar="MANIFEST", help="manifest CSV")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    for name in OVERRIDES:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N",
                       help=f"override train.{name}")
    p.add_argument("--features", metavar="DIR",
                   help="read features from this `singer-zoo features` folder (by recording "
                        "id; no audio file is opened)")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="distribution: data-parallel (KERAS_BACKEND=jax, every local "
                        "device), mirrored / multiworker (TensorFlow; multiworker reads "
                        "TF_CONFIG)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="16-bit compute on GPU: bfloat16 on JAX, float16 on TensorFlow "
                        "(ignored without a GPU)")
    add_training_options(p, "run in RUN_DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from singer_zoo.training.distribute import make_strategy

    strategy = make_strategy(args.strategy)  # first: collective ops need a fresh runtime

    from singer_zoo.data import read_manifest
    from singer_zoo.evaluation.protocols import select_recordings
    from singer_zoo.registry import get_config
    from singer_zoo.training import load_split, train

    cfg = get_config(args.config)
    cfg = cfg.with_train(**{k: getattr(args, k) for k in OVERRIDES})
    manifest = read_manifest(args.data, check_files=args.features is None)
    train_recs, val_recs = select_recordings(manifest, cfg.train.task, args.fold)
    train_data, val_data, classes, failed = load_split(
        cfg, train_recs, val_recs, cache_dir=args.cache, workers=extraction_workers(args),
        features_dir=args.features)
    for message in failed.values():
        print(f"skipped {message}", file=sys.stderr)
    result = train(cfg, train_data, val_data, args.out, class_names=classes,
                   strategy=strategy, mixed_precision=args.mixed_precision,
                   overwrite=args.overwrite, verbose=args.verbose)
    m = result.metrics
    if not result.already_done and "best_val_loss" in m:
        print(f"{args.out}: {m['epochs_run']} epochs, best val loss {m['best_val_loss']} "
              f"at epoch {m['best_epoch']}"
              f"{' (stopped early)' if m['stopped_early'] else ''}")
    return 0
