"""Whole-table experiments end to end on generated singing, with tiny rows and budgets."""
import json

import pytest

from singer_zoo.cli import main
from singer_zoo.errors import UnknownNameError
from singer_zoo.experiments import Budget, run_table1, run_table2, table_configs
from singer_zoo.registry import get_config

TINY_ARCH = {"block": "resnext", "stem_filters": 8, "stages": [[16]], "cardinality": 4,
             "aggregation": "attention", "dense_units": 32, "dense_layers": 1}
BUDGET = Budget(max_epochs=2, validation_every=1, patience=2, batch_size=8)


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    """A zoo folder holding one tiny row per table, made from the paper's configs."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    for base, name in (("t1_resnext_shallow_attention", "t1_tiny"),
                       ("t2_resnext_shallow_attention", "t2_tiny"),
                       ("mobile_resnext_attention", "mobile_tiny")):
        cfg = get_config(base).replace(name=name, arch=TINY_ARCH)
        cfg.to_yaml(folder / f"{name}.yaml")
    monkeypatch.setenv("SINGER_ZOO_CONFIGS", str(folder))
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from singer_zoo.data import generate_corpus, read_manifest

    out = tmp_path_factory.mktemp("corpus")
    return read_manifest(generate_corpus(out, n_singers=4, n_songs=8, seconds=9.0, seed=3))


def test_unknown_row_lists_valid_names(tiny_zoo):
    with pytest.raises(UnknownNameError, match="t1_tiny"):
        table_configs("table1", ["nope"])
    with pytest.raises(UnknownNameError, match="table1, table2"):
        table_configs("table3")
    # our own rows join a table of the same task when named
    assert [c.name for c in table_configs("table2", ["mobile_tiny"])] == ["mobile_tiny"]
    assert "mobile_tiny" not in [c.name for c in table_configs("table2")]
    with pytest.raises(UnknownNameError):
        table_configs("table1", ["mobile_tiny"])


def test_table1_cross_validation_report(tiny_zoo, corpus, tmp_path):
    md = run_table1(corpus, tmp_path / "t1", budget=BUDGET, n_folds=8, folds=[2],
                    cache_dir=tmp_path / "cache")
    text = md.read_text()
    assert "| baseline |" in text and "| t1_tiny |" in text
    data = json.loads(md.with_suffix(".json").read_text())
    rows = {r["name"]: r for r in data["table1"]}
    tiny = rows["t1_tiny"]
    assert [f["fold"] for f in tiny["folds"]] == [2]
    for key in ("train_accuracy", "test_accuracy", "test_window_accuracy"):
        assert len(tiny[key]) == 1 and 0.0 <= tiny[key][0] <= 1.0
    assert tiny["cnn_params"] > 0 and tiny["total_params"] > tiny["cnn_params"]
    assert 0.0 <= rows["baseline"]["test_accuracy"] <= 1.0
    run = tmp_path / "t1" / "t1_tiny" / "fold2"
    assert (run / "best.keras").exists() and (run / "metrics.json").exists()
    assert sorted(p.name for p in run.parent.iterdir()) == ["fold2"]
    assert (tmp_path / "t1" / "loss.png").stat().st_size > 1000


def test_table2_embedding_report(tiny_zoo, corpus, tmp_path):
    md = run_table2(corpus, tmp_path / "t2", budget=BUDGET, cache_dir=tmp_path / "cache")
    data = json.loads(md.with_suffix(".json").read_text())
    (row,) = data["table2"]
    assert row["name"] == "t2_tiny" and row["test_loss"] > 0
    assert set(data["knn"]) == {"singer", "song"}
    assert set(data["knn"]["singer"]) == {"t2_tiny", "baseline"}
    assert set(data["knn"]["singer"]["baseline"]) == {"1", "3", "5", "7"}
    assert set(data["eer"]["t2_tiny"]) == {"all", "hard"}
    for png in ("knn.png", "tsne_performances.png", "loss.png", "t2_tiny/tsne_clips.png",
                "t2_tiny/loss.png"):
        assert (tmp_path / "t2" / png).stat().st_size > 1000, png
    assert "Test loss" in md.read_text()


def test_cli_experiment_rejects_unknown_row(tiny_zoo, corpus, tmp_path, capsys):
    code = main(["experiment", "table2", "--data", str(corpus.root / "manifest.csv"),
                 "--out", str(tmp_path / "x"), "--rows", "nope"])
    assert code == 2
    assert "unknown table2 row 'nope'" in capsys.readouterr().err
