"""Issue 16 points 1-3 end to end: `singer-zoo train` on the JAX backend in a subprocess
where TensorFlow and the audio libraries cannot be imported, from a features folder with
the audio deleted; the .keras it writes round-trips save/load there, loads on the
TensorFlow backend with the same outputs, and `singer-zoo export` publishes it (the
export's own SavedModel / TFLite parity checks pass)."""
from __future__ import annotations

import json
import shutil

import keras
import numpy as np

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
