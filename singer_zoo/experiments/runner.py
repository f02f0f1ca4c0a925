"""A whole table of the paper from one call: every row (or a chosen subset), its protocol,
the baseline, the plots and a markdown report next to the paper's figures.

    <out>/report.md, report.json     the table(s) in the paper's layout (+ k-NN, EER)
    <out>/<row>/...                  each row's run(s): fold<k>/ (Table 1) or one run (Table 2)
    <out>/loss.png                   train/validation losses of the rows (Figure 3)
    <out>/knn.png, tsne_performances.png   Table 2: Figures 5 and 4 (rows + baseline)

`Budget` scales the paper's training budget down (epochs, steps, validation interval,
patience) for demos and tests; unset fields keep each row's config values.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singer_zoo.batch import Workers
from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.registry import all_configs, list_models

TASKS = {"table1": "classifier", "table2": "siamese"}
TABLES = tuple(TASKS)


@dataclass(frozen=True)
class Budget:
    """Overrides of every row's `train` section; None keeps the row's value."""

    max_epochs: int | None = None
    steps_per_epoch: int | None = None
    validation_every: int | None = None
    patience: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None

    def apply(self, cfg: ZooConfig) -> ZooConfig:
        return cfg.with_train(**dataclasses.asdict(self))


def table_configs(table: str, rows=None) -> list[ZooConfig]:
    """The zoo configs of `table` ("table1" or "table2"): all its rows, or the named `rows`
    in the order given, which may also name our own ("beyond") rows of the same task; any
    other name raises UnknownNameError listing the valid ones."""
    if table not in TABLES:
        raise UnknownNameError("table", table, TABLES)
    cfgs = all_configs()
    task = TASKS[table]
    names = [n for n in list_models() if cfgs[n].table == table]
    valid = names + [n for n in list_models()
                     if cfgs[n].table == "beyond" and cfgs[n].train.task == task]
    for n in rows or ():
        if n not in valid:
            raise UnknownNameError(f"{table} row", n, valid)
    return [cfgs[n] for n in (rows or names)]


def _params(cfg: ZooConfig, num_singers: int) -> dict:
    from singer_zoo.models.table import count_params

    p = count_params(cfg, num_singers)
    return {"cnn_params": p.cnn, "total_params": p.paper_total}


def _loss_plot(out_dir: Path, runs: dict, title: str) -> None:
    from singer_zoo.evaluation.plots import plot_loss_curves

    found = {name: csv for name, csv in runs.items() if csv.exists()}
    if found:
        plot_loss_curves({n: str(c) for n, c in found.items()}, out_dir / "loss.png", title)


def _announce(table: str, i: int, n: int, cfg, folds=None) -> None:
    """One line as each row starts: which row, its size, its folds, its budget."""
    t = cfg.train
    print(f"{table}: row {i}/{n} {cfg.name} "
          f"({_params(cfg, 2)['total_params'] / 1e6:.2f}M parameters)"
          + (f", folds {','.join(map(str, folds))}" if folds is not None else "")
          + f"; up to {t.max_epochs} epochs", flush=True)


def run_table1(manifest, out_dir, rows=None, budget: Budget = Budget(), n_folds: int = 10,
               folds=None, seed: int = 0, baseline: bool = True, cache_dir=None,
               workers: int | Workers = 2, verbose: int = 0) -> Path:
    """Singer classification (Table 1) by `n_folds`-fold CV; `folds` picks fold indices."""
    from singer_zoo.evaluation.baseline import extract_clip_features, svm_baseline
    from singer_zoo.evaluation.protocols import Fold, cv_folds
    from singer_zoo.evaluation.report import write_report
    from singer_zoo.experiments.classification import run_classification

    out_dir = Path(out_dir)
    configs = [budget.apply(c) for c in table_configs("table1", rows)]
    all_folds = cv_folds(manifest, n_folds, seed)
    bad = [k for k in folds or () if not 0 <= k < n_folds]
    if bad:
        raise ConfigError(f"fold indices {bad} are outside 0..{n_folds - 1}")
    chosen = [all_folds[k] for k in (folds if folds is not None else range(n_folds))]
    results = []
    if baseline:
        clips = extract_clip_features(manifest, workers=workers)  # run_batch logs bad files

        def usable(m):
            return m.filter(lambda r: r.path in clips.ok)

        b = svm_baseline([Fold(f.index, usable(f.train), usable(f.validation), usable(f.test))
                          for f in chosen], clips.ok)
        results.append({"name": "baseline", **{k: b[k] for k in (
            "train_accuracy", "train_accuracy_std", "test_accuracy", "test_accuracy_std")},
            "svm": b, "skipped": sorted(clips.failed.values())})
    n_singers = len(manifest.singers)
    for i, cfg in enumerate(configs, 1):
        _announce("table1", i, len(configs), cfg, [f.index for f in chosen])
        row = run_classification(cfg, chosen, out_dir / cfg.name, cache_dir=cache_dir,
                                 workers=workers, verbose=verbose)
        results.append({**row, **_params(cfg, n_singers)})
    _loss_plot(out_dir, {f"{c.name} fold {f.index}": out_dir / c.name / f"fold{f.index}" /
                         "history.csv" for c in configs for f in chosen[:1]},
               "Singer classification: train/validation loss")
    md, _ = write_report(out_dir / "report.md", table1=results,
                         configs={c.name: c for c in configs})
    return md


def _aligned(rows: list, baseline_vectors: np.ndarray, baseline_paths: list):
    """Performance vectors of every method on the test performances all of them have."""
    common = set(baseline_paths)
    for r in rows:
        common &= set(r["test"]["paths"])
    ref = rows[0]["test"] if rows else None
    order = [p for p in (ref["paths"] if ref else baseline_paths) if p in common]
    methods = {}
    for r in rows:
        pos = {p: i for i, p in enumerate(r["test"]["paths"])}
        methods[r["name"]] = r["test"]["embeddings"][[pos[p] for p in order]]
    pos = {p: i for i, p in enumerate(baseline_paths)}
    methods["baseline"] = baseline_vectors[[pos[p] for p in order]]
    return methods, order


def run_table2(manifest, out_dir, rows=None, budget: Budget = Budget(), cache_dir=None,
               workers: int | Workers = 2, verbose: int = 0,
               fractions=(0.6, 0.2, 0.2)) -> Path:
    """Singing performance embedding (Table 2, Figures 3-5, 7) on the song-disjoint split
    (`embedding_split` with `fractions` of the songs for train / validation / test, when the
    manifest has neither a split column nor DAMP-balanced's songs)."""
    from singer_zoo.evaluation.baseline import baseline_performance_vectors
    from singer_zoo.evaluation.knn import knn_accuracies
    from singer_zoo.evaluation.plots import plot_knn_bars, plot_tsne
    from singer_zoo.evaluation.protocols import check_verification_split, embedding_split
    from singer_zoo.evaluation.report import write_report
    from singer_zoo.evaluation.verification import verification_eer
    from singer_zoo.experiments.embedding import run_embedding

    out_dir = Path(out_dir)
    configs = [budget.apply(c) for c in table_configs("table2", rows)]
    split = embedding_split(manifest, fractions)
    check_verification_split(split["test"])  # before hours of training, not after
    rows_out = []
    for i, cfg in enumerate(configs, 1):
        _announce("table2", i, len(configs), cfg)
        row = run_embedding(cfg, split, out_dir / cfg.name, cache_dir=cache_dir,
                            workers=workers, verbose=verbose)
        rows_out.append({**row, **_params(cfg, 2)})
    b_vectors, b_kept = baseline_performance_vectors(split["test"], workers=workers)
    methods, order = _aligned(rows_out, b_vectors, [r.path for r in b_kept])
    by_path = {r.path: r for r in split["test"]}
    singers = [by_path[p].singer for p in order]
    songs = [by_path[p].song for p in order]
    has_songs = len(set(songs)) > 1
    tasks = {"singer": singers, **({"song": songs} if has_songs else {})}
    knn = {task: {m: knn_accuracies(v, labels) for m, v in methods.items()}
           for task, labels in tasks.items()}
    eer = {m: {"all": verification_eer(v, singers, None, "all").to_dict(),
               **({"hard": verification_eer(v, singers, songs, "hard").to_dict()}
                  if has_songs else {})} for m, v in methods.items()}
    plot_knn_bars(knn, out_dir / "knn.png", "Leave-one-out k-NN on test performances")
    plot_tsne(methods, singers, songs, out_dir / "tsne_performances.png",
              "Test performances: learned embeddings vs handcrafted baseline")
    _loss_plot(out_dir, {c.name: out_dir / c.name / "history.csv" for c in configs},
               "Singing performance embedding: train/validation loss")
    for r in rows_out:
        r.pop("test")
    md, _ = write_report(out_dir / "report.md", table2=rows_out, knn=knn, eer=eer,
                         configs={c.name: c for c in configs})
    return md
