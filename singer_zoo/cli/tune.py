"""`singer-zoo tune SPACE.yaml --data MANIFEST --out DIR`: hyperparameter search
(docs/tuning.md).

SPACE.yaml declares the base zoo model and the hyperparameters to tune; the trials use the
data selection, pipeline and early stopping of `singer-zoo train`. Re-running the same
command resumes the search; DIR/best_config.yaml is then a config `singer-zoo train` takes.
"""
from __future__ import annotations

from singer_zoo.cli import add_training_options, extraction_workers
from singer_zoo.tuning.search import TUNERS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="search hyperparameters with keras-tuner (resumable)",
        description="Search the hyperparameters of a zoo model; re-run to resume.")
    p.add_argument("space", metavar="SPACE", help="search space YAML, or the name of one "
                   "shipped in the package (e.g. default)")
    p.add_argument("--data", required=True, metavar="MANIFEST", help="manifest CSV")
    p.add_argument("--out", required=True, metavar="DIR", help="search directory")
    p.add_argument("--tuner", choices=TUNERS, default="bayesian",
                   help="search algorithm (default bayesian, as the paper's spearmint)")
    p.add_argument("--max-trials", type=int, default=10, metavar="N",
                   help="number of trials in total, resumed ones included (default 10)")
    p.add_argument("--epochs-per-trial", type=int, metavar="N",
                   help="override the space's train.max_epochs for each trial")
    p.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="override the space's train.steps_per_epoch for each trial")
    p.add_argument("--fixed", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                   help="fix hyperparameters (hp.Fixed), e.g. --fixed aggregation=attention "
                        "block=vanilla; put SPACE before it")
    add_training_options(p, "search in DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from singer_zoo.tuning.search import run_search
    from singer_zoo.tuning.space import load_space, parse_fixed

    space = load_space(args.space, parse_fixed(args.fixed)).with_trial_budget(
        max_epochs=args.epochs_per_trial, steps_per_epoch=args.steps_per_epoch)
    result = run_search(space, args.data, args.out, tuner=args.tuner,
                        max_trials=args.max_trials, fold=args.fold, cache_dir=args.cache,
                        workers=extraction_workers(args), overwrite=args.overwrite,
                        verbose=args.verbose)
    if result.role == "worker":
        print(f"worker finished: ran {result.trials_run} trial(s)")
        return 0
    print(f"{result.out_dir}: {result.trials_run} trial(s) run by this process; best "
          f"hyperparameters {result.best_values}\nbest config: {result.best_config_path} "
          f"(train it with: singer-zoo train {result.best_config_path} --data ... --out ...)")
    return 0
