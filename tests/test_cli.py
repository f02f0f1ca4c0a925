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


QUIET_PROBE = """
import os, sys
from singer_zoo.cli import main, models

def run(args):  # a command whose TensorFlow import and native logs we control
    import tensorflow as tf
    tf.constant(1.0) + 1.0
    os.write(2, b"I0000 00:00:1796395431.331107   26225 cudart_stub.cc:31] native note\\n")
    os.write(2, b"E0000 00:00:1796393979.805408   16891 cuda_platform.cc:52] failed call "
                b"to cuInit: INTERNAL: CUDA error: UNKNOWN ERROR (303)\\n")
    print("our own warning", file=sys.stderr)
    return 0

models.run = run
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_native_log_lines_only_with_verbose(verbose):
    """TensorFlow's C++ log lines (its import's own and ones written later) are dropped
    from stderr unless `singer-zoo --verbose`; the command's own messages always show."""
    import os
    import re
    import subprocess
    import sys

    native = re.compile(r"^[IWEF]\d{4} .*\.cc:\d+\]", re.M)
    argv = ["--verbose", "models"] if verbose else ["models"]
    res = subprocess.run([sys.executable, "-c", QUIET_PROBE, *argv], capture_output=True,
                         text=True, env={k: v for k, v in os.environ.items()
                                         if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert res.returncode == 0, res.stderr
    assert "our own warning" in res.stderr
    lines = native.findall(res.stderr)
    assert (len(lines) >= 2) if verbose else lines == [], res.stderr


def test_the_library_never_imports_the_cli():
    """Only singer_zoo.cli imports singer_zoo.cli (the tuner once imported `cli.train`)."""
    import ast
    from pathlib import Path

    import singer_zoo

    root = Path(singer_zoo.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.relative_to(root).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("singer_zoo.cli")]
    assert offenders == []
