"""Training callbacks: the paper's early stopping and a resumable run state.

- `PaperEarlyStopping`: Keras' `EarlyStopping` with the paper's rules (section 3.3): the
  validation loss exists only on validation epochs (every `validation_every` epochs), the
  patience is counted in EPOCHS, and a new best must beat the old one by a relative margin
  (`new < best * (1 - min_improvement)`; the paper's "at least 99.5 % improvement").
- `RunBackup`: Keras' `BackupAndRestore` (weights, optimizer state and epoch every epoch)
  that also saves and restores the early-stopping state (best value, best epoch, wait,
  best weights), the random-seed states (dropout masks) and the training time, which
  `BackupAndRestore` alone does not keep;
  trims `history.csv` back to the restored epoch so a resumed run continues the log
  without duplicate rows; survives a kill in the middle of writing a checkpoint; and says
  when it resumes.
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


class PaperEarlyStopping(keras.callbacks.EarlyStopping):
    """Stop when `val_loss` has not improved by `min_improvement` (relative) for `patience`
    epochs; validation runs every `validation_every` epochs, so Keras' check counter is
    ceil(patience / validation_every). Best weights are restored at the end of training.
    """

    def __init__(self, patience: int, validation_every: int, min_improvement: float = 0.0,
                 monitor: str = "val_loss", verbose: int = 0):
        self.patience_epochs = int(patience)
        self.validation_every = int(validation_every)
        self.min_improvement = float(min_improvement)
        super().__init__(monitor=monitor, mode="min", verbose=verbose,
                         patience=math.ceil(self.patience_epochs / self.validation_every),
                         restore_best_weights=True)

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return float(monitor_value) < float(reference_value) * (1.0 - self.min_improvement)

    def get_monitor_value(self, logs):
        # Silent on the epochs without validation (Keras would warn on each of them).
        return (logs or {}).get(self.monitor)

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


class RunBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` in `backup_dir` that also persists `early_stopping`'s state.

    The early-stopping state is stored for the last two saved epochs (keyed by epoch), so
    whichever epoch Keras restores (it falls back to the previous backup if the latest is
    damaged, and a kill can land between the two writes) the matching state is used.
    Must come after `early_stopping` and `csv_logger` in the callback list.
    The checkpoint is kept at the end of training (the trainer deletes it once the run's
    results are written), so a kill during the final writes loses nothing.
    """

    def __init__(self, backup_dir, early_stopping: PaperEarlyStopping | None = None,
                 history_csv: Path | None = None, save_freq="epoch", verbose: int = 0):
        super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=True,
                         delete_checkpoint=False)
        self.early_stopping = early_stopping
        self.verbose = verbose
        self.history_csv = Path(history_csv) if history_csv else None
        self.initial_epoch = 0
        self._seconds_before = 0.0
        self._session_start = time.monotonic()

    @property
    def _state_path(self) -> Path:
        return Path(self.backup_dir) / RUN_STATE

    def _best_path(self, best_epoch: int) -> Path:
        return Path(self.backup_dir) / f"best_epoch{best_epoch}.npz"

    @property
    def train_seconds(self) -> float:
        """Training wall time over all sessions of the run (restored on resume)."""
        return self._seconds_before + (time.monotonic() - self._session_start)

    def _restore(self, logs) -> None:
        """Keras' restore, made safe against a kill while a checkpoint was being written.

        Keras falls back to the previous checkpoint only on an unreadable weights file
        (OSError); a truncated metadata JSON (ValueError) gets the same fallback here, and
        with no usable checkpoint at all (killed during the very first save) the run
        starts over.
        """
        try:
            super().on_train_begin(logs)  # restores weights, optimizer and the epoch
            return
        except (OSError, ValueError) as e:
            problem = e
        previous = (self._prev_weights_path, self._prev_training_metadata_path)
        if all(os.path.exists(p) for p in previous):
            shutil.copy(self._prev_weights_path, self._weights_path)
            shutil.copy(self._prev_training_metadata_path, self._training_metadata_path)
            try:
                super().on_train_begin(logs)
                return
            except (OSError, ValueError) as e:
                problem = e
        log.warning("%s: no readable checkpoint (%s); starting the run over",
                    self.backup_dir, problem)
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    def restore(self) -> int:
        """Restore the run (weights, optimizer, early stopping, history.csv) into the model
        given by `set_model`, before `fit`; return the epoch to resume at (0: a new run).
        The trainer calls it first so that the input stream can start at that epoch;
        `on_train_begin` then restores nothing again."""
        self.on_train_begin()
        self._restored = True
        return self.initial_epoch

    def on_train_begin(self, logs=None):
        if getattr(self, "_restored", False):
            self._restored = False  # a later fit() with this callback restores again
            self._session_start = time.monotonic()
            return
        self._restore(logs)
        self._session_start = time.monotonic()
        self.initial_epoch = int(getattr(self.model, "_initial_epoch", None) or 0)
        if self.initial_epoch and self.verbose:
            print(f"resuming the interrupted run after epoch {self.initial_epoch} (checkpoint "
                  f"in {self.backup_dir})", flush=True)
        if self.history_csv is not None:
            trim_csv(self.history_csv, self.initial_epoch)
        if not self._state_path.exists():
            return
        states = json.loads(self._state_path.read_text(encoding="utf-8"))
        state = states.get(str(self.initial_epoch))
        if state is None:
            return
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

    def _save_model(self):
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        states = {}
        if self._state_path.exists():
            states = json.loads(self._state_path.read_text(encoding="utf-8"))
        es = self.early_stopping
        es_state = es.state() if es is not None else None
        if es_state is not None and es_state["best"] is not None and es.best_weights is not None:
            best = self._best_path(es_state["best_epoch"])
            if not best.exists() or es_state["best_epoch"] == self._current_epoch - 1:
                _save_npz(best, es.best_weights)
        seeds = [np.asarray(keras.ops.convert_to_numpy(v)).tolist()
                 for v in seed_states(self.model)]
        states[str(self._current_epoch)] = {"early_stopping": es_state, "seeds": seeds,
                                            "train_seconds": self.train_seconds}
        states = dict(sorted(states.items(), key=lambda kv: int(kv[0]))[-2:])
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(states), encoding="utf-8")
        os.replace(tmp, self._state_path)
        used = {self._best_path(s["early_stopping"]["best_epoch"]).name
                for s in states.values() if s["early_stopping"] is not None}
        for old in Path(self.backup_dir).glob("best_epoch*.npz"):
            if old.name not in used:
                old.unlink()
        super()._save_model()


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
