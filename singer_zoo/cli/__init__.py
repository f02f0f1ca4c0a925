"""`singer-zoo` command line. Each subcommand lives in its own module of this package and
exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`.

Errors a user can cause (`SingerZooError`) print one line, "singer-zoo: error: ...", and
exit with status 2, never a traceback. TensorFlow's native log lines are hidden unless
`singer-zoo --verbose COMMAND` asks for them (`singer_zoo.cli.quiet`).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from singer_zoo.cli.quiet import native_logs_hidden
from singer_zoo.errors import SingerZooError

SUBCOMMANDS = ("models", "features", "data", "train", "tune", "export", "pretrained", "index",
               "experiment", "heldout", "finetune")


def add_extraction_options(p: argparse.ArgumentParser,
                           cache_help: str = "feature cache folder (reused across runs)") -> None:
    """--cache DIR, --workers N and --processes, the same in every command that extracts
    features (`extraction_workers(args)` turns the last two into a `Workers`)."""
    p.add_argument("--cache", metavar="DIR", help=cache_help)
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="feature extraction workers: threads, or processes with --processes "
                        "(default 2)")
    p.add_argument("--processes", action="store_true",
                   help="extract on N worker processes instead of threads: up to 1.4x faster "
                        "on many files (m4a, short recordings), ~5 s to start "
                        "(docs/performance.md)")


def extraction_workers(args: argparse.Namespace):
    from singer_zoo.batch import Workers

    return Workers(args.workers, args.processes)


def add_verbose_option(p: argparse.ArgumentParser, default: int = 1) -> None:
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=default,
                   help=f"training output: 0 silent, 1 progress bars, 2 one line per epoch "
                        f"(default {default})")


def add_training_options(p: argparse.ArgumentParser, target: str) -> None:
    """The data and restart options `train` and `tune` share; `target` names what
    --overwrite discards (e.g. "run in RUN_DIR")."""
    p.add_argument("--fold", type=int, default=0, metavar="K",
                   help="cross-validation fold for classifiers without a split column "
                        "(default 0)")
    add_extraction_options(p)
    p.add_argument("--overwrite", action="store_true",
                   help=f"discard an existing {target} and start over")
    add_verbose_option(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="singer-zoo",
        description="Singer identification and singing-performance embedding model zoo.")
    parser.add_argument("--verbose", dest="native_logs", action="store_true",
                        help="show TensorFlow's native log lines (hidden by default)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"singer_zoo.cli.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # decided before the subcommands are imported (some import TensorFlow, which logs)
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    if "--verbose" in argv[:command_at]:
        return _main(argv)
    with native_logs_hidden():
        return _main(argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    # every command reports the files it could not read itself (a line each, or report.md's
    # "Recordings left out"): run_batch's warnings would say it all a second time
    batch_log = logging.getLogger("singer_zoo.batch")
    level = batch_log.level
    batch_log.setLevel(logging.ERROR)
    try:
        return int(args.func(args) or 0)
    except SingerZooError as e:
        print(f"singer-zoo: error: {e}", file=sys.stderr)
        return 2
    finally:
        batch_log.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
