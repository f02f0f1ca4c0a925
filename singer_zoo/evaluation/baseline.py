"""The paper's Table 1 baseline: an SVM on per-clip handcrafted features (section 3.4), and
the same features averaged per recording as "performance vectors" (Figures 4, 5).

Features: `singer_zoo.features.handcrafted.handcrafted_features`, 70 values per ~6 s clip
(mean and std of chroma, MFCC, centroid, roll-off, flux).

SVM: scikit-learn `SVC` with an RBF kernel (gamma="scale") on standardised features; C is
chosen from `C_GRID` per fold by training on the fold's training clips and scoring the
clips of its validation recordings (the protocol's early-stopping recording), then refit on
training + validation clips. A recording's prediction is the argmax of the mean SVM
decision values of its clips, as the networks average their window predictions.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from singer_zoo.audio import load_audio
from singer_zoo.batch import BatchResult, Workers, run_batch
from singer_zoo.data.manifest import Manifest, _listed
from singer_zoo.errors import ConfigError, FileProblem
from singer_zoo.evaluation.metrics import recording_accuracy, summarise_folds

log = logging.getLogger(__name__)

KERNEL = "rbf"
C_GRID = (1.0, 10.0, 100.0)
METRICS = ("train_clip_accuracy", "train_accuracy", "test_clip_accuracy", "test_accuracy")


def recording_clip_features(path, sr: int = 22050, clip_seconds: float = 6.0) -> np.ndarray:
    """(n_clips, 70) handcrafted features of the audio file at `path`; errors name it."""
    # Imported here: the features package imports TensorFlow, which the SVM does not need.
    from singer_zoo.features.handcrafted import handcrafted_features

    y = load_audio(path, sr)
    try:
        return handcrafted_features(y, sr, clip_seconds)
    except FileProblem as e:  # raised about the waveform: name the file instead
        raise type(e)(path, e.problem) from None


def extract_clip_features(recordings, feature_fn: Callable = recording_clip_features,
                          workers: int | Workers = 1, progress: bool = False) -> BatchResult:
    """`feature_fn(path)` for every recording: `ok` maps path -> (n_clips, D); a file that
    cannot be used is in `failed` (path -> message) instead of stopping the others."""
    return run_batch(feature_fn, [r.path for r in recordings], workers=workers,
                     progress=progress, label="recordings")


def _stack(manifest: Manifest, clip_features: Mapping[str, np.ndarray]):
    """(clips (n, D), singer of each clip (n,), recording index of each clip (n,))."""
    missing = [r.path for r in manifest if r.path not in clip_features]
    if missing:
        raise ConfigError(f"no clip features for {len(missing)} recording(s): "
                          f"{_listed(missing)}")
    feats = [np.asarray(clip_features[r.path], dtype=np.float64) for r in manifest]
    index = np.concatenate([np.full(len(f), i) for i, f in enumerate(feats)])
    singers = np.array([r.singer for r in manifest])
    return np.concatenate(feats), singers[index], index


def _fit(x_train, y_train, x_val, y_val, c_grid: Sequence[float]):
    """Standardiser + SVC with C picked on the validation clips, refit on all of them."""
    model = make_pipeline(StandardScaler(), SVC(kernel=KERNEL, gamma="scale"))
    x = np.concatenate([x_train, x_val])
    y = np.concatenate([y_train, y_val])
    split = PredefinedSplit(np.r_[np.full(len(x_train), -1), np.zeros(len(x_val), int)])
    search = GridSearchCV(model, {"svc__C": list(c_grid)}, cv=split, refit=True)
    search.fit(x, y)
    return search.best_estimator_, float(search.best_params_["svc__C"])


def _accuracies(model, x, clip_singers, index, manifest: Manifest):
    """(clip accuracy, recording accuracy) of `model` on the clips of `manifest`."""
    classes = model.classes_
    decision = model.decision_function(x)  # (n_clips, n_classes)
    rec_labels = np.searchsorted(classes, [r.singer for r in manifest])
    clip_acc = float(np.mean(classes[decision.argmax(1)] == clip_singers))
    return clip_acc, recording_accuracy(decision, index, rec_labels)


def svm_baseline(folds, clip_features: Mapping[str, np.ndarray],
                 c_grid: Sequence[float] = C_GRID) -> dict:
    """Cross-validated SVM baseline over `folds` (from `protocols.cv_folds`).

    Returns {"kernel", "c_grid", "folds": [per-fold dict with C and the METRICS],
    and per metric m: m (mean over folds) and m + "_std"}; "train_accuracy" and
    "test_accuracy" are recording-level, the "_clip_" ones clip-level.
    """
    if not folds:
        raise ConfigError("svm_baseline needs at least one fold")
    if not c_grid or min(c_grid) <= 0:
        raise ConfigError(f"c_grid must be non-empty positive values, got {c_grid!r}")
    rows = []
    for fold in folds:
        x_tr, y_tr, _ = _stack(fold.train, clip_features)
        x_va, y_va, _ = _stack(fold.validation, clip_features)
        x_te, y_te, i_te = _stack(fold.test, clip_features)
        model, c = _fit(x_tr, y_tr, x_va, y_va, c_grid)
        train_set = Manifest(list(fold.train) + list(fold.validation), fold.train.root)
        x_all, y_all, i_all = _stack(train_set, clip_features)
        tr_clip, tr_rec = _accuracies(model, x_all, y_all, i_all, train_set)
        te_clip, te_rec = _accuracies(model, x_te, y_te, i_te, fold.test)
        rows.append({"fold": fold.index, "C": c, "train_clip_accuracy": tr_clip,
                     "train_accuracy": tr_rec, "test_clip_accuracy": te_clip,
                     "test_accuracy": te_rec})
        log.info("baseline fold %d: C=%g test accuracy %.3f (clips %.3f)", fold.index, c,
                 te_rec, te_clip)
    out = {"kernel": KERNEL, "c_grid": [float(c) for c in c_grid], "folds": rows}
    for m in METRICS:
        out[m], out[f"{m}_std"] = summarise_folds([r[m] for r in rows])
    return out


def baseline_performance_vectors(recordings, clip_features: Mapping[str, np.ndarray] | None
                                 = None, feature_fn: Callable = recording_clip_features,
                                 workers: int | Workers = 1, standardise: bool = True
                                 ) -> tuple[np.ndarray, Manifest]:
    """(vectors (n, D), the n recordings they belong to): the mean clip feature vector of
    each recording, z-scored per dimension over these recordings if `standardise` (the raw
    features range from ~0.1 (chroma) to thousands (Hz), which Euclidean k-NN and t-SNE
    would otherwise be dominated by). Features are extracted with `feature_fn` unless given;
    recordings whose file fails are left out with a warning."""
    rec = list(recordings)
    if clip_features is None:
        result = extract_clip_features(rec, feature_fn, workers)
        if result.failed:
            log.warning("baseline vectors: %d recording(s) left out:\n%s", len(result.failed),
                        result.report())
        clip_features = result.ok
    kept = Manifest([r for r in rec if r.path in clip_features],
                    getattr(recordings, "root", None))
    if not len(kept):
        raise ConfigError("no recording has clip features")
    vectors = np.stack([np.asarray(clip_features[r.path], np.float64).mean(0) for r in kept])
    if standardise:
        std = vectors.std(0)
        vectors = (vectors - vectors.mean(0)) / np.where(std > 0, std, 1.0)
    return vectors, kept
