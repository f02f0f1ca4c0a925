"""Options shared by the subcommands: one definition, the same names and defaults."""
import pytest

from singer_zoo.batch import Workers
from singer_zoo.cli import build_parser, extraction_workers

EXTRACTING = {
    "features": ["features", "m.csv", "--out", "o"],
    "train": ["train", "mobile_resnext_attention", "--data", "m.csv", "--out", "o"],
    "tune": ["tune", "s.yaml", "--data", "m.csv", "--out", "o"],
    "experiment": ["experiment", "table2", "--data", "m.csv", "--out", "o"],
    "finetune": ["finetune", "mobile_resnext_attention", "--data", "m.csv", "--out", "o"],
}


@pytest.mark.parametrize("command", sorted(EXTRACTING))
def test_extracting_commands_take_cache_workers_and_processes(command):
    parser = build_parser()
    args = parser.parse_args(EXTRACTING[command])
    assert (args.cache, extraction_workers(args)) == (None, Workers(2, processes=False))
    args = parser.parse_args(EXTRACTING[command] + ["--cache", "c", "--workers", "3",
                                                    "--processes"])
    assert (args.cache, extraction_workers(args)) == ("c", Workers(3, processes=True))


@pytest.mark.parametrize("command", ["train", "tune"])
def test_training_commands_share_fold_overwrite_verbose(command):
    args = build_parser().parse_args(EXTRACTING[command] + ["--fold", "4", "--overwrite",
                                                             "--verbose", "2"])
    assert (args.fold, args.overwrite, args.verbose) == (4, True, 2)
    args = build_parser().parse_args(EXTRACTING[command])
    assert (args.fold, args.overwrite, args.verbose) == (0, False, 1)
