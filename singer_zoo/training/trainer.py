"""Fit a zoo model (either task) into a resumable run directory (paper sections 3.3-3.5).

`train(cfg, train_data, val_data, out_dir)` builds the model of `cfg` (under the strategy's
scope), fits it with Adam and the paper's early stopping, and leaves in `out_dir`:

    config.yaml    the resolved ZooConfig     run.json      task, class names, precision
    backup/        resume checkpoint (removed once the run is done)
    logs/          TensorBoard                history.csv   one row per epoch
    best.keras     the best-validation model  loss.png      train/validation loss (Fig. 3)
    metrics.json   the run's summary (its presence marks the run finished)

Only the chief of a multi-worker cluster writes `out_dir`; see distribute.worker_dir.

Running `train` again on the same directory resumes from the last epoch's checkpoint (and
says so), or, when `metrics.json` says the run is done, returns its result without
training. The budget (`BUDGET_FIELDS`: max_epochs, patience, validation_every) may change
between sessions, so an interrupted run can be finished sooner; any other change of the
setup needs `overwrite`.

With `verbose`, training first prints its budget and, after the first epoch, what the
whole budget would take at that pace; Keras' progress bars (verbose=1) become one line per
epoch (verbose=2) when stdout is not a terminal, so log files hold no escape codes.
"""
from __future__ import annotations

import csv
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError
from singer_zoo.training.callbacks import BudgetEstimate, PaperEarlyStopping, RunBackup
from singer_zoo.training.distribute import (global_batch_size, has_gpu, is_chief,
                                            precision_policy, worker_dir, xla_supported)
from singer_zoo.training.inputs import TrainData, make_datasets

BUDGET_FIELDS = ("max_epochs", "patience", "validation_every")  # may change on resume
ARTEFACTS = ("config.yaml", "run.json", "backup", "logs", "history.csv", "best.keras",
             "loss.png", "metrics.json", ".workers")


@dataclass(frozen=True)
class TrainResult:
    """What `train` did; `metrics` is the content of metrics.json."""

    run_dir: Path
    metrics: dict
    already_done: bool = False  # True when the run had finished before this call

    @property
    def best_model_path(self) -> Path:
        return self.run_dir / "best.keras"


def _diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def prepare_run_dir(run_dir: Path, cfg: ZooConfig, run_info: dict, overwrite: bool) -> dict | None:
    """Create or check `run_dir`; return the finished run's metrics, or None to train.

    A directory holding a different config (or different classes) is refused with a
    ConfigError unless `overwrite`, which deletes the previous run's artefacts.
    """
    cfg_path = run_dir / "config.yaml"
    if overwrite:
        for name in ARTEFACTS:
            p = run_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    elif cfg_path.exists():
        old = {"config": ZooConfig.from_yaml(cfg_path).to_dict(),
               **json.loads((run_dir / "run.json").read_text(encoding="utf-8"))}
        changed = [k for k in _diff(old, {"config": cfg.to_dict(), **run_info})
                   if k not in {f"config.train.{f}" for f in BUDGET_FIELDS}]
        if changed:
            raise ConfigError(f"{run_dir}: holds a run with a different setup (differs in "
                              f"{', '.join(changed)}); use --overwrite or another --out")
        metrics = run_dir / "metrics.json"
        if metrics.exists():
            return json.loads(metrics.read_text(encoding="utf-8"))
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.to_yaml(cfg_path)
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2), encoding="utf-8")
    return None


def compile_model(cfg: ZooConfig, num_singers: int) -> keras.Model:
    """The model of `cfg` compiled with Adam(cfg.train.learning_rate) and the task's loss,
    with XLA (`DEFAULT_JIT_COMPILE`) where the active strategy allows it (`xla_supported`)."""
    from singer_zoo.models import DEFAULT_JIT_COMPILE, ContrastiveLoss, build_from_config

    model = build_from_config(cfg, num_singers=num_singers, n_frames=cfg.features.window_frames)
    opt = keras.optimizers.Adam(cfg.train.learning_rate)
    jit = DEFAULT_JIT_COMPILE and xla_supported()
    if cfg.train.task == "classifier":
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=jit)
    else:
        model.compile(optimizer=opt, loss=ContrastiveLoss(cfg.train.margin), jit_compile=jit)
    return model


def validation_epochs(every: int, max_epochs: int) -> list[int]:
    """1-based epochs with validation: every `every` epochs, and always the last one."""
    return sorted(set(range(every, max_epochs + 1, every)) | {max_epochs})


def read_history(path: Path) -> dict[str, list]:
    """history.csv as {column: values} (NaN where a column was not logged: 'NA')."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols = rows[0].keys() if rows else []
    return {c: [int(r[c]) if c == "epoch" else
                (float("nan") if r[c] in ("NA", "") else float(r[c])) for r in rows]
            for c in cols}


def _finish(model, run_dir: Path, es: PaperEarlyStopping, backup: RunBackup,
            cfg: ZooConfig) -> dict:
    """Write best.keras, loss.png and metrics.json (chief only)."""
    from singer_zoo.evaluation.plots import plot_loss_curves

    hist = read_history(run_dir / "history.csv")
    model.save(run_dir / "best.keras")
    plot_loss_curves(run_dir / "history.csv", run_dir / "loss.png",
                     title=f"{cfg.name} ({cfg.train.task})")
    last = {k: v[-1] for k, v in hist.items() if k != "epoch" and not k.startswith("val_")}
    metrics = {
        "finished": True,
        "task": cfg.train.task,
        "epochs_run": len(hist.get("epoch", [])),
        "max_epochs": cfg.train.max_epochs,
        "stopped_early": es.stopped_epoch > 0,
        "best_epoch": es.best_epoch + 1 if es.best is not None else None,
        "best_val_loss": None if es.best is None else float(es.best),
        "train_seconds": round(backup.train_seconds, 3),
        "final_train": {k: float(v) for k, v in last.items()},
    }
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    tmp.replace(run_dir / "metrics.json")
    return metrics


def train(cfg: ZooConfig, train_data: TrainData, val_data: TrainData, out_dir, *,
          class_names=None, strategy: tf.distribute.Strategy | None = None,
          mixed_precision: bool = False, overwrite: bool = False,
          verbose: int = 1) -> TrainResult:
    """Fit `cfg`'s model on `train_data`, early-stopping on `val_data`; see module doc.

    `class_names` (one per label index; default "0".."n-1") sets the classifier's output
    size and is stored in run.json. With `strategy`, `cfg.train.batch_size` is the batch per
    replica; `mixed_precision` uses float16 compute on a GPU (see distribute.precision_policy).
    Resumes an interrupted run in `out_dir`; `overwrite` starts it over instead.
    """
    out_dir = Path(out_dir)
    n_classes = int(max(np.max(train_data.labels), np.max(val_data.labels))) + 1
    class_names = [str(c) for c in (class_names if class_names is not None
                                    else range(n_classes))]
    if len(class_names) < n_classes:
        raise ConfigError(f"{len(class_names)} class names for labels up to {n_classes - 1}")
    chief = is_chief(strategy)
    run_dir = worker_dir(out_dir, strategy)
    run_info = {"task": cfg.train.task, "class_names": class_names,
                "mixed_precision": bool(mixed_precision and has_gpu())}
    done = prepare_run_dir(run_dir, cfg, run_info, overwrite)
    if done is not None:
        if verbose:
            print(f"{out_dir}: run already finished ({done['epochs_run']} epochs, best val "
                  f"loss {done.get('best_val_loss')}); use --overwrite to train again")
        return TrainResult(out_dir, done, already_done=True)

    keras.utils.set_random_seed(cfg.train.seed)
    batch = global_batch_size(cfg.train.batch_size, strategy)
    train_ds, val_ds, steps, val_steps = make_datasets(cfg, train_data, val_data, batch)
    t = cfg.train
    if verbose == 1 and not sys.stdout.isatty():
        verbose = 2  # no \r progress bars in log files
    if verbose:
        print(f"{cfg.name} ({t.task}) -> {out_dir}: up to {t.max_epochs} epochs of {steps} "
              f"steps, validation every {t.validation_every} epochs, stopping after "
              f"{t.patience} epochs without improvement", flush=True)
    strategy = strategy or tf.distribute.get_strategy()
    with precision_policy(mixed_precision), strategy.scope():
        model = compile_model(cfg, len(class_names))

    es = PaperEarlyStopping(t.patience, t.validation_every, t.min_improvement, verbose=verbose)
    csv_logger = keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)
    backup = RunBackup(run_dir / "backup", early_stopping=es,
                       history_csv=run_dir / "history.csv", verbose=verbose)
    callbacks = [es, csv_logger] + ([BudgetEstimate(t.max_epochs)] if verbose else [])
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs")))
    callbacks.append(backup)  # last: it trims history.csv after CSVLogger opened it
    model.fit(train_ds, epochs=t.max_epochs, steps_per_epoch=steps, shuffle=False,
              validation_data=val_ds, validation_steps=val_steps,
              validation_freq=validation_epochs(t.validation_every, t.max_epochs),
              callbacks=callbacks, verbose=verbose)
    if chief:
        metrics = _finish(model, run_dir, es, backup, cfg)
    else:
        metrics = {"finished": True, "epochs_run": len(read_history(run_dir / "history.csv")
                                                         .get("epoch", []))}
        (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return TrainResult(out_dir, metrics)
