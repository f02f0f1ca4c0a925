"""Hostile input and a newcomer's first hour (issue 20): one test (or a few) per point, each
failing on the code before the fix. The whole input x path table is bench/hostile_probe.py
(tests/test_hostile_probe.py runs it)."""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import singer_zoo
from singer_zoo import audio, index, inference
from singer_zoo.audio import audio_info, load_audio
from singer_zoo.batch import run_batch
from singer_zoo.cli import main
from singer_zoo.cli.features import _file_names
from singer_zoo.config import ArchConfig, FeatureConfig, TrainConfig, ZooConfig
from singer_zoo.data import generate_corpus, load_feature_set, read_manifest
from singer_zoo.errors import (AudioFileNotFound, ConfigError, CorruptAudioFile, EmptyAudioFile,
                               IntegrityError, InvalidSamplesError, ManifestError,
                               SilentAudioError, UnknownNameError)
from singer_zoo.evaluation.protocols import cv_folds
from singer_zoo.export import export
from singer_zoo.registry import get_config, list_models
from singer_zoo.training import callbacks
from singer_zoo.training.trainer import prepare_run_dir
from test_export import make_run, tiny_model_and_corpus, voice

REPO_ROOT = Path(__file__).resolve().parent.parent
SR = 22050


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny exported embedder and a 3 singers x 2 songs corpus of 3-s recordings."""
    return tiny_model_and_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def embedder(setup):
    return singer_zoo.load(setup[1])


def _loop(folder: Path) -> Path:
    (folder / "loop1.wav").symlink_to("loop2.wav")
    (folder / "loop2.wav").symlink_to("loop1.wav")
    return folder / "loop1.wav"


def _manifest_with(tmp_path, manifest, *extra: tuple[str, str]) -> Path:
    """A copy of `manifest` (absolute paths) with rows (path, singer) added."""
    rows = [(r.path, r.singer) for r in read_manifest(manifest)] + list(extra)
    out = tmp_path / "m.csv"
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "singer"])
        w.writerows(rows)
    return out


# --- 1. symlink loops ---------------------------------------------------------------------

def test_1_symlink_loop_is_a_named_error_and_the_good_files_survive(setup, tmp_path, capsys):
    _, model, manifest = setup
    loop = _loop(tmp_path)
    m = _manifest_with(tmp_path, manifest, (str(loop), "x"))
    assert main(["data", "check", str(m)]) == 1
    out = capsys.readouterr().out
    assert "6 good, 1 bad" in out and "loop1.wav: symlink loop" in out
    fs, failed = load_feature_set(read_manifest(m, check_files=False), workers=1)
    assert fs.n_recordings == 6 and list(failed) == [str(loop)]
    shutil.copytree(manifest.parent, tmp_path / "folder", symlinks=True)
    _loop(tmp_path / "folder")
    idx, failed = index.build(tmp_path / "folder", model, tmp_path / "idx")
    assert len(idx) == 6 and "symlink loop" in failed[str(tmp_path / "folder" / "loop1.wav")]
    with pytest.raises(CorruptAudioFile, match="loop1.wav: symlink loop"):
        audio.check_audio_path(loop)


# --- 2. features: one .npy per recording --------------------------------------------------

def test_2_feature_file_names_never_collide():
    names = _file_names(["s_2", "s", "s!", "S", "x_1", "x", "x"])
    assert len({n.lower() for n in names}) == 7 and names[:2] == ["s_2.npy", "s.npy"]


def test_2_features_cli_writes_each_recordings_own_frames(tmp_path, write_audio, capsys):
    paths = [write_audio(f"a{i}.wav", voice(s, singer=i), SR) for i, s in enumerate((3, 4, 5))]
    m = tmp_path / "m.csv"
    m.write_text("path,singer,recording\n" + "".join(
        f"{p.name},s{i},{rid}\n" for i, (p, rid) in enumerate(zip(paths, ["s_2", "s", "s!"]))))
    assert main(["features", str(m), "--out", str(tmp_path / "f"), "--no-progress"]) == 0
    with open(tmp_path / "f" / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len({r["features"] for r in rows}) == 3
    for r in rows:
        assert len(np.load(tmp_path / "f" / r["features"])) == int(r["frames"])


# --- 3 and 10. configs --------------------------------------------------------------------

def _yaml(tmp_path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def _row(**change) -> str:
    import yaml

    d = get_config("mobile_resnext_attention").to_dict()
    for key, value in change.items():
        section, _, field = key.partition("__")
        if value is None and not field:
            d.pop(section)
        elif field:
            d[section][field] = value
    return yaml.safe_dump(d)


@pytest.mark.parametrize("change, problem", [
    ({"train": None}, r"train.task is required"),
    ({"train__task": None}, "task must be a string"),
    ({"arch__stages": 5}, "stages must be a list of stages"),
    ({"arch__stages": ["32x64"]}, "stages must be a list of stages"),
    ({"train__max_epochs": 1.5}, "max_epochs must be an integer, got 1.5"),
    ({"arch__dense_units": "many"}, "dense_units must be an integer, got 'many'"),
    ({"arch__dropout": None}, "dropout must be a finite number, got None"),
    ({"train__learning_rate": float("inf")}, "learning_rate must be a finite number"),
])
def test_3_10_bad_configs_are_config_errors(tmp_path, change, problem):
    with pytest.raises(ConfigError, match=problem):
        ZooConfig.from_yaml(_yaml(tmp_path, _row(**change)))


def test_3_10_sections_left_out_take_the_defaults_but_the_task_is_stated(tmp_path):
    """Minimal configs (the zoo's own files) leave default fields and sections out; only
    train.task must be there (a siamese row without it would train as a classifier)."""
    cfg = ZooConfig.from_yaml(_yaml(tmp_path, _row(arch=None, features=None)))
    assert cfg.arch == ArchConfig() and cfg.features == FeatureConfig()
    assert cfg.train.task == "siamese"
    with pytest.raises(ConfigError, match="train.task is required"):
        ZooConfig.from_dict({"name": "x", "table": "beyond", "train": {"patience": 3}})


def test_10_yaml_11_exponent_without_dot_is_a_float(tmp_path):
    text = _row().replace("learning_rate: 0.0001", "learning_rate: 1e-4")
    assert "learning_rate: 1e-4" in text
    assert ZooConfig.from_yaml(_yaml(tmp_path, text)).train.learning_rate == 1e-4
    with pytest.raises(ConfigError, match="learning_rate must be a finite number, got 'fast'"):
        TrainConfig.from_dict({"learning_rate": "fast"})
    with pytest.raises(ConfigError, match="dense_units must be an integer"):
        ArchConfig(dense_units=2.5)


def test_10_every_row_named_in_the_docs_exists():
    valid = set(list_models())
    for doc in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for name in re.findall(r"singer-zoo train ([A-Za-z0-9_]+)\b", doc.read_text()):
            assert name in valid or name.isupper(), f"{doc.name}: no zoo row {name!r}"


# --- 4. long recordings: streamed, never whole --------------------------------------------

def test_4_long_files_are_streamed_in_window_batches(embedder, write_audio, monkeypatch):
    path = write_audio("long.flac", voice(12.0, singer=2, seed=3), SR)
    whole = embedder.window_embeddings(path)
    monkeypatch.setattr(inference, "STREAM_SECONDS", 5)
    monkeypatch.setattr(inference, "WINDOW_BATCH", 2)
    monkeypatch.setattr(inference, "load_audio", lambda *a, **k: pytest.fail("loaded whole"))
    sizes = []
    real_chop = inference.chop
    monkeypatch.setattr(inference, "chop", lambda f, cfg: sizes.append(len(real_chop(f, cfg)))
                        or real_chop(f, cfg))
    streamed = embedder.window_embeddings(path)
    assert streamed.shape == whole.shape == (6, 16) and max(sizes) <= 2
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


# --- 5. arrays are checked like files ----------------------------------------------------

def test_5_arrays_are_checked_like_files(embedder, write_audio):
    with pytest.raises(SilentAudioError, match="<waveform>: all silent"):
        embedder.embed(np.zeros(SR * 3, np.float32))
    with pytest.raises(InvalidSamplesError, match="int16.*divide by 32768"):
        embedder.embed((voice(3.0) * 20000).astype(np.int16))
    with pytest.raises(InvalidSamplesError, match="not an array of samples|floating-point"):
        embedder.embed(["a", "b"])
    path = write_audio("v.wav", voice(3.0), SR)
    np.testing.assert_array_equal(embedder.embed(os.fsencode(path)), embedder.embed(path))


# --- 6. export leaves nothing behind -------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_6_export_cleans_up_and_recovers_and_publishes_readable(setup, tmp_path):
    root, model, _ = setup
    out, dead = tmp_path / "m", _dead_pid()
    (tmp_path / f".m.{dead}.abc.tmp").mkdir()
    (tmp_path / ".m.k2j4.tmp").mkdir()  # the PID-less staging name of older versions
    (tmp_path / ".m.1.zz.tmp").mkdir()  # PID 1 is alive: another export, left alone
    shutil.copytree(model, tmp_path / f".m.old-{dead}")  # killed between the two renames
    assert inference.resolve(out) == out and (out / "metadata.json").is_file()
    export(root / "run", out, ())
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".m.1.zz.tmp", "m"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask


def test_6_publish_recovers_only_when_the_export_is_missing(tmp_path):
    from singer_zoo.export import publish

    out, dead = tmp_path / "x", _dead_pid()
    (tmp_path / f".x.old-{dead}").mkdir()
    out.mkdir()
    publish.recover(out)  # out exists: the old one is a leftover, not the only copy
    assert (tmp_path / f".x.old-{dead}").exists()
    publish.clean_stale(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


# --- 7. exit codes and messages -----------------------------------------------------------

def test_7_header_only_and_text_files_say_what_they_are(tmp_path, write_audio, caplog):
    head = write_audio("head.wav", np.zeros((0, 1), np.float32), SR, subtype="PCM_16")
    data = bytearray(head.read_bytes())
    data[40:44] = struct.pack("<I", 2 * SR)  # the data chunk promises 1 s, holds nothing
    head.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING), pytest.raises(EmptyAudioFile,
                                                         match="promises 1.00 s; no audio"):
        load_audio(head)
    assert "keeping the decoded part" not in caplog.text
    text = tmp_path / "notes.flac"
    text.write_text("this is not audio\n" * 30)
    with pytest.raises(CorruptAudioFile, match="notes.flac: not a readable audio file"):
        load_audio(text)


def test_7_index_build_and_add_exit_1_when_files_are_skipped(setup, tmp_path, capsys):
    _, model, manifest = setup
    folder = tmp_path / "c"
    shutil.copytree(manifest.parent, folder)
    (folder / "bad.wav").write_text("not audio")
    assert main(["index", "build", str(folder), "--model", str(model),
                 "--out", str(tmp_path / "i")]) == 1
    assert "indexed 6 recordings" in capsys.readouterr().out
    assert main(["index", "add", str(tmp_path / "i"), str(folder / "bad.wav")]) == 1


# --- 8. memory bombs ----------------------------------------------------------------------

def test_8_an_implausible_header_is_refused_before_any_allocation(tmp_path, write_audio):
    bomb = write_audio("bomb.wav", (voice(1.0)[:8000] * 0.5).reshape(-1, 1), 1,
                       subtype="PCM_16")
    with pytest.raises(CorruptAudioFile, match="bomb.wav: implausible sample rate 1 Hz"):
        audio_info(bomb)
    with pytest.raises(CorruptAudioFile, match="implausible sample rate"):
        load_audio(bomb)


def test_8_a_memory_error_in_one_item_spares_the_others():
    def fn(x):
        if x == "huge":
            raise MemoryError("16.4 GiB")
        return x.upper()

    for workers in (1, 2):
        res = run_batch(fn, ["a", "huge", "b"], workers=workers)
        assert res.ok == {"a": "A", "b": "B"}
        assert res.failed == {"huge": "huge: out of memory while processing it (16.4 GiB)"}


# --- 11. the model card is checked against the model -------------------------------------

@pytest.mark.parametrize("field, value", [("sample_rate", 16000), ("n_bins", 80),
                                          ("top_db", 80.0)])
def test_11_an_edited_card_is_refused(setup, tmp_path, field, value):
    folder = tmp_path / "m"
    shutil.copytree(setup[1], folder)
    card = json.loads((folder / "metadata.json").read_text())
    card["frontend"][field] = value
    card["config"]["features"][field] = value
    (folder / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(IntegrityError, match="metadata.json: the model card does not describe"):
        singer_zoo.load(folder)
    card["config"]["features"][field] = json.loads(
        (setup[1] / "metadata.json").read_text())["frontend"][field]
    (folder / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(IntegrityError, match="frontend and config.features disagree"):
        singer_zoo.load(folder)


# --- 12. index and batch API misuse -------------------------------------------------------

def test_12_index_misuse(setup, embedder, tmp_path, capsys):
    _, model, manifest = setup
    idx, _ = index.build(manifest, model, tmp_path / "idx")
    with pytest.raises(ConfigError, match="already exists.*index add.*--overwrite"):
        index.build(manifest, model, tmp_path / "idx")
    assert len(index.build(manifest, model, tmp_path / "idx", overwrite=True)[0]) == 6
    first = idx.items[0]["path"]
    ids, failed = index.add(tmp_path / "idx", [first])
    assert ids == [] and "already in the index (id 0)" in failed[first]
    assert len(index.VoiceIndex.load(tmp_path / "idx")) == 6
    with pytest.raises(ConfigError, match="embed_many takes a list of paths"):
        embedder.embed_many(first)


def test_12_a_dangling_symlink_is_named_as_listed(tmp_path, setup):
    link = tmp_path / "mine.wav"
    link.symlink_to(tmp_path / "gone" / "target.wav")
    m = _manifest_with(tmp_path, setup[2], (str(link), "x"))
    rec = next(r for r in read_manifest(m, check_files=False) if r.singer == "x")
    assert rec.path == str(link)
    with pytest.raises(AudioFileNotFound, match=r"mine.wav: broken symlink: its target "
                                                r"'.*target.wav' does not exist"):
        load_audio(rec.path)


# --- 13-17. a newcomer's first hour ---------------------------------------------------------

def test_13_too_few_recordings_for_cv_names_the_fix(setup):
    with pytest.raises(ManifestError, match=r"split column.*data synth DIR --songs 10"):
        cv_folds(read_manifest(setup[2]), 10)


def test_14_exporting_a_classifier_says_what_to_export(tmp_path):
    make_run(tmp_path / "r1", task="classifier")
    with pytest.raises(ConfigError, match="train one of those.*mobile_resnext_attention"):
        export(tmp_path / "r1", tmp_path / "out", ())


def _tiny_fit(run_dir, epochs, verbose, interrupt_at=None):
    """A tiny Dense model fitted with the trainer's callbacks (interrupted like a Ctrl-C)."""
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == interrupt_at:
                raise KeyboardInterrupt

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    es = callbacks.PaperEarlyStopping(patience=10, validation_every=1)
    backup = callbacks.RunBackup(run_dir / "backup", es, verbose=verbose)
    backup.set_model(model)
    x = np.ones((8, 3), np.float32)
    model.fit(x, x[:, :1], epochs=epochs, validation_data=(x, x[:, :1]), verbose=0,
              callbacks=[Interrupt(), es, callbacks.BudgetEstimate(epochs), backup],
              initial_epoch=backup.restore())


def test_15_training_prints_its_budget_estimate_and_says_it_resumed(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        _tiny_fit(tmp_path, 6, verbose=1, interrupt_at=3)
    assert re.search(r"epoch 1 took \d+ s; the 5 epochs left of max_epochs=6 would take up to",
                     capsys.readouterr().out)
    _tiny_fit(tmp_path, 6, verbose=1)
    out = capsys.readouterr().out
    assert "resuming the interrupted run after epoch 3" in out
    assert "epoch 4 took" in out and "the 2 epochs left" in out


def test_15_a_smaller_budget_resumes_without_overwrite(tmp_path):
    cfg = get_config("mobile_resnext_attention")
    info = {"task": "siamese", "class_names": ["a", "b"]}
    assert prepare_run_dir(tmp_path, cfg, info, overwrite=False) is None
    smaller = cfg.replace(train={"max_epochs": 20, "validation_every": 2, "patience": 8})
    assert prepare_run_dir(tmp_path, smaller, info, overwrite=False) is None
    assert ZooConfig.from_yaml(tmp_path / "config.yaml") == smaller
    with pytest.raises(ConfigError, match="config.train.seed.*--overwrite"):
        prepare_run_dir(tmp_path, smaller.replace(train={"seed": 5}), info, overwrite=False)


def test_15_experiment_says_which_row_and_fold_runs(capsys):
    from singer_zoo.experiments.runner import _announce

    _announce("table1", 2, 9, get_config("t1_resnext_deep_attention"), [0, 3])
    assert re.fullmatch(r"table1: row 2/9 t1_resnext_deep_attention \(\d+\.\d\dM parameters\), "
                        r"folds 0,3; up to 10000 epochs\n", capsys.readouterr().out)


def test_15_progress_bars_are_one_line_per_epoch_in_logs(tmp_path, capsys):
    from test_training import TINY_ARCH, TINY_FEATURES

    from singer_zoo.training import load_split, train

    cfg = get_config("t1_cnn_shallow_average").replace(
        arch=TINY_ARCH, features=TINY_FEATURES,
        train={"max_epochs": 2, "validation_every": 1, "batch_size": 8, "steps_per_epoch": 2})
    m = read_manifest(generate_corpus(tmp_path / "c", n_singers=2, n_songs=2, seconds=4.0))
    data = load_split(cfg, m.filter(song="song00"), m.filter(song="song01"))
    train(cfg, data[0], data[1], tmp_path / "run", class_names=data[2], verbose=1)
    out = capsys.readouterr().out  # captured: not a terminal
    assert "\r" not in out and "\x1b" not in out and "up to 2 epochs of 2 steps" in out


def test_16_load_by_name_from_the_current_folders_exported(setup, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(setup[1], tmp_path / "exported" / "my_model")
    assert singer_zoo.load("my_model").path == (tmp_path / "exported" / "my_model").resolve()
    with pytest.raises(UnknownNameError, match="valid: .*my_model.*pass the export folder's path"):
        singer_zoo.load("other_model")


def test_17_table2_checks_its_protocol_before_training(tmp_path, monkeypatch):
    from singer_zoo.experiments import runner
    from singer_zoo.experiments import embedding as emb

    monkeypatch.setattr(emb, "run_embedding", lambda *a, **k: pytest.fail("trained"))
    m = read_manifest(generate_corpus(tmp_path / "c", n_singers=3, n_songs=4, seconds=1.0))
    with pytest.raises(ManifestError, match="no same-singer or no different-singer pair.*8 songs"):
        runner.run_table2(m, tmp_path / "t2", ["mobile_resnext_attention"])


def test_17_newcomer_paper_cuts(setup, tmp_path, monkeypatch):
    from singer_zoo.tuning.space import load_space

    monkeypatch.chdir(tmp_path)  # not the repository root
    assert load_space("zoo_configs/search_spaces/default.yaml").name == "t2_tuned"
    with pytest.raises(ConfigError, match="nothing_here: no such folder or manifest"):
        index.build(tmp_path / "nothing_here", setup[1], tmp_path / "i")
    monkeypatch.setattr(inference, "load", lambda *a: pytest.fail("model loaded before k"))
    with pytest.raises(ConfigError, match="k must be >= 1"):
        index.query(tmp_path / "i", "x.wav", k=0)
