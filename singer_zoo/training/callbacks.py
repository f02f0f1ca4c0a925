"""Training callbacks: the paper's early stopping and a resumable run state.

- `PaperEarlyStopping`: Keras' `EarlyStopping` with the paper's rules (section 3.3): the
  validation loss exists only on validation epochs (every `validation_every` epochs), the
  patience is counted in EPOCHS, and a new best must beat the old one by a relative margin
  (`new < best * (1 - min_improvement)`; the paper's "at least 99.5 % improvement").
- `RunBackup`: a resumable run state, on public Keras API only: weights, optimizer state
  and epoch every epoch (as Keras' `BackupAndRestore`), plus the early-stopping state
  (best value, best epoch, wait, best weights), the random-seed states (dropout masks) and
  the training time, which `BackupAndRestore` does not keep; trims `history.csv` back to
  the restored epoch so a resumed run continues the log without duplicate rows; survives a
  kill in the middle of writing a checkpoint; and says when it resumes.
- `BudgetEstimate`: after the first epoch of a session, one line with its time and what
  the rest of the epoch budget would take at that pace.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)

RUN_STATE = "run_state.json"


class PaperEarlyStopping(keras.callbacks.Callback):
    """Stop when `val_loss` has not improved by `min_improvement` (relative) for `patience`
    epochs; validation runs every `validation_every` epochs, so the check counter is
    ceil(patience / validation_every). The best weights are restored at the end of training.

    The rule of Keras' `EarlyStopping` with the paper's margin, written on the public
    `Callback` API; unlike `EarlyStopping` it does not reset its state when `fit` begins,
    so a state restored by `RunBackup.restore` before `fit` is kept (one instance per run).
    """

    def __init__(self, patience: int, validation_every: int, min_improvement: float = 0.0,
                 monitor: str = "val_loss", verbose: int = 0):
        super().__init__()
        self.patience_epochs = int(patience)
        self.validation_every = int(validation_every)
        self.min_improvement = float(min_improvement)
        self.monitor = monitor
        self.verbose = verbose
        self.patience = math.ceil(self.patience_epochs / self.validation_every)  # validations
        self.set_state({"best": None, "best_epoch": 0, "wait": 0, "stopped_epoch": 0}, None)

    def improves(self, value: float) -> bool:
        """Whether `value` is a new best: below best x (1 - min_improvement)."""
        return self.best is None or float(value) < float(self.best) * (1.0 - self.min_improvement)

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:  # an epoch without validation
            return
        self.wait += 1
        if self.improves(current):
            self.best, self.best_epoch, self.wait = float(current), epoch, 0
            self.best_weights = self.model.get_weights()
        elif self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.", flush=True)
            self.model.set_weights(self.best_weights)

    def state(self) -> dict:
        """The JSON-able counters (the best weights are saved separately)."""
        best = None if self.best is None else float(self.best)
        return {"best": best, "best_epoch": int(self.best_epoch), "wait": int(self.wait),
                "stopped_epoch": int(self.stopped_epoch)}

    def set_state(self, state: dict, best_weights) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.wait = state["wait"]
        self.stopped_epoch = state["stopped_epoch"]
        self.best_weights = best_weights


def _save_npz(path: Path, arrays) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, *arrays)
    os.replace(tmp, path)


def _load_npz(path: Path) -> list:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def seed_states(model) -> list:
    """The model's random-seed variables (its layers' SeedGenerator states, e.g. dropout's):
    `variables` less `weights`. A checkpoint of weights alone would restart them at their
    initial value, so a resumed run would draw other dropout masks than the uninterrupted
    one."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def trim_csv(path: Path, first_epoch: int) -> None:
    """Drop the rows of a CSVLogger file whose epoch is >= first_epoch, in place.

    In place (same file object, not a rename) because CSVLogger already holds the file
    open in append mode when this runs; its next row is appended to the trimmed end.
    """
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if ln.strip()
                        and int(ln.split(",", 1)[0]) < first_epoch]
    with open(path, "r+", encoding="utf-8") as fh:
        fh.write("".join(keep))
        fh.truncate()


class RunBackup(keras.callbacks.Callback):
    """A resumable run in `backup_dir`: weights, optimizer state, epoch, `early_stopping`'s
    state, the random-seed states and the training time, written at the end of every epoch.

    Files: `epoch<N>.weights.h5` (model and optimizer variables after N epochs),
    `best_epoch<B>.npz` (early stopping's best weights) and `run_state.json`, written last
    and atomically: it is the commit point, so a kill at any moment leaves the previous
    checkpoint whole. The last two checkpoints are kept; if the newest one cannot be read,
    the one before is used, and with none readable the run starts over (said).
    Only public Keras API: `save_weights` / `load_weights`, `Optimizer.build` and
    `fit(initial_epoch=...)`. Usage, before `fit`:

        backup.set_model(model)
        epoch = backup.restore()   # 0 for a new run
        model.fit(..., initial_epoch=epoch, callbacks=[early_stopping, ..., backup])

    The checkpoint is kept at the end of training (the trainer deletes it once the run's
    results are written), so a kill during the final writes loses nothing.
    """

    KEEP = 2

    def __init__(self, backup_dir, early_stopping: PaperEarlyStopping | None = None,
                 history_csv: Path | None = None, verbose: int = 0):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.early_stopping = early_stopping
        self.verbose = verbose
        self.history_csv = Path(history_csv) if history_csv else None
        self.initial_epoch = 0
        self._restored = False
        self._seconds_before = 0.0
        self._session_start = time.monotonic()

    @property
    def _state_path(self) -> Path:
        return self.backup_dir / RUN_STATE

    def _weights_path(self, epochs_done: int) -> Path:
        return self.backup_dir / f"epoch{epochs_done}.weights.h5"

    def _best_path(self, best_epoch: int) -> Path:
        return self.backup_dir / f"best_epoch{best_epoch}.npz"

    @property
    def train_seconds(self) -> float:
        """Training wall time over all sessions of the run (restored on resume)."""
        return self._seconds_before + (time.monotonic() - self._session_start)

    def _states(self) -> dict:
        try:
            return json.loads(self._state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as e:  # not written by this class (it replaces the file whole)
            log.warning("%s: unreadable (%s)", self._state_path, e)
            return {}

    def restore(self) -> int:
        """Restore the newest readable checkpoint into the model given by `set_model`
        (weights, optimizer, early stopping, seeds, time; history.csv trimmed to it) and
        return the number of epochs it holds: `fit`'s `initial_epoch` (0: a new run)."""
        self._restored = True
        self._session_start = time.monotonic()
        states = self._states()
        optimizer = self.model.optimizer
        if states and optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its variables, to load
        for epoch in sorted(states, key=int, reverse=True):
            try:
                self.model.load_weights(self._weights_path(int(epoch)))
            except (OSError, ValueError) as e:
                log.warning("%s: checkpoint of epoch %s unreadable (%s)", self.backup_dir,
                            epoch, e)
                continue
            self._apply(int(epoch), states[epoch])
            return self.initial_epoch
        if self.backup_dir.exists():
            log.warning("%s: no readable checkpoint; starting the run over", self.backup_dir)
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        self.initial_epoch = 0
        if self.history_csv is not None:
            trim_csv(self.history_csv, 0)
        return 0

    def _apply(self, epoch: int, state: dict) -> None:
        self.initial_epoch = epoch
        if self.verbose:
            print(f"resuming the interrupted run after epoch {epoch} (checkpoint in "
                  f"{self.backup_dir})", flush=True)
        if self.history_csv is not None:
            trim_csv(self.history_csv, epoch)
        self._seconds_before = state["train_seconds"]
        for var, value in zip(seed_states(self.model), state.get("seeds", [])):
            var.assign(np.asarray(value, dtype=var.dtype))
        es, es_state = self.early_stopping, state["early_stopping"]
        if es is None or es_state is None:
            return
        weights = None
        if es_state["best"] is not None and self._best_path(es_state["best_epoch"]).exists():
            weights = _load_npz(self._best_path(es_state["best_epoch"]))
        es.set_state(es_state, weights)

    def on_train_begin(self, logs=None):
        if not self._restored:
            raise RuntimeError("RunBackup: call restore() before fit() and pass the epoch it "
                               "returns as fit's initial_epoch")
        self._restored = False  # a later fit() restores again
        self._session_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.backup_dir / f"saving{done}.weights.h5"
        self.model.save_weights(tmp)
        os.replace(tmp, self._weights_path(done))
        es = self.early_stopping
        es_state = es.state() if es is not None else None
        if es_state is not None and es_state["best"] is not None and es.best_weights is not None:
            best = self._best_path(es_state["best_epoch"])
            if not best.exists() or es_state["best_epoch"] == epoch:
                _save_npz(best, es.best_weights)
        seeds = [np.asarray(keras.ops.convert_to_numpy(v)).tolist()
                 for v in seed_states(self.model)]
        states = self._states()
        states[str(done)] = {"early_stopping": es_state, "seeds": seeds,
                             "train_seconds": self.train_seconds}
        states = dict(sorted(states.items(), key=lambda kv: int(kv[0]))[-self.KEEP:])
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(states), encoding="utf-8")
        os.replace(tmp, self._state_path)  # the commit point
        used = {self._weights_path(int(e)).name for e in states}
        used |= {self._best_path(s["early_stopping"]["best_epoch"]).name
                 for s in states.values() if s["early_stopping"] is not None}
        for old in [*self.backup_dir.glob("epoch*.weights.h5"),
                    *self.backup_dir.glob("best_epoch*.npz")]:
            if old.name not in used:
                old.unlink()


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" \
        if seconds >= 90 else f"{seconds:.0f} s"


class BudgetEstimate(keras.callbacks.Callback):
    """Print, after the first epoch this session runs, how long it took and how long the
    remaining epochs up to `max_epochs` would take at that pace (an upper bound: early
    stopping may end the run sooner), with the options that shorten it."""

    def __init__(self, max_epochs: int):
        super().__init__()
        self.max_epochs = int(max_epochs)
        self._start, self._first = None, None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first is None:
            self._first, self._start = epoch, time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if epoch != self._first:
            return
        took = time.monotonic() - self._start
        left = self.max_epochs - epoch - 1
        if left > 0:
            print(f"epoch {epoch + 1} took {_duration(took)}; the {left} epochs left of "
                  f"max_epochs={self.max_epochs} would take up to {_duration(took * left)} "
                  f"(shorten with --max-epochs, --steps-per-epoch, --validation-every, "
                  f"--patience)", flush=True)
