"""Train embedder rows from a training pack (recipes/training_pack.py) within a time budget:
the pretrained embedders' training step, run on the GPU machine (JAX backend, no
TensorFlow there) or anywhere else.

    KERAS_BACKEND=jax python recipes/train_pack.py PACK.npz --out runs/pretrain \
        --row mobile_resnext_attention=150 --row t2_resnext_shallow_average=120 \
        [--batch-size 64] [--learning-rate 3e-4] [--window-hop 1] [--mixed-precision]
        [--objective cosine-softmax] [--short-crops 0.25] [--average 20] [--margin 0.2]
        [--steps 3600] [--channel-eq 10]

For each ROW=SECONDS (or each ROW with `--steps N`: a budget independent of the machine's
speed): the pack's singers are split speaker-disjoint (10 % held out for the
trainer's early-stopping validation, seeded), the row's config gets the budget (epochs of
`--steps-per-epoch` steps, validation every epoch, patience `--patience` epochs), and the
number of epochs is set from a measured step time so that training takes about SECONDS
(compilation excluded), or from N. The runs are `singer_zoo.training.train` runs: OUT/ROW/best.keras
(BN statistics re-estimated), history.csv, loss.png, metrics.json; a killed run resumes.
Siamese rows also get OUT/ROW/embedder.keras: the single-tower embedder alone, without the
optimizer state (what `singer-zoo export` publishes; a quarter of best.keras's size).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from singer_zoo import get_config  # noqa: E402
from singer_zoo.data.pack import read_pack  # noqa: E402
from singer_zoo.training import TrainData, train  # noqa: E402


def split_by_singer(fs, singers: np.ndarray, val_fraction: float, seed: int):
    """(train TrainData, validation TrainData): whole singers held out for validation."""
    ids = np.unique(singers)
    rng = np.random.default_rng(seed)
    n_val = max(2, int(round(val_fraction * len(ids))))
    val_ids = set(rng.choice(ids, n_val, replace=False).tolist())
    is_val = np.array([s in val_ids for s in singers])
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    return (TrainData(fs.subset(tr), singers[tr]), TrainData(fs.subset(va), singers[va]))


def step_seconds(cfg, batch, steps: int = 20) -> float:
    """Seconds per training step of `cfg`'s model on random pairs (after compiling)."""
    import keras

    from singer_zoo.training.trainer import compile_model

    keras.backend.clear_session()
    model = compile_model(cfg, 2)
    f, b = cfg.features.window_frames, cfg.features.n_bins
    x = np.random.default_rng(0).uniform(0, 60, (batch, f, b)).astype("float32")
    y = np.arange(batch) % 2
    return timed_steps(model, [x, x[::-1]] if cfg.train.task == "siamese" else x, y, steps)


def timed_steps(model, inputs, y, steps: int) -> float:
    """Seconds per `model.train_on_batch(inputs, y)`, after 3 warm-up steps (compiling)."""
    for _ in range(3):
        model.train_on_batch(inputs, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(inputs, y)
    float(np.asarray(loss))  # wait for the device
    return (time.perf_counter() - start) / steps


def cosine_softmax_row(cfg, seconds: float, train_data, val_data, args) -> dict:
    """Train `cfg`'s embedder with the cosine softmax for about `seconds` (steps from a
    measured step time; batches of `args.batch_size` windows); OUT/ROW/embedder.keras."""
    import keras

    from singer_zoo.models import build_embedder
    from singer_zoo.training.cosine_softmax import cosine_softmax_model, train_cosine_softmax

    model = cosine_softmax_model(build_embedder(cfg), 8, 16.0)
    model.compile(keras.optimizers.Adam(), keras.losses.SparseCategoricalCrossentropy(True))
    f, b = cfg.features.window_frames, cfg.features.n_bins
    x = np.random.default_rng(0).uniform(0, 60, (args.batch_size, f, b)).astype("float32")
    per_step = timed_steps(model, x, np.arange(args.batch_size) % 8, 10)
    every = args.steps_per_epoch
    steps = args.steps or max(every, int(seconds / per_step) // every * every)
    print(f"{cfg.name}: {per_step * 1000:.0f} ms/step -> {steps} steps of "
          f"{args.batch_size} windows (cosine softmax)", flush=True)
    start = time.perf_counter()
    metrics = train_cosine_softmax(cfg, train_data, val_data, args.out / cfg.name, steps,
                                   args.batch_size, args.learning_rate,
                                   validate_every=every, decay=args.decay,
                                   short=args.short_crops, average=args.average,
                                   margin=args.margin, eq_db=args.channel_eq,
                                   seed=args.seed)
    return {"ms_per_step": per_step * 1000, "wall_seconds":
            round(time.perf_counter() - start, 1), **metrics}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pack", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--row", action="append", required=True, metavar="ROW[=SECONDS]",
                   help="a zoo row and its training time (steps from a measured step time)")
    p.add_argument("--steps", type=int, default=0,
                   help="train every row this many steps instead (a budget that does not "
                        "depend on the machine; a multiple of --steps-per-epoch)")
    p.add_argument("--batch-size", type=int, default=64, help="pairs (siamese) per step")
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--steps-per-epoch", type=int, default=200)
    p.add_argument("--patience", type=int, default=15, help="epochs without improvement")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--window-hop", type=int, default=0,
                   help="frames between the training windows (0: the pack's own hop); 1 puts "
                        "a window at every frame, i.e. random crops of each performance")
    p.add_argument("--objective", choices=("contrastive", "cosine-softmax"),
                   default="contrastive", help="the rows' training objective: the paper's "
                   "siamese pairs (the trainer), or a cosine softmax over the pack's training "
                   "singers (rows with arch.unit_embedding; training.cosine_softmax)")
    p.add_argument("--short-crops", type=float, default=0.0, metavar="FRACTION",
                   help="cosine softmax: this fraction of each batch's windows become short "
                        "recordings, cropped and tiled to a window (default 0)")
    p.add_argument("--decay", action="store_true",
                   help="cosine softmax: cosine learning-rate decay to 1 %% (default: constant)")
    p.add_argument("--average", type=int, default=0, metavar="N",
                   help="cosine softmax: keep the mean of the weights at the last N "
                        "validations (weight averaging) instead of the best validation's")
    p.add_argument("--margin", type=float, default=0.0,
                   help="cosine softmax: additive cosine margin (AM-softmax; default 0)")
    p.add_argument("--channel-eq", type=float, default=0.0, metavar="DB",
                   help="cosine softmax: a random recording channel (smooth gain curve of "
                        "up to DB dB) on every training window (default 0: none)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps % args.steps_per_epoch:  # the trainer's epochs would round it down
        raise SystemExit(f"--steps {args.steps} is not a multiple of --steps-per-epoch "
                         f"{args.steps_per_epoch}")

    pack = read_pack(args.pack)
    row_features = pack.config  # what the rows must use (their configs keep their own hop)
    if args.window_hop:
        pack = dataclasses.replace(pack, config=dataclasses.replace(
            pack.config, window_hop_frames=args.window_hop))
    fs, singers, _ = pack.feature_set()
    print(f"pack: {pack.n_recordings} recordings, {len(pack.singer_names)} singers, "
          f"{len(pack.song_names)} songs, {pack.hours:.2f} h, {fs.n_windows} windows",
          flush=True)
    train_data, val_data = split_by_singer(fs, singers, args.val_fraction, args.seed)
    summary = {}
    for spec in args.row:
        row, _, seconds = spec.partition("=")
        if not (seconds or args.steps):
            raise SystemExit(f"--row {spec}: give ROW=SECONDS or --steps")
        seconds = float(seconds or 0)
        cfg = get_config(row)
        if cfg.features != row_features:
            raise SystemExit(f"{row}: its front end differs from the pack's "
                             f"({cfg.features} vs {row_features})")
        if args.objective == "cosine-softmax":
            summary[row] = cosine_softmax_row(cfg, seconds, train_data, val_data, args)
            print(json.dumps({row: summary[row]}), flush=True)
            continue
        batch = args.batch_size * (2 if cfg.train.task == "siamese" else 1)
        probe = cfg.replace(train={"batch_size": args.batch_size,
                                   "learning_rate": args.learning_rate, "seed": args.seed})
        per_step = step_seconds(probe, batch)
        epochs = args.steps // args.steps_per_epoch if args.steps else \
            max(2, int(seconds / (per_step * args.steps_per_epoch)))
        cfg = probe.replace(train={"max_epochs": epochs, "steps_per_epoch": args.steps_per_epoch,
                                   "validation_every": 1, "patience": args.patience})
        print(f"{row}: {per_step * 1000:.1f} ms/step -> {epochs} epochs x "
              f"{args.steps_per_epoch} steps", flush=True)
        start = time.perf_counter()
        result = train(cfg, train_data, val_data, args.out / row,
                       mixed_precision=args.mixed_precision, verbose=2)
        summary[row] = {"ms_per_step": per_step * 1000, "epochs": epochs,
                        "wall_seconds": round(time.perf_counter() - start, 1),
                        **result.metrics}
        if cfg.train.task == "siamese":
            import keras

            best = keras.saving.load_model(result.best_model_path, compile=False)
            best.embedder.save(args.out / row / "embedder.keras")
        print(json.dumps({row: summary[row]}), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
