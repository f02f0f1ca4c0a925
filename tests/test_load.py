"""`singer_zoo.load()` and `Embedder`: loading a folder (names: test_pretrained.py), integrity
check before loading, embedding files and waveforms, batch embedding with bad files,
similarity."""
import json
import shutil

import numpy as np
import pytest

import singer_zoo
from singer_zoo import inference
from singer_zoo.audio import load_audio
from singer_zoo.errors import (CorruptAudioFile, EmptyAudioFile, IntegrityError,
                               InvalidSamplesError, UnknownNameError)
from singer_zoo.export import export
from test_export import make_run, voice

SR = 22050


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    make_run(root / "run")
    return export(root / "run", root / "tiny_model", ()).path


@pytest.fixture(scope="module")
def embedder(model_dir):
    return singer_zoo.load(model_dir)


def test_embed_file_and_waveform_agree(embedder, write_audio):
    y = voice(9.0, singer=1)
    path = write_audio("v.flac", y, SR)
    e = embedder.embed(path)
    assert e.shape == (16,) and e.dtype == np.float32
    np.testing.assert_allclose(e, embedder.embed(load_audio(path)), atol=1e-6)
    np.testing.assert_allclose(e, embedder.window_embeddings(str(path)).mean(0), atol=1e-5)
    assert embedder.embed_windows(np.zeros((2, 256, 96))).shape == (2, 16)


def test_bad_waveforms_are_typed_errors(embedder):
    with pytest.raises(InvalidSamplesError, match="NaN"):
        embedder.embed(np.array([0.1, np.nan], np.float32))
    with pytest.raises(InvalidSamplesError, match="mono"):
        embedder.embed(np.zeros((2, 100), np.float32))
    with pytest.raises(EmptyAudioFile):
        embedder.embed(np.zeros(0, np.float32))


def test_embed_many_reports_bad_files(embedder, write_audio, tmp_path, capsys):
    good = [write_audio(f"g{i}.wav", voice(4.0, singer=i), SR) for i in range(2)]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_text("not audio at all")
    missing = tmp_path / "missing.wav"
    ok, failed = embedder.embed_many([good[0], corrupt, missing, good[1]], progress=False)
    assert list(ok) == good and set(failed) == {corrupt, missing}
    assert "corrupt.wav" in failed[corrupt] and "missing.wav" in failed[missing]
    np.testing.assert_allclose(ok[good[1]], embedder.embed(good[1]), atol=1e-6)
    with pytest.raises(CorruptAudioFile):
        embedder.embed(corrupt)
    embedder.embed_many(good, progress=True)  # the Keras progress bar
    assert "2/2" in capsys.readouterr().out


def test_similarity_is_exp_of_negative_squared_distance():
    a, b = np.zeros(16), np.full(16, 0.25)
    assert inference.similarity(a, a) == 1.0
    assert inference.squared_distance(a, b) == pytest.approx(1.0)
    assert inference.similarity(a, b) == pytest.approx(np.exp(-1.0))


def test_load_by_name_and_unknown_name(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "exported_dir", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)  # no ./exported: only exported_dir() is searched
    shutil.copytree(model_dir, tmp_path / "tiny")
    assert singer_zoo.load("tiny").path == (tmp_path / "tiny").resolve()
    with pytest.raises(UnknownNameError, match="valid: .*tiny"):
        singer_zoo.load("no_such_model")


@pytest.mark.parametrize("tamper", ["modify", "extra", "remove", "card"])
def test_tampered_export_is_refused(model_dir, tmp_path, tamper):
    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    weights = folder / "saved_model" / "variables" / "variables.data-00000-of-00001"
    if tamper == "modify":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
        match = "variables.data.*sha256 differs"
    elif tamper == "extra":
        (folder / "saved_model" / "evil.py").write_text("print('hi')")
        match = "evil.py.*not listed"
    elif tamper == "remove":
        (folder / "embedder.keras").unlink()
        match = "embedder.keras.*missing"
    else:
        (folder / "metadata.json").write_text(json.dumps({"name": "x"}))
        match = "no 'files' table"
    with pytest.raises(IntegrityError, match=match):
        singer_zoo.load(folder)


def test_long_recordings_stream_to_the_same_embedding(embedder, monkeypatch):
    y = voice(12.0, singer=4, seed=2)
    whole = embedder.window_embeddings(y)
    monkeypatch.setattr(inference, "STREAM_SECONDS", 5)
    monkeypatch.setattr(inference, "WINDOW_BATCH", 2)
    streamed = embedder.window_embeddings(y)
    assert streamed.shape == whole.shape == (6, 16)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)
    np.testing.assert_allclose(embedder.embed(y), whole.mean(0), atol=1e-4)
