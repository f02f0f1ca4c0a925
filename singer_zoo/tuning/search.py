"""Run a keras-tuner search of a `SearchSpace` on a manifest and write out the best config.

`run_search(space, manifest, out_dir, tuner=..., max_trials=...)` selects and loads the data
as `singer-zoo train` does (`evaluation.protocols.select_recordings`, `training.load_split`),
searches with keras-tuner's Bayesian optimisation, Hyperband or random search, and writes:

    OUT/space.yaml                the resolved space (base inlined, --fixed applied)
    OUT/search.json               the space and the tuner kind, checked when resuming
    OUT/search/                   keras-tuner's project: oracle state, one folder per trial
    OUT/best_config.yaml          the best trial as a zoo config `singer-zoo train` accepts
    OUT/best_hyperparameters.json the best trial's id, objective value and hyperparameters

Running it again resumes (keras-tuner `overwrite=False` on the same project): finished
trials are kept, an interrupted one is run again, and only the missing trials up to
`max_trials` run. A different space in the same OUT is refused unless `overwrite`.

Distributed mode is keras-tuner's own: with KERASTUNER_ORACLE_IP / _PORT / _TUNER_ID set, the
process whose tuner id contains "chief" serves the oracle (it loads no features and trains
nothing) and writes the results when every worker is done; workers run trials.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from singer_zoo.batch import Workers
from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError, SingerZooError, UnknownNameError
from singer_zoo.tuning.space import SearchSpace

TUNERS = ("bayesian", "hyperband", "random")
PROJECT = "search"
SEARCH_FILE, SPACE_FILE = "search.json", "space.yaml"
BEST_CONFIG, BEST_HPS = "best_config.yaml", "best_hyperparameters.json"


@dataclass(frozen=True)
class SearchResult:
    """What `run_search` did. `best_*` are None on a distributed worker."""

    out_dir: Path
    role: str  # "single", "chief" or "worker"
    trials_run: int  # trials trained by this process
    best_values: dict | None = None  # the best trial's hyperparameters (tuner.get_best_...)
    best_config: ZooConfig | None = None

    @property
    def best_config_path(self) -> Path:
        return self.out_dir / BEST_CONFIG


def tuner_role() -> str:
    """"single", or "chief" / "worker" under keras-tuner's distributed environment."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
               if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not "
                          f"(see docs/tuning.md, distributed tuning)")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def prepare_out_dir(out_dir: Path, space: SearchSpace, tuner: str, overwrite: bool) -> None:
    """Create OUT and record the space and the tuner; refuse to resume a search of another
    space or tuner unless `overwrite` (keras-tuner would silently resume the OLD space from
    its own state)."""
    import shutil

    import yaml

    record = {"tuner": tuner, "space": space.to_dict()}
    stored = out_dir / SEARCH_FILE
    if overwrite:
        for name in (SEARCH_FILE, SPACE_FILE, BEST_CONFIG, BEST_HPS, PROJECT):
            p = out_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    elif stored.exists():
        old = json.loads(stored.read_text(encoding="utf-8"))
        diff = [k for k in record["space"] if old["space"].get(k) != record["space"][k]]
        diff += ["tuner"] if old["tuner"] != tuner else []
        if diff:
            raise ConfigError(f"{out_dir}: holds a search of a different space or tuner "
                              f"(differs in {', '.join(diff)}); use --overwrite or another "
                              f"--out")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in ((SEARCH_FILE, json.dumps(record, indent=1)),
                       (SPACE_FILE, yaml.safe_dump(space.to_dict(), sort_keys=False))):
        tmp = out_dir / f".{name}.{os.getpid()}.tmp"  # atomic: workers write it too
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out_dir / name)


def check_search(kind: str, space: SearchSpace, max_trials: int) -> None:
    """Refuse an unknown tuner, a non-positive trial count, or a 1-epoch Hyperband."""
    if kind not in TUNERS:
        raise UnknownNameError("tuner", kind, TUNERS)
    if not isinstance(max_trials, int) or max_trials < 1:
        raise ConfigError(f"max_trials must be a positive integer, got {max_trials!r}")
    if kind == "hyperband" and space.config({}, trial=True).train.max_epochs < 2:
        raise ConfigError("hyperband needs at least 2 epochs per trial (--epochs-per-trial)")


def make_tuner(kind: str, hypermodel, space: SearchSpace, out_dir, max_trials: int,
               overwrite: bool = False):
    """The keras-tuner tuner `kind` on `hypermodel`, its project in OUT/search.

    Hyperband's budget is the trial's max_epochs (factor 3); `max_trials` caps its trials too.
    """
    import keras_tuner as kt

    check_search(kind, space, max_trials)
    common = {"hypermodel": hypermodel, "directory": str(out_dir), "project_name": PROJECT,
              "objective": kt.Objective(space.objective, space.direction),
              "overwrite": overwrite, "seed": space.base.train.seed}
    if kind == "bayesian":
        return kt.BayesianOptimization(max_trials=max_trials, **common)
    if kind == "random":
        return kt.RandomSearch(max_trials=max_trials, **common)
    tuner = kt.Hyperband(max_epochs=space.config({}, trial=True).train.max_epochs, factor=3,
                         **common)
    tuner.oracle.max_trials = max_trials
    return tuner


def write_best(tuner, space: SearchSpace, out_dir: Path) -> tuple[dict, ZooConfig]:
    """Write the best trial as OUT/best_config.yaml (+ its hyperparameters as JSON)."""
    trials = tuner.oracle.get_best_trials(1)
    if not trials:
        raise SingerZooError(f"{out_dir}: no trial completed; see the trial errors above")
    best = trials[0]
    values = dict(best.hyperparameters.values)
    cfg = space.config(values).replace(
        name=space.name, table="beyond", paper={},
        description=f"{space.base.name} tuned by singer-zoo tune: trial {best.trial_id}, "
                    f"{space.objective} {best.score:.6g} (search space {space.source})")
    cfg.to_yaml(out_dir / BEST_CONFIG)
    summary = {"trial_id": best.trial_id, "objective": space.objective,
               "score": float(best.score), "values": values}
    (out_dir / BEST_HPS).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return values, cfg


def run_search(space: SearchSpace, manifest_path, out_dir, *, tuner: str = "bayesian",
               max_trials: int = 10, fold: int = 0, cache_dir=None, workers: int | Workers = 2,
               overwrite: bool = False, verbose: int = 1) -> SearchResult:
    """Search `space` on the manifest's data into `out_dir` (resumable; see module doc)."""
    from singer_zoo.data import read_manifest
    from singer_zoo.evaluation.protocols import select_recordings
    from singer_zoo.tuning.hypermodel import SingerHyperModel

    check_search(tuner, space, max_trials)
    role = tuner_role()
    out = Path(out_dir)
    prepare_out_dir(out, space, tuner, overwrite and role != "worker")
    train_recs, val_recs = select_recordings(read_manifest(manifest_path),
                                             space.base.train.task, fold)
    if role == "chief":  # serves the oracle only: the model is built to declare the space
        data, n_classes = (), len({r.singer for r in train_recs})
    else:
        from singer_zoo.training.inputs import load_split

        train_data, val_data, classes, failed = load_split(
            space.base, train_recs, val_recs, cache_dir=cache_dir, workers=workers)
        for message in failed.values():
            print(f"skipped {message}", file=sys.stderr)
        data, n_classes = (train_data, val_data), len(classes)
    hypermodel = SingerHyperModel(space, num_classes=max(2, n_classes))
    kt_tuner = make_tuner(tuner, hypermodel, space, out, max_trials,
                          overwrite=overwrite and role != "worker")
    kt_tuner.search(*data, verbose=verbose)
    if role == "worker":
        return SearchResult(out, role, hypermodel.fits)
    values, cfg = write_best(kt_tuner, space, out)
    return SearchResult(out, role, hypermodel.fits, values, cfg)
