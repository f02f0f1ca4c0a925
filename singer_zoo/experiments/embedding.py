"""Table 2 protocol for one zoo row (paper section 3.5, Figures 3-5 and 7).

The row's siamese embedder is trained on the song-disjoint train/validation split
(`evaluation.protocols.embedding_split`) into `<out>/`, then evaluated on the test
performances:
- test contrastive loss on a fixed, seeded set of 1:1 same/different-singer window pairs
  (the loss alone, without the L2 penalty);
- performance embedding = mean of its window embeddings (returned for the table runner,
  which compares rows and the baseline by k-NN, EER and t-SNE);
- a t-SNE plot of the test clips coloured by singer and by song (Figure 7).
"""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from singer_zoo.batch import Workers
from singer_zoo.config import ZooConfig
from singer_zoo.experiments.classification import predict_windows

log = logging.getLogger(__name__)
MIN_TEST_PAIR_BATCHES = 20


def test_contrastive_loss(model, feature_set, singer_labels, cfg: ZooConfig) -> float:
    """Mean contrastive loss (eq. 5) of the siamese `model` over fixed test pairs: as many
    batches as the test windows fill, at least MIN_TEST_PAIR_BATCHES, seeded."""
    from singer_zoo.data import PairBatches

    t = cfg.train
    n_batches = max(MIN_TEST_PAIR_BATCHES, feature_set.n_windows // t.batch_size)
    losses = []
    for (x1, x2), y in PairBatches(feature_set, singer_labels, t.batch_size,
                                   seed=t.seed + 1).batches(0, n_batches):
        d = np.asarray(model([x1, x2], training=False), np.float64)  # (batch,)
        y = y.astype(np.float64)
        losses.append(0.5 * y * d + 0.5 * (1 - y) * np.maximum(0.0, t.margin - d))
    return float(np.mean(np.concatenate(losses)))


def performance_embeddings(embedder, feature_set) -> tuple[np.ndarray, np.ndarray]:
    """(performance embeddings (n_recordings, dim), window embeddings (n_windows, dim))."""
    from singer_zoo.evaluation.metrics import recording_scores

    win = predict_windows(embedder, feature_set)  # (n_windows, dim)
    return recording_scores(win, feature_set.window_index[:, 0], feature_set.n_recordings), win


def run_embedding(cfg: ZooConfig, split: dict, out_dir, *, cache_dir=None,
                  workers: int | Workers = 2, verbose: int = 0) -> dict:
    """Table 2 result row of `cfg` on `split` ({"train", "validation", "test"} manifests).

    Returns the row dict: name, test_loss, epochs, skipped files, and under "test" the
    test performances' paths and embeddings (n, dim)."""
    from singer_zoo.data import encode_labels, load_feature_set
    from singer_zoo.evaluation.plots import plot_tsne
    from singer_zoo.training import load_split, train

    out_dir = Path(out_dir)
    train_data, val_data, classes, failed = load_split(
        cfg, split["train"], split["validation"], cache_dir=cache_dir, workers=workers)
    result = train(cfg, train_data, val_data, out_dir, class_names=classes, verbose=verbose)
    model = keras.saving.load_model(result.best_model_path)
    test_fs, bad = load_feature_set(split["test"], cfg.features, cache_dir=cache_dir,
                                    workers=workers)
    failed.update(bad)
    singers = [r.singer for r in test_fs.recordings]
    songs = [r.song for r in test_fs.recordings]
    singer_codes, _ = encode_labels(singers)
    test_loss = test_contrastive_loss(model, test_fs, singer_codes, cfg)
    perf, win = performance_embeddings(model.embedder, test_fs)
    row = {"name": cfg.name, "test_loss": test_loss,
           "epochs_run": result.metrics.get("epochs_run"),
           "best_epoch": result.metrics.get("best_epoch"),
           "skipped": sorted(failed.values()),
           "test": {"paths": [r.path for r in test_fs.recordings], "embeddings": perf}}
    win_rec = test_fs.window_index[:, 0]
    plot_tsne(win, np.asarray(singers)[win_rec], np.asarray(songs)[win_rec],
              out_dir / "tsne_clips.png", f"{cfg.name}: test clips (Figure 7)")
    log.info("%s: test contrastive loss %.4f", cfg.name, test_loss)
    return row
