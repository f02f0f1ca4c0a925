"""The SVM baseline on handcrafted clip features and the baseline performance vectors."""
import numpy as np
import pytest

from singer_zoo.data.manifest import Manifest, Recording, read_manifest
from singer_zoo.data.synthetic import generate_corpus
from singer_zoo.errors import ConfigError, CorruptAudioFile
from singer_zoo.evaluation.baseline import (C_GRID, baseline_performance_vectors,
                                            extract_clip_features, recording_clip_features,
                                            svm_baseline)
from singer_zoo.evaluation.protocols import cv_folds


def _corpus(n_singers=4, per_singer=10):
    return Manifest([Recording(f"/d/s{i}_{j}.wav", f"s{i}", "", f"s{i}_{j}")
                     for i in range(n_singers) for j in range(per_singer)], "/d")


def _clips(manifest, spread, seed=0):
    """3..5 clips of 8-d features per recording around a per-singer centre."""
    rng = np.random.default_rng(seed)
    centres = {s: rng.normal(0, 1, 8) for s in manifest.singers}
    return {r.path: centres[r.singer] + rng.normal(0, spread, (3 + len(r.path) % 3, 8))
            for r in manifest}


def test_svm_separable_singers_are_found():
    m = _corpus()
    folds = cv_folds(m, seed=0)[:3]
    res = svm_baseline(folds, _clips(m, spread=0.1))
    assert len(res["folds"]) == 3 and res["kernel"] == "rbf"
    assert res["test_accuracy"] == 1.0 and res["test_clip_accuracy"] == 1.0
    assert res["train_accuracy"] == 1.0 and res["test_accuracy_std"] == 0.0
    assert all(f["C"] in C_GRID for f in res["folds"])


def test_svm_noise_is_near_chance_and_recordings_beat_clips():
    m = _corpus(n_singers=4)
    res = svm_baseline(cv_folds(m, seed=0), _clips(m, spread=3.0, seed=1))
    assert res["test_clip_accuracy"] < 0.6  # chance 0.25, centres partly visible
    # Averaging the decision values of a recording's clips removes clip noise.
    assert res["test_accuracy"] > res["test_clip_accuracy"]
    assert res["train_clip_accuracy"] > res["test_clip_accuracy"]
    m_std = np.std([f["test_accuracy"] for f in res["folds"]])
    assert res["test_accuracy_std"] == pytest.approx(m_std)


def test_svm_needs_features_for_every_recording():
    m = _corpus(n_singers=3)
    clips = _clips(m, 0.1)
    del clips["/d/s1_4.wav"]
    with pytest.raises(ConfigError, match="s1_4.wav"):
        svm_baseline(cv_folds(m), clips)
    with pytest.raises(ConfigError, match="c_grid"):
        svm_baseline(cv_folds(m), _clips(m, 0.1), c_grid=())


def test_performance_vectors_are_standardised_means_and_skip_bad_files():
    m = _corpus(n_singers=2, per_singer=3)
    clips = _clips(m, 0.5)

    def feature_fn(path):
        if path.endswith("s1_2.wav"):
            raise CorruptAudioFile(path, "not audio")
        return clips[path]

    vectors, kept = baseline_performance_vectors(m, feature_fn=feature_fn)
    assert [r.recording for r in kept] == [r.recording for r in m][:5]
    raw = np.stack([clips[r.path].mean(0) for r in kept])
    np.testing.assert_allclose(vectors, (raw - raw.mean(0)) / raw.std(0))
    same, _ = baseline_performance_vectors(kept, clip_features=clips, standardise=False)
    np.testing.assert_allclose(same, raw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """3 synthetic singers x 10 songs of 2 s: every singer has the 10 recordings of a fold."""
    return read_manifest(generate_corpus(tmp_path_factory.mktemp("corpus"), n_singers=3,
                                         n_songs=10, seconds=2.0))


def test_clip_features_from_audio_files(corpus, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not a wav file at all" * 20)
    result = extract_clip_features(list(corpus[:3]) + [Recording(str(bad), "x")])
    assert sorted(result.ok) == sorted(r.path for r in corpus[:3])
    for feats in result.ok.values():
        assert feats.shape == (1, 70) and np.isfinite(feats).all()
    assert str(bad) in result.failed[str(bad)]
    with pytest.raises(CorruptAudioFile, match="bad.wav"):
        recording_clip_features(bad)


def test_end_to_end_on_a_generated_corpus(corpus):
    feats = extract_clip_features(corpus).ok
    res = svm_baseline(cv_folds(corpus, seed=0), feats)
    assert res["test_accuracy"] >= 0.5  # chance is 1/3 (measured: 0.667)
    vectors, kept = baseline_performance_vectors(corpus, clip_features=feats)
    assert vectors.shape == (30, 70) and len(kept) == 30
