"""Table 1 protocol for one zoo row (paper section 3.4): k-fold cross validation.

For each chosen fold the row's classifier is trained (`singer_zoo.training.train`, early
stopping on the fold's validation recording) into `<out>/fold<k>/`, then its best model
predicts every window of the training and the test recordings. Accuracy is reported at
window level and at recording level (argmax of the mean window prediction), per fold and as
mean (std) over folds. "Train accuracy" is measured on the fold's training recordings (the
validation recording excluded).
"""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from singer_zoo.batch import Workers
from singer_zoo.config import ZooConfig
from singer_zoo.evaluation.metrics import recording_accuracy, window_accuracy

log = logging.getLogger(__name__)


def predict_windows(model: keras.Model, feature_set, batch_size: int = 64) -> np.ndarray:
    """The model's output for every window of `feature_set`, in `window_index` order."""
    out = []
    for start in range(0, feature_set.n_windows, batch_size):
        idx = np.arange(start, min(start + batch_size, feature_set.n_windows))
        out.append(np.asarray(model(feature_set.windows(idx), training=False)))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def accuracies(model: keras.Model, feature_set, labels) -> dict:
    """{"window": ..., "recording": ...} accuracy of a classifier on a FeatureSet whose
    recordings have the integer `labels`."""
    scores = predict_windows(model, feature_set)
    labels = np.asarray(labels)
    return {"window": window_accuracy(scores, feature_set.window_labels(labels)),
            "recording": recording_accuracy(scores, feature_set.window_index[:, 0], labels)}


def run_fold(cfg: ZooConfig, fold, out_dir: Path, *, cache_dir=None, workers: int | Workers = 2,
             verbose: int = 0) -> dict:
    """Train and evaluate one fold; returns its accuracies and run summary."""
    from singer_zoo.data import load_feature_set
    from singer_zoo.training import load_split, train

    train_data, val_data, classes, failed = load_split(cfg, fold.train, fold.validation,
                                                       cache_dir=cache_dir, workers=workers)
    result = train(cfg, train_data, val_data, out_dir, class_names=classes, verbose=verbose)
    model = keras.saving.load_model(result.best_model_path)
    test_fs, bad = load_feature_set(fold.test, cfg.features, cache_dir=cache_dir,
                                    workers=workers)
    failed.update(bad)
    index = {s: i for i, s in enumerate(classes)}
    test_labels = [index[r.singer] for r in test_fs.recordings]
    train_acc = accuracies(model, train_data.features, train_data.labels)
    test_acc = accuracies(model, test_fs, test_labels)
    log.info("%s fold %d: train %.3f test %.3f (recording level)", cfg.name, fold.index,
             train_acc["recording"], test_acc["recording"])
    return {"fold": fold.index, "train": train_acc, "test": test_acc,
            "epochs_run": result.metrics.get("epochs_run"),
            "best_epoch": result.metrics.get("best_epoch"),
            "skipped": sorted(failed.values())}


def run_classification(cfg: ZooConfig, folds, out_dir, *, cache_dir=None,
                       workers: int | Workers = 2, verbose: int = 0) -> dict:
    """Table 1 result row of `cfg` over `folds` (from `evaluation.protocols.cv_folds`)."""
    out_dir = Path(out_dir)
    per_fold = [run_fold(cfg, f, out_dir / f"fold{f.index}", cache_dir=cache_dir,
                         workers=workers, verbose=verbose) for f in folds]
    return {"name": cfg.name, "folds": per_fold,
            "train_accuracy": [f["train"]["recording"] for f in per_fold],
            "test_accuracy": [f["test"]["recording"] for f in per_fold],
            "train_window_accuracy": [f["train"]["window"] for f in per_fold],
            "test_window_accuracy": [f["test"]["window"] for f in per_fold]}
