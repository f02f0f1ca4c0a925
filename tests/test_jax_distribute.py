"""Issue 16 point 4: data parallelism on the JAX backend through keras.distribution
(`--strategy data-parallel`), on 2 virtual CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=2), without TensorFlow: the global batch is
split over both devices, the weights are replicated on both, and an epoch gives the same
losses as one device with the same global batch."""
from __future__ import annotations

import json

import pytest

from singer_zoo.errors import ConfigError
from singer_zoo.training.distribute import make_strategy

TRAIN = r"""
import json, sys
import jax, keras, numpy as np
from singer_zoo.config import FeatureConfig
from singer_zoo.data.manifest import Recording
from singer_zoo.data.pipeline import FeatureSet
from singer_zoo.registry import get_config
from singer_zoo.training import TrainData, train
from singer_zoo.training.distribute import global_batch_size, make_strategy
assert len(jax.devices()) == 2
cfg = get_config("t1_cnn_shallow_max").replace(
    arch={"stem_filters": 4, "stages": ((8,),), "stem_kernel": 3, "kernel": 3,
          "dense_units": 16, "dense_layers": 1, "dropout": 0.0},
    features={"n_bins": 16, "window_frames": 32, "window_hop_frames": 16},
    train={"max_epochs": 1, "validation_every": 1, "steps_per_epoch": 4})
rng = np.random.default_rng(0)
def split(n):
    recs = [Recording(f"/x/{n}{i}.wav", f"s{i % 3}", recording=f"{n}{i}") for i in range(6)]
    fs = FeatureSet([rng.uniform(0, 60, (64, 16)).astype("float32") for _ in recs], recs,
                    cfg.features)
    return TrainData(fs, [i % 3 for i in range(6)])
tr, va = split("t"), split("v")
out = {}
for name, per_replica in (("data-parallel", 2), ("default", 4)):
    strategy = make_strategy(name)
    run = train(cfg.replace(train={"batch_size": per_replica}), tr, va, sys.argv[1] + name,
                strategy=strategy, verbose=0)
    out[name] = {"global_batch": global_batch_size(per_replica, strategy),
                 "history": open(run.run_dir / "history.csv").read().splitlines()}
    if strategy is not None:
        with strategy.scope():
            model = keras.saving.load_model(run.best_model_path)
        out[name]["devices"] = len(model.weights[0].value.sharding.device_set)
    keras.distribution.set_distribution(None)
print(json.dumps(out))
"""


def test_data_parallel_on_two_virtual_devices_matches_one_device(tmp_path, run_no_tf):
    out = json.loads(run_no_tf(TRAIN.replace("sys.argv[1]", repr(str(tmp_path) + "/")),
                               env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
                               ).splitlines()[-1])
    dp, one = out["data-parallel"], out["default"]
    assert dp["global_batch"] == one["global_batch"] == 4 and dp["devices"] == 2
    head, row_dp, row_one = dp["history"][0].split(","), dp["history"][1].split(","), \
        one["history"][1].split(",")
    for col, a, b in zip(head, row_dp, row_one):
        if col != "epoch":
            assert float(a) == pytest.approx(float(b), rel=1e-4, abs=1e-5), col


def test_strategies_refuse_the_wrong_backend():
    with pytest.raises(ConfigError, match="KERAS_BACKEND=jax"):
        make_strategy("data-parallel")  # the default suite runs on TensorFlow
