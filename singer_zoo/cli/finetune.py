"""`singer-zoo finetune MODEL --data MANIFEST --out DIR`: fine-tune a shipped embedder on
your own singers and export the result (see `singer_zoo.training.finetune`)."""
from __future__ import annotations

from singer_zoo.cli import add_extraction_options, add_verbose_option


def register(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a shipped embedder on your singers "
                              "and export it",
                              description="Fine-tune an exported embedder (name or folder), a "
                                          "run folder or a .keras file on the singers of "
                                          "MANIFEST (contrastive loss on same/different-"
                                          "singer pairs, a quarter of the singers held out "
                                          "for validation) and export the best epoch.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--data", required=True, metavar="MANIFEST")
    p.add_argument("--out", required=True, metavar="DIR", help="export folder")
    p.add_argument("--run", metavar="DIR", help="run folder (default: DIR_run)")
    p.add_argument("--steps", type=int, default=50, help="updates per epoch (default 50)")
    p.add_argument("--epochs", type=int, default=10, help="default 10")
    p.add_argument("--learning-rate", type=float, default=3e-5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--validation-fraction", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tflite", default="float32,int8", metavar="MODES",
                   help="TFLite modes to export, or none (default float32,int8)")
    add_extraction_options(p)
    add_verbose_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from singer_zoo.training.finetune import finetune

    modes = () if args.tflite == "none" else tuple(args.tflite.split(","))
    res = finetune(args.model, args.data, args.out, run_dir=args.run, steps=args.steps,
                   epochs=args.epochs, learning_rate=args.learning_rate,
                   batch_size=args.batch_size, validation_fraction=args.validation_fraction,
                   seed=args.seed, cache_dir=args.cache, workers=args.workers,
                   tflite_modes=modes, verbose=args.verbose)
    m = res.metrics
    print(f"validation loss on {len(m['validation_singers'])} held-out singers: "
          f"{m['val_loss_before']:.4f} -> {m['best_val_loss']:.4f} (epoch {m['best_epoch']}); "
          f"exported to {res.export_dir}")
    return 0
