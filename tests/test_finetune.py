"""`singer-zoo finetune`: a shipped embedder fine-tuned on a user's manifest, exported."""
from __future__ import annotations

import json

import numpy as np
import pytest

import singer_zoo
from singer_zoo.cli import main
from singer_zoo.data import read_manifest
from singer_zoo.data.synthetic import generate_corpus
from singer_zoo.errors import ConfigError
from singer_zoo.export import export
from singer_zoo.training.finetune import split_singers
from test_export import make_run, voice


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    make_run(root / "run")
    return export(root / "run", root / "shipped", ()).path


def test_finetune_lowers_the_loss_on_held_out_singers_and_exports(shipped, tmp_path):
    manifest = generate_corpus(tmp_path / "mine", n_singers=6, n_songs=2, seconds=7.0, seed=8)
    out = tmp_path / "tuned"
    assert main(["finetune", str(shipped), "--data", str(manifest), "--out", str(out),
                 "--steps", "8", "--epochs", "3", "--learning-rate", "1e-3",
                 "--batch-size", "8", "--tflite", "none", "--verbose", "0"]) == 0
    card = json.loads((out / "metadata.json").read_text())
    ft = card["fine_tuned"]
    assert ft["base_model"] == "mobile_resnext_attention" and ft["train_singers"] == 4
    assert len(ft["validation_singers"]) == 2
    # generalises: lower contrastive loss on the pairs of the two singers it never trained on
    assert ft["best_val_loss"] < ft["val_loss_before"] and ft["best_epoch"] >= 1
    before, after = singer_zoo.load(shipped), singer_zoo.load(out)
    clip = voice(7.0, singer=2)
    assert not np.allclose(before.embed(clip), after.embed(clip), atol=1e-4)
    assert (tmp_path / "tuned_run" / "best.keras").is_file()


def test_split_is_singer_disjoint_and_needs_four_singers(tmp_path):
    m = read_manifest(generate_corpus(tmp_path / "c", n_singers=5, n_songs=1, seconds=1.0))
    train, val = split_singers(m, 0.25, seed=0)
    assert len(val.singers) == 2 and not set(train.singers) & set(val.singers)
    assert len(train) + len(val) == len(m)
    with pytest.raises(ConfigError, match="at least 4 singers"):
        split_singers(m.filter(singer=("singer00", "singer01", "singer02")), 0.25, 0)
