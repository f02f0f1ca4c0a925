"""Fit a zoo model (either task) into a resumable run directory (paper sections 3.3-3.5).

`train(cfg, train_data, val_data, out_dir)` builds the model of `cfg` (under the strategy's
scope), fits it with Adam and the paper's early stopping, and leaves in `out_dir`:

    config.yaml    the resolved ZooConfig     run.json      task, class names, precision
    backup/        resume checkpoint (removed once the run is done)
    logs/          TensorBoard*               history.csv   one row per epoch
    best.keras     the best-validation model, its BN statistics re-estimated on training
                   batches (precise_bn)       loss.png      train/validation loss (Fig. 3)
    metrics.json   the run's summary (its presence marks the run finished)
    (* TensorFlow backend only: Keras's TensorBoard callback writes with tf.summary)

Only the chief of a multi-worker cluster writes `out_dir`; see distribute.worker_dir.

Running `train` again on the same directory resumes from the last epoch's checkpoint (and
says so), or, when `metrics.json` says the run is done, returns its result without
training. A resumed run continues the training stream at the batch where the interrupted
one stopped (epoch x steps per epoch: batch i is a function of the seed and i), so it is
the same run. The budget (`BUDGET_FIELDS`: max_epochs, patience, validation_every) may
change between sessions, so an interrupted run can be finished sooner; any other change of
the setup needs `overwrite`.

With `verbose`, training first prints its budget and, after the first epoch, what the
whole budget would take at that pace; Keras' progress bars (verbose=1) become one line per
epoch (verbose=2) when stdout is not a terminal, so log files hold no escape codes.

Any Keras backend: TensorFlow (tf.data, tf.distribute) or JAX (PyDataset inputs,
keras.distribution data parallelism); nothing here imports TensorFlow.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError
from singer_zoo.training.callbacks import BudgetEstimate, PaperEarlyStopping, RunBackup
from singer_zoo.training.distribute import (
    global_batch_size,
    has_gpu,
    is_chief,
    precision_policy,
    strategy_scope,
    worker_dir,
    xla_supported,
)
from singer_zoo.training.inputs import TrainData, fit_inputs, make_sources
from singer_zoo.training.precise_bn import recompute_bn_statistics

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
    from singer_zoo.models import (
        DEFAULT_JIT_COMPILE,
        ContrastiveLoss,
        build_from_config,
    )

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


def fit(model, cfg: ZooConfig, datasets, *, epochs: int, callbacks, verbose: int,
        initial_epoch: int = 0):
    """The fit recipe of a zoo model, for `train` and the tuner: `datasets` as
    `make_sources` + `fit_inputs` give them, validation on `validation_epochs`, no Keras shuffling
    (the pipeline shuffles). Returns Keras' History."""
    train_ds, val_ds, steps, val_steps = datasets
    return model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch,
                     steps_per_epoch=steps, shuffle=False, validation_data=val_ds,
                     validation_steps=val_steps,
                     validation_freq=validation_epochs(cfg.train.validation_every, epochs),
                     callbacks=list(callbacks), verbose=verbose)


def _bn_batches(train_src, task: str, n: int):
    """Numpy model inputs of the first `n` batches of the training source; siamese: each
    tower's half of a pair batch, the embedder's input."""
    for i in range(n):
        x, _ = train_src[i]
        yield from (x if task == "siamese" else (x,))


def _finish(model, run_dir: Path, es: PaperEarlyStopping, backup: RunBackup,
            cfg: ZooConfig, bn_batches: int) -> dict:
    """Write best.keras, loss.png and metrics.json (chief only)."""
    from singer_zoo.evaluation.plots import plot_loss_curves, read_history_csv

    hist = read_history_csv(run_dir / "history.csv")
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
        "precise_bn_batches": bn_batches,
        "final_train": {k: float(v) for k, v in last.items()},
    }
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    tmp.replace(run_dir / "metrics.json")
    return metrics


def train(cfg: ZooConfig, train_data: TrainData, val_data: TrainData, out_dir, *,
          class_names=None, strategy=None,
          mixed_precision: bool = False, overwrite: bool = False,
          verbose: int = 1) -> TrainResult:
    """Fit `cfg`'s model on `train_data`, early-stopping on `val_data`; see module doc.

    `class_names` (one per label index; default "0".."n-1") sets the classifier's output
    size and is stored in run.json. With `strategy` (distribute.make_strategy: tf.distribute
    or keras.distribution), `cfg.train.batch_size` is the batch per replica;
    `mixed_precision` uses 16-bit compute on a GPU (see distribute.precision_policy).
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
    t = cfg.train
    if verbose == 1 and not sys.stdout.isatty():
        verbose = 2  # no \r progress bars in log files
    with precision_policy(mixed_precision), strategy_scope(strategy):
        model = compile_model(cfg, len(class_names))
        es = PaperEarlyStopping(t.patience, t.validation_every, t.min_improvement,
                                verbose=verbose)
        csv_logger = keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)
        backup = RunBackup(run_dir / "backup", early_stopping=es,
                           history_csv=run_dir / "history.csv", verbose=verbose)
        backup.set_model(model)
        epoch = backup.restore()  # before the inputs: the stream resumes where it stopped
        # train_src[i] is training batch i as numpy (e.g. for a statistics pass)
        train_src, val_src, steps, val_steps = make_sources(cfg, train_data, val_data, batch)
        train_ds, val_ds = fit_inputs(train_src, val_src, start=epoch * steps)
        if verbose:
            print(f"{cfg.name} ({t.task}) -> {out_dir}: up to {t.max_epochs} epochs of "
                  f"{steps} steps, validation every {t.validation_every} epochs, stopping "
                  f"after {t.patience} epochs without improvement", flush=True)
        callbacks = [es, csv_logger] + ([BudgetEstimate(t.max_epochs)] if verbose else [])
        if chief and keras.backend.backend() == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs")))
        callbacks.append(backup)  # last: it saves the state the others updated this epoch
        fit(model, cfg, (train_ds, val_ds, steps, val_steps), epochs=t.max_epochs,
            callbacks=callbacks, verbose=verbose, initial_epoch=epoch)
    n = t.precise_bn_batches  # on every worker, so that a multi-worker run stays in step
    bn = recompute_bn_statistics(model.embedder if t.task == "siamese" else model,
                                 _bn_batches(train_src, t.task, n), n) if n else 0
    if chief:
        metrics = _finish(model, run_dir, es, backup, cfg, bn)
    else:
        from singer_zoo.evaluation.plots import read_history_csv

        metrics = {"finished": True, "epochs_run": len(read_history_csv(
            run_dir / "history.csv").get("epoch", []))}
        (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return TrainResult(out_dir, metrics)
