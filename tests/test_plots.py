"""The figures: files are written, are PNGs and show something; bad input is a typed error."""
import csv

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from singer_zoo.errors import ConfigError, FileProblem
from singer_zoo.evaluation.plots import (best_epoch, plot_knn_bars, plot_loss_curves, plot_tsne,
                                         read_history, tsne_2d)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)[..., :3]
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 10  # not blank: lines / points / bars in several colours


def _write_history(path, loss, val):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "loss", "val_loss"])
        for e, (a, b) in enumerate(zip(loss, val)):
            w.writerow([e, a, b])


def test_read_history_from_keras_csv_and_history_dicts(tmp_path):
    _write_history(tmp_path / "h.csv", [1.0, 0.8, 0.7, 0.6], ["", "0.9", "NA", "0.65"])
    epochs, loss, val = read_history(tmp_path / "h.csv")
    assert epochs.tolist() == [1, 2, 3, 4] and loss.tolist() == [1.0, 0.8, 0.7, 0.6]
    np.testing.assert_array_equal(val, [np.nan, 0.9, np.nan, 0.65])
    # Keras History with validation_freq=2: val_loss has one entry per validation.
    _, _, val2 = read_history({"loss": [1.0, 0.8, 0.7, 0.6], "val_loss": [0.9, 0.65]},
                              validation_every=2)
    np.testing.assert_array_equal(val2, val)
    with pytest.raises(ConfigError, match="validation_every"):
        read_history({"loss": [1.0, 0.8, 0.7, 0.6], "val_loss": [0.9, 0.65]})
    with pytest.raises(FileProblem, match="cannot read"):
        read_history(tmp_path / "missing.csv")
    assert best_epoch(epochs, val) == (4, 0.65)
    assert best_epoch([1, 2, 3], [np.nan, 0.5, 0.5]) == (2, 0.5)
    with pytest.raises(ConfigError, match="no validation loss"):
        best_epoch([1, 2], [np.nan, np.nan])


def test_loss_curves_png(tmp_path):
    epochs = np.arange(300)
    loss = 0.5 * np.exp(-epochs / 80) + 0.1
    val = np.where(epochs % 50 == 49, 0.5 * np.exp(-epochs / 60) + 0.2 + 1e-6 * (epochs - 200) ** 2,
                   np.nan)
    _write_history(tmp_path / "a.csv", loss, ["" if np.isnan(v) else v for v in val])
    one = plot_loss_curves(tmp_path / "a.csv", tmp_path / "figs" / "one.png", "CNN shallow")
    two = plot_loss_curves({"cnn(s)": tmp_path / "a.csv",
                            "res(s)": {"loss": list(loss * 0.9), "val_loss": list(val * 0.9)}},
                           tmp_path / "two.png", "Global aggregation")
    for p in (one, two):
        _check_png(p)


def test_tsne_png_and_projection(tmp_path):
    rng = np.random.default_rng(0)
    singers = np.repeat([f"s{i}" for i in range(10)], 4)
    songs = np.tile([f"song{j}" for j in range(4)], 10)
    emb = np.repeat(rng.normal(0, 5, (10, 16)), 4, axis=0) + rng.normal(0, 0.3, (40, 16))
    xy = tsne_2d(emb)
    assert xy.shape == (40, 2) and np.array_equal(xy, tsne_2d(emb))  # seeded
    out = plot_tsne({"ResNeXt (attention)": emb, "Baseline": rng.normal(size=(40, 70))},
                    singers, songs, tmp_path / "tsne.png", "Figure 4")
    _check_png(out)
    with pytest.raises(ConfigError, match="singer_labels"):
        plot_tsne(emb, singers[:-1], songs, tmp_path / "bad.png", "x")
    with pytest.raises(ConfigError, match="n >= 4"):
        tsne_2d(emb[:3])
    # speech data (no songs): only the singer row of panels
    one = plot_tsne(emb, singers, np.full(40, ""), tmp_path / "speech.png", "speech")
    two = plot_tsne(emb, singers, songs, tmp_path / "sung.png", "sung")
    _check_png(one)
    assert plt.imread(one).shape[0] < 0.7 * plt.imread(two).shape[0]


def test_knn_bars_png(tmp_path):
    res = {"singer": {"ResNeXt (attention)": {1: 0.6, 3: 0.55, 5: 0.5, 7: 0.52},
                      "baseline": {1: 0.2, 3: 0.18, 5: 0.2, 7: 0.21}},
           "song": {"ResNeXt (attention)": {1: 0.3, 3: 0.3, 5: 0.32, 7: 0.3},
                    "baseline": {"1": 0.8, "3": 0.75, "5": 0.7, "7": 0.7}}}
    _check_png(plot_knn_bars(res, tmp_path / "knn.png"))
    with pytest.raises(ConfigError, match="plot_knn_bars"):
        plot_knn_bars({"singer": {}}, tmp_path / "bad.png")
