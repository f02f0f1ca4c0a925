"""Every zoo config (singer_zoo/zoo_configs/*.yaml): builds, shapes, parameter counts vs the paper,
YAML round trip, .keras save/load, SavedModel export, variable input length; plus the
registry order, the generated docs/model_table.md and `singer-zoo models`."""
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import singer_zoo
from singer_zoo.cli import main as cli_main
from singer_zoo.config import ZooConfig
from singer_zoo.errors import UnknownNameError
from singer_zoo.models import build_embedder, build_from_config
from singer_zoo.models.table import count_params, render
from singer_zoo.registry import all_configs, configs_dir, list_models

NAMES = list_models()
CFGS = all_configs()
AGGREGATING = [n for n in NAMES if CFGS[n].arch.aggregation != "none"]
RNG = np.random.default_rng(2)


def _singers(name):
    """A few different class counts across the rows."""
    return (46, 7, 100)[NAMES.index(name) % 3]


def _slow_if_big(names):
    """The "none" rows (28M-204M parameters) write 0.1-0.8 GB files: slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if CFGS[n].arch.aggregation == "none"
            else n for n in names]


def _windows(cfg, n=2, frames=None):
    frames = frames or cfg.features.window_frames
    return RNG.uniform(0, 60, (n, frames, cfg.features.n_bins)).astype("float32")


def _outputs(model, cfg, x):
    if cfg.train.task == "classifier":
        return np.asarray(model(x, training=False))
    return np.asarray(model([x, x[::-1]], training=False))


@pytest.fixture(autouse=True)
def _clear():
    yield
    keras.backend.clear_session()


def test_zoo_has_every_table_row_in_paper_order():
    tables = [CFGS[n].table for n in NAMES]
    assert tables.count("table1") == 18 and tables.count("table2") == 16
    assert tables == sorted(tables, key=["table1", "table2", "beyond"].index)
    for t in ("table1", "table2"):
        rows = [CFGS[n].paper["table_row"] for n in NAMES if CFGS[n].table == t]
        assert rows == sorted(rows) and len(set(rows)) == len(rows)
    assert [n for n in NAMES if CFGS[n].features.frontend == "cqt"] == [
        "t1_cnn_shallow_max_cqt", "t1_resnext_shallow_attention_cqt"]
    assert singer_zoo.list_models() == NAMES


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="t1_cnn_shallow_max") as err:
        singer_zoo.build_model("t3_nothing")
    assert err.value.name == "t3_nothing" and "mobile_resnext_attention" in err.value.valid


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_paper_protocol(name, tmp_path):
    path = configs_dir() / f"{name}.yaml"
    cfg = ZooConfig.from_yaml(path)
    cfg.to_yaml(tmp_path / "full.yaml")  # every field spelt out, as a run's config.yaml
    assert ZooConfig.from_yaml(tmp_path / "full.yaml") == cfg
    cfg.to_yaml(tmp_path / "c.yaml", minimal=True)
    assert ZooConfig.from_yaml(tmp_path / "c.yaml") == cfg
    # the zoo's files hold the non-default fields only; to rewrite one in that form:
    # ZooConfig.from_yaml(path).to_yaml(path, minimal=True)
    assert (tmp_path / "c.yaml").read_text() == path.read_text(), \
        f"{path.name} is not in minimal form (docs/models.md)"
    t = cfg.train
    assert (t.learning_rate, t.batch_size, t.validation_every) == (1e-4, 32, 50)
    assert (cfg.arch.l2, cfg.arch.dropout) == (1e-6, 0.1)
    # the paper's 16-d embedding; rows of ours beyond the paper may widen it
    assert cfg.arch.embedding_dim == 16 or cfg.table == "beyond"
    assert t.task == {"table1": "classifier", "table2": "siamese"}.get(cfg.table, t.task)
    assert t.patience == {"classifier": 300, "siamese": 1000}[t.task]
    keys = {"table_row", "filters"} | {
        "table1": {"cnn_params", "total_params", "train_accuracy", "train_accuracy_std",
                   "test_accuracy", "test_accuracy_std"},
        "table2": {"cnn_params", "total_params", "test_loss"}, "beyond": set()}[cfg.table]
    assert keys <= set(cfg.paper)


@pytest.mark.parametrize("name", NAMES)
def test_builds_with_paper_parameter_counts_and_shapes(name):
    cfg, k = CFGS[name], _singers(name)
    model = singer_zoo.build_model(name, num_singers=k)
    counts = count_params(cfg, k)
    assert model.count_params() == counts.model
    net = model if cfg.train.task == "classifier" else model.embedder
    backbone = net.get_layer("backbone")
    assert backbone.count_params() == counts.backbone
    assert sum(layer.count_params() for layer in backbone.layers
               if layer.name.startswith(("stem", "stage", "frame", "tdnn"))) == counts.cnn
    if cfg.table != "beyond":
        assert counts.cnn == pytest.approx(cfg.paper["cnn_params"], rel=0.05)
        assert counts.paper_total == pytest.approx(cfg.paper["total_params"], rel=0.05)
    frames = None if cfg.arch.aggregation != "none" else cfg.features.window_frames
    assert net.input_shape == (None, frames, cfg.features.n_bins)
    x = _windows(cfg)
    out = _outputs(model, cfg, x)
    if cfg.train.task == "classifier":
        assert out.shape == (2, k)
        np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)
    else:
        assert out.shape == (2,) and np.all(out >= 0)
        assert model.embedder(x).shape == (2, cfg.arch.embedding_dim)


def test_mobile_model_is_mobile_sized():
    counts = count_params(CFGS["mobile_resnext_attention"])
    assert counts.model < 800_000
    assert CFGS["mobile_resnext_attention"].train.task == "siamese"


@pytest.mark.parametrize("name", _slow_if_big(NAMES))
def test_keras_save_load_gives_identical_outputs(name, tmp_path):
    cfg = CFGS[name]
    model = build_from_config(cfg, num_singers=_singers(name))
    x = _windows(cfg)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(_outputs(loaded, cfg, x), _outputs(model, cfg, x),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", AGGREGATING)
def test_savedmodel_export_reloads(name, tmp_path):
    """The deployable model (classifier, or the embedder of siamese rows) as a SavedModel."""
    cfg = CFGS[name]
    model = build_from_config(cfg, num_singers=_singers(name))
    net = model if cfg.train.task == "classifier" else model.embedder
    net.export(str(tmp_path / "sm"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    for frames in (256, 320):  # variable length survives the export
        x = _windows(cfg, 1, frames)
        np.testing.assert_allclose(reloaded.serve(x), net(x, training=False),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", AGGREGATING)
def test_aggregating_rows_take_any_length(name):
    cfg = CFGS[name]
    model = build_from_config(cfg, num_singers=_singers(name))
    for frames in (256, 512, cfg.arch.pooling_factor * 5 + 3):
        x = _windows(cfg, 2, frames)
        out = _outputs(model, cfg, x)
        assert out.shape == ((2, _singers(name)) if cfg.train.task == "classifier" else (2,))
        assert np.all(np.isfinite(out))


def test_none_rows_need_the_fixed_window():
    cfg = CFGS["t1_cnn_deep_none"]
    assert build_embedder(cfg).input_shape == (None, 256, 96)
    short = build_embedder(cfg, n_frames=128)
    assert short.input_shape == (None, 128, 96)
    assert short.get_layer("backbone").count_params() == count_params(cfg, n_frames=128).backbone


def test_model_table_doc_is_up_to_date():
    doc = Path(__file__).resolve().parent.parent / "docs" / "model_table.md"
    assert doc.read_text(encoding="utf-8") == render(), \
        "regenerate: python -m singer_zoo.models.table > docs/model_table.md"


def test_cli_models_lists_every_model_name_first(capsys):
    assert cli_main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# name")
    assert [line.split()[0] for line in lines[1:]] == NAMES
    row = next(line.split() for line in lines if line.startswith("t1_cnn_shallow_none "))
    assert row[1:7] == ["table1", "vanilla", "64,128", "none", "mel", "classifier"]
    assert row[7:] == [str(count_params(CFGS["t1_cnn_shallow_none"]).paper_total), "200000000"]
    assert cli_main(["models", "--table", "table2", "--names"]) == 0
    assert capsys.readouterr().out.split() == [n for n in NAMES if n.startswith("t2_")]
