"""The hostile-input probe (bench/hostile_probe.py) stays at 100 % named-or-OK with no
good file lost: every input kind through every public path (issue 20)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import hostile_probe  # noqa: E402


def test_the_corpus_has_every_kind(tmp_path):
    goods, kinds = hostile_probe.make_inputs(tmp_path)
    assert all(g.is_file() for g in goods) and len(kinds) >= 20
    assert kinds["symlink loop"][0].is_symlink() and not kinds["missing file"][0].exists()
    assert (tmp_path / "bomb_400k.wav").stat().st_size > 400_000


@pytest.mark.slow
def test_every_input_through_every_path_is_named_or_ok(tmp_path, capsys):
    columns, rows = hostile_probe.run_probe(work=tmp_path)
    table = hostile_probe.table(columns, rows)
    print(table)
    assert hostile_probe.passed(rows), table
    assert {"data check", "features", "embed", "embed_many", "index build", "index add",
            "index query"} <= set(columns)
