"""The keras-hub-shaped models: `SingerBackbone` and the task models built from explicit
arguments and rebuilt from their `get_config`, `from_preset` constructors, `.keras` files that
describe themselves (export needs nothing beside them), and the embedders saved before the
task classes (plain functional models) still loading and exporting."""
import shutil

import keras
import numpy as np
import pytest

from singer_zoo import get_config
from singer_zoo.config import FeatureConfig, ZooConfig
from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.export import card, export
from singer_zoo.models import (SiameseModel, SingerBackbone, SingerClassifier, SingerEmbedder,
                               build_embedder, zoo_config_of)
from singer_zoo.models.table import count_params
from singer_zoo.training.finetune import base_model
from test_export import make_run, voice

X = np.random.default_rng(0).uniform(0, 60, (2, 256, 96)).astype("float32")


def test_backbone_is_built_from_explicit_arguments_and_its_config():
    kwargs = {"n_bins": 32, "n_frames": None, "block": "vanilla", "stem_filters": 4,
              "stages": [[8], [8]], "stem_kernel": 3, "kernel": 3, "aggregation": "max",
              "dense_units": 8, "dense_layers": 1}
    bb = SingerBackbone(**kwargs)
    config = bb.get_config()
    assert {k: config[k] for k in kwargs} == kwargs
    clone = SingerBackbone.from_config(config)
    assert [w.shape for w in clone.weights] == [w.shape for w in bb.weights]
    assert [layer.name for layer in clone.layers] == [layer.name for layer in bb.layers]
    assert "stage2_block1_conv2_conv" in [layer.name for layer in bb.layers]
    with pytest.raises(ConfigError, match="ArchConfig: aggregation='sum'"):
        SingerBackbone(aggregation="sum")


def test_from_preset_builds_the_zoo_rows_with_the_paper_counts():
    cfg = get_config("t1_cnn_shallow_max")
    clf = SingerClassifier.from_preset("t1_cnn_shallow_max", num_singers=46)
    assert clf.count_params() == count_params(cfg, 46).model
    assert clf.backbone.count_params() == count_params(cfg).backbone
    emb = SingerEmbedder.from_preset("mobile_resnext_attention")
    assert emb.count_params() == 285_057 and emb.output_shape == (None, 16)
    assert emb.features == FeatureConfig() and emb.zoo_name == "mobile_resnext_attention"
    sia = SiameseModel.from_preset("t2_cnn_shallow_max")
    assert isinstance(sia.embedder, SingerEmbedder)
    assert sia.count_params() == count_params(get_config("t2_cnn_shallow_max")).model
    with pytest.raises(UnknownNameError, match="t1_cnn_shallow_max") as err:
        SingerEmbedder.from_preset("t3_nothing")
    assert "mobile_resnext_attention" in err.value.valid


def test_saved_task_models_reload_as_themselves_and_describe_their_row(tmp_path):
    for task in ("classifier", "siamese"):
        cfg, model = make_run(tmp_path / task, task=task)
        loaded = keras.saving.load_model(tmp_path / task / "best.keras")
        assert type(loaded) is type(model)
        assert zoo_config_of(loaded) == cfg
        x = [X, X[::-1]] if task == "siamese" else X
        np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_a_keras_file_alone_exports_without_config_yaml(tmp_path):
    cfg, model = make_run(tmp_path / "run")
    (tmp_path / "alone").mkdir()
    shutil.copyfile(tmp_path / "run" / "best.keras", tmp_path / "alone" / "model.keras")
    res = export(tmp_path / "alone" / "model.keras", tmp_path / "out", (),
                 check_audio=voice(7.0))
    c = card.verify(res.path)
    assert c["name"] == cfg.name and c["config"] == cfg.to_dict()
    assert c["frontend"]["n_bins"] == cfg.features.n_bins
    emb = keras.saving.load_model(res.path / "embedder.keras")
    assert isinstance(emb, SingerEmbedder) and zoo_config_of(emb) == cfg
    np.testing.assert_array_equal(np.asarray(emb(X)), np.asarray(model.embedder(X)))
    tuned, tuned_cfg, name = base_model(tmp_path / "alone" / "model.keras")  # fine-tuning
    assert (tuned_cfg, name) == (cfg, cfg.name) and tuned.count_params() == emb.count_params()


def test_functional_embedder_saved_before_the_task_classes_still_loads_and_exports(tmp_path):
    """Embedders saved before the task classes are plain functional models: they load as
    such, need a config (or card) beside them and export to a self-describing one."""
    name = "mobile_resnext_attention"
    cfg = get_config(name)
    keras.utils.set_random_seed(0)
    task = build_embedder(cfg)
    folder = tmp_path / "alone"
    folder.mkdir()
    keras.Model(task.inputs, task.outputs, name="embedder").save(folder / "embedder.keras")
    old = keras.saving.load_model(folder / "embedder.keras")
    assert not isinstance(old, SingerEmbedder) and zoo_config_of(old) is None
    assert old.count_params() == count_params(cfg).model
    with pytest.raises(ConfigError, match="does not describe itself"):
        export(folder / "embedder.keras", tmp_path / "x", ())
    cfg.to_yaml(folder / "config.yaml")
    res = export(folder / "embedder.keras", tmp_path / "out", (), check_audio=voice(7.0))
    assert ZooConfig.from_dict(res.card["config"]) == cfg
    emb = keras.saving.load_model(res.path / "embedder.keras")
    assert isinstance(emb, SingerEmbedder) and emb.zoo_name == name
    np.testing.assert_allclose(np.asarray(emb(X)), np.asarray(old(X)), atol=1e-6)
