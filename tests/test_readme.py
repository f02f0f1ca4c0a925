"""The README's "Using it" section runs as written, in order, in a fresh folder: every
`singer-zoo` line exits 0 and the Python block runs (issue 20: a newcomer's first hour)."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def using_it() -> tuple[list[str], str]:
    """(the shell command lines, the Python block) of README's "Using it" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in section.splitlines()
                if line.startswith("    singer-zoo ")]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return commands, python


def test_the_section_is_found_and_in_the_newcomers_order():
    commands, python = using_it()
    verbs = [shlex.split(c, comments=True)[1] for c in commands]
    assert verbs[:2] == ["models", "data"] and "export" in verbs and "index" in verbs
    assert verbs.index("train") < verbs.index("export") < verbs.index("index")
    assert "singer_zoo.load" in python


@pytest.mark.slow
def test_using_it_runs_as_written_in_a_fresh_folder(tmp_path):
    commands, python = using_it()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for line in commands:
        argv = shlex.split(line, comments=True)
        run = subprocess.run([sys.executable, "-m", "singer_zoo.cli", *argv[1:]], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=1800)
        assert run.returncode == 0, f"{line}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        if argv[1] == "train":
            assert "would take up to" in run.stdout  # the budget estimate
    run = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
