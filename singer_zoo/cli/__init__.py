"""`singer-zoo` command line. Each subcommand lives in its own module of this package and
exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`.

Errors a user can cause (`SingerZooError`) print one line, "singer-zoo: error: ...", and
exit with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from singer_zoo.errors import SingerZooError

SUBCOMMANDS = ("models", "features", "data", "train", "tune", "export", "index", "experiment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="singer-zoo",
        description="Singer identification and singing-performance embedding model zoo.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"singer_zoo.cli.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's INFO/WARNING logs
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SingerZooError as e:
        print(f"singer-zoo: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
