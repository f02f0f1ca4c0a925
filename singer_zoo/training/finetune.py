"""Fine-tune a shipped embedder on a user's own singers, then export it (issue 17, point 5).

`finetune(model, manifest, out)`:
1. loads the embedder of an exported model (name or folder: its `embedder.keras` and card
   config) or of a run folder / `.keras` file;
2. splits the manifest's singers (sorted, seeded shuffle) into training singers and
   `validation_fraction` of them (at least two) held out, so the validation loss measures
   what fine-tuning does on singers it did not train on;
3. trains the siamese model around that embedder with the contrastive loss on 1:1
   same/different-singer window pairs (`pair_dataset`), `steps` updates per epoch, keeping
   the weights of the epoch with the lowest validation loss over fixed seeded pairs; the
   shipped weights are kept if no epoch beats them;
4. writes a run folder (config.yaml, best.keras, metrics.json, run.json) and exports it
   (`singer_zoo.export.export`) with a card entry "fine_tuned" (base model, data, budget,
   validation loss before and after).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError

VAL_BATCHES = 8


@dataclass(frozen=True)
class FinetuneResult:
    run_dir: Path
    export_dir: Path
    metrics: dict


def base_model(source) -> tuple[keras.Model, ZooConfig, str]:
    """(embedder, its ZooConfig, a name) of an exported model, run folder or .keras file."""
    from singer_zoo.export import load_trained
    from singer_zoo.export.card import verify
    from singer_zoo.export.savedmodel import embedder_of
    from singer_zoo.inference import resolve

    src = Path(str(source))
    if src.suffix != ".keras" and not (src / "best.keras").is_file():
        folder = resolve(source)
        name = verify(folder)["name"]
        model, cfg, _, _, _ = load_trained(folder)
        return embedder_of(model, cfg), cfg, name
    model, cfg, _, _, _ = load_trained(source)
    return embedder_of(model, cfg), cfg, cfg.name


def split_singers(manifest, fraction: float, seed: int):
    """(training, validation) manifests, disjoint in singers."""
    singers = list(manifest.singers)
    if len(singers) < 4:
        raise ConfigError(f"fine-tuning needs at least 4 singers (2 to train on, 2 to "
                          f"validate on), got {len(singers)}")
    np.random.default_rng(seed).shuffle(singers)
    n_val = min(max(2, round(fraction * len(singers))), len(singers) - 2)
    return (manifest.filter(singer=tuple(singers[n_val:])),
            manifest.filter(singer=tuple(singers[:n_val])))


def _pairs(fs, batch: int, seed: int):
    from singer_zoo.data import encode_labels, pair_dataset

    codes, _ = encode_labels([r.singer for r in fs.recordings])
    return pair_dataset(fs, codes, batch, seed=seed)


def finetune(model, manifest, out, *, run_dir=None, steps: int = 50, epochs: int = 10,
             learning_rate: float = 3e-5, batch_size: int = 16,
             validation_fraction: float = 0.25, seed: int = 0, cache_dir=None,
             workers: int = 2, tflite_modes=("float32", "int8"), verbose: int = 1
             ) -> FinetuneResult:
    """Fine-tune `model` on the recordings of `manifest` and export to `out`; see module."""
    from singer_zoo.data import load_feature_set, read_manifest
    from singer_zoo.export import export
    from singer_zoo.models import ContrastiveLoss, SiameseModel

    if steps < 1 or epochs < 1 or batch_size < 2 or batch_size % 2:
        raise ConfigError("finetune: steps and epochs >= 1, batch_size even and >= 2")
    m = manifest if not isinstance(manifest, (str, Path)) else read_manifest(manifest)
    embedder, cfg, name = base_model(model)
    train_m, val_m = split_singers(m, validation_fraction, seed)
    (train_fs, bad), (val_fs, bad2) = (load_feature_set(x, cfg.features, cache_dir=cache_dir,
                                                        workers=workers)
                                       for x in (train_m, val_m))
    keras.utils.set_random_seed(seed)
    siamese = SiameseModel(embedder, name=f"{cfg.name}_siamese")
    siamese.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss=ContrastiveLoss(cfg.train.margin))
    val = list(_pairs(val_fs, batch_size, seed + 1).take(VAL_BATCHES).as_numpy_iterator())
    val_x = [np.concatenate([x[k] for x, _ in val]) for k in (0, 1)]  # fixed pairs
    val_y = np.concatenate([y for _, y in val])

    def val_loss() -> float:  # one evaluate call: the mean over the equal-sized batches
        return float(siamese.evaluate(val_x, val_y, batch_size=batch_size, verbose=0))

    before = best = val_loss()
    best_weights, best_epoch, train_ds = siamese.get_weights(), 0, _pairs(train_fs,
                                                                          batch_size, seed)
    for epoch in range(1, epochs + 1):
        siamese.fit(train_ds, steps_per_epoch=steps, epochs=1, verbose=verbose)
        loss = val_loss()
        if verbose:
            print(f"epoch {epoch}: validation loss {loss:.4f} (before {before:.4f})")
        if loss < best:
            best, best_weights, best_epoch = loss, siamese.get_weights(), epoch
    siamese.set_weights(best_weights)
    run_dir = Path(run_dir or Path(out).with_name(Path(out).name + "_run"))
    run_dir.mkdir(parents=True, exist_ok=True)
    tuned = cfg.replace(train={"learning_rate": learning_rate, "batch_size": batch_size,
                               "steps_per_epoch": steps, "max_epochs": epochs, "seed": seed})
    tuned.to_yaml(run_dir / "config.yaml")
    siamese.save(run_dir / "best.keras")
    metrics = {"base_model": name, "val_loss_before": before, "best_val_loss": best,
               "best_epoch": best_epoch, "epochs_run": epochs, "steps_per_epoch": steps,
               "train_singers": len(train_m.singers), "validation_singers": val_m.singers,
               "train_recordings": train_fs.n_recordings,
               "skipped": sorted({**bad, **bad2}.values())}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps({"task": "siamese", "fine_tuned_from": name}),
                                      encoding="utf-8")
    res = export(run_dir, out, tflite_modes, card_extra={"fine_tuned": {
        **metrics, "data": str(getattr(m, "root", ""))}})
    return FinetuneResult(run_dir, res.path, metrics)
