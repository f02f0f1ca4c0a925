"""Resume: RunBackup restores weights, optimizer, epoch, early-stopping state and history.csv
(in-process, on a tiny Dense model), and `singer-zoo train` killed with SIGKILL resumes."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import pytest

from singer_zoo.data import Manifest, generate_corpus, read_manifest
from singer_zoo.registry import get_config
from singer_zoo.training.callbacks import PaperEarlyStopping, RunBackup, trim_csv


class Interrupt(keras.callbacks.Callback):
    """Raise at the start of epoch `at` (0-based), like a Ctrl-C."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 1))).astype("float32")
    return x, y


def _fit(run_dir, epochs, interrupt_at=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    es = PaperEarlyStopping(patience=100, validation_every=2, min_improvement=0.0)
    backup = RunBackup(run_dir / "backup", es, run_dir / "history.csv")
    backup.set_model(model)
    epoch = backup.restore()
    cbs = [es, keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True), backup]
    if interrupt_at is not None:
        cbs.insert(0, Interrupt(interrupt_at))
    x, y = _data()
    model.fit(x, y, batch_size=16, shuffle=False, epochs=epochs, validation_data=(x[:16], y[:16]),
              validation_freq=2, callbacks=cbs, verbose=0, initial_epoch=epoch)
    return model, es, backup


def _epochs(path):
    with open(path, newline="") as fh:
        return [int(r["epoch"]) for r in csv.DictReader(fh)]


def test_interrupted_run_resumes_to_the_same_model(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    ref, ref_es, _ = _fit(a, 8)
    with pytest.raises(KeyboardInterrupt):
        _fit(b, 8, interrupt_at=5)
    state = json.loads((b / "backup" / "run_state.json").read_text())
    assert sorted(state) == ["4", "5"]  # the last two epochs' states are kept
    assert state["5"]["early_stopping"]["best"] is not None
    model, es, backup = _fit(b, 8)
    assert backup.initial_epoch == 5
    assert _epochs(b / "history.csv") == list(range(8)) == _epochs(a / "history.csv")
    # Same weights as the uninterrupted run: weights, Adam moments and epoch were restored;
    # same early-stopping outcome: the best (restored) and its epoch survived the resume.
    for w_ref, w in zip(ref.get_weights(), model.get_weights()):
        np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    assert (es.best_epoch, es.best) == pytest.approx((ref_es.best_epoch, ref_es.best))


def test_early_stopping_state_survives_resume(tmp_path):
    """The best weights saved before the interruption are the ones restored at the end."""
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, 6, interrupt_at=4)
    saved = json.loads((tmp_path / "backup" / "run_state.json").read_text())["4"]
    es = PaperEarlyStopping(patience=100, validation_every=2)
    backup = RunBackup(tmp_path / "backup", es, tmp_path / "history.csv")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    for cb in (es, backup):
        cb.set_model(model)
    assert backup.restore() == 4
    for cb in (es, backup):  # as fit() calls them after the restore: nothing is reset
        cb.on_train_begin()
    assert es.state() == saved["early_stopping"]
    assert backup.train_seconds >= saved["train_seconds"]
    best_file = tmp_path / "backup" / f"best_epoch{saved['early_stopping']['best_epoch']}.npz"
    assert best_file.exists()
    assert len(es.best_weights) == len(model.get_weights())


def test_a_checkpoint_damaged_by_a_kill_falls_back_or_starts_over(tmp_path, caplog):
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, 8, interrupt_at=5)
    backup = tmp_path / "backup"
    assert sorted(p.name for p in backup.glob("epoch*")) == ["epoch4.weights.h5",
                                                             "epoch5.weights.h5"]
    # the newest checkpoint damaged (a disk fault, a kill mid-write): the previous one is used
    (backup / "epoch5.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    (backup / "saving6.weights.h5").write_bytes(b"half written")  # a kill before the commit
    with caplog.at_level("WARNING"):
        _, es, cb = _fit(tmp_path, 8)
    assert cb.initial_epoch == 4 and _epochs(tmp_path / "history.csv") == list(range(8))
    assert "epoch 5 unreadable" in caplog.text
    # no readable checkpoint at all: the run starts over, and says so
    shutil.rmtree(backup)
    (tmp_path / "history.csv").unlink()
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, 8, interrupt_at=1)
    (backup / "epoch1.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with caplog.at_level("WARNING"):
        _, _, cb = _fit(tmp_path, 3)
    assert cb.initial_epoch == 0 and "starting the run over" in caplog.text
    assert _epochs(tmp_path / "history.csv") == [0, 1, 2]


def test_trim_csv_keeps_rows_before_the_restored_epoch(tmp_path):
    p = tmp_path / "history.csv"
    p.write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    with open(p, "a") as held:  # CSVLogger holds the file open in append mode
        trim_csv(p, 2)
        held.write("2,0.7\n")
    assert p.read_text() == "epoch,loss\n0,1.0\n1,0.9\n2,0.7\n"


def test_fit_without_restore_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = _data()
    with pytest.raises(RuntimeError, match="restore"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[RunBackup(tmp_path / "b")])


def test_early_stopping_is_silent_on_epochs_without_validation():
    es = PaperEarlyStopping(patience=10, validation_every=5)
    es.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    es.on_train_begin()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        es.on_epoch_end(0, {"loss": 1.0})
    assert es.best is None and es.wait == 0


CLI = [sys.executable, "-c", "import sys; from singer_zoo.cli import main; sys.exit(main())"]


@pytest.mark.slow
def test_killed_cli_run_resumes_where_it_stopped(tmp_path):
    """kill -9 `singer-zoo train` after its first checkpoint, run the same command again:
    it continues from the checkpoint (history.csv is continued, not restarted) and finishes;
    a third run only reports that the run is done."""
    corpus = read_manifest(generate_corpus(tmp_path / "corpus", n_singers=3, n_songs=3,
                                           seconds=6, seed=2))
    manifest = Manifest.from_records(
        [dataclasses.replace(r, split="validation" if r.song == "song02" else "train")
         for r in corpus], tmp_path).write(tmp_path / "manifest.csv")
    get_config("t1_cnn_shallow_max").replace(
        arch={"stem_filters": 4, "stages": ((8,),), "stem_kernel": 3, "kernel": 3,
              "dense_units": 16, "dense_layers": 1},
        features={"window_frames": 64, "window_hop_frames": 32},
        train={"max_epochs": 12, "validation_every": 2, "steps_per_epoch": 6, "batch_size": 4}
    ).to_yaml(tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    cmd = CLI + ["train", str(tmp_path / "tiny.yaml"), "--data", str(manifest), "--out",
                 str(run), "--cache", str(tmp_path / "cache"), "--verbose", "2"]
    state = run / "backup" / "run_state.json"  # written last: the commit point
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not state.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL, "the first run ended before it was killed"
    assert not (run / "metrics.json").exists()
    done_before = _epochs(run / "history.csv")
    assert 1 <= len(done_before) < 12

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Epoch 1/12" not in second.stdout  # resumed, not restarted
    assert _epochs(run / "history.csv") == list(range(12))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 12 and metrics["finished"]
    assert not (run / "backup").exists()

    third = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "already finished" in third.stdout
    assert "Epoch" not in third.stdout


def _tiny_run_setup(tmp_path):
    """A 3-singer generated corpus's features and a tiny CNN config with dropout (seconds)."""
    from singer_zoo.training import load_split

    corpus = read_manifest(generate_corpus(tmp_path / "corpus", n_singers=3, n_songs=3,
                                           seconds=4, seed=2))
    cfg = get_config("t1_cnn_shallow_max").replace(
        arch={"stem_filters": 4, "stages": ((8,),), "stem_kernel": 3, "kernel": 3,
              "dense_units": 16, "dense_layers": 1, "dropout": 0.3},
        features={"window_frames": 32, "window_hop_frames": 16},
        train={"max_epochs": 6, "validation_every": 2, "steps_per_epoch": 3, "batch_size": 4})
    train_recs = corpus.filter(song=("song00", "song01"))
    train_data, val_data, classes, _ = load_split(cfg, train_recs, corpus.filter(song="song02"))
    return cfg, train_data, val_data, classes


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, monkeypatch):
    """Issue 20 point 9: killed right after epoch 3's checkpoint and resumed, the run has the
    same losses and best weights, bit for bit, as one never interrupted (the input stream
    continues at batch 3 x steps, not at batch 0)."""
    from singer_zoo.training import train

    cfg, train_data, val_data, classes = _tiny_run_setup(tmp_path)
    ref = train(cfg, train_data, val_data, tmp_path / "ref", class_names=classes, verbose=0)
    save = RunBackup.on_epoch_end

    def save_then_die(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 2:
            raise KeyboardInterrupt  # as kill -9 right after the checkpoint of 3 epochs

    monkeypatch.setattr(RunBackup, "on_epoch_end", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, train_data, val_data, tmp_path / "run", class_names=classes, verbose=0)
    monkeypatch.setattr(RunBackup, "on_epoch_end", save)
    assert _epochs(tmp_path / "run" / "history.csv") == [0, 1, 2]
    keras.backend.clear_session()
    resumed = train(cfg, train_data, val_data, tmp_path / "run", class_names=classes, verbose=0)
    assert (tmp_path / "run" / "history.csv").read_text() == \
        (tmp_path / "ref" / "history.csv").read_text()
    a = keras.saving.load_model(ref.best_model_path).get_weights()
    b = keras.saving.load_model(resumed.best_model_path).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
