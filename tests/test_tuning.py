"""Hyperparameter search (singer_zoo.tuning, `singer-zoo tune`): the space YAML, its
validation, the HyperModel, and tiny end-to-end searches on generated audio."""
from __future__ import annotations

import argparse
import dataclasses
import json
import warnings
from pathlib import Path

import keras_tuner as kt
import pytest
import yaml

from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.resources import configs_dir
from singer_zoo.tuning.search import make_tuner, tuner_role
from singer_zoo.tuning.space import load_space, parse_fixed, space_from_dict

DEFAULT_SPACE = configs_dir() / "search_spaces" / "default.yaml"

TINY_BASE = {
    "name": "tiny", "table": "beyond",
    "features": {"n_bins": 32, "window_frames": 64, "window_hop_frames": 32},
    "arch": {"block": "resnext", "stem_filters": 4, "stages": [[8]], "cardinality": 2,
             "stem_kernel": 3, "kernel": 3, "aggregation": "max", "dense_units": 8,
             "dense_layers": 1, "embedding_dim": 4},
    "train": {"task": "siamese", "batch_size": 8, "max_epochs": 50, "validation_every": 1,
              "patience": 5},
}


def tiny_space(task="siamese", **hyperparameters) -> dict:
    base = {**TINY_BASE, "train": {**TINY_BASE["train"], "task": task}}
    hps = hyperparameters or {
        "aggregation": {"choice": ["max", "average", "attention"]},
        "dense_units": {"int": [8, 16], "step": 8},
        "learning_rate": {"float": ["1e-4", 1.0e-2], "sampling": "log"}}
    return {"base": base, "objective": "val_loss",
            "train": {"max_epochs": 2, "steps_per_epoch": 2}, "hyperparameters": hps}


def write_space(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def tune(argv) -> int:
    """Run `singer-zoo tune ARGV` through the subcommand's own parser."""
    from singer_zoo.cli import tune as tune_cli

    parser = argparse.ArgumentParser()
    tune_cli.register(parser.add_subparsers())
    args = parser.parse_args(["tune", *map(str, argv)])
    return args.func(args)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 singers x 2 songs x 7 s; song00 trains, song01 validates; a shared feature cache."""
    from singer_zoo.data import generate_corpus, read_manifest
    from singer_zoo.data.manifest import Manifest

    root = tmp_path_factory.mktemp("corpus")
    m = read_manifest(generate_corpus(root, n_singers=4, n_songs=2, seconds=7, seed=0))
    recs = [dataclasses.replace(r, split="train" if r.song == "song00" else "validation")
            for r in m]
    return Manifest(recs, m.root).write(root / "split.csv"), root / "cache"


# --- the space file ----------------------------------------------------------------------

def test_default_space_covers_the_paper_hyperparameters_for_the_table2_base():
    space = load_space(DEFAULT_SPACE)
    assert space.base.name == "t2_resnext_shallow_attention"
    assert space.objective == "val_loss" and space.direction == "min"
    names = {p.name for p in space.params}
    assert {"block", "cardinality", "num_stages", "blocks_per_stage", "stem_filters",
            "stage_filters", "aggregation", "dense_units", "dense_layers", "dropout", "l2",
            "learning_rate", "embedding_dim"} <= names
    assert set(space.spec("aggregation").values) == {"none", "max", "average", "attention"}
    assert space.spec("cardinality").parent == "block"


def test_entries_declare_the_matching_keras_tuner_hyperparameters():
    space = space_from_dict(tiny_space(
        block={"choice": ["vanilla", "resnext"], "default": "resnext"},
        cardinality={"choice": [2, 4], "when": {"block": "resnext"}},
        dense_units={"int": [8, 32], "step": 8},
        learning_rate={"float": [1.0e-5, 1.0e-3], "sampling": "log"},
        dropout=0.25))
    hp = kt.HyperParameters()
    values = space.declare(hp)
    assert values == {"block": "resnext", "cardinality": 2, "dense_units": 8,
                      "learning_rate": 1e-5, "dropout": 0.25}
    by_name = {h.name: h for h in hp.space}
    assert isinstance(by_name["dense_units"], kt.engine.hyperparameters.Int)
    assert (by_name["dense_units"].min_value, by_name["dense_units"].max_value,
            by_name["dense_units"].step) == (8, 32, 8)
    assert by_name["learning_rate"].sampling == "log"
    assert isinstance(by_name["dropout"], kt.engine.hyperparameters.Fixed)
    hp.values["block"] = "vanilla"  # cardinality is conditional on the block
    assert "cardinality" not in space.declare(hp)


@pytest.mark.parametrize("hyperparameters, message", [
    ({"aggregation": {"choice": []}}, "hyperparameters.aggregation: choice needs"),
    ({"dense_units": {"int": [256, 128]}}, "hyperparameters.dense_units: range [256, 128]"),
    ({"dense_units": {"int": [128, 256], "stride": 8}}, "hyperparameters.dense_units"),
    ({"learning_rate": {"float": [0.0, 0.1], "sampling": "log"}}, "log sampling needs low"),
    ({"dropout": {"choice": [0.1, 1.5]}}, "hyperparameters.dropout=1.5"),
    ({"dense_units": {"float": [8.0, 16.0]}}, "cannot be a float range"),
    ({"dense_units": {"choice": [8, "wide"]}}, "expected int values"),
    ({"aggregation": {"choice": ["max", "mean"]}}, "hyperparameters.aggregation='mean'"),
    ({"dense_units": {"choice": [8, 16], "default": 32}}, "default 32"),
    ({"cardinality": {"choice": [2, 4], "when": {"block": "resnext"}}}, "parent 'block'"),
    ({"stage_filters": {"choice": [8, 12]}, "cardinality": {"choice": [2, 4]}},
     "cardinality=4, stage_filters=12"),  # (the YAML writer sorts the keys)
    ({"num_stages": {"int": [1, 5]}}, "num_stages=5"),
    ({"aggregation": {"choice": ["max", "none"]},  # checked although inactive in the base
      "dropout": {"choice": [0.1, 2.0], "when": {"aggregation": "none"}}}, "dropout=2.0"),
])
def test_bad_entries_raise_config_error_naming_file_and_key(tmp_path, hyperparameters,
                                                            message):
    path = write_space(tmp_path / "bad.yaml", tiny_space(**hyperparameters))
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unknown_names_raise_unknown_name_error(tmp_path):
    path = write_space(tmp_path / "s.yaml", tiny_space(dense_width={"int": [8, 16]}))
    with pytest.raises(UnknownNameError, match="dense_width") as err:
        load_space(path)
    assert str(path) in str(err.value) and "dense_units" in str(err.value)
    with pytest.raises(UnknownNameError, match="objective"):
        space_from_dict({**tiny_space(), "objective": "val_auc"})
    with pytest.raises(UnknownNameError, match="sampling"):
        space_from_dict(tiny_space(l2={"float": [1.0e-6, 1.0e-3], "sampling": "cubic"}))


@pytest.mark.parametrize("change, message", [
    ({"searchspace": 1}, "unknown key(s) ['searchspace']"),
    ({"base": None}, "base must name"),
    ({"hyperparameters": {}}, "hyperparameters must be a non-empty mapping"),
    ({"train": {"task": "classifier"}}, "untunable"),
    ({"train": {"max_epochs": 0}}, "max_epochs"),
    ({"objective": "val_accuracy"}, "val_accuracy needs a classifier"),
    ({"name": "best config"}, "name"),
])
def test_bad_top_level_keys(change, message):
    with pytest.raises(ConfigError) as err:
        space_from_dict({**tiny_space(), **change}, "space.yaml")
    assert message in str(err.value) and "space.yaml" in str(err.value)


def test_unreadable_space_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_space(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("base: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_space(tmp_path / "broken.yaml")


def test_values_map_onto_the_base_config():
    space = space_from_dict(tiny_space(
        block={"choice": ["vanilla", "resnext"]},
        cardinality={"choice": [2, 4], "when": {"block": "resnext"}},
        num_stages={"int": [1, 2]}, stage_filters={"choice": [8, 16]},
        learning_rate={"float": [1.0e-4, 1.0e-2], "sampling": "log"}))
    cfg = space.config({"block": "resnext", "cardinality": 4, "num_stages": 2,
                        "stage_filters": 16, "learning_rate": 0.005, "tuner/epochs": 3})
    assert cfg.arch.stages == ((16,), (32,)) and cfg.arch.cardinality == 4
    assert cfg.train.learning_rate == 0.005
    assert cfg.train.max_epochs == 50  # the base budget; the trial budget only for trials
    assert space.config({}, trial=True).train.max_epochs == 2
    vanilla = space.config({"block": "vanilla", "cardinality": 4})  # inactive: ignored
    assert vanilla.arch.block == "vanilla" and vanilla.arch.cardinality == 2
    assert space.config({}).to_dict() == {**space.base.to_dict()}  # nothing tuned: the base
    with pytest.raises(UnknownNameError, match="filters"):
        space.config({"filters": 3})


def test_fixed_overrides_from_the_command_line():
    assert parse_fixed(["aggregation=attention", "dense_layers=2", "l2=1e-5"]) == {
        "aggregation": "attention", "dense_layers": 2, "l2": "1e-5"}
    space = load_space(DEFAULT_SPACE, parse_fixed(["aggregation=attention", "l2=1e-5",
                                                   "cardinality=4"]))
    hp = kt.HyperParameters()
    values = space.declare(hp)
    assert values["aggregation"] == "attention" and values["l2"] == 1e-5
    fixed = {h.name for h in hp.space if isinstance(h, kt.engine.hyperparameters.Fixed)}
    assert {"aggregation", "l2", "cardinality", "embedding_dim"} <= fixed
    assert space.spec("cardinality").parent == "block"  # keeps its condition
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_fixed(["aggregation"])
    with pytest.raises(UnknownNameError, match="pooling"):
        load_space(DEFAULT_SPACE, {"pooling": "max"})
    with pytest.raises(ConfigError, match="aggregation"):
        load_space(DEFAULT_SPACE, {"aggregation": "median"})


def test_tuner_role_from_keras_tuner_environment(monkeypatch):
    for var in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(var, raising=False)
    assert tuner_role() == "single"
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(ConfigError, match="KERASTUNER_ORACLE_PORT"):
        tuner_role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert tuner_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    assert tuner_role() == "worker"


# --- the HyperModel ----------------------------------------------------------------------

@pytest.mark.parametrize("task", ["classifier", "siamese"])
def test_hypermodel_builds_the_zoo_model_of_the_trial_config(task):
    from singer_zoo.models import SiameseModel, build_from_config
    from singer_zoo.tuning.hypermodel import SingerHyperModel

    space = space_from_dict(tiny_space(task, aggregation={"choice": ["average", "attention"]},
                                       dense_units={"choice": [8, 24]}))
    hm = SingerHyperModel(space, num_classes=5)
    hp = kt.HyperParameters()
    space.declare(hp)
    hp.values.update({"aggregation": "attention", "dense_units": 24})
    model = hm.build(hp)
    cfg = hm.trial_config(hp)
    assert cfg.arch.aggregation == "attention" and cfg.arch.dense_units == 24
    reference = build_from_config(cfg, num_singers=5, n_frames=cfg.features.window_frames)
    assert model.count_params() == reference.count_params()
    assert model.optimizer is not None  # compiled, as the trainer compiles
    if task == "siamese":
        assert isinstance(model, SiameseModel)
    else:
        assert model.output_shape == (None, 5)


def test_kept_epoch_metrics_pick_the_early_stopping_epoch():
    from singer_zoo.tuning.hypermodel import kept_epoch_metrics

    history = {"loss": [3.0, 2.0, 1.5, 1.0], "val_loss": [2.5, 1.2, 1.3],
               "val_accuracy": [0.2, 0.6, 0.7]}
    assert kept_epoch_metrics(history, 1.2) == {"val_loss": 1.2, "val_accuracy": 0.6}
    with pytest.raises(kt.errors.FailedTrialError):
        kept_epoch_metrics({"loss": [1.0]}, None)


def test_make_tuner_rejects_unknown_tuners_and_budgets(tmp_path):
    from singer_zoo.tuning.hypermodel import SingerHyperModel

    space = space_from_dict(tiny_space())
    hm = SingerHyperModel(space)
    with pytest.raises(UnknownNameError, match="spearmint"):
        make_tuner("spearmint", hm, space, tmp_path, 3)
    with pytest.raises(ConfigError, match="max_trials"):
        make_tuner("random", hm, space, tmp_path, 0)
    with pytest.raises(ConfigError, match="hyperband needs at least 2 epochs"):
        make_tuner("hyperband", hm, space.with_trial_budget(max_epochs=1), tmp_path, 3)
    hyperband = make_tuner("hyperband", hm, space, tmp_path / "hb", 4)
    assert hyperband.oracle.max_trials == 4 and hyperband.oracle.max_epochs == 2


# --- end to end --------------------------------------------------------------------------

def test_search_resumes_and_writes_the_best_trial_as_a_zoo_config(tmp_path, corpus, capsys):
    """1 trial, then the same search with --max-trials 2: one new trial; the best config
    loads with get_config, builds, and holds the best trial's hyperparameters."""
    from singer_zoo.models import build_from_config
    from singer_zoo.registry import get_config
    from singer_zoo.tuning.hypermodel import SingerHyperModel

    manifest, cache = corpus
    space_file = write_space(tmp_path / "space.yaml", tiny_space("siamese"))
    out = tmp_path / "search"
    common = [space_file, "--data", manifest, "--out", out, "--tuner", "random",
              "--verbose", "0", "--cache", cache]
    assert tune([*common, "--max-trials", "1"]) == 0
    first = (out / "search" / "trial_0" / "trial.json").read_text(encoding="utf-8")
    capsys.readouterr()
    assert tune([*common, "--max-trials", "2"]) == 0
    assert "1 trial(s) run by this process" in capsys.readouterr().out
    trials = sorted((out / "search").glob("trial_*/trial.json"))
    assert len(trials) == 2
    assert trials[0].read_text(encoding="utf-8") == first  # not run again
    assert all(json.loads(t.read_text())["status"] == "COMPLETED" for t in trials)

    space = load_space(out / "space.yaml")
    tuner = make_tuner("random", SingerHyperModel(space), space, out, 2)  # reloads
    best_values = tuner.get_best_hyperparameters()[0].values
    cfg = get_config(out / "best_config.yaml")
    assert cfg.name == "tiny_tuned" and cfg.train.task == "siamese"
    assert cfg.arch.aggregation == best_values["aggregation"]
    assert cfg.arch.dense_units == best_values["dense_units"]
    assert cfg.train.learning_rate == pytest.approx(best_values["learning_rate"])
    assert cfg.train.max_epochs == 50  # the base's budget, not the trial's
    saved = json.loads((out / "best_hyperparameters.json").read_text())
    assert saved["values"] == best_values
    assert saved["score"] == min(json.loads(t.read_text())["score"] for t in trials)
    assert build_from_config(cfg).embedder.output_shape == (None, 4)


def test_a_different_space_in_the_same_directory_is_refused(tmp_path, corpus):
    manifest, cache = corpus
    space_file = write_space(tmp_path / "space.yaml", tiny_space("siamese"))
    out = tmp_path / "search"
    from singer_zoo.tuning.search import prepare_out_dir

    prepare_out_dir(out, load_space(space_file), "random", overwrite=False)
    with pytest.raises(ConfigError, match=r"different space or tuner \(differs in "
                                          r"hyperparameters\)"):
        tune([space_file, "--data", manifest, "--out", out, "--max-trials", "1",
              "--tuner", "random", "--fixed", "aggregation=max"])
    with pytest.raises(ConfigError, match=r"\(differs in tuner\)"):
        tune([space_file, "--data", manifest, "--out", out, "--max-trials", "1",
              "--tuner", "hyperband"])
    (out / "search").mkdir()
    (out / "search" / "oracle.json").write_text("{}")  # an old keras-tuner project
    prepare_out_dir(out, load_space(space_file, {"aggregation": "max"}), "random",
                    overwrite=True)
    assert load_space(out / "space.yaml").spec("aggregation").kind == "fixed"
    assert not (out / "search").exists()


def test_the_cli_reports_bad_spaces_as_one_line_errors(tmp_path, capsys):
    from singer_zoo.cli import main

    bad = write_space(tmp_path / "bad.yaml", tiny_space(dense_units={"int": [64, 8]}))
    assert main(["tune", str(bad), "--data", str(tmp_path / "m.csv"), "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("singer-zoo: error: ") and "hyperparameters.dense_units" in err
    assert not (tmp_path / "out").exists()


def test_classifier_search_with_bayesian_optimisation_and_fixed_values(tmp_path, corpus):
    from singer_zoo.registry import get_config

    manifest, cache = corpus
    space = tiny_space("classifier")
    space["objective"] = "val_accuracy"
    space_file = write_space(tmp_path / "space.yaml", space)
    out = tmp_path / "search"
    assert tune([space_file, "--data", manifest, "--out", out, "--tuner", "bayesian",
                 "--max-trials", "1", "--epochs-per-trial", "1", "--verbose", "0",
                 "--cache", cache, "--fixed", "aggregation=attention", "dense_units=16"]) == 0
    trial = json.loads((out / "search" / "trial_0" / "trial.json").read_text())
    assert trial["status"] == "COMPLETED"
    assert set(trial["metrics"]["metrics"]) >= {"val_loss", "val_accuracy"}
    cfg = get_config(out / "best_config.yaml")
    assert cfg.train.task == "classifier"
    assert (cfg.arch.aggregation, cfg.arch.dense_units) == ("attention", 16)


@pytest.mark.slow
def test_hyperband_continues_the_best_trials_from_their_checkpoints(tmp_path, corpus):
    """max_epochs 3, factor 3: three 1-epoch trials, then the best one trained on to epoch 3
    from its checkpoint (hp "tuner/trial_id"); keras-tuner's own values stay out of the
    config."""
    from singer_zoo.registry import get_config

    manifest, cache = corpus
    space_file = write_space(tmp_path / "space.yaml", tiny_space("siamese"))
    out = tmp_path / "search"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tune([space_file, "--data", manifest, "--out", out, "--tuner", "hyperband",
                     "--max-trials", "4", "--epochs-per-trial", "3", "--verbose", "0",
                     "--cache", cache]) == 0
    skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
    assert not skipped  # weights AND optimizer state restored
    trials = [json.loads(p.read_text()) for p in (out / "search").glob("trial_*/trial.json")]
    assert len(trials) == 4 and all(t["status"] == "COMPLETED" for t in trials)
    continued = [t for t in trials if "tuner/trial_id" in t["hyperparameters"]["values"]]
    assert len(continued) == 1
    values = continued[0]["hyperparameters"]["values"]
    assert (values["tuner/initial_epoch"], values["tuner/epochs"]) == (1, 3)
    first = next(t for t in trials if t["trial_id"] == values["tuner/trial_id"])
    assert first["hyperparameters"]["values"]["learning_rate"] == values["learning_rate"]
    cfg = get_config(out / "best_config.yaml")
    assert cfg.train.max_epochs == 50 and cfg.arch.aggregation in ("max", "average",
                                                                  "attention")


def test_shipped_space_by_name():
    assert load_space("default") == load_space(DEFAULT_SPACE)
    with pytest.raises(UnknownNameError, match="unknown search space 'nope'; valid: default"):
        load_space("nope")
