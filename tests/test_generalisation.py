"""Trained models generalise in inference mode (issue 15): held-out accuracy of the mobile
classifier, inference-mode vs training-mode agreement of the batch-norm layers after
training, and the mobile siamese embedder's singer separation on held-out songs.

Corpus: 6 singers x 8 songs x 6 s (generated, seed 0); songs 0-3 train, song 4 validates,
songs 5-7 are held out. The mobile rows keep their architecture; windows are 64 frames
(1.5 s) and the learning rate 1e-3 so that a few dozen steps learn. Measured on a heavily
loaded machine, too few runs to set the margins from their spread: held-out window accuracy
0.73 (chance 0.17) with precise BN over 50 batches, >= 0.5 and an inference/training
difference < 0.1 with the final 20; 0.246 and 1.035 with Keras's default BN momentum and no
re-estimation (the code before issue 15), where both tests fail.

Siamese (120 steps of 16 pairs), three runs here: held-out EER 0.133-0.215 and singer 1-NN
0.61-0.72 against the handcrafted features' 0.28; with the pre-issue-15 batch norm
(momentum 0.99, no re-estimation) 0.111-0.167 and 0.67-0.89, so at this budget those two
check that siamese training generalises, not the batch-norm fix; the siamese embedder's
inference/training-mode difference checks the fix: 0.065 with it, 0.60 without.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

from singer_zoo.data import generate_corpus, load_feature_set, read_manifest
from singer_zoo.evaluation import window_accuracy
from singer_zoo.registry import get_config
from singer_zoo.training import load_split, train

FEATURES = {"window_frames": 64, "window_hop_frames": 32}
TRAIN_SONGS = ("song00", "song01", "song02", "song03")
TEST_SONGS = ("song05", "song06", "song07")


def config(name: str, **train):
    settings = {"batch_size": 16, "learning_rate": 1e-3, "validation_every": 2,
                "patience": 100, **train}
    return get_config(name).replace(features=FEATURES, train=settings)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen_corpus")
    manifest = read_manifest(generate_corpus(root, n_singers=6, n_songs=8, seconds=6, seed=0))
    return manifest, root / "cache"


def _run(corpus, cfg, tmp_path_factory):
    manifest, cache = corpus
    tr, va, classes, _ = load_split(cfg, manifest.filter(song=TRAIN_SONGS),
                                    manifest.filter(song="song04"), cache_dir=cache)
    out = tmp_path_factory.mktemp("gen_runs") / cfg.name
    result = train(cfg, tr, va, out, class_names=classes, verbose=0)
    test_fs, bad = load_feature_set(manifest.filter(song=TEST_SONGS), cfg.features,
                                    cache_dir=cache)
    assert bad == {}
    return keras.saving.load_model(result.best_model_path), tr, test_fs, classes


@pytest.fixture(scope="module")
def classifier(corpus, tmp_path_factory):
    cfg = config("mobile_resnext_attention_classifier", max_epochs=8, steps_per_epoch=5)
    return _run(corpus, cfg, tmp_path_factory)


def test_classifier_is_accurate_on_held_out_songs(classifier):
    model, _, test_fs, classes = classifier
    index = {s: i for i, s in enumerate(classes)}
    labels = np.array([index[r.singer] for r in test_fs.recordings])
    scores = model.predict(test_fs.windows(np.arange(test_fs.n_windows)), verbose=0)
    acc = window_accuracy(scores, test_fs.window_labels(labels))
    assert acc >= 0.5, f"held-out window accuracy {acc:.3f} (chance {1 / len(classes):.3f})"


def mode_difference(backbone, tr) -> float:
    """Mean relative difference of the conv stack's output (every BN layer, before dropout)
    on 64 training windows: inference mode (moving statistics) vs training mode (this
    batch's statistics)."""
    conv = keras.Model(backbone.input, backbone.get_layer("stage2_pool").output)
    rng = np.random.default_rng(0)
    x = tr.features.windows(np.sort(rng.choice(tr.features.n_windows, 64, replace=False)))
    a = np.asarray(conv(x, training=False))
    b = np.asarray(conv(x, training=True))
    return float(np.abs(a - b).mean() / np.abs(b).mean())


def test_inference_mode_matches_training_mode_after_training(classifier):
    model, tr, _, _ = classifier
    rel = mode_difference(model.get_layer("backbone"), tr)
    assert rel < 0.1, f"inference vs training mode differ by {rel:.3f} (relative)"


@pytest.fixture(scope="module")
def siamese(corpus, tmp_path_factory):
    cfg = config("mobile_resnext_attention", max_epochs=12, steps_per_epoch=10)
    return _run(corpus, cfg, tmp_path_factory)


def test_siamese_embedder_separates_singers_on_held_out_songs(siamese, corpus):
    """Each held-out performance = its mean window embedding (inference mode), as
    `singer_zoo.load(...).embed` computes it; scored against the paper's handcrafted
    features on the same recordings."""
    from singer_zoo.evaluation import knn_accuracies, verification_eer
    from singer_zoo.evaluation.baseline import baseline_performance_vectors

    model, _, test_fs, _ = siamese
    vectors = np.stack([np.asarray(model.embedder(test_fs.recording_windows(i), training=False))
                        .mean(0) for i in range(test_fs.n_recordings)])
    singers = [r.singer for r in test_fs.recordings]
    eer = verification_eer(vectors, singers).eer
    nn = knn_accuracies(vectors, singers, (1,))[1]
    hand, recs = baseline_performance_vectors(test_fs.recordings)
    hand_nn = knn_accuracies(hand, [r.singer for r in recs], (1,))[1]
    assert eer < 0.3, f"held-out EER {eer:.3f} (chance 0.5)"
    assert nn >= hand_nn, f"held-out singer 1-NN {nn:.3f} < handcrafted {hand_nn:.3f}"


def test_siamese_inference_mode_matches_training_mode_after_training(siamese):
    """The same check on the siamese embedder (0.065 here; 0.60 with the pre-issue-15 batch
    norm, where the EER and 1-NN checks above still pass)."""
    model, tr, _, _ = siamese
    rel = mode_difference(model.embedder.get_layer("backbone"), tr)
    assert rel < 0.15, f"inference vs training mode differ by {rel:.3f} (relative)"
