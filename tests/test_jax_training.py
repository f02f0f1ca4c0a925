"""Issue 16 points 1-3 end to end: `singer-zoo train` on the JAX backend in a subprocess
where TensorFlow and the audio libraries cannot be imported, from a features folder with
the audio deleted; the .keras it writes round-trips save/load there, loads on the
TensorFlow backend with the same outputs, and `singer-zoo export` publishes it (the
export's own SavedModel / TFLite parity checks pass)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import singer_zoo.models  # noqa: F401  (registers the zoo's layers for load_model)
from singer_zoo.cli import main as cli_main
from singer_zoo.data import generate_corpus
from singer_zoo.registry import get_config

TINY = {"stem_filters": 8, "stages": ((16,),), "dense_units": 32, "dense_layers": 1}

TRAIN_AND_ROUND_TRIP = r"""
import json, sys
import keras, numpy as np
from singer_zoo.cli import main
from singer_zoo.data import read_manifest, read_feature_folder
from singer_zoo.registry import get_config
rc = main(["train", CFG, "--data", MANIFEST, "--features", FEATS, "--out", RUN,
           "--max-epochs", "2", "--steps-per-epoch", "2", "--validation-every", "1",
           "--batch-size", "4", "--verbose", "0"])
assert rc == 0 and "tensorflow" not in sys.modules and "soundfile" not in sys.modules
cfg = get_config(CFG)
fs, bad = read_feature_folder(read_manifest(MANIFEST, check_files=False), FEATS, cfg.features)
x = fs.windows(np.arange(min(4, fs.n_windows)))
model = keras.saving.load_model(RUN + "/best.keras")
out = np.asarray(model.embedder.predict(x, verbose=0))
model.save(RUN + "/again.keras")
again = keras.saving.load_model(RUN + "/again.keras")
assert np.array_equal(np.asarray(again.embedder.predict(x, verbose=0)), out)
np.save(RUN + "/windows.npy", x)
np.save(RUN + "/jax_embeddings.npy", out)
print(json.dumps({"history": open(RUN + "/history.csv").read().splitlines(),
                  "plot": __import__("os").path.exists(RUN + "/loss.png")}))
"""


def test_train_on_jax_without_tensorflow_then_export_on_tensorflow(tmp_path, run_no_tf):
    manifest = generate_corpus(tmp_path / "corpus", n_singers=3, n_songs=5, seconds=8, seed=3)
    feats, run = tmp_path / "feats", tmp_path / "run"
    assert cli_main(["features", str(manifest), "--out", str(feats)]) == 0
    for wav in (tmp_path / "corpus").rglob("*.wav"):  # only the features and manifest travel
        wav.unlink()
    cfg_path = tmp_path / "tiny.yaml"
    get_config("mobile_resnext_attention").replace(arch=TINY).to_yaml(cfg_path)
    code = TRAIN_AND_ROUND_TRIP.replace("CFG", repr(str(cfg_path))).replace(
        "MANIFEST", repr(str(manifest))).replace("FEATS", repr(str(feats))).replace(
        "RUN", repr(str(run)))
    out = json.loads(run_no_tf(code).splitlines()[-1])
    assert [ln.split(",")[0] for ln in out["history"][1:]] == ["0", "1"] and out["plot"]
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2

    # the JAX-trained file on the TensorFlow backend: same embeddings, then the export
    model = keras.saving.load_model(run / "best.keras")
    tf_out = np.asarray(model.embedder.predict(np.load(run / "windows.npy"), verbose=0))
    np.testing.assert_allclose(tf_out, np.load(run / "jax_embeddings.npy"), rtol=1e-4,
                               atol=1e-4)
    assert cli_main(["export", str(run), "--out", str(tmp_path / "exported"),
                     "--tflite", "float32"]) == 0
    card = json.loads((tmp_path / "exported" / "metadata.json").read_text())
    assert card["config"]["arch"]["stem_filters"] == 8
    shutil.rmtree(tmp_path / "exported")


def test_pretraining_recipe_runs_on_jax_without_tensorflow(tmp_path, run_no_tf):
    """The pretrained embedders' training step (recipes/train_pack.py, cosine softmax, the
    shipped x-vector row at its real size) on the JAX backend with TensorFlow unimportable,
    as on the GPU machine: it writes an embedder that loads on the TensorFlow backend and
    gives unit-length embeddings there."""
    from singer_zoo.data.pack import write_pack
    from singer_zoo.features import extract_features

    cfg = get_config("mobile_tdnn_statistics")
    rng = np.random.default_rng(0)
    items = [(extract_features(rng.standard_normal(22050 * 7).astype(np.float32) * (1 + s),
                               cfg.features), f"s{s}", f"song{k}", "test", f"s{s}|{k}")
             for s in range(6) for k in range(2)]
    pack = write_pack(items, tmp_path / "pack.npz", cfg.features)
    run = tmp_path / "run"
    argv = [str(pack), "--out", str(run), "--row", "mobile_tdnn_statistics", "--steps", "4",
            "--objective", "cosine-softmax", "--batch-size", "8", "--steps-per-epoch", "2",
            "--window-hop", "32", "--val-fraction", "0.34", "--short-crops", "0.5",
            "--channel-eq", "6"]
    code = ("import sys; sys.path.insert(0, 'recipes'); import train_pack\n"
            f"assert train_pack.main({argv!r}) == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' in sys.modules\n")
    run_no_tf(code)
    metrics = json.loads((run / "mobile_tdnn_statistics" / "metrics.json").read_text())
    assert metrics["objective"] == "cosine_softmax" and metrics["steps"] == 4
    assert metrics["short_crops"] == 0.5 and metrics["channel_eq_db"] == 6
    embedder = keras.saving.load_model(run / "mobile_tdnn_statistics" / "embedder.keras")
    x = np.stack([items[0][0][:cfg.features.window_frames]])
    v = np.asarray(embedder.predict(x, verbose=0))
    assert v.shape == (1, 16) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)


def test_pretraining_recipe_refuses_steps_the_epochs_would_round(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "recipes"))
    import train_pack

    with pytest.raises(SystemExit, match="not a multiple of --steps-per-epoch 100"):
        train_pack.main([str(tmp_path / "none.npz"), "--out", str(tmp_path), "--row", "x",
                         "--steps", "150", "--steps-per-epoch", "100"])
    sys.modules.pop("train_pack", None)
