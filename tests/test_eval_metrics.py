"""Metrics (accuracy, fold summary), leave-one-out k-NN, verification EER, report tables."""
import json

import numpy as np
import pytest

from singer_zoo.config import ArchConfig, FeatureConfig, ZooConfig
from singer_zoo.errors import ConfigError
from singer_zoo.evaluation.knn import knn_accuracies, knn_table
from singer_zoo.evaluation.metrics import (format_mean_std, recording_accuracy,
                                           recording_scores, summarise_folds, window_accuracy)
from singer_zoo.evaluation.report import (knn_markdown, table1_markdown, table2_markdown,
                                          write_report)
from singer_zoo.evaluation.verification import (equal_error_rate, verification_eer,
                                                verification_report)


# --- accuracy --------------------------------------------------------------------------
def test_recording_accuracy_uses_the_mean_of_window_predictions():
    # Recording 0 (label 1): two windows vote class 0 weakly, one votes class 1 strongly;
    # a majority vote would say 0, the mean says 1. Recording 1 (label 0): clearly 0.
    probs = np.array([[0.55, 0.45], [0.55, 0.45], [0.0, 1.0], [0.9, 0.1]])
    index = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(recording_scores(probs, index, 2),
                               [[1.1 / 3, 1.9 / 3], [0.9, 0.1]])
    assert recording_accuracy(probs, index, [1, 0]) == 1.0
    assert recording_accuracy(probs, index, [0, 0]) == 0.5
    assert window_accuracy(probs, [1, 1, 1, 0]) == 0.5


def test_recording_accuracy_rejects_bad_indices():
    probs = np.eye(3)
    with pytest.raises(ConfigError, match=r"recordings \[1\] have no windows"):
        recording_accuracy(probs, np.array([0, 2, 2]), [0, 1, 2])
    with pytest.raises(ConfigError, match="one per window"):
        recording_accuracy(probs, np.array([0, 1]), [0, 1])
    with pytest.raises(ConfigError, match=r"\[0, 2\)"):
        recording_accuracy(probs, np.array([0, 1, 2]), [0, 1])


def test_summarise_and_format_like_the_paper():
    mean, std = summarise_folds([0.72, 0.764, 0.742])
    assert mean == pytest.approx(0.742) and std == pytest.approx(np.std([0.72, 0.764, 0.742]))
    assert format_mean_std(0.742, 0.022) == "0.742(0.022)"
    assert format_mean_std(0.7, 0.021) == "0.7(0.021)"
    assert format_mean_std(0.27349, 0.04) == "0.273(0.04)"
    assert format_mean_std(0.3369) == "0.337"
    assert format_mean_std(0.3369, digits=4) == "0.3369"
    with pytest.raises(ConfigError):
        summarise_folds([])


# --- k-NN --------------------------------------------------------------------------------
def test_knn_leave_one_out_known_answers():
    # Two tight clusters far apart: every point's neighbours share its label.
    x = np.r_[np.zeros((4, 2)), np.full((4, 2), 10.0)] + np.arange(8)[:, None] * 0.01
    y = np.array(["a"] * 4 + ["b"] * 4)
    assert knn_accuracies(x, y) == {1: 1.0, 3: 1.0, 5: 1.0, 7: 0.0}
    # k=7 includes all 7 other points: 3 own-label vs 4 other-label, always wrong.


def test_knn_matches_sklearn_leave_one_out():
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 3)), rng.integers(0, 4, 30)
    for k, acc in knn_accuracies(x, y).items():
        pred = cross_val_predict(KNeighborsClassifier(k), x, y, cv=LeaveOneOut())
        assert acc == np.mean(pred == y)


def test_knn_excludes_the_point_itself():
    # Each point's only same-label partner is far away; without leave-one-out k=1 would
    # find the point itself and score 1.0.
    x = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([0, 1, 0, 1])
    assert knn_accuracies(x, y, ks=(1,)) == {1: 0.0}


def test_knn_ties_are_deterministic():
    # k=2: one neighbour of each label -> the tie goes to the first label in sorted order.
    x = np.array([[0.0], [1.0], [-1.0], [5.0]])
    y = np.array(["z", "a", "z", "a"])
    first = knn_accuracies(x, y, ks=(2,))
    assert first == knn_accuracies(x, y, ks=(2,))
    # Points 0, 2 and 3 have one neighbour of each label -> "a"; point 1's are both "z".
    assert first == {2: 0.25}  # only point 3 ("a") is right


def test_knn_table_and_errors():
    rng = np.random.default_rng(0)
    singers = np.repeat(np.arange(4), 4)
    songs = np.tile(np.arange(4), 4)
    singer_space = singers[:, None] * 5.0 + rng.normal(0, 0.1, (16, 3))
    song_space = songs[:, None] * 5.0 + rng.normal(0, 0.1, (16, 3))
    t = knn_table({"embedding": singer_space, "baseline": song_space}, singers, songs,
                  ks=(1, 3))
    assert t["singer"]["embedding"] == {1: 1.0, 3: 1.0}
    assert t["song"]["baseline"] == {1: 1.0, 3: 1.0}
    assert t["song"]["embedding"][1] < 0.5 and t["singer"]["baseline"][1] < 0.5
    with pytest.raises(ConfigError, match="k must be"):
        knn_accuracies(singer_space, singers, ks=(16,))
    with pytest.raises(ConfigError, match="labels"):
        knn_accuracies(singer_space, singers[:-1])


@pytest.mark.parametrize("score, names", [
    (lambda x, y: knn_accuracies(x, y, ks=(1,)), ("vectors", "labels")),
    (lambda x, y: verification_eer(x, y), ("embeddings", "singer_labels")),
])
def test_vector_inputs_are_checked_with_the_callers_names(score, names):
    x, y = np.eye(6), np.repeat(np.arange(3), 2)
    with pytest.raises(ConfigError, match=rf"{names[0]} must be \(n, D\) and {names[1]} "):
        score(x, y[:-1])
    with pytest.raises(ConfigError, match=rf"{names[0]} must be"):
        score(x[0], y)
    x[2, 1] = np.nan
    with pytest.raises(ConfigError, match=f"{names[0]} contain NaN"):
        score(x, y)


# --- verification --------------------------------------------------------------------
def test_eer_separable_is_zero_with_a_separating_threshold():
    singers = np.repeat(np.arange(5), 3)
    x = singers[:, None] * 10.0 + np.random.default_rng(1).normal(0, 0.1, (15, 4))
    r = verification_eer(x, singers)
    assert r.eer == 0.0
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    same = singers[:, None] == singers[None]
    off = ~np.eye(15, dtype=bool)
    assert d[same & off].max() == pytest.approx(r.threshold) and r.threshold < d[~same].min()
    assert (r.n_positive, r.n_negative) == (15, 90)


def test_eer_random_is_about_half():
    rng = np.random.default_rng(2)
    r = verification_eer(rng.normal(size=(200, 16)), rng.integers(0, 10, 200))
    assert 0.42 < r.eer < 0.58


def test_eer_interpolates_between_roc_points():
    # Scores, best first: P 4, N 3, N 2, P 1, N 0. FNR stays 0.5 while FPR goes 0 -> 2/3,
    # so the curves cross at 0.5; the nearest ROC point alone would say (2/3 + 0.5) / 2.
    eer, thr = equal_error_rate([1, 0, 0, 1, 0], [4.0, 3.0, 2.0, 1.0, 0.0])
    assert eer == pytest.approx(0.5) and thr == 2.0


def test_hard_pairs_remove_the_song_effect():
    # The space encodes only the song: "all" pairs look fine for nothing, hard pairs fail.
    singers = np.repeat(np.arange(4), 4)
    songs = np.tile(np.arange(4), 4)
    song_space = songs[:, None] * 10.0 + np.random.default_rng(3).normal(0, 0.1, (16, 2))
    rep = verification_report(song_space, singers, songs)
    assert rep["hard"].eer == 1.0  # every negative (same song) is closer than every positive
    assert rep["hard"].n_positive == 4 * 6 and rep["hard"].n_negative == 4 * 6
    singer_space = singers[:, None] * 10.0 + np.random.default_rng(3).normal(0, 0.1, (16, 2))
    assert verification_eer(singer_space, singers, songs, "hard").eer == 0.0
    with pytest.raises(ConfigError, match="song_labels"):
        verification_eer(singer_space, singers, None, "hard")
    with pytest.raises(ConfigError, match="both"):
        verification_eer(singer_space[:4], singers[:4])


# --- report ------------------------------------------------------------------------------
def _cfg(name, table, block, frontend, paper):
    return ZooConfig(name, table, features=FeatureConfig(frontend=frontend),
                     arch=ArchConfig(block=block, stem_filters=64, stages=((128,),),
                                     aggregation="max"), paper=paper)


def test_table1_rows_in_the_papers_layout():
    cfgs = {"m1": _cfg("m1", "table1", "vanilla", "cqt",
                       {"train_accuracy": 0.886, "train_accuracy_std": 0.041,
                        "test_accuracy": 0.637, "test_accuracy_std": 0.026})}
    rows = [{"name": "m1", "cnn_params": 621234, "total_params": 5_867_000,
             "train_accuracy": 0.9, "train_accuracy_std": 0.03, "test_accuracy": 0.7,
             "test_accuracy_std": 0.02},
            {"name": "baseline", "train_accuracy": 0.5, "train_accuracy_std": 0.01,
             "test_accuracy": [0.2, 0.3]}]  # printed baseline first, as in the paper
    lines = table1_markdown(rows, cfgs).splitlines()
    assert lines[0].startswith("| Model | Feature | # of CNN filters | Global aggregation")
    assert lines[0].endswith("| Train accuracy | Test accuracy | paper train | paper test |")
    assert lines[2] == "| baseline | baseline |  |  |  |  | 0.5(0.01) | 0.25(0.05) | " \
                       "0.516(0.006) | 0.273(0.04) |"
    assert lines[3] == "| m1 | CNN(CQT) | 64, 128 | max | 621k | 5867k | 0.9(0.03) | " \
                       "0.7(0.02) | 0.886(0.041) | 0.637(0.026) |"


def test_rows_follow_the_papers_order():
    names = ["t2_resnext_deep_attention", "t2_cnn_shallow_none", "t2_resnext_shallow_max"]
    lines = table2_markdown([{"name": n} for n in names]).splitlines()[2:]
    assert [line.split(" | ")[0][2:] for line in lines] == \
        ["t2_cnn_shallow_none", "t2_resnext_shallow_max", "t2_resnext_deep_attention"]


def test_rows_need_a_known_name():
    from singer_zoo.errors import UnknownNameError

    with pytest.raises(ConfigError, match="no 'name'"):
        table1_markdown([{"test_accuracy": 0.5}])
    with pytest.raises(UnknownNameError, match="no_such_model"):
        table1_markdown([{"name": "no_such_model"}])


def test_table2_and_registry_lookup():
    out = table2_markdown([{"name": "t2_resnext_shallow_attention", "test_loss": 0.31234,
                            "cnn_params": 56000, "total_params": 5_318_000}])
    assert "| Test loss | paper test loss |" in out.splitlines()[0]
    assert out.splitlines()[2] == ("| t2_resnext_shallow_attention | ResNeXt | 128, 128 | "
                                   "attention | 56k | 5318k | 0.3123 | 0.3315 |")


def test_filters_column_matches_the_papers_for_every_registered_model():
    from singer_zoo.registry import all_configs

    checked = 0
    for name, cfg in all_configs().items():
        render = table1_markdown if cfg.table == "table1" else table2_markdown
        cells = render([{"name": name}]).splitlines()[2].split(" | ")
        if "filters" in cfg.paper:
            assert cells[2] == str(cfg.paper["filters"]), name
            checked += 1
    assert checked >= 30


def test_write_report_markdown_and_json(tmp_path):
    knn = {"singer": {"emb": {1: 0.5, 3: 0.75}}, "song": {"emb": {1: 0.25, 3: 0.125}}}
    rep = verification_report(np.eye(4), [0, 0, 1, 1], [0, 1, 0, 1])
    md, js = write_report(tmp_path / "out" / "results.md",
                          table1=[{"name": "baseline", "test_accuracy": 0.3}],
                          knn=knn, eer={"emb": rep})
    text = md.read_text()
    assert "## Table 1" in text and "## Table 2" not in text
    assert "| singer | emb | 0.5 | 0.75 |" in text and "| emb | hard |" in text
    data = json.loads(js.read_text())
    assert data["table1"][0]["test_accuracy"] == 0.3
    assert data["eer"]["emb"]["all"]["n_positive"] == 2
    assert knn_markdown(data["knn"]) == knn_markdown(knn)  # string keys after JSON
    assert "left out" not in text


def test_report_lists_each_left_out_recording_once(tmp_path):
    bad = "/data/b.m4a: not a readable audio file"
    rows = [{"name": "baseline", "test_accuracy": 0.3, "skipped": [bad]},
            {"name": "t1_cnn_shallow_max", "test_accuracy": 0.5, "skipped": [bad, "/c.wav: x"]}]
    md, _ = write_report(tmp_path / "r.md", table1=rows)
    section = md.read_text().split("## Recordings left out (could not be read)\n\n")[1]
    assert section.splitlines() == ["- /c.wav: x", f"- {bad}"]
