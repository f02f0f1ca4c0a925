"""`singer-zoo demo` (the README's main command) shows what the paper shows (issue 15): both
networks far above chance, and the siamese embedder finding singers on test songs better
than the handcrafted features while finding songs far less.

Runs the whole demo (about 6 minutes on 2 cores): slow. The demo's Table 2 on two generated
corpora (seeds 0 and 1, docs/experiments.md, "The demo"): embedder singer 1-NN 0.79 / 0.88
against the baseline's 0.29 / 0.08, song 1-NN 0.04 / 0.00 against 0.71 / 0.83, EER 0.17 /
0.08; the bounds below leave room on either side.
"""
import json

import pytest

from singer_zoo.cli import main


@pytest.mark.slow
def test_demo_report_shows_the_paper_effects(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--verbose", "0"]) == 0
    t1 = json.loads((tmp_path / "table1" / "report.json").read_text())["table1"]
    net = next(r for r in t1 if r["name"] == "mobile_resnext_attention_classifier")
    assert net["test_accuracy"][0] >= 0.5  # chance 1/6
    t2 = json.loads((tmp_path / "table2" / "report.json").read_text())
    singer, song = t2["knn"]["singer"], t2["knn"]["song"]
    row, base = "mobile_resnext_attention", "baseline"
    assert singer[row]["1"] >= 0.5 and singer[row]["1"] >= singer[base]["1"] + 0.2
    assert song[row]["1"] <= song[base]["1"] - 0.3  # less song-driven
    assert t2["eer"][row]["all"]["eer"] <= 0.3
