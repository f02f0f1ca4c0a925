"""The zoo on Keras's JAX backend, in subprocesses where TensorFlow (and the audio / search
extras the GPU machine lacks) cannot be imported (tests/no_tf/sitecustomize.py): zoo rows
build, take one training step and predict (the default suite: a ResNeXt attention classifier
and a CNN siamese row on 64-frame inputs; every row in full size under `slow`)."""
from __future__ import annotations

import json

import pytest

from singer_zoo.registry import all_configs, list_models

STEP = r"""
import json, sys
import keras, numpy as np
assert keras.backend.backend() == "jax"
try:
    import tensorflow
    raise SystemExit("tensorflow importable")
except ModuleNotFoundError:
    pass
from singer_zoo.models import build_from_config
from singer_zoo.models.tasks import ContrastiveLoss
from singer_zoo.registry import get_config
out = {}
FRAMES = None
for name in sys.argv[1:]:
    cfg = get_config(name)
    rng = np.random.default_rng(0)
    frames = FRAMES or cfg.features.window_frames
    x = rng.uniform(0, 60, (4, frames, cfg.features.n_bins)).astype("float32")
    model = build_from_config(cfg, num_singers=5, n_frames=frames)
    if cfg.train.task == "classifier":
        model.compile("adam", "sparse_categorical_crossentropy")
        inputs, y = x, np.array([0, 1, 2, 3])
    else:
        model.compile("adam", ContrastiveLoss(cfg.train.margin))
        inputs, y = [x, x[::-1]], np.array([1.0, 0.0, 0.0, 1.0], "float32")
    before = model.predict(inputs, verbose=0)
    loss = float(model.train_on_batch(inputs, y))
    after = model.predict(inputs, verbose=0)
    out[name] = {"loss": loss, "shape": list(after.shape),
                 "finite": bool(np.isfinite(after).all()),
                 "moved": float(np.abs(after - before).max())}
    keras.backend.clear_session()
print(json.dumps(out))
"""


def _check(run_no_tf, names, frames=None):
    code = STEP.replace("sys.argv[1:]", repr(names)).replace("FRAMES = None",
                                                             f"FRAMES = {frames}")
    out = json.loads(run_no_tf(code, timeout=1800).splitlines()[-1])
    cfgs = all_configs()
    for name in names:
        r = out[name]
        want = [4, 5] if cfgs[name].train.task == "classifier" else [4]
        assert r["shape"] == want and r["finite"], (name, r)
        assert r["loss"] == r["loss"] and r["moved"] > 0, (name, r)  # a finite step that moved


def test_each_block_aggregation_and_task_trains_a_step_on_jax_without_tensorflow(run_no_tf):
    _check(run_no_tf, ["t1_resnext_shallow_attention", "t2_cnn_shallow_average"], frames=64)


@pytest.mark.slow
def test_every_row_trains_a_step_on_jax_without_tensorflow(run_no_tf):
    _check(run_no_tf, list_models())


def test_training_evaluation_and_feature_folders_import_without_tensorflow(run_no_tf):
    out = run_no_tf(
        "import sys\n"
        "import singer_zoo.cli.train, singer_zoo.training, singer_zoo.evaluation\n"
        "import singer_zoo.evaluation.plots\n"
        "from singer_zoo.data import PairBatches, WindowBatches, read_feature_folder\n"
        "from singer_zoo.features import chop, n_windows\n"
        "from singer_zoo.training.distribute import make_strategy\n"
        "assert make_strategy('default') is None\n"
        "blocked = ('tensorflow', 'librosa', 'soundfile', 'av', 'faiss', 'keras_tuner')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in blocked))\n")
    assert out.strip().splitlines()[-1] == "[]"
