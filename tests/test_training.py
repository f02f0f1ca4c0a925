"""Training: the paper's early stopping on synthetic loss sequences, both tasks end to end
on a tiny generated corpus (every run-dir artefact), repeatability, run-dir checks."""
from __future__ import annotations

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from singer_zoo.cli import main as cli_main
from singer_zoo.cli import train as cli_train
from singer_zoo.config import ZooConfig
from singer_zoo.data import Manifest, Recording, generate_corpus, read_manifest
from singer_zoo.errors import ConfigError
from singer_zoo.evaluation.plots import read_history_csv
from singer_zoo.evaluation.protocols import cv_fold, select_recordings
from singer_zoo.registry import get_config
from singer_zoo.training import load_split, make_datasets, train
from singer_zoo.training.callbacks import PaperEarlyStopping
from singer_zoo.training.trainer import prepare_run_dir, validation_epochs


def _drive(es, val_losses, every):
    """Feed `val_losses` (one per validation epoch, every `every` epochs) to the callback
    like fit() does; returns the 0-based epoch at which it stopped training (or None)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    es.set_model(model)
    model.stop_training = False
    es.on_train_begin()
    epoch, checks = 0, iter(val_losses)
    while True:
        logs = {"loss": 1.0}
        if (epoch + 1) % every == 0:
            value = next(checks, None)
            if value is None:
                return None
            logs["val_loss"] = value
            model.layers[0].kernel.assign([[value]])  # weights tagged with the val loss
        es.on_epoch_end(epoch, logs)
        if model.stop_training:
            es.on_train_end()
            return epoch
        epoch += 1


def test_patience_is_counted_in_epochs_not_checks():
    # validation every 50 epochs, patience 300 epochs -> stop 300 epochs after the best.
    es = PaperEarlyStopping(patience=300, validation_every=50, min_improvement=0.005)
    stopped = _drive(es, [1.0, 0.5] + [0.6] * 20, every=50)
    assert es.best_epoch == 99 and es.best == 0.5
    assert stopped == 99 + 300


def test_improvement_must_be_relative_and_at_least_min_improvement():
    es = PaperEarlyStopping(patience=20, validation_every=10, min_improvement=0.1)
    # 0.95 beats 1.0 by only 5 %: not a new best; 0.85 beats it by 15 %: new best.
    stopped = _drive(es, [1.0, 0.95, 0.85, 0.9, 0.8, 0.78, 0.77], every=10)
    assert es.best == 0.85 and es.best_epoch == 29
    # checks at 39 and 49 do not beat 0.85 * 0.9 = 0.765 -> stop 20 epochs after the best
    assert stopped == 49


def test_best_weights_are_restored_at_the_end():
    es = PaperEarlyStopping(patience=20, validation_every=10)
    _drive(es, [1.0, 0.3, 0.4, 0.5], every=10)
    assert float(es.model.layers[0].kernel.numpy()[0, 0]) == pytest.approx(0.3)


def test_patience_not_a_multiple_of_validation_every_rounds_up():
    es = PaperEarlyStopping(patience=25, validation_every=10)
    assert _drive(es, [1.0] + [2.0] * 10, every=10) == 9 + 30


def test_never_stops_while_improving():
    es = PaperEarlyStopping(patience=10, validation_every=5, min_improvement=0.005)
    assert _drive(es, list(np.geomspace(1.0, 0.1, 30)), every=5) is None
    assert es.stopped_epoch == 0


def test_validation_epochs_include_the_last():
    assert validation_epochs(50, 120) == [50, 100, 120]
    assert validation_epochs(2, 4) == [2, 4]


# --- end to end on a tiny generated corpus -------------------------------------------------

TINY_ARCH = {"stem_filters": 4, "stages": ((8,),), "stem_kernel": 3,
             "kernel": 3, "dense_units": 16, "dense_layers": 1}
TINY_FEATURES = {"window_frames": 64, "window_hop_frames": 32}


def tiny_config(name: str, **train):
    """A registered zoo row shrunk to a few thousand parameters and 3-second windows."""
    settings = {"max_epochs": 4, "validation_every": 2, "patience": 10, "batch_size": 8,
                "learning_rate": 1e-3, "steps_per_epoch": 4, **train}
    return get_config(name).replace(arch=TINY_ARCH, features=TINY_FEATURES, train=settings)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 singers x 3 songs x 7 s; features cached. Songs 0-1 train, song 2 validates."""
    root = tmp_path_factory.mktemp("corpus")
    manifest = read_manifest(generate_corpus(root, n_singers=4, n_songs=3, seconds=7, seed=0))
    return manifest, root / "cache"


def _split(corpus, cfg):
    manifest, cache = corpus
    return load_split(cfg, manifest.filter(song=("song00", "song01")),
                      manifest.filter(song="song02"), cache_dir=cache)


@pytest.fixture(scope="module")
def classifier_run(corpus, tmp_path_factory):
    cfg = tiny_config("t1_cnn_shallow_average")
    train_data, val_data, classes, failed = _split(corpus, cfg)
    assert failed == {} and classes == ["singer00", "singer01", "singer02", "singer03"]
    out = tmp_path_factory.mktemp("runs") / "classifier"
    result = train(cfg, train_data, val_data, out, class_names=classes, verbose=0)
    return cfg, result, (train_data, val_data, classes)


ARTEFACTS = ("config.yaml", "run.json", "history.csv", "best.keras", "loss.png",
             "metrics.json")


def _check_run_dir(run_dir, cfg):
    for name in ARTEFACTS:
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
    assert not (run_dir / "backup").exists()  # removed once finished
    assert ZooConfig.from_yaml(run_dir / "config.yaml") == cfg
    hist = read_history_csv(run_dir / "history.csv")
    assert hist["epoch"] == [0, 1, 2, 3]
    val = np.array(hist["val_loss"])
    assert np.isnan(val[[0, 2]]).all() and np.isfinite(val[[1, 3]]).all()  # every 2 epochs
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["finished"] and metrics["epochs_run"] == 4 and not metrics["stopped_early"]
    assert metrics["best_val_loss"] == pytest.approx(np.nanmin(val), rel=1e-6)
    assert metrics["best_epoch"] == int(np.nanargmin(val)) + 1
    assert metrics["final_train"]["loss"] == pytest.approx(hist["loss"][-1])
    assert metrics["train_seconds"] > 0
    with open(run_dir / "loss.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    return hist, metrics


def test_classifier_trains_and_writes_the_run_dir(classifier_run):
    cfg, result, (train_data, _, classes) = classifier_run
    hist, metrics = _check_run_dir(result.run_dir, cfg)
    assert hist["loss"][-1] < hist["loss"][0]  # learns
    assert "accuracy" in metrics["final_train"]
    assert json.loads((result.run_dir / "run.json").read_text()) == {
        "task": "classifier", "class_names": classes, "mixed_precision": False}
    model = keras.saving.load_model(result.best_model_path)
    x = train_data.features.windows(np.arange(3))
    assert model.predict(x, verbose=0).shape == (3, 4)


def test_siamese_trains_with_fixed_validation_pairs(corpus, tmp_path):
    cfg = tiny_config("t2_cnn_shallow_max")
    train_data, val_data, classes, _ = _split(corpus, cfg)
    result = train(cfg, train_data, val_data, tmp_path / "run", class_names=classes, verbose=0)
    hist, metrics = _check_run_dir(result.run_dir, cfg)
    assert hist["loss"][-1] < hist["loss"][0]
    assert set(metrics["final_train"]) == {"loss"}
    model = keras.saving.load_model(result.best_model_path)
    x = val_data.features.windows(np.arange(2))
    assert model.embedder.predict(x, verbose=0).shape == (2, cfg.arch.embedding_dim)
    # the validation pairs are drawn once: two passes see the same pairs
    _, val_ds, _, val_steps = make_datasets(cfg, train_data, val_data, 8)
    first, second = ([y.numpy() for _, y in val_ds] for _ in range(2))
    assert len(first) == val_steps and all((a == b).all() for a, b in zip(first, second))


def test_same_seed_gives_the_same_history(classifier_run, tmp_path):
    cfg, result, (train_data, val_data, classes) = classifier_run
    again = train(cfg, train_data, val_data, tmp_path / "again", class_names=classes,
                  verbose=0)
    assert (again.run_dir / "history.csv").read_text() == \
        (result.run_dir / "history.csv").read_text()


def test_a_finished_run_is_not_trained_again(classifier_run, capsys):
    cfg, result, (train_data, val_data, classes) = classifier_run
    before = (result.run_dir / "history.csv").read_text()
    again = train(cfg, train_data, val_data, result.run_dir, class_names=classes, verbose=1)
    assert again.already_done and again.metrics == result.metrics
    assert "already finished" in capsys.readouterr().out
    assert (result.run_dir / "history.csv").read_text() == before


def test_a_different_config_is_refused_unless_overwrite(classifier_run, tmp_path):
    cfg, result, (train_data, val_data, classes) = classifier_run
    changed = cfg.replace(train={"max_epochs": 5, "seed": 3})
    with pytest.raises(ConfigError, match=r"train.max_epochs, config.train.seed|--overwrite"):
        train(changed, train_data, val_data, result.run_dir, class_names=classes)
    with pytest.raises(ConfigError, match="class_names"):
        train(cfg, train_data, val_data, result.run_dir, class_names=list("abcd"))
    run = tmp_path / "run"
    shutil.copytree(result.run_dir, run)
    (run / "notes.txt").write_text("mine")
    assert prepare_run_dir(run, changed, {"task": "classifier"}, overwrite=True) is None
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "notes.txt", "run.json"]
    assert ZooConfig.from_yaml(run / "config.yaml") == changed


# --- the command line -----------------------------------------------------------------------

def split_manifest(corpus, out_dir):
    """The corpus with a split column (song02 validates) plus one corrupt 'recording'."""
    manifest, _ = corpus
    bad = out_dir / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    recs = [dataclasses.replace(r, split="validation" if r.song == "song02" else "train")
            for r in manifest]
    recs.append(Recording(str(bad), "singer00", "song00", "bad", "train"))
    return Manifest.from_records(recs, out_dir).write(out_dir / "manifest.csv"), bad


def test_cli_train_uses_the_split_column_and_skips_bad_files(corpus, tmp_path, capsys):
    manifest_path, bad = split_manifest(corpus, tmp_path)
    cfg_path = tmp_path / "tiny.yaml"
    tiny_config("t1_cnn_shallow_average").to_yaml(cfg_path)
    args = ["train", str(cfg_path), "--data", str(manifest_path), "--out",
            str(tmp_path / "run"), "--max-epochs", "2", "--validation-every", "1",
            "--steps-per-epoch", "2", "--cache", str(corpus[1]), "--verbose", "0"]
    assert cli_main(args) == 0
    out, err = capsys.readouterr()
    assert f"skipped {bad}" in err
    assert "2 epochs, best val loss" in out
    saved = ZooConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert (saved.train.max_epochs, saved.train.validation_every, saved.train.steps_per_epoch) \
        == (2, 1, 2)
    # a different override into the same run dir: one clear line, exit status 2
    assert cli_main(args[:-6] + ["--seed", "5"]) == 2
    assert "differs in config.train" in capsys.readouterr().err


def test_cli_selects_cv_fold_or_embedding_split(tmp_path):
    recs = [Recording(f"/x/{s}_{k}.wav", s, f"song{k:02d}", f"{s}_{k}")
            for s in ("a", "b") for k in range(10)]
    manifest = Manifest.from_records(recs, tmp_path)
    train_recs, val_recs = select_recordings(manifest, "classifier", fold=3)
    fold = cv_fold(manifest, 3)
    assert list(train_recs) == list(fold.train) and list(val_recs) == list(fold.validation)
    assert len(train_recs) == 16 and len(val_recs) == 2
    with pytest.raises(ConfigError, match="fold"):
        select_recordings(manifest, "classifier", fold=10)
    train_recs, val_recs = select_recordings(manifest, "siamese", fold=0)
    assert {r.song for r in train_recs}.isdisjoint({r.song for r in val_recs})


def test_cli_strategies_match_the_training_module():
    from singer_zoo.training.distribute import STRATEGIES

    assert cli_train.STRATEGIES == STRATEGIES


def test_mixed_precision_run_uses_float16_compute_and_loss_scaling(corpus, tmp_path,
                                                                   monkeypatch):
    """The GPU path, forced on CPU: built and compiled under mixed_float16, policy restored."""
    import singer_zoo.training.distribute as dist
    import singer_zoo.training.trainer as trainer

    monkeypatch.setattr(dist, "has_gpu", lambda: True)
    monkeypatch.setattr(trainer, "has_gpu", lambda: True)
    built = {}
    compile_model = trainer.compile_model

    def spy(cfg, n):
        built["model"] = compile_model(cfg, n)
        return built["model"]

    monkeypatch.setattr(trainer, "compile_model", spy)
    cfg = tiny_config("t1_cnn_shallow_average", max_epochs=1, validation_every=1,
                      steps_per_epoch=2)
    train_data, val_data, classes, _ = _split(corpus, cfg)
    result = train(cfg, train_data, val_data, tmp_path / "run", class_names=classes,
                   mixed_precision=True, verbose=0)
    model = built["model"]
    assert model.get_layer("backbone").layers[-1].compute_dtype == "float16"
    assert model.get_layer("singer").compute_dtype == "float32"  # output stays float32
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["mixed_precision"]
    assert np.isfinite(result.metrics["best_val_loss"])
    assert keras.mixed_precision.global_policy().name == "float32"


def test_load_split_errors_name_the_problem(corpus, tmp_path):
    manifest, cache = corpus
    cfg = tiny_config("t1_cnn_shallow_average")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"no usable validation recordings \(1 selected, "
                                          r"1 unreadable\)"):
        load_split(cfg, manifest, [Recording(str(bad), "singer00")], cache_dir=cache)
    train_recs = manifest.filter(singer=("singer00", "singer01"))
    with pytest.raises(ConfigError, match=r"without training recordings: \['singer03'\]"):
        load_split(cfg, train_recs, manifest.filter(singer="singer03"), cache_dir=cache)
    # the embedder only needs same/different labels: unseen validation singers are fine
    siamese = tiny_config("t2_cnn_shallow_max")
    _, val, classes, _ = load_split(siamese, train_recs, manifest.filter(singer="singer03"),
                                    cache_dir=cache)
    assert classes[-1] == "singer03" and set(val.labels) == {2}
