"""Train a performance embedder with a cosine softmax over the training singers (NormFace,
Wang et al. 2017; beyond the paper), the objective of the shipped pretrained embedders.

The paper's siamese rows learn from random same/different pairs (contrastive loss): once
most different-singer pairs are beyond the margin they teach nothing, and on the training
pack (docs/pretrained.md) they learnt about half as well per CPU-minute. Here every step
scores each window against all training singers:

    windows (batch, frames, bins) -> embedder (unit-length, `ArchConfig.unit_embedding`)
      -> `singer_centres`: cosine to one unit-length centre per singer -> x `scale` -> softmax

With `margin` m > 0 the loss is the additive margin softmax (AM-softmax / CosFace, Wang et
al. 2018, one of WeSpeaker's margin losses): the true singer's logit becomes
scale x (cos - m), so a window must be closer to its own centre than to any other by m.

The head is training-only: the embedder (a `SingerEmbedder`) is what is kept. Early
stopping uses singers held out from training: the equal error rate of the squared distance
on fixed same/different pairs of their windows (`PairBatches`). At the end the best
weights get precise BN statistics (`precise_bn`) and are saved as OUT/embedder.keras,
beside history.csv and metrics.json. With `average=N` the kept weights are instead the
mean of the weights at the last N validations (stochastic weight averaging, Izmailov et
al. 2018; WeSpeaker averages its last epochs' models the same way), each snapshot kept in
OUT/snapshots/, then given precise BN statistics as SWA requires. OUT/latest.keras (model
and optimizer) and OUT/state.json are written at every validation, so a killed run resumes
where it stopped; batch i is a pure function of (seed, i), so a resumed run sees the same
stream.
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from singer_zoo.config import ZooConfig
from singer_zoo.data.batches import (PairBatches, WindowBatches, channel_eq, short_crops,
                                     spec_augment)
from singer_zoo.errors import ConfigError
from singer_zoo.evaluation.verification import equal_error_rate
from singer_zoo.models import build_embedder
from singer_zoo.training.precise_bn import recompute_bn_statistics


def cosine_softmax_model(embedder: keras.Model, n_singers: int, scale: float) -> keras.Model:
    """(batch, frames, bins) -> (batch, n_singers) logits = scale x cos(embedding, centre)."""
    inputs = keras.Input(embedder.input_shape[1:], name="features")
    cos = keras.layers.Dense(n_singers, use_bias=False, dtype="float32",
                             kernel_constraint=keras.constraints.UnitNorm(axis=0),
                             name="singer_centres")(embedder(inputs))  # (batch, n_singers)
    logits = keras.layers.Rescaling(scale, dtype="float32", name="scale")(cos)
    return keras.Model(inputs, logits, name="cosine_softmax")


@keras.saving.register_keras_serializable(package="singer_zoo")
class MarginCrossEntropy(keras.losses.Loss):
    """Softmax cross-entropy of `scale x cos` logits with `scale x margin` taken off the
    true singer's logit (AM-softmax); margin 0 is the plain cross-entropy."""

    def __init__(self, scale: float, margin: float, name: str = "margin_cross_entropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale, self.margin = float(scale), float(margin)

    def call(self, y_true, y_pred):  # (batch,) int labels, (batch, n_singers) logits
        onehot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"),
                                   keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        logits = y_pred - self.scale * self.margin * onehot
        return keras.losses.categorical_crossentropy(onehot, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "margin": self.margin}


def validation_eer(embedder: keras.Model, pairs: list) -> float:
    """EER of same-singer verification by squared distance on fixed pair batches."""
    dist, same = [], []
    for (a, b), y in pairs:
        ea = np.asarray(embedder(a, training=False))
        eb = np.asarray(embedder(b, training=False))
        dist.append(((ea - eb) ** 2).sum(1))
        same.append(y)
    return equal_error_rate(np.concatenate(same).astype(int), -np.concatenate(dist))[0]


def train_cosine_softmax(cfg: ZooConfig, train, val, out, steps: int, batch_size: int = 128,
                         learning_rate: float = 1e-3, scale: float = 16.0,
                         validate_every: int = 50, val_batches: int = 8,
                         precise_bn_batches: int = 50, augment: bool = True,
                         short: float = 0.0, decay: bool = False, average: int = 0,
                         margin: float = 0.0, eq_db: float = 0.0, seed: int = 0,
                         log=print) -> dict:
    """Train `cfg`'s embedder (its arch must have `unit_embedding`) on `train` (a TrainData:
    FeatureSet + singer label per recording) for `steps` steps, early-stopped on the
    validation EER of `val`'s singers (none of them in `train`); returns metrics.json.
    `augment` masks frequency bands and time spans of every training batch
    (`spec_augment`, seeded by (seed, step)); `short` is the fraction of each batch's
    windows made short recordings, cropped and tiled (`short_crops`); with `decay` the
    learning rate follows a cosine from `learning_rate` down to 1 % of it at the last step
    (default: constant, which generalised better on the 9.2-h pack: docs/pretrained.md);
    `average` > 0 keeps the mean of the last `average` validations' weights instead of the
    best validation's; `margin` > 0 trains with the additive margin softmax; `eq_db` > 0
    puts every training window through a random recording channel of up to that many dB
    (`channel_eq`)."""
    if not 0 <= margin < 1:
        raise ConfigError(f"margin={margin}: the additive cosine margin must be in [0, 1)")
    if not cfg.arch.unit_embedding:
        raise ConfigError(f"{cfg.name}: a cosine softmax trains unit-length embeddings; set "
                          f"arch.unit_embedding: true")
    if not 0 <= average <= steps // validate_every:
        raise ConfigError(f"average={average}: the run validates {steps // validate_every} "
                          f"times (every {validate_every} of {steps} steps)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = out / "metrics.json"
    if done.is_file():
        log(f"{out}: already trained (metrics.json); delete the folder to train again")
        return json.loads(done.read_text(encoding="utf-8"))
    singers, labels = np.unique(train.labels, return_inverse=True)
    if set(singers.tolist()) & set(np.unique(val.labels).tolist()):
        raise ConfigError("validation singers must not be training singers")
    stream = WindowBatches(train.features, labels.astype(np.int32), batch_size, seed=seed,
                           repeat=True)
    pairs = list(PairBatches(val.features, val.labels, batch_size, seed=seed + 1,
                             n_batches=val_batches).batches())
    state_file, latest = out / "state.json", out / "latest.keras"
    if latest.is_file() and state_file.is_file():  # resume
        model = keras.saving.load_model(latest)
        state = json.loads(state_file.read_text(encoding="utf-8"))
        log(f"resuming at step {state['step']} (best EER {state['best_eer']:.4f})")
    else:
        keras.utils.set_random_seed(seed)
        model = cosine_softmax_model(build_embedder(cfg), len(singers), scale)
        lr = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01) \
            if decay else learning_rate
        model.compile(keras.optimizers.Adam(lr), MarginCrossEntropy(scale, margin),
                      metrics=["accuracy"])
        state = {"step": 0, "best_eer": 1.0, "best_step": 0, "history": []}
    embedder = model.get_layer("embedder")

    def batch(i):
        x, y = stream[i]
        rng = np.random.default_rng([seed, i])
        x = short_crops(x, rng, short) if short else x
        x = channel_eq(x, rng, eq_db) if eq_db else x
        return (spec_augment(x, rng) if augment else x), y

    best_file, snapshots = out / "best.weights.h5", out / "snapshots"
    validated = [min(k * validate_every, steps)  # the steps the loop below validates at
                 for k in range(1, -(-steps // validate_every) + 1)]
    averaged = validated[-average:] if average else []

    def snapshot(step: int) -> Path:
        return snapshots / f"step{step}.weights.h5"

    start = time.perf_counter()
    while state["step"] < steps:
        n = min(validate_every, steps - state["step"])
        logs = [model.train_on_batch(*batch(state["step"] + j), return_dict=True)
                for j in range(n)]
        state["step"] += n
        eer = validation_eer(embedder, pairs)
        row = {"step": state["step"], "loss": float(np.mean([r["loss"] for r in logs])),
               "accuracy": float(np.mean([r["accuracy"] for r in logs])), "val_eer": eer}
        state["history"].append(row)
        if eer < state["best_eer"]:
            state["best_eer"], state["best_step"] = eer, state["step"]
            embedder.save_weights(best_file)
        if state["step"] in averaged:
            snapshots.mkdir(exist_ok=True)
            embedder.save_weights(snapshot(state["step"]))
        model.save(out / "saving.keras")  # written aside, then renamed: a kill while writing
        # leaves the previous pair whole (only one between the two renames can split it)
        (out / "state.json.tmp").write_text(json.dumps(state), encoding="utf-8")
        os.replace(out / "saving.keras", latest)
        os.replace(out / "state.json.tmp", state_file)
        log(f"step {row['step']}: loss {row['loss']:.4f} accuracy {row['accuracy']:.3f} "
            f"val EER {eer:.4f} ({time.perf_counter() - start:.0f} s)")
    if average:
        average_snapshots(embedder, [snapshot(step) for step in averaged])
    else:
        embedder.load_weights(best_file)
    recompute_bn_statistics(embedder, (stream[steps + i][0] for i in range(precise_bn_batches)),
                            precise_bn_batches)
    embedder.save(out / "embedder.keras")
    with open(out / "history.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["step", "loss", "accuracy", "val_eer"])
        w.writeheader()
        w.writerows(state["history"])
    metrics = {"objective": "cosine_softmax", "scale": scale, "steps": steps,
               "margin": margin, "spec_augment": augment, "short_crops": short,
               "channel_eq_db": eq_db,
               "cosine_decay": decay,
               "batch_size": batch_size, "learning_rate": learning_rate,
               "kept": f"mean of the last {average} validations" if average else "best",
               "training_singers": int(len(singers)),
               "validation_singers": int(len(np.unique(val.labels))),
               "best_step": state["best_step"], "best_val_eer": state["best_eer"],
               "val_eer_after_precise_bn": validation_eer(embedder, pairs)}
    done.write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    latest.unlink()
    return metrics


def average_snapshots(embedder: keras.Model, files: list) -> None:
    """Set `embedder`'s weights to the element-wise mean of the weight files `files` (each
    written by `embedder.save_weights`). BN moving statistics are averaged too: recompute
    them afterwards (`recompute_bn_statistics`), since the mean of the weights is a model
    none of those statistics were measured on."""
    if not files:
        raise ConfigError("average_snapshots: no weight snapshots to average")
    total = None
    for f in files:
        embedder.load_weights(f)
        w = embedder.get_weights()
        total = w if total is None else [t + a for t, a in zip(total, w)]
    embedder.set_weights([t / len(files) for t in total])
